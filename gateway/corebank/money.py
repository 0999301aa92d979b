"""CNY amounts: integer fen inside the bank, decimal strings on the wire.

Binary floating point cannot represent 0.10 exactly, so no amount ever passes
through `float`: requests carry a decimal string (``"1234.50"``), the bank
computes in integer fen (1 CNY = 100 fen), and responses format fen back as a
string with exactly two decimals.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Final

CURRENCY: Final = "CNY"
MAX_AMOUNT_FEN: Final = 100_000_000_000_00
"""Upper bound of any amount the parser accepts (100 billion CNY): far above any
balance, far below SQLite's 64-bit integers."""

_AMOUNT: Final = re.compile(r"(0|[1-9][0-9]{0,12})(?:\.([0-9]{1,2}))?")


class AmountError(ValueError):
    """An amount string that is not a positive CNY amount with at most 2 decimals."""


def parse_amount(text: str) -> int:
    """``"12.3"`` → 1230 fen. Refuses signs, exponents, spaces, more than two
    decimals, zero, and anything else that is not plain ASCII digits."""
    match = _AMOUNT.fullmatch(text)
    if match is None:
        raise AmountError("amount must be a decimal string like 1234.56 (at most 2 decimals)")
    whole, frac = match.group(1), match.group(2) or ""
    fen = int(whole) * 100 + int(frac.ljust(2, "0"))
    if fen <= 0:
        raise AmountError("amount must be greater than zero")
    if fen > MAX_AMOUNT_FEN:
        raise AmountError("amount is too large")
    return fen


def format_fen(fen: int) -> str:
    """1230 → ``"12.30"``; negative amounts keep their sign (``"-0.05"``)."""
    sign = "-" if fen < 0 else ""
    whole, frac = divmod(abs(fen), 100)
    return f"{sign}{whole}.{frac:02d}"


def to_decimal(fen: int) -> Decimal:
    """The amount as an exact `Decimal` with two places."""
    return Decimal(format_fen(fen))
