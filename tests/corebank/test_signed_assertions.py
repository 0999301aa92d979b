"""The core bank behind a real edge trusts only signed identity assertions.

`verify_signed_assertions` is the production authenticator: these tests sign
assertions the way the edge agent does (`AssertionSigner`, SM2 key ring or
HMAC-SM3) and attack it the way a client that reached the core directly would:
bare identity headers, another request's assertion, another key, an expired one.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from crypto.keyring import KeyRing
from gateway.assertion import AssertedConsent, AssertionKeys, AssertionSigner
from gateway.corebank import verify_signed_assertions
from tests.corebank.harness import Bank, customer

EDGE_RING = KeyRing()
EDGE_RING.generate("sm2")
SIGNER = AssertionSigner(issuer="edge-1", keyring=EDGE_RING)


@pytest.fixture
async def signed_bank(tmp_path: Path) -> AsyncIterator[Bank]:
    keys = AssertionKeys.from_jwks(EDGE_RING.jwks())
    running = await Bank(tmp_path / "state", authenticate=verify_signed_assertions(keys)).start()
    try:
        yield running
    finally:
        await running.close()


def assertion(
    subject: str | None,
    path: str,
    *,
    kind: str = "customer",
    method: str = "GET",
    signer: AssertionSigner = SIGNER,
    now: float | None = None,
) -> dict[str, str]:
    token = signer.sign(
        subject=subject,
        kind=kind,
        acr="urn:ztgate:acr:pwd",
        device=None,
        risk=10,
        decision_id="d-1",
        route_id="accounts.list",
        method=method,
        path=path,
        now=now,
    )
    return {"x-ztgate-assertion": token}


def _one_customer(bank: Bank) -> str:
    return bank.customers_with()[0]


async def test_a_valid_assertion_names_the_caller(signed_bank: Bank) -> None:
    me = _one_customer(signed_bank)
    reply = await signed_bank.request("GET", "/api/accounts", assertion(me, "/api/accounts"))
    assert reply.status == 200, reply.text
    assert reply.body["accounts"], "the customer's accounts are listed"
    with_query = await signed_bank.request(
        "GET", "/api/accounts?limit=5", assertion(me, "/api/accounts")
    )
    assert with_query.status == 200  # the query string is not part of the binding


async def test_bare_identity_headers_are_not_believed(signed_bank: Bank) -> None:
    me = _one_customer(signed_bank)
    reply = await signed_bank.request("GET", "/api/accounts", customer(me))
    assert (reply.status, reply.error) == (401, "unauthenticated")


async def test_headers_do_not_override_the_assertion(signed_bank: Bank) -> None:
    me, other = signed_bank.customers_with()[:2]
    headers = {**assertion(me, "/api/accounts"), **customer(other)}
    mine = await signed_bank.request("GET", "/api/accounts", headers)
    theirs = await signed_bank.request("GET", "/api/accounts", assertion(other, "/api/accounts"))
    assert mine.status == theirs.status == 200
    assert mine.body != theirs.body  # the assertion's subject, not the header's, is served


async def test_another_requests_assertion_is_refused(signed_bank: Bank) -> None:
    me = _one_customer(signed_bank)
    wrong_path = await signed_bank.request("GET", "/api/accounts", assertion(me, "/api/cards"))
    wrong_method = await signed_bank.request(
        "GET", "/api/accounts", assertion(me, "/api/accounts", method="POST")
    )
    assert wrong_path.status == wrong_method.status == 401


async def test_foreign_expired_anonymous_and_tampered_assertions_are_refused(
    signed_bank: Bank,
) -> None:
    me = _one_customer(signed_bank)
    other_ring = KeyRing()
    other_ring.generate("sm2")
    foreign = AssertionSigner(issuer="edge-1", keyring=other_ring)
    hmac = AssertionSigner(issuer="edge-1", hmac_key=secrets.token_bytes(32))
    token = assertion(me, "/api/accounts")["x-ztgate-assertion"]
    head, payload, sig = token.split(".")
    tampered = ".".join((head, payload[:-2] + ("AA" if payload[-2:] != "AA" else "BB"), sig))
    cases = {
        "foreign key": assertion(me, "/api/accounts", signer=foreign),
        "hmac, unknown kid": assertion(me, "/api/accounts", signer=hmac),
        "expired": assertion(me, "/api/accounts", now=time.time() - 3600),
        "anonymous": assertion(None, "/api/accounts", kind="anonymous"),
        "unknown kind": assertion(me, "/api/accounts", kind="admin"),
        "tampered": {"x-ztgate-assertion": tampered},
        "garbage": {"x-ztgate-assertion": "a.b.c"},
        "alg none": {"x-ztgate-assertion": "eyJhbGciOiJub25lIn0." + payload + "."},
    }
    for name, headers in cases.items():
        reply = await signed_bank.request("GET", "/api/accounts", headers)
        assert reply.status == 401, name


async def test_a_partner_reaches_exactly_the_asserted_consents_accounts(
    signed_bank: Bank,
) -> None:
    holder = next(c for c in signed_bank.customers_with() if len(_account_ids(signed_bank, c)) >= 2)
    consented, hidden = _account_ids(signed_bank, holder)[:2]
    path = "/open/v1/accounts"

    def partner(consent: AssertedConsent | None, at: str = path) -> dict[str, str]:
        token = SIGNER.sign(
            subject="fintech-1",
            kind="partner",
            acr="urn:ztgate:acr:client",
            device=None,
            risk=5,
            decision_id="d-2",
            route_id="ob.accounts.list",
            method="GET",
            path=at,
            consent=consent,
        )
        return {"x-ztgate-assertion": token}

    consent = AssertedConsent("cns_1", holder, (consented,))
    listing = await signed_bank.request("GET", path, partner(consent))
    assert listing.status == 200, listing.text
    assert [a["resourceId"] for a in listing.body["accounts"]] == [consented]
    hidden_path = f"/open/v1/accounts/{hidden}/balances"
    reply = await signed_bank.request("GET", hidden_path, partner(consent, hidden_path))
    assert reply.status == 404
    # Without an asserted consent (or with an unsigned consent header) nothing.
    reply = await signed_bank.request("GET", path, partner(None))
    assert (reply.status, reply.error) == (403, "consent_required")
    header = {"x-ztgate-consent": f"id=c; customer={holder}; accounts={consented}"}
    reply = await signed_bank.request("GET", path, {**partner(None), **header})
    assert (reply.status, reply.error) == (403, "consent_required")


def _account_ids(bank: Bank, customer_id: str) -> list[str]:
    rows = bank.rows(
        "SELECT account_id FROM accounts WHERE customer_id = ? ORDER BY account_id", customer_id
    )
    return [r[0] for r in rows]


async def test_staff_kind_comes_from_the_assertion(signed_bank: Bank) -> None:
    me = _one_customer(signed_bank)
    employee = signed_bank.rows("SELECT staff_id FROM staff LIMIT 1")[0][0]
    path = f"/api/staff/customers/{me}"
    as_staff = await signed_bank.request("GET", path, assertion(employee, path, kind="staff"))
    as_customer = await signed_bank.request("GET", path, assertion(me, path))
    assert as_staff.status == 200, as_staff.text
    assert as_customer.status == 403


def _bank(state: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "gateway.corebank", "--state-dir", str(state), *extra]
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)


def test_the_command_requires_a_usable_verifier(tmp_path: Path) -> None:
    none = _bank(tmp_path)
    assert none.returncode == 2
    assert "--assertion-jwks" in none.stderr
    key = tmp_path / "hmac.key"
    key.write_bytes(secrets.token_bytes(32))
    os.chmod(key, 0o644)
    loose = _bank(tmp_path, "--assertion-hmac-key", str(key))
    assert loose.returncode == 2
    assert "group or others" in loose.stderr
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps({"keys": "nope"}))
    bad = _bank(tmp_path, "--assertion-jwks", str(jwks))
    assert bad.returncode == 2
    assert "assertion JWKS" in bad.stderr
