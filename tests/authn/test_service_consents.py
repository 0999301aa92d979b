"""The consent lifecycle over HTTP (SQLite and PostgreSQL): a partner asks, the
customer authorises with a fresh passkey, the partner's token acts under it, and the
partner, the customer or the bank revokes it. Negative paths as an attacker tries
them: other partners' and customers' consents, weak or stale authentication, replayed
decisions, tokens for consents that are not authorised or not the client's."""

from __future__ import annotations

import time
from typing import Any

import pytest

from authn import acr
from crypto import keys
from tests.authn.service_harness import Api, claims
from tests.authn.test_service_partners import assertion, form_for, register

PERMISSIONS = ["accounts:read", "balances:read", "transactions:read"]


async def partner(api: Api, name: str = "Budgetly") -> tuple[str, Any]:
    key = keys.generate("sm2")
    jwks = {"keys": [{**key.public_key().to_jwk(), "kid": "k1"}]}
    client_id = await register(
        api,
        name=name,
        auth_method="private_key_jwt",
        jwks=jwks,
        scopes="ob:consents ob:accounts:read ob:transactions:read ob:payments:write",
    )
    return client_id, key


async def partner_token(api: Api, client_id: str, key: Any, **form: str) -> Any:
    signed = assertion(api, key, client_id, "k1")
    return await api.call("POST", "/v1/token", form=form_for(signed, **form))


async def customer_token(
    api: Api, name: str, *, level: str = acr.PASSKEY, age: float = 0
) -> tuple[str, str]:
    reply = await api.call("POST", "/v1/users", json_body={"username": name}, token=api.admin)
    subject = reply.body["subject"]
    assert api.service is not None
    issued = await api.service.state.issuer.issue(
        subject=subject,
        client_id="ztgate-app",
        acr=level,
        amr=["hwk", "user"] if level == acr.PASSKEY else ["pwd", "otp"],
        auth_time=int(time.time() - age),
        with_refresh=False,
    )
    return subject, issued.access_token


async def ask(api: Api, token: str, **over: Any) -> Any:
    body = {"permissions": PERMISSIONS, "expires_at": int(time.time()) + 86400, **over}
    return await api.call("POST", "/v1/consents", json_body=body, token=token)


async def test_the_whole_lifecycle(api: Api) -> None:
    client_id, key = await partner(api)
    reply = await partner_token(api, client_id, key, scope="ob:consents")
    ptoken = reply.body["access_token"]
    asked = await ask(api, ptoken)
    assert asked.status == 201, asked.text
    consent_id = asked.body["consent_id"]
    assert asked.body["status"] == "awaiting_authorisation" and asked.body["accounts"] == []

    # Before authorisation no token acts under it.
    early = await partner_token(api, client_id, key, consent_id=consent_id)
    assert (early.status, early.error) == (400, "invalid_grant")

    subject, ctoken = await customer_token(api, "alice")
    shown = await api.call("GET", f"/v1/consents/{consent_id}", token=ctoken)
    assert shown.status == 200 and shown.body["permissions"] == PERMISSIONS
    done = await api.call(
        "POST",
        f"/v1/consents/{consent_id}/authorise",
        json_body={"accounts": ["acc_1", "acc_2"]},
        token=ctoken,
    )
    assert done.status == 200, done.text
    assert done.body["status"] == "authorised" and done.body["accounts"] == ["acc_1", "acc_2"]
    again = await api.call(
        "POST", f"/v1/consents/{consent_id}/authorise", json_body={"accounts": ["x"]}, token=ctoken
    )
    assert (again.status, again.error) == (409, "consent:not_awaiting_authorisation")

    acting = await partner_token(api, client_id, key, consent_id=consent_id)
    assert acting.status == 200, acting.text
    access = claims(acting.body["access_token"])
    assert access["consent_id"] == consent_id
    # Narrowed to what the consent allows: no payments, no consent management.
    assert set(access["scope"].split()) == {"ob:accounts:read", "ob:transactions:read"}

    mine = await api.call("GET", "/v1/customer/consents", token=ctoken)
    assert [c["consent_id"] for c in mine.body["consents"]] == [consent_id]
    revoked = await api.call("DELETE", f"/v1/consents/{consent_id}", token=ctoken)
    assert revoked.status == 204
    state = await api.call("GET", f"/v1/consents/{consent_id}", token=ptoken)
    assert state.body["status"] == "revoked"
    after = await partner_token(api, client_id, key, consent_id=consent_id)
    assert (after.status, after.error) == (400, "invalid_grant")
    assert subject


@pytest.mark.parametrize(("level", "age"), [(acr.MFA, 0), (acr.PASSKEY, 3600)])
async def test_authorising_needs_a_fresh_passkey(api: Api, level: str, age: float) -> None:
    client_id, key = await partner(api)
    ptoken = (await partner_token(api, client_id, key, scope="ob:consents")).body["access_token"]
    consent_id = (await ask(api, ptoken)).body["consent_id"]
    _, ctoken = await customer_token(api, "bob", level=level, age=age)
    reply = await api.call(
        "POST", f"/v1/consents/{consent_id}/authorise", json_body={"accounts": ["a"]}, token=ctoken
    )
    assert (reply.status, reply.error) == (401, "insufficient_user_authentication")
    challenge = reply.headers["WWW-Authenticate"]
    assert f'acr_values="{acr.PASSKEY}"' in challenge and "max_age=300" in challenge


async def test_other_partners_and_customers_see_nothing(api: Api) -> None:
    a_id, a_key = await partner(api, "A")
    b_id, b_key = await partner(api, "B")
    a_token = (await partner_token(api, a_id, a_key, scope="ob:consents")).body["access_token"]
    b_token = (await partner_token(api, b_id, b_key, scope="ob:consents")).body["access_token"]
    consent_id = (await ask(api, a_token)).body["consent_id"]
    for method in ("GET", "DELETE"):
        reply = await api.call(method, f"/v1/consents/{consent_id}", token=b_token)
        assert (reply.status, reply.error) == (404, "consent:unknown"), method
    _, alice = await customer_token(api, "alice3")
    _, mallory = await customer_token(api, "mallory3")
    await api.call(
        "POST", f"/v1/consents/{consent_id}/authorise", json_body={"accounts": ["a"]}, token=alice
    )
    for method in ("GET", "DELETE"):
        reply = await api.call(method, f"/v1/consents/{consent_id}", token=mallory)
        assert (reply.status, reply.error) == (404, "consent:unknown"), method
    # B cannot get a token under A's consent.
    stolen = await partner_token(api, b_id, b_key, consent_id=consent_id)
    assert (stolen.status, stolen.error) == (400, "invalid_grant")
    # A customer cannot create consents; a partner cannot authorise one.
    reply = await ask(api, alice)
    assert (reply.status, reply.error) == (403, "consent:partner_only")
    reply = await api.call("POST", f"/v1/consents/{consent_id}/reject", json_body={}, token=a_token)
    assert (reply.status, reply.error) == (403, "consent:customer_only")


async def test_the_bank_revokes_with_the_admin_token(api: Api) -> None:
    client_id, key = await partner(api)
    ptoken = (await partner_token(api, client_id, key, scope="ob:consents")).body["access_token"]
    consent_id = (await ask(api, ptoken)).body["consent_id"]
    reply = await api.call("DELETE", f"/v1/admin/consents/{consent_id}", token=ptoken)
    assert reply.status == 401
    reply = await api.call("DELETE", f"/v1/admin/consents/{consent_id}", token=api.admin)
    assert reply.status == 204
    state = await api.call("GET", f"/v1/consents/{consent_id}", token=ptoken)
    assert state.body["status"] == "revoked"


@pytest.mark.parametrize(
    "body",
    [
        {"permissions": [], "expires_at": 0},
        {"permissions": ["accounts:read", "accounts:read"]},
        {"permissions": ["admin"]},
        {"permissions": "accounts:read"},
        {"expires_at": "tomorrow"},
        {"expires_at": True},
        {"expires_at": 1},
        {"expires_at": 10**12},
    ],
)
async def test_malformed_requests_are_400(api: Api, body: dict[str, Any]) -> None:
    client_id, key = await partner(api)
    ptoken = (await partner_token(api, client_id, key, scope="ob:consents")).body["access_token"]
    reply = await ask(api, ptoken, **body)
    assert reply.status == 400, (body, reply.text)


async def test_a_token_without_the_consent_scope_cannot_ask(api: Api) -> None:
    client_id, key = await partner(api)
    plain = (await partner_token(api, client_id, key, scope="ob:accounts:read")).body
    reply = await ask(api, plain["access_token"])
    assert (reply.status, reply.error) == (403, "insufficient_scope")
    assert (await api.call("POST", "/v1/consents", json_body={})).status == 401
    bad_ids = ["x" * 65, "%00", "nope"]
    for bad in bad_ids:
        reply = await api.call("GET", f"/v1/consents/{bad}", token=plain["access_token"])
        assert reply.status == 404, bad
