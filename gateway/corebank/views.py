"""JSON shapes of the retail API (``/api/...``): what a bank's own app receives.

The core answers with the full data, C2 identifiers and the card's C3 data
(expiry, CVN) included, exactly as a real core system does; it is the edge's
masking (JR/T 0171-2020 §5) that removes C3 and masks C2 before a response
leaves the bank. Amounts are decimal strings with two places; times ISO 8601
with the +08:00 offset.
"""

from __future__ import annotations

from typing import Any

from gateway.corebank.model import Account, Card, Customer, StaffUser, Transaction
from gateway.corebank.money import CURRENCY, format_fen
from gateway.corebank.store import StaffAction, Transfer

Json = dict[str, Any]


def customer_document(c: Customer) -> Json:
    """The customer profile as stored and as `GET /api/customers/{id}/profile` returns it."""
    return {
        "customer_id": c.customer_id,
        "name": c.name,
        "surname": c.surname,
        "given_name": c.given_name,
        "name_pinyin": c.name_pinyin,
        "gender": c.gender,
        "birth_date": c.birth_date.isoformat(),
        "ethnicity": c.ethnicity,
        "id_document": {
            "type": "resident_identity_card",
            "number": c.resident_id,
            "issuing_region": c.resident_id[:6],
            "issued_on": c.id_issued_on.isoformat(),
            "expires_on": c.id_expires_on.isoformat() if c.id_expires_on else "long_term",
        },
        "mobile": c.mobile,
        "email": c.email,
        "address": {
            "province": c.address.province,
            "city": c.address.city,
            "district": c.address.district,
            "street": c.address.street,
            "postal_code": c.address.postal_code,
            "full": c.address.full,
        },
        "kyc": {
            "occupation": c.occupation,
            "employer": c.employer,
            "annual_income_cny": c.annual_income,
            "risk_level": c.kyc_risk_level,
        },
        "customer_since": c.customer_since.isoformat(),
    }


def money(fen: int) -> Json:
    return {"amount": format_fen(fen), "currency": CURRENCY}


def account_document(a: Account) -> Json:
    return {
        "account_id": a.account_id,
        "account_number": a.number,
        "kind": a.kind,
        "product": a.product,
        "currency": a.currency,
        "status": a.status,
        "opened_on": a.opened_on.isoformat(),
        "branch": a.branch,
        "balance": money(a.balance_fen),
    }


def balance_document(a: Account, as_of: str) -> Json:
    return {
        "account_id": a.account_id,
        "account_number": a.number,
        "available": money(a.balance_fen if a.status == "active" else 0),
        "ledger": money(a.balance_fen),
        "as_of": as_of,
    }


def transaction_document(t: Transaction) -> Json:
    counterparty = None
    if t.counterparty_name or t.counterparty_account:
        counterparty = {"name": t.counterparty_name, "account_number": t.counterparty_account}
    return {
        "transaction_id": t.txn_id,
        "booked_at": t.booked_at.isoformat(),
        "amount": money(t.amount_fen),
        "balance_after": money(t.balance_after_fen),
        "kind": t.kind,
        "description": t.description,
        "merchant": t.merchant,
        "counterparty": counterparty,
        "channel": t.channel,
    }


def card_summary(c: Card) -> Json:
    """A card in a list: no expiry, no CVN."""
    doc: Json = {
        "card_id": c.card_id,
        "card_number": c.number,
        "kind": c.kind,
        "brand": "UnionPay",
        "product": c.product,
        "status": c.status,
        "account_id": c.account_id,
    }
    if c.kind == "credit":
        doc["credit_limit"] = money(c.credit_limit_fen)
        doc["outstanding"] = money(c.outstanding_fen)
    return doc


def card_detail(c: Card, cardholder: str) -> Json:
    """The card-detail view: the summary plus C3 authentication data (expiry, CVN)."""
    return {
        **card_summary(c),
        "cardholder_name": cardholder,
        "issued_on": c.issued_on.isoformat(),
        "expiry": c.expiry,
        "cvn": c.cvn,
    }


def transfer_document(t: Transfer) -> Json:
    return {
        "transfer_id": t.transfer_id,
        "status": t.status,
        "from_account_id": t.from_account_id,
        "from_account_number": t.from_account_number,
        "to_account_number": t.to_account_number,
        "payee_name": t.payee_name,
        "amount": money(t.amount_fen),
        "memo": t.memo,
        "created_at": t.created_at.isoformat(),
    }


def staff_customer_view(profile: Json, accounts: list[Account], cards: list[Card]) -> Json:
    """What a customer-service agent sees: profile, accounts with balances, card list."""
    return {
        "profile": profile,
        "accounts": [account_document(a) for a in accounts],
        "cards": [card_summary(c) for c in cards],
    }


def staff_document(s: StaffUser) -> Json:
    return {"staff_id": s.staff_id, "name": s.name, "title": s.title, "branch": s.branch}


def staff_accounts_view(customer_id: str, accounts: list[Account]) -> Json:
    return {"customer_id": customer_id, "accounts": [account_document(a) for a in accounts]}


def staff_action_document(a: StaffAction) -> Json:
    return {
        "action_id": a.action_id,
        "action": a.action,
        "customer_id": a.customer_id,
        "staff": {"staff_id": a.staff_id, "name": a.staff_name},
        "reason": a.reason,
        "at": a.at.isoformat(),
    }


def unlock_document(
    action: StaffAction, previous: tuple[str, int], profile: Json, accounts: list[Account]
) -> Json:
    """The unlock's result, echoing the customer record as core systems do: the task
    needs none of it, and the edge's ``staff_minimal`` profile removes every C2 value."""
    return {
        "action_id": action.action_id,
        "online_banking": {
            "status": "active",
            "previous_status": previous[0],
            "failed_logins_cleared": previous[1],
        },
        "unlocked_by": {"staff_id": action.staff_id, "name": action.staff_name},
        "unlocked_at": action.at.isoformat(),
        "customer": profile,
        "accounts": [account_document(a) for a in accounts],
    }


def audit_activity(
    profile: Json,
    online_banking: tuple[str, int],
    accounts: list[Account],
    transfers: list[Transfer],
    actions: list[StaffAction],
) -> Json:
    """An auditor's view of one customer: identity, accounts, transfers and the staff
    actions taken on them, with the identifiers that let records be matched up (the
    edge's ``audit`` profile turns them into audit-wide pseudonyms)."""
    return {
        "customer": {
            "customer_id": profile["customer_id"],
            "name": profile["name"],
            "resident_id": profile["id_document"]["number"],
            "mobile": profile["mobile"],
            "online_banking": {"status": online_banking[0], "failed_logins": online_banking[1]},
        },
        "accounts": [
            {
                "account_id": a.account_id,
                "account_number": a.number,
                "status": a.status,
                "opened_on": a.opened_on.isoformat(),
            }
            for a in accounts
        ],
        "transfers": [transfer_document(t) for t in transfers],
        "staff_actions": [staff_action_document(a) for a in actions],
    }
