"""A deterministic generator of a small retail bank's customers and holdings.

Everything is synthetic and every identifier is structurally valid, so that the
edge's masking has realistic C2/C3 data to find (JR/T 0171-2020): resident ID
numbers with real GB/T 2260 region codes, a birth date matching the customer's
age and gender parity in the sequence number, and a correct MOD 11-2 check
character; UnionPay card numbers (IIN 62) with Luhn check digits, expiry dates and
CVNs; mobile numbers under real carrier prefixes; addresses in real districts.

The same ``(seed, customers, as_of)`` always gives the same bank (on one Python
version: `random` promises stable sequences only within a version): one
`random.Random` drives every choice, in a fixed order. Money is integer fen.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta
from typing import Final

from gateway import pii
from gateway.corebank import vocab
from gateway.corebank.history import account_history
from gateway.corebank.model import (
    Account,
    Address,
    Bank,
    Card,
    Customer,
    Draw,
    StaffUser,
    Transaction,
    add_years,
    person_name,
)

__all__ = [
    "Account",
    "Address",
    "Bank",
    "Card",
    "Customer",
    "StaffUser",
    "Transaction",
    "generate",
]

DEBIT_PRODUCTS: Final = (("622208", 19, "灵通借记卡"), ("621226", 19, "白金借记卡"))
CREDIT_PRODUCTS: Final = (("625330", 16, "信用卡 金卡"), ("628288", 16, "信用卡 白金卡"))
SAVINGS_PREFIX: Final = "623062"
"""The sample bank's issuer prefixes (UnionPay IIN range 62); account numbers of
settlement accounts are their debit card's number, as at most Chinese banks."""


def _names_and_weights(
    pairs: tuple[tuple[str, int], ...],
) -> tuple[tuple[str, ...], tuple[int, ...]]:
    return tuple(n for n, _ in pairs), tuple(w for _, w in pairs)


def _mobile(draw: Draw) -> str:
    prefixes = tuple(pii.MOBILE_PREFIXES)
    while not draw.unique(number := draw.pick(prefixes) + draw.digits(8)):
        pass
    return number


def _resident_id(draw: Draw, region: str, born: date, gender: str) -> str:
    while True:
        seq = draw.rng.randrange(1, 999)
        seq += (seq % 2 == 1) != (gender == "M")  # odd for men, even for women
        if draw.unique(number := pii.resident_id(region, born, seq)):
            return number


def _id_validity(draw: Draw, born: date, as_of: date) -> tuple[date, date | None]:
    """Issue and expiry dates per the Resident Identity Card Law art. 5: valid 5 years
    under 16, 10 years at 16-25, 20 years at 26-45, long-term from 46."""
    while True:
        issued = draw.date_between(max(born, as_of - timedelta(days=20 * 365)), as_of)
        age = (issued - born).days // 365
        years = 5 if age < 16 else 10 if age <= 25 else 20 if age <= 45 else 0
        if not years:
            return issued, None
        expires = add_years(issued, years)
        if expires > as_of:
            return issued, expires


def _address(draw: Draw, home: vocab.Region) -> Address:
    region = home if draw.rng.random() < 0.6 else draw.pick(vocab.REGIONS)
    street = (
        f"{draw.pick(vocab.STREETS)}{draw.rng.randrange(1, 300)}号{draw.pick(vocab.COMPOUNDS)}"
        f"{draw.rng.randrange(1, 30)}栋{draw.rng.randrange(1, 6)}单元"
        f"{draw.rng.randrange(1, 33)}{draw.rng.randrange(1, 5):02d}室"
    )
    return Address(
        region.code, region.province, region.city, region.district, street, region.postal_code
    )


def _email(draw: Draw, pinyin: str, born: date) -> str:
    if draw.rng.random() < 0.3:  # QQ mail addresses are the QQ number
        return f"{draw.rng.randrange(10_000_000, 3_999_999_999)}@qq.com"
    suffix = draw.pick((f"{born.year}", f"{born:%m%d}", draw.digits(3), ""))
    return f"{pinyin}{suffix}@{draw.pick(vocab.MAIL_DOMAINS)}"


def make_customer(draw: Draw, as_of: date) -> Customer:
    gender = draw.pick(("M", "F"))
    born = draw.date_between(add_years(as_of, -75), add_years(as_of, -19))
    surname, given, pinyin = person_name(draw, gender)
    home = draw.pick(vocab.REGIONS)
    issued, expires = _id_validity(draw, born, as_of)
    age = (as_of - born).days // 365
    jobs = vocab.OCCUPATIONS
    if age >= 60:
        occupation, income = "退休人员", "50000以下"
    else:
        eligible = tuple(j for j in jobs if j[0] != "退休人员" and (j[0] != "学生" or age < 25))
        occupation, income, _ = draw.weighted(eligible, tuple(w for *_, w in eligible))
    employer = None
    if occupation not in vocab.NO_EMPLOYER:
        words, trades = vocab.EMPLOYER_WORDS, vocab.EMPLOYER_TRADES
        employer = f"{home.city[:-1]}{draw.pick(words)}{draw.pick(trades)}"
    adult = add_years(born, 18)
    return Customer(
        customer_id=draw.ident("cst"),
        name=surname + given,
        surname=surname,
        given_name=given,
        name_pinyin=pinyin,
        gender=gender,
        birth_date=born,
        ethnicity=draw.weighted(*_names_and_weights(vocab.ETHNICITIES)),
        resident_id=_resident_id(draw, home.code, born, gender),
        id_issued_on=issued,
        id_expires_on=expires,
        mobile=_mobile(draw),
        email=_email(draw, pinyin, born),
        address=_address(draw, home),
        occupation=occupation,
        employer=employer,
        annual_income=income,
        kyc_risk_level=draw.weighted(("low", "medium", "high"), (80, 17, 3)),
        customer_since=draw.date_between(max(adult, date(2005, 1, 1)), as_of - timedelta(days=200)),
    )


def card_number(draw: Draw, prefix: str, length: int) -> str:
    while not draw.unique(number := pii.card_number(prefix, draw.digits(length), length)):
        pass
    return number


def _opening_balance(draw: Draw, kind: str) -> int:
    """Log-uniform-ish balances: many small, a few large (fen)."""
    low, high = (10_000, 20_000_000) if kind == "settlement" else (500_000, 200_000_000)
    return int(low * (high / low) ** draw.rng.random())


def make_holdings(draw: Draw, customer: Customer, as_of: date) -> tuple[list[Account], list[Card]]:
    """A settlement account with its debit card, maybe savings, maybe a credit card."""
    accounts: list[Account] = []
    cards: list[Card] = []
    branch = draw.pick(vocab.BRANCHES)
    opened = customer.customer_since
    prefix, length, product = draw.pick(DEBIT_PRODUCTS)
    number = card_number(draw, prefix, length)
    status = "frozen" if draw.rng.random() < 0.02 else "active"
    settlement = Account(
        draw.ident("acc"), customer.customer_id, number, "settlement", "个人结算账户",
        "CNY", status, opened, branch, _opening_balance(draw, "settlement"),
    )  # fmt: skip
    accounts.append(settlement)
    cards.append(_card(draw, customer, settlement.account_id, number, "debit", product, as_of))
    if draw.rng.random() < 0.45:
        accounts.append(
            Account(
                draw.ident("acc"),
                customer.customer_id,
                card_number(draw, SAVINGS_PREFIX, 19),
                "savings",
                "定活两便储蓄账户",
                "CNY",
                "active",
                draw.date_between(opened, as_of - timedelta(days=150)),
                branch,
                _opening_balance(draw, "savings"),
            )
        )
    if draw.rng.random() < 0.3:
        prefix, length, product = draw.pick(CREDIT_PRODUCTS)
        number = card_number(draw, prefix, length)
        cards.append(_card(draw, customer, None, number, "credit", product, as_of))
    return accounts, cards


def _card(
    draw: Draw,
    customer: Customer,
    account_id: str | None,
    number: str,
    kind: str,
    product: str,
    as_of: date,
) -> Card:
    issued = draw.date_between(max(customer.customer_since, add_years(as_of, -4)), as_of)
    years = 10 if kind == "debit" else 5
    limit = 1_000_000 * draw.rng.randrange(1, 11) if kind == "credit" else 0
    outstanding = draw.rng.randrange(limit // 2 + 1) if limit else 0
    return Card(
        draw.ident("crd"), customer.customer_id, account_id, number, kind, product,
        issued.year + years, issued.month, draw.digits(3), issued, "active", limit, outstanding,
    )  # fmt: skip


def make_staff(draw: Draw, count: int) -> list[StaffUser]:
    """`count` staff; the first of them hold each role in turn, so every role's
    tasks (a supervisor's unlock, an auditor's review) have someone to do them."""
    staff: list[StaffUser] = []
    for i in range(count):
        gender = draw.pick(("M", "F"))
        surname, given, _ = person_name(draw, gender)
        roles = vocab.STAFF_ROLES
        role, title = roles[i] if i < len(roles) else draw.pick(roles)
        while not draw.unique(staff_id := "E" + draw.digits(6)):
            pass
        staff.append(
            StaffUser(staff_id, surname + given, role, title, draw.pick(vocab.BRANCHES),
                      _mobile(draw), True)
        )  # fmt: skip
    return staff


def generate(seed: int, customers: int, as_of: date, *, staff: int = 12) -> Bank:
    """The whole bank for `seed`; transaction histories end on `as_of` (CST)."""
    if customers < 1:
        raise ValueError("customers must be at least 1")
    draw = Draw(seed)
    people: list[Customer] = []
    accounts: list[Account] = []
    cards: list[Card] = []
    history: list[Transaction] = []
    for _ in range(customers):
        customer = make_customer(draw, as_of)
        held, issued = make_holdings(draw, customer, as_of)
        people.append(customer)
        cards.extend(issued)
        for account in held:
            txns, balance = account_history(draw, customer, account, as_of)
            accounts.append(replace(account, balance_fen=balance))
            history.extend(txns)
    return Bank(
        seed, as_of, tuple(people), tuple(accounts), tuple(cards), tuple(history),
        tuple(make_staff(draw, staff)),
    )  # fmt: skip
