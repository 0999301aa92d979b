"""Synthetic transaction histories: what a statement of a Chinese retail account shows.

Salary on the 10th (or a pension on the 15th), card and QR-code payments at
well-known merchants, utility bills, ATM withdrawals, transfers to and from
named people at other banks, quarterly interest on the 21st of the last month
of each quarter (the PBoC settlement date). Debits never overdraw: an event the
balance cannot cover is dropped, as the core would decline it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Final

from gateway import pii
from gateway.corebank import vocab
from gateway.corebank.model import CST, Account, Customer, Draw, Transaction, person_name

HISTORY_DAYS: Final = 120
OTHER_BANK_PREFIXES: Final = ("621700", "622848", "621661", "622262", "621483", "622588")
"""UnionPay issuer prefixes of counterparties' accounts at other banks."""
INTEREST_RATE_PPM: Final = {"settlement": 1_000, "savings": 3_000}
"""Annual deposit rates in parts per million (0.10% demand, 0.30% notice-style savings)."""
_INCOME_FEN: Final = {
    "50000以下": 4_000_000,
    "50000-100000": 7_500_000,
    "100000-200000": 15_000_000,
    "200000-500000": 30_000_000,
    "500000以上": 70_000_000,
}


@dataclass(frozen=True)
class _Event:
    at: datetime
    kind: str
    amount_fen: int  # signed; 0 for interest, computed from the balance when booked
    description: str
    channel: str
    merchant: str | None = None
    counterparty_name: str | None = None
    counterparty_account: str | None = None


def _at(draw: Draw, day: date, first_hour: int = 8, last_hour: int = 22) -> datetime:
    hour = draw.rng.randrange(first_hour, last_hour + 1)
    moment = time(hour, draw.rng.randrange(60), draw.rng.randrange(60))
    return datetime.combine(day, moment, CST)


def _person(draw: Draw) -> tuple[str, str]:
    surname, given, _ = person_name(draw, draw.pick(("M", "F")))
    prefix = draw.pick(OTHER_BANK_PREFIXES)
    return surname + given, pii.card_number(prefix, draw.digits(19), 19)


def _monthly(day: date, customer: Customer) -> Iterator[tuple[str, int, str, str]]:
    """Income paid on this day: (kind, fen per month, description, payer)."""
    if day.day == 10 and customer.employer is not None:
        yield "salary", _INCOME_FEN[customer.annual_income] // 12, "工资", customer.employer
    if day.day == 15 and customer.occupation == "退休人员":
        payer = f"{customer.address.city}社会保险事业管理局"
        yield "pension", 450_000, "养老金", payer


def _daily_events(draw: Draw, customer: Customer, account: Account, day: date) -> list[_Event]:
    rng = draw.rng
    events: list[_Event] = []
    if account.kind == "savings":
        if rng.random() < 0.02:
            amount = 100 * 100 * rng.randrange(5, 200)
            events.append(_Event(_at(draw, day, 9, 16), "deposit", amount, "存入", "counter"))
        if rng.random() < 0.01:
            amount = -100 * 100 * rng.randrange(1, 50)
            events.append(_Event(_at(draw, day, 9, 16), "withdrawal", amount, "支取", "counter"))
    else:
        for kind, monthly, description, payer in _monthly(day, customer):
            amount = monthly * rng.randrange(85, 116) // 100
            payer_account = pii.card_number(draw.pick(OTHER_BANK_PREFIXES), draw.digits(19), 19)
            events.append(
                _Event(_at(draw, day, 9, 11), kind, amount, description, "batch",
                       counterparty_name=payer, counterparty_account=payer_account)
            )  # fmt: skip
        if rng.random() < 0.35:
            merchant, _category, low, high = draw.pick(vocab.MERCHANTS)
            channel = draw.pick(("pos", "unionpay_qr", "online", "quick_pay"))
            events.append(
                _Event(_at(draw, day), "card_payment", -rng.randrange(low, high + 1),
                       f"消费 {merchant}", channel, merchant=merchant)
            )  # fmt: skip
        if rng.random() < 0.03:
            amount = -100 * 100 * rng.randrange(1, 21)
            events.append(_Event(_at(draw, day), "atm_withdrawal", amount, "ATM取款", "atm"))
        for direction, chance in (("transfer_out", 0.04), ("transfer_in", 0.03)):
            if rng.random() < chance:
                name, number = _person(draw)
                amount = rng.randrange(1_000, 500_000)
                signed = -amount if direction == "transfer_out" else amount
                text = f"转账 {name}" if direction == "transfer_out" else f"转账收入 {name}"
                events.append(
                    _Event(_at(draw, day), direction, signed, text, "mobile_banking",
                           counterparty_name=name, counterparty_account=number)
                )  # fmt: skip
    if day.month % 3 == 0 and day.day == 21:
        events.append(
            _Event(datetime.combine(day, time(0, 5), CST), "interest", 0, "结息", "batch")
        )
    return events


def account_history(
    draw: Draw, customer: Customer, account: Account, as_of: date
) -> tuple[list[Transaction], int]:
    """The account's transactions over the last `HISTORY_DAYS` up to `as_of`, oldest
    first, starting from ``account.balance_fen``; returns them and the final balance."""
    start = max(as_of - timedelta(days=HISTORY_DAYS), account.opened_on)
    events: list[_Event] = []
    day = start
    while day <= as_of:
        events.extend(_daily_events(draw, customer, account, day))
        day += timedelta(days=1)
    events.sort(key=lambda e: e.at)  # stable: same-instant events keep their draw order
    balance = account.balance_fen
    booked: list[Transaction] = []
    for event in events:
        amount = event.amount_fen
        if event.kind == "interest":
            amount = balance * INTEREST_RATE_PPM[account.kind] // 4_000_000
            if amount <= 0:
                continue
        if balance + amount < 0:
            continue  # declined: insufficient funds
        balance += amount
        booked.append(
            Transaction(
                draw.ident("txn"),
                account.account_id,
                event.at,
                amount,
                balance,
                event.kind,
                event.description,
                event.merchant,
                event.counterparty_name,
                event.counterparty_account,
                event.channel,
            )
        )
    return booked, balance
