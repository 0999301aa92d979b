"""Amounts: decimal strings in, integer fen inside, decimal strings out."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.corebank.money import MAX_AMOUNT_FEN, AmountError, format_fen, parse_amount, to_decimal


@pytest.mark.parametrize(
    ("text", "fen"),
    [("1", 100), ("0.01", 1), ("12.3", 1230), ("12.30", 1230), ("1000000.00", 100_000_000)],
)
def test_parses(text: str, fen: int) -> None:
    assert parse_amount(text) == fen


@pytest.mark.parametrize(
    "text",
    ["", "0", "0.00", "-1", "+1", "1.001", "1e3", "1,000", " 1", "1 ", ".5", "5.", "01",
     "NaN", "Infinity", "\uff11", "1_000", "0x10", "99999999999999"],
)  # fmt: skip
def test_refuses(text: str) -> None:
    with pytest.raises(AmountError):
        parse_amount(text)


def test_formats() -> None:
    assert format_fen(1230) == "12.30"
    assert format_fen(5) == "0.05"
    assert format_fen(-5) == "-0.05"
    assert format_fen(0) == "0.00"
    assert to_decimal(1230) == Decimal("12.30")


@given(st.integers(min_value=1, max_value=MAX_AMOUNT_FEN))
def test_round_trip(fen: int) -> None:
    assert parse_amount(format_fen(fen)) == fen
    assert to_decimal(fen) == Decimal(fen) / 100


@given(st.text(max_size=20))
def test_parser_only_raises_amount_error(text: str) -> None:
    try:
        fen = parse_amount(text)
    except AmountError:
        return
    assert 0 < fen <= MAX_AMOUNT_FEN
    assert Decimal(text) * 100 == fen  # what was accepted means exactly that many fen
