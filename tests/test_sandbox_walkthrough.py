"""Issue 7's sandbox through real Envoy: the same partner APIs over synthetic data, and
no crossing between environments.

`ztgate up` runs a sandbox core bank beside the production one (its own state, a fresh
synthetic dataset) behind the edge's ``/sandbox/open/v1`` routes. A partner registered
with a sandbox software statement (`ztgate partner statement --environment sandbox`)
goes through the same onboarding, consent and passkey approval as a production one
(the walkthrough's helpers), reads the sandbox bank's synthetic accounts and pays from
them with a signed request; it is refused on every production route, and a production
partner is refused on every sandbox route (``partner:wrong_environment``).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from crypto import keys
from tests.test_partner_walkthrough import (
    Edge,
    approve_consent,
    consent_token,
    create_consent,
    customer_accounts,
    partner_certificate,
    register_partner,
    signed_request,
)
from tests.test_up import Up, request, run_stack

LOOPBACK = ("--allowed-network", "127.0.0.0/8")


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Up]:
    with run_stack(tmp_path_factory.mktemp("sandbox")) as running:
        yield running


def bank_rows(state: Path, bank: str, sql: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(f"file:{state / bank / 'corebank.db'}?mode=ro", uri=True) as db:
        return db.execute(sql).fetchall()


def booked(edge: Edge, path: str, token: str) -> Decimal:
    status, _, doc = edge.send("GET", path, bearer(token))
    assert status == 200, doc
    (amount,) = [b["balanceAmount"]["amount"] for b in doc["balances"]
                 if b["balanceType"] == "interimBooked"]  # fmt: skip
    return Decimal(amount)


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}", "accept": "application/json"}


def refused(edge: Edge, method: str, path: str, headers: dict[str, str], raw: bytes = b"") -> None:
    status, _, body = edge.send(method, path, headers, raw)
    assert status == 403, (path, body)
    assert "partner:wrong_environment" in body["reason"], (path, body)


def test_the_sandbox_bank_is_separate_synthetic_data(stack: Up) -> None:
    """Its own state, flagged sandbox, seeded afresh: no account of the production bank."""
    state = Path(stack.urls["state_dir"])
    assert stack.urls["corebank_sandbox"] != stack.urls["corebank"]
    meta = dict(bank_rows(state, "corebank-sandbox", "SELECT key, value FROM meta"))
    assert meta["environment"] == "sandbox" and meta["seed"] != "42"
    production = dict(bank_rows(state, "corebank", "SELECT key, value FROM meta"))
    assert production["environment"] == "production"
    ids = "SELECT account_id, number FROM accounts"
    sandbox_accounts = bank_rows(state, "corebank-sandbox", ids)
    production_accounts = bank_rows(state, "corebank", ids)
    assert sandbox_accounts and production_accounts
    for column in (0, 1):
        assert not {r[column] for r in sandbox_accounts} & {r[column] for r in production_accounts}
    # Only the open-banking API is there, under /sandbox, and every answer says sandbox.
    status, headers, _ = request(stack.urls["corebank_sandbox"], "/healthz")
    assert (status, headers["x-ztgate-environment"]) == (200, "sandbox")
    for path in ("/api/accounts", "/open/v1/accounts", "/api/staff/customers"):
        status, headers, _ = request(stack.urls["corebank_sandbox"], path)
        assert (status, headers["x-ztgate-environment"]) == (404, "sandbox"), path
    # Straight at it, without the edge's signed assertion: nobody.
    spoofed = {"x-ztgate-subject": "anyone", "x-ztgate-kind": "partner"}
    status, _, _ = request(stack.urls["corebank_sandbox"], "/sandbox/open/v1/accounts",
                           headers=spoofed)  # fmt: skip
    assert status == 401


def test_sandbox_and_production_partners_each_stay_in_their_environment(stack: Up) -> None:
    urls, state = stack.urls, Path(stack.urls["state_dir"])
    authn = urls["authn"]
    admin = (state / "admin-token").read_text().strip()
    ca = state / "pki" / "ca.crt"

    # Onboarding, consent and approval: the same steps in both environments. The sandbox
    # consent is approved by a test user standing for one of the sandbox bank's customers.
    sandbox_key, production_key = keys.generate("sm2"), keys.generate("sm2")
    sandbox_id = register_partner(
        stack, sandbox_key, "--software-id", "sandbox-app", "--name", "Sandbox App",
        *LOOPBACK, "--environment", "sandbox",
    )  # fmt: skip
    production_id = register_partner(
        stack, production_key, "--software-id", "live-app", "--name", "Live App", *LOOPBACK
    )
    # A sandbox customer's active account with a history (two bookings or more) that can
    # pay 1.00 (the dataset is random: chosen by query, never by a fixed id).
    ((sb_customer, sb_id, sb_number),) = bank_rows(
        state, "corebank-sandbox",
        "SELECT a.customer_id, a.account_id, a.number FROM accounts a"
        " JOIN transactions t USING (account_id)"
        " WHERE a.status = 'active' AND a.balance_fen >= 100"
        " GROUP BY a.account_id HAVING COUNT(*) >= 2 ORDER BY a.account_id LIMIT 1",
    )  # fmt: skip
    live_customer, live_accounts = customer_accounts(state)
    live_chosen = live_accounts[0][0]
    consent = create_consent(authn, sandbox_id, sandbox_key)
    approve_consent(authn, admin, sb_customer, consent, [sb_id])
    sandbox_token = consent_token(authn, sandbox_id, sandbox_key, consent)
    consent = create_consent(authn, production_id, production_key)
    approve_consent(authn, admin, live_customer, consent, [live_chosen])
    production_token = consent_token(authn, production_id, production_key, consent)
    sandbox = Edge(urls["edge_tls"], ca, partner_certificate(stack, "sandbox-app"))
    live = Edge(urls["edge_tls"], ca, partner_certificate(stack, "live-app"))

    # The sandbox partner reads synthetic accounts on the sandbox routes, masked as usual.
    status, headers, listing = sandbox.send("GET", "/sandbox/open/v1/accounts",
                                            bearer(sandbox_token))  # fmt: skip
    assert status == 200, listing
    assert headers["x-ztgate-environment"] == "sandbox"
    assert [a["resourceId"] for a in listing["accounts"]] == [sb_id]
    assert sb_number not in json.dumps(listing)
    links = listing["accounts"][0]["_links"]
    assert links["balances"]["href"] == f"/sandbox/open/v1/accounts/{sb_id}/balances"
    # The whole history, a page of one: the links lead on within the sandbox.
    query = "dateFrom=2000-01-01&limit=1"
    status, _, history = sandbox.send(
        "GET", f"/sandbox/open/v1/accounts/{sb_id}/transactions?{query}", bearer(sandbox_token)
    )
    assert status == 200, history
    assert history["transactions"]["booked"], history
    page_links = history["transactions"]["_links"]
    assert page_links["account"]["href"] == f"/sandbox/open/v1/accounts/{sb_id}"
    assert page_links["next"]["href"].startswith(f"/sandbox/open/v1/accounts/{sb_id}/transactions?")

    # A signed payment settles against the sandbox bank's synthetic balance only.
    balance_path = f"/sandbox/open/v1/accounts/{sb_id}/balances"
    before = booked(sandbox, balance_path, sandbox_token)
    payment = {
        "instructedAmount": {"amount": "1.00", "currency": "CNY"},
        "debtorAccount": {"bban": sb_number},
        "creditorAccount": {"bban": "6222020200000000000"},
        "creditorName": "测试收款人",
    }
    raw = json.dumps(payment, ensure_ascii=False).encode()
    signed = signed_request(sandbox, "/sandbox/open/v1/payments", sandbox_token, sandbox_key, raw)
    status, headers, paid = sandbox.send("POST", "/sandbox/open/v1/payments", signed, raw)
    assert status == 201, paid
    assert paid["_links"]["self"]["href"] == f"/sandbox/open/v1/payments/{paid['paymentId']}"
    assert booked(sandbox, balance_path, sandbox_token) == before - Decimal("1.00")
    status, _, seen = sandbox.send("GET", paid["_links"]["self"]["href"], bearer(sandbox_token))
    assert status == 200 and seen["paymentId"] == paid["paymentId"], seen
    known = "SELECT transfer_id FROM transfers"
    assert (paid["paymentId"],) in bank_rows(state, "corebank-sandbox", known)
    assert (paid["paymentId"],) not in bank_rows(state, "corebank", known)

    # The sandbox partner is refused on every production route, signed write included.
    for path in ("/open/v1/accounts", f"/open/v1/accounts/{live_chosen}/balances",
                 f"/open/v1/accounts/{sb_id}/transactions",
                 f"/open/v1/payments/{paid['paymentId']}"):  # fmt: skip
        refused(sandbox, "GET", path, bearer(sandbox_token))
    signed = signed_request(sandbox, "/open/v1/payments", sandbox_token, sandbox_key, raw)
    refused(sandbox, "POST", "/open/v1/payments", signed, raw)

    # The production partner reads production data, and is refused on every sandbox route.
    status, headers, listing = live.send("GET", "/open/v1/accounts", bearer(production_token))
    assert status == 200 and [a["resourceId"] for a in listing["accounts"]] == [live_chosen]
    assert "x-ztgate-environment" not in headers
    for path in ("/sandbox/open/v1/accounts", f"/sandbox/open/v1/accounts/{sb_id}/balances",
                 f"/sandbox/open/v1/accounts/{live_chosen}/balances",
                 f"/sandbox/open/v1/payments/{paid['paymentId']}"):  # fmt: skip
        refused(live, "GET", path, bearer(production_token))
    signed = signed_request(live, "/sandbox/open/v1/payments", production_token, production_key,
                            raw)  # fmt: skip
    refused(live, "POST", "/sandbox/open/v1/payments", signed, raw)
