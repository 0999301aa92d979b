"""RFC 9421 request signatures on signed routes, through the real agent: a partner's
signature by a registered key passes to the policy; unsigned, tampered, replayed,
foreign-key and non-partner requests are refused before the policy is asked."""

from __future__ import annotations

import secrets
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from authn.clients import register_client
from authn.rfc9421 import HTTPRequest, sign_request
from authn.rfc9530 import content_digest
from authn.service.routes_oauth import CLIENT_ACR
from crypto import keys
from tests.gateway.harness import HOST, Edge, check_request, denied, start_edge

ROUTE = {
    "route_id": "ob.payments.create",
    "api_product": "open-banking-payments",
    "classification": "partner",
    "signed": "true",
}
PATH = "/open/v1/payments"
BODY = b'{"debtorAccount":{"resourceId":"acc_1"},"instructedAmount":{"amount":"10.00"}}'


@pytest.fixture
async def edge(tmp_path: Path) -> AsyncIterator[Edge]:
    started = await start_edge(tmp_path)
    try:
        yield started
    finally:
        await started.close()


async def partner(edge: Edge, key: keys.PrivateKey) -> tuple[str, str]:
    jwks = {"keys": [{**key.public_key().to_jwk(), "kid": "p1"}]}
    client = await register_client(
        edge.store, name="Budgetly", auth_method="private_key_jwt", jwks=jwks,
        scopes="ob:payments:write",
    )  # fmt: skip
    issued = await edge.issuer.issue(
        subject=client.client_id,
        client_id=client.client_id,
        acr=CLIENT_ACR,
        amr=["pop"],
        auth_time=int(time.time()),
        scope="ob:payments:write",
        with_refresh=False,
    )
    return client.client_id, issued.access_token


def signed(
    token: str,
    key: keys.PrivateKey,
    *,
    body: bytes = BODY,
    sent_body: bytes | None = None,
    nonce: str | None = None,
    keyid: str = "p1",
) -> Any:
    headers = {
        "authorization": f"Bearer {token}",
        "content-type": "application/json",
        "content-digest": content_digest(body),
    }
    message = HTTPRequest("POST", f"https://{HOST}{PATH}", tuple(headers.items()), body)
    fields = sign_request(
        message, key=key, keyid=keyid, created=int(time.time()),
        nonce=nonce or secrets.token_urlsafe(12),
    )  # fmt: skip
    headers |= {"signature-input": fields.signature_input, "signature": fields.signature}
    return build(headers, sent_body if sent_body is not None else body)


def build(headers: dict[str, str], body: bytes) -> Any:
    request = check_request(method="POST", path=PATH, route=ROUTE, headers=headers)
    request.attributes.request.http.raw_body = body
    return request


def reasons(response: Any) -> list[str]:
    return list(denied(response).body["reason"])


async def test_a_valid_signature_reaches_the_policy(edge: Edge) -> None:
    key = keys.generate("ec-p256")
    _, token = await partner(edge, key)
    got = reasons(await edge.check(signed(token, key)))
    # The policy decides next (the test partner is not in the bundle's partner list).
    assert got and not any(r.startswith("signature:") for r in got), got


async def test_sm2_keys_sign_too(edge: Edge) -> None:
    key = keys.generate("sm2")
    _, token = await partner(edge, key)
    got = reasons(await edge.check(signed(token, key)))
    assert not any(r.startswith("signature:") for r in got), got


async def test_attacks_are_refused_before_the_policy(edge: Edge) -> None:
    key = keys.generate("ec-p256")
    _, token = await partner(edge, key)
    unsigned = build({"authorization": f"Bearer {token}"}, BODY)
    assert reasons(await edge.check(unsigned)) == ["signature:missing_signature"]
    tampered = signed(token, key, sent_body=BODY.replace(b"10.00", b"99999.00"))
    assert reasons(await edge.check(tampered)) == ["signature:digest_mismatch"]
    other = keys.generate("ec-p256")
    assert reasons(await edge.check(signed(token, other))) == ["signature:invalid_signature"]
    assert reasons(await edge.check(signed(token, key, keyid="nope"))) == ["signature:unknown_key"]
    once = signed(token, key, nonce="n-" + secrets.token_hex(8))
    assert not any(r.startswith("signature:") for r in reasons(await edge.check(once)))
    result = denied(await edge.check(once))
    assert (result.status, result.body["reason"]) == (401, ["signature:replayed"])


async def test_only_partners_may_call_a_signed_route(edge: Edge) -> None:
    subject = await edge.user()
    token = await edge.token(subject)
    result = denied(await edge.check(signed(token, keys.generate("ec-p256"))))
    assert (result.status, result.body["reason"]) == (403, ["signature:partner_only"])
    anonymous = build({}, BODY)
    assert denied(await edge.check(anonymous)).body["reason"] == ["signature:partner_only"]
