"""The catalogue describes what the running core bank answers.

Every /open/v1 operation is called on the real service (`tests.corebank.harness`:
identity from the edge's headers, as behind a local edge) as a partner under a
consent, and each answer — successes and the errors the bank itself produces —
must be a status the document lists for that operation, with a body that validates
(strictly: no undocumented fields) against the documented schema and the headers
the document promises. Finally every operation's success answer must have been
seen. The consent API is not served by the core bank; its examples are checked in
test_document.py.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.authn.service_harness import Reply
from tests.catalogue.spec import Catalogue, operations
from tests.corebank.harness import Bank, partner

EXTERNAL = "6217001234567890123"  # another bank's card account


@pytest.fixture
async def bank(tmp_path: Path) -> AsyncIterator[Bank]:
    running = await Bank(tmp_path / "state").start()
    try:
        yield running
    finally:
        await running.close()


class Checker:
    def __init__(self) -> None:
        self.cat = Catalogue()
        self.seen: set[tuple[str, str, int]] = set()

    def check(self, path: str, method: str, reply: Reply) -> Any:
        op = self.cat.operation(path, method)
        pointer = self.cat.response_schema_pointer(op, reply.status)
        errors = [
            f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
            for e in self.cat.validator(pointer).iter_errors(reply.body)
        ]
        assert errors == [], f"{method.upper()} {path} {reply.status}: {reply.text}"
        for name, header in self.cat.response_headers(op, reply.status).items():
            if header.get("required"):
                assert name in reply.headers, f"{path} {reply.status}: no {name}"
        self.seen.add((path, method, reply.status))
        return reply.body


async def test_the_core_banks_answers_match_the_document(bank: Bank) -> None:
    c = Checker()
    holder, account, number = bank.rows(
        "SELECT customer_id, account_id, number FROM accounts WHERE status = 'active'"
        " AND kind = 'settlement' ORDER BY customer_id"
    )[0]
    bank.rows("UPDATE accounts SET balance_fen = 100000 WHERE account_id = ?", account)
    others = [r[0] for r in bank.rows(
        "SELECT account_id FROM accounts WHERE customer_id = ? AND account_id != ?",
        holder, account)]  # fmt: skip
    headers = partner("fintech-budgetly", holder, account, *others)

    listing = c.check(
        "/open/v1/accounts", "get", await bank.request("GET", "/open/v1/accounts", headers)
    )
    assert {a["resourceId"] for a in listing["accounts"]} == {account, *others}

    balances_path = "/open/v1/accounts/{account_id}/balances"
    for listed in listing["accounts"]:
        href = listed["_links"]["balances"]["href"]
        c.check(balances_path, "get", await bank.request("GET", href, headers))
    only_one = partner("fintech-budgetly", holder, account)
    hidden = f"/open/v1/accounts/{others[0]}/balances" if others else "/open/v1/accounts/x/balances"
    reply = await bank.request("GET", hidden, only_one)
    assert reply.status == 404
    c.check(balances_path, "get", reply)

    txns_path = "/open/v1/accounts/{account_id}/transactions"
    href = listing["accounts"][0]["_links"]["transactions"]["href"] + "?dateTo=2025-06-30&limit=3"
    page = c.check(txns_path, "get", await bank.request("GET", href, headers))
    assert len(page["transactions"]["booked"]) == 3
    follow = page["transactions"]["_links"]["next"]["href"]
    c.check(txns_path, "get", await bank.request("GET", follow, headers))
    whole = (
        f"/open/v1/accounts/{account}/transactions?dateFrom=2025-01-01&dateTo=2025-06-30&limit=200"
    )
    c.check(txns_path, "get", await bank.request("GET", whole, headers))  # every kind of entry
    reply = await bank.request("GET", f"/open/v1/accounts/{account}/transactions?limit=0", headers)
    assert reply.status == 400
    c.check(txns_path, "get", reply)

    pay = "/open/v1/payments"
    body = {
        "instructedAmount": {"currency": "CNY", "amount": "88.00"},
        "debtorAccount": {"bban": number},
        "creditorAccount": {"bban": EXTERNAL},
        "creditorName": "王芳",
        "remittanceInformationUnstructured": "房租",
    }
    signed = {**headers, "Idempotency-Key": "catalogue-1"}
    payment = c.check(pay, "post", await bank.request("POST", pay, signed, json_body=body))
    assert payment["transactionStatus"] == "ACSC"
    replay = await bank.request("POST", pay, signed, json_body=body)
    assert replay.headers.get("Idempotent-Replayed") == "true"
    c.check(pay, "post", replay)
    anonymous_payee = {k: v for k, v in body.items() if k != "creditorName"}
    unnamed = {**headers, "Idempotency-Key": "catalogue-2"}
    c.check(pay, "post", await bank.request("POST", pay, unnamed, json_body=anonymous_payee))
    for key, doc, status in (
        ("catalogue-3", {**body, "instructedAmount": {"currency": "CNY", "amount": "99999"}}, 422),
        ("catalogue-4", {**body, "instructedAmount": {"currency": "CNY", "amount": 1}}, 400),
        (None, body, 400),
    ):
        sent = {**headers, "Idempotency-Key": key} if key else headers
        reply = await bank.request("POST", pay, sent, json_body=doc)
        assert reply.status == status, reply.text
        c.check(pay, "post", reply)
    reply = await bank.request(
        "POST", pay, {**signed, "Content-Type": "text/plain"}, data=b"instructedAmount"
    )
    assert reply.status == 415
    c.check(pay, "post", reply)
    reply = await bank.request(
        "POST", pay, {**only_one, "Idempotency-Key": "catalogue-5"},
        json_body={**body, "debtorAccount": {"bban": "6222000000000000000"}},
    )  # fmt: skip
    assert reply.status == 404
    c.check(pay, "post", reply)

    status_path = "/open/v1/payments/{payment_id}"
    c.check(
        status_path, "get", await bank.request("GET", payment["_links"]["self"]["href"], headers)
    )
    reply = await bank.request("GET", payment["_links"]["self"]["href"], partner("other", holder))
    assert reply.status == 404
    c.check(status_path, "get", reply)

    no_consent = {k: v for k, v in headers.items() if k != "x-ztgate-consent"}
    reply = await bank.request("GET", "/open/v1/accounts", no_consent)
    assert (reply.status, reply.error) == (403, "consent_required")
    c.check("/open/v1/accounts", "get", reply)

    for op in operations(c.cat.doc):
        if op.path.startswith("/open/v1/"):
            success = min(s for s in op.doc["responses"] if s.startswith("2"))
            assert (op.path, op.method, int(success)) in c.seen, op.path
