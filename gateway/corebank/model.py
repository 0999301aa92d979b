"""The sample bank's value types, and `Draw`, the synthetic generator's source of choices.

Money is integer fen (1 CNY = 100 fen); times are aware datetimes in China
Standard Time, the bank's booking zone.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Final, TypeVar

from gateway.corebank import vocab

CST: Final = timezone(timedelta(hours=8), "CST")
"""China Standard Time (UTC+8, no daylight saving)."""

T = TypeVar("T")


def add_years(day: date, years: int) -> date:
    """`day` moved by whole years; 29 February becomes 28 February in common years."""
    try:
        return day.replace(year=day.year + years)
    except ValueError:
        return day.replace(year=day.year + years, day=28)


@dataclass(frozen=True)
class Address:
    region_code: str
    province: str
    city: str
    district: str
    street: str
    postal_code: str

    @property
    def full(self) -> str:
        city = "" if self.city == self.province else self.city  # 北京市东城区…, not 北京市北京市
        return f"{self.province}{city}{self.district}{self.street}"


@dataclass(frozen=True)
class Customer:
    customer_id: str
    name: str
    surname: str
    given_name: str
    name_pinyin: str
    gender: str  # "M" or "F", as GB 11643 encodes it
    birth_date: date
    ethnicity: str
    resident_id: str
    id_issued_on: date
    id_expires_on: date | None  # None: 长期 (issued at 46 or older)
    mobile: str
    email: str
    address: Address
    occupation: str
    employer: str | None
    annual_income: str
    kyc_risk_level: str
    customer_since: date


@dataclass(frozen=True)
class Account:
    account_id: str
    customer_id: str
    number: str
    kind: str  # "settlement" (I类, the debit card's account) or "savings"
    product: str
    currency: str
    status: str  # "active" or "frozen"
    opened_on: date
    branch: str
    balance_fen: int


@dataclass(frozen=True)
class Card:
    card_id: str
    customer_id: str
    account_id: str | None
    number: str
    kind: str  # "debit" or "credit"
    product: str
    expiry_year: int
    expiry_month: int
    cvn: str
    issued_on: date
    status: str
    credit_limit_fen: int
    outstanding_fen: int

    @property
    def expiry(self) -> str:
        """``MM/YY`` as embossed on the card."""
        return f"{self.expiry_month:02d}/{self.expiry_year % 100:02d}"


@dataclass(frozen=True)
class Transaction:
    txn_id: str
    account_id: str
    booked_at: datetime
    amount_fen: int  # negative for debits
    balance_after_fen: int
    kind: str
    description: str
    merchant: str | None
    counterparty_name: str | None
    counterparty_account: str | None
    channel: str


@dataclass(frozen=True)
class StaffUser:
    staff_id: str
    name: str
    role: str
    title: str
    branch: str
    mobile: str
    active: bool


@dataclass(frozen=True)
class Bank:
    seed: int
    as_of: date
    customers: tuple[Customer, ...]
    accounts: tuple[Account, ...]
    cards: tuple[Card, ...]
    transactions: tuple[Transaction, ...]
    staff: tuple[StaffUser, ...]


class Draw:
    """The generator's one source of choices, plus uniqueness bookkeeping."""

    def __init__(self, seed: int) -> None:
        # Deterministic synthetic data, never secrets: a seeded PRNG is the point.
        self.rng = random.Random(seed)  # noqa: S311
        self._taken: set[str] = set()

    def pick(self, items: tuple[T, ...]) -> T:
        return items[self.rng.randrange(len(items))]

    def weighted(self, items: tuple[T, ...], weights: tuple[int, ...]) -> T:
        return self.rng.choices(items, weights=weights)[0]

    def digits(self, n: int) -> str:
        return f"{self.rng.randrange(10**n):0{n}d}"

    def ident(self, prefix: str) -> str:
        return f"{prefix}_{self.rng.getrandbits(64):016x}"

    def unique(self, make: str) -> bool:
        """Claim `make`; False if it was already handed out (then draw again)."""
        if make in self._taken:
            return False
        self._taken.add(make)
        return True

    def date_between(self, start: date, end: date) -> date:
        return start + timedelta(days=self.rng.randrange((end - start).days + 1))


def person_name(draw: Draw, gender: str) -> tuple[str, str, str]:
    """(surname, given name, pinyin) with a frequency-weighted surname."""
    surname, sur_py, _ = draw.weighted(vocab.SURNAMES, tuple(w for *_, w in vocab.SURNAMES))
    pool = vocab.GIVEN_MALE if gender == "M" else vocab.GIVEN_FEMALE
    parts = [draw.pick(pool) for _ in range(1 if draw.rng.random() < 0.3 else 2)]
    given = "".join(ch for ch, _ in parts)
    return surname, given, sur_py + "".join(py for _, py in parts)
