"""The in-process leak test of issue 7, check 1: every route of the sample core bank,
fed with its synthetic data (errors included), under every profile, shows zero
unmasked C2 values and zero C3 values. (The same crawl through real Envoy is the
end-to-end form of this check.)

Documents are built by the core bank's own view functions, serialised the way it
sends them (UTF-8, Chinese as text) and masked with `mask_body`, as ext_proc does.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from gateway.corebank import routes_open, views
from gateway.corebank.model import CST, Bank
from gateway.corebank.store import StaffAction, Transfer
from gateway.corebank.synthetic import generate
from gateway.masking.body import mask_body
from gateway.masking.detector import find
from gateway.masking.engine import MaskingEngine, Request
from gateway.masking.maskers import PseudonymKeys
from gateway.masking.rules import default_rules
from tests.gateway.masking.strategies import TODAY

GATEWAY_CONFIG = Path(__file__).parents[3] / "gateway" / "defaults" / "gateway.json"
PROFILES = (
    "customer",
    "partner",
    "staff_restricted",
    "staff_minimal",
    "audit",
    "public",
    "strict",
    "",
    "unknown-profile",
)
ENGINE = MaskingEngine(default_rules(), PseudonymKeys(b"\x09" * 32), today=lambda: TODAY)


@cache
def bank() -> Bank:
    return generate(42, 25, TODAY)


def _transfer(bank: Bank, i: int) -> Transfer:
    a, b = bank.accounts[i], bank.accounts[-1 - i]
    payee = next(c.name for c in bank.customers if c.customer_id == b.customer_id)
    return Transfer(
        f"trf_{i:032x}", f"customer:{a.customer_id}", "retail", a.account_id, a.number,
        b.number, b.account_id, payee, 12_345, "CNY", f"房租 {payee}", "completed",
        datetime(2026, 10, 1, 9, 30, tzinfo=CST),
    )  # fmt: skip


def documents(bank: Bank) -> Iterator[tuple[str, Any]]:
    """(route id, body) for every masked route of gateway/defaults/gateway.json; each
    open-banking body also as its sandbox twin's (the sandbox bank answers alike)."""
    for route, doc in _documents(bank):
        yield route, doc
        if route.startswith("ob."):
            yield f"sandbox.{route}", doc


def _documents(bank: Bank) -> Iterator[tuple[str, Any]]:
    by_customer = {c.customer_id: c for c in bank.customers}
    for c in bank.customers:
        profile = views.customer_document(c)
        accounts = [a for a in bank.accounts if a.customer_id == c.customer_id]
        cards = [k for k in bank.cards if k.customer_id == c.customer_id]
        yield "customers.profile", profile
        yield "accounts.list", {"accounts": [views.account_document(a) for a in accounts]}
        yield "cards.list", {"cards": [views.card_summary(k) for k in cards]}
        for k in cards:
            yield "cards.detail", views.card_detail(k, c.name)
        yield "staff.customers.view", views.staff_customer_view(profile, accounts, cards)
        yield (
            "staff.customers.search",
            {"customers": [{"customer_id": c.customer_id, "name": c.name, "mobile": c.mobile}]},
        )
        yield "ob.accounts.list", {"accounts": [routes_open._account(a, c.name) for a in accounts]}
        yield "staff.customers.accounts", views.staff_accounts_view(c.customer_id, accounts)
        s = bank.staff[len(c.customer_id) % len(bank.staff)]
        reason = f"{c.name} 来电, 手机 {c.mobile}, 身份证 {c.resident_id}"  # staff type anything
        at = datetime(2026, 10, 2, 14, 0, tzinfo=CST)
        action = StaffAction("act_1", s.staff_id, s.name, c.customer_id, "unlock", reason, at)
        yield (
            "staff.customers.unlock",
            views.unlock_document(action, ("locked", 3), profile, accounts),
        )
        paid = [_transfer(bank, i) for i in range(3)]
        yield (
            "audit.customers.activity",
            views.audit_activity(profile, ("locked", 3), accounts, paid, [action]),
        )
        for a in accounts:
            yield "accounts.detail", views.account_document(a)
            yield "accounts.balances", views.balance_document(a, "2026-11-01T10:00:00+08:00")
            yield "ob.accounts.balances", {"account": {"bban": a.number, "currency": "CNY"}}
            txns = [t for t in bank.transactions if t.account_id == a.account_id][-60:]
            yield (
                "accounts.transactions",
                {
                    "account_id": a.account_id,
                    "transactions": [views.transaction_document(t) for t in txns],
                },
            )
            yield (
                "ob.accounts.transactions",
                {
                    "account": {"bban": a.number, "currency": "CNY"},
                    "transactions": {"booked": [routes_open._transaction(t) for t in txns]},
                },
            )
            # Core error bodies carry account numbers in their descriptions.
            short = f"insufficient funds in account {a.number}: available 1.00 CNY"
            yield "transfers.view", {"error": "insufficient_funds", "error_description": short}
            frozen = f"account {a.number} is frozen"
            yield "ob.payments.view", {"error": "account_frozen", "error_description": frozen}
    for i in range(10):
        t = _transfer(bank, i)
        for verb in ("view", "create"):  # creating answers the same document
            yield f"transfers.{verb}", views.transfer_document(t)
            yield f"ob.payments.{verb}", routes_open._payment(t)
    assert by_customer


@cache
def c2_pattern(bank: Bank) -> re.Pattern[str]:
    """One regular expression finding any C2 value of the bank (longest first)."""
    values = sorted(c2_values(bank), key=len, reverse=True)
    return re.compile("|".join(map(re.escape, values)))


def c2_values(bank: Bank) -> frozenset[str]:
    values: set[str] = set()
    for c in bank.customers:
        # (Dates are checked field by field: one customer's birth date is another
        # card's issue date, and that is no leak.)
        values |= {c.name, c.name_pinyin, c.resident_id, c.mobile, c.email, c.address.full,
                   c.address.street}  # fmt: skip
        if len(c.given_name) > 1:
            values.add(c.given_name)
        if c.employer:  # KYC
            values.add(c.employer)
    values |= {a.number for a in bank.accounts} | {k.number for k in bank.cards}
    for t in bank.transactions:
        values |= {v for v in (t.counterparty_name, t.counterparty_account) if v}
    return frozenset(v for v in values if len(v) >= 2)


def _strings(doc: Any) -> Iterator[str]:
    if isinstance(doc, str):
        yield doc
    elif isinstance(doc, dict):
        for k, v in doc.items():
            yield k
            yield from _strings(v)
    elif isinstance(doc, list):
        for v in doc:
            yield from _strings(v)


@pytest.mark.parametrize("profile", PROFILES)
def test_no_c2_and_no_c3_leaves_under_any_profile(profile: str) -> None:
    the_bank = bank()
    sensitive = c2_pattern(the_bank)
    births = {c.customer_id: c.birth_date.isoformat() for c in the_bank.customers}
    cvns = {k.cvn for k in the_bank.cards}
    expiries = {k.expiry for k in the_bank.cards}
    routes_seen: set[str] = set()
    for route, doc in documents(the_bank):
        routes_seen.add(route)
        raw = json.dumps(doc, ensure_ascii=False).encode()
        outcome = mask_body(
            ENGINE,
            raw,
            "application/json; charset=utf-8",
            Request(route, profile, "fintech-budgetly"),
        )
        assert not outcome.blocked
        text = outcome.body.decode()
        leaked = sensitive.findall(text)
        assert not leaked, (route, profile, leaked[:3])
        masked = json.loads(text)
        person = masked.get("profile", masked) if isinstance(masked, dict) else {}
        # KYC data (occupation, income, ethnicity, ID validity) is removed under every profile.
        if route in ("customers.profile", "staff.customers.view"):
            assert not {"kyc", "ethnicity", "gender"} & set(person), (route, profile)
            assert not {"issued_on", "expires_on"} & set(person.get("id_document", {}))
        if "birth_date" in person:
            assert person["birth_date"] != births[person["customer_id"]], (route, profile)
        strings = list(_strings(masked))
        assert not any(find(s) for s in strings), (route, profile)
        assert not {"cvn", "expiry"} & set(strings), (route, profile)
        assert not (cvns | expiries) & set(strings), (route, profile)
    config = json.loads(GATEWAY_CONFIG.read_text("utf-8"))
    assert routes_seen == {r["id"] for r in config["routes"] if r.get("masking")}


def test_the_customer_still_sees_a_usable_page() -> None:
    the_bank = bank()
    card = the_bank.cards[0]
    holder = next(c for c in the_bank.customers if c.customer_id == card.customer_id)
    out = ENGINE.mask(views.card_detail(card, holder.name), Request("cards.detail", "customer"))
    assert out["card_number"] == card.number[:6] + "*" * (len(card.number) - 10) + card.number[-4:]
    assert out["cardholder_name"] == holder.name[0] + "*" * (len(holder.name) - 1)
    assert out["status"] == card.status and "cvn" not in out and "expiry" not in out


def test_audit_pseudonyms_join_records_across_customers_and_only_for_audit() -> None:
    """One account number is one audit pseudonym in every review (the payer's transfer
    names the payee's account as the payee's own review lists it), and it is neither
    the number nor what a partner sees for it."""
    the_bank = bank()
    paid = _transfer(the_bank, 0)
    payee_id = next(a.customer_id for a in the_bank.accounts if a.number == paid.to_account_number)
    payee = next(c for c in the_bank.customers if c.customer_id == payee_id)
    accounts = [a for a in the_bank.accounts if a.customer_id == payee_id]
    review = views.audit_activity(views.customer_document(payee), ("active", 0), accounts, [], [])
    route = "audit.customers.activity"
    masked_review = ENGINE.mask(review, Request(route, "audit"))
    masked_transfer = ENGINE.mask(views.transfer_document(paid), Request(route, "audit"))
    to_account = masked_transfer["to_account_number"]
    assert to_account in {a["account_number"] for a in masked_review["accounts"]}
    assert to_account != paid.to_account_number
    partner = ENGINE.mask(
        views.transfer_document(paid), Request(route, "audit", "fintech-budgetly")
    )
    assert partner["to_account_number"] == to_account  # the audit scope, whoever asks
    as_partner = ENGINE.mask(
        views.transfer_document(paid), Request("transfers.view", "partner", "fintech-budgetly")
    )
    assert as_partner["to_account_number"] not in (to_account, paid.to_account_number)
