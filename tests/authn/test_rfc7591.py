"""Dynamic client registration (RFC 7591) over HTTP: a software statement signed by the
bank's directory admits a partner, who then authenticates with private_key_jwt. The
attacker's attempts: no statement, a statement signed by another key, with the wrong
issuer, expired, replayed, algorithm confusion, scopes and redirect URIs beyond the
statement's, unsupported grants, malformed metadata."""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from authn.config import AuthnConfig
from authn.service.runner import free_port
from crypto import jose, keys
from tests.authn.conftest import StoreURL
from tests.authn.service_harness import Api, claims
from tests.authn.test_service_partners import assertion, form_for

DIRECTORY_KEY = keys.generate("sm2")
ISSUER = "ztgate-directory"


@pytest.fixture
async def dcr(store_url: StoreURL, tmp_path: Path) -> AsyncIterator[Api]:
    url, schema = store_url
    jwks = tmp_path / "directory-jwks.json"
    jwks.write_text(json.dumps({"keys": [{**DIRECTORY_KEY.public_key().to_jwk(), "kid": "dir-1"}]}))
    port = free_port()
    config = AuthnConfig(
        port=port,
        public_url=f"http://localhost:{port}",
        database_url=url,
        directory_jwks=jwks,
    )
    running = await Api(tmp_path / "state", url, schema, extra={"config": config}).start()
    try:
        yield running
    finally:
        await running.close()


def statement(key: keys.PrivateKey = DIRECTORY_KEY, kid: str = "dir-1", **over: Any) -> str:
    body: dict[str, Any] = {
        "iss": ISSUER,
        "iat": int(time.time()),
        "exp": int(time.time()) + 3600,
        "jti": secrets.token_urlsafe(12),
        "software_id": "budgetly-ios",
        "software_client_name": "Budgetly",
        "org_id": "org-42",
        "scope": "ob:consents ob:accounts:read ob:transactions:read",
        "redirect_uris": ["https://budgetly.example/cb", "https://budgetly.example/cb2"],
        **over,
    }
    return jose.encode_jwt({k: v for k, v in body.items() if v is not None}, key, kid=kid)


def metadata(partner_key: keys.PrivateKey, **over: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "software_statement": statement(),
        "token_endpoint_auth_method": "private_key_jwt",
        "jwks": {"keys": [{**partner_key.public_key().to_jwk(), "kid": "p1"}]},
        "redirect_uris": ["https://budgetly.example/cb"],
        "grant_types": ["client_credentials"],
        **over,
    }
    return {k: v for k, v in doc.items() if v is not None}


async def test_a_statement_admits_the_partner_who_then_gets_tokens(dcr: Api) -> None:
    partner_key = keys.generate("ec-p256")
    reply = await dcr.call("POST", "/v1/register", json_body=metadata(partner_key))
    assert reply.status == 201, reply.text
    body = reply.body
    assert body["client_name"] == "Budgetly" and body["software_id"] == "budgetly-ios"
    assert body["scope"] == "ob:consents ob:accounts:read ob:transactions:read"
    assert body["redirect_uris"] == ["https://budgetly.example/cb"]
    assert body["token_endpoint_auth_method"] == "private_key_jwt"
    assert body["grant_types"] == ["client_credentials"] and body["org_id"] == "org-42"
    assert reply.headers["Cache-Control"] == "no-store"
    client_id = body["client_id"]
    signed = assertion(dcr, partner_key, client_id, "p1")
    token = await dcr.call("POST", "/v1/token", form=form_for(signed, scope="ob:consents"))
    assert token.status == 200, token.text
    assert claims(token.body["access_token"])["sub"] == client_id


async def test_narrower_scope_is_granted(dcr: Api) -> None:
    doc = metadata(keys.generate("sm2"), scope="ob:accounts:read")
    reply = await dcr.call("POST", "/v1/register", json_body=doc)
    assert reply.status == 201 and reply.body["scope"] == "ob:accounts:read"


def _statements() -> list[tuple[str, str]]:
    other = keys.generate("sm2")
    p256 = keys.generate("ec-p256")
    now = int(time.time())
    return [
        ("forged", statement(key=other)),
        ("unknown kid", statement(kid="dir-9")),
        ("wrong issuer", statement(iss="someone-else")),
        ("expired", statement(exp=now - 10)),
        ("from the future", statement(iat=now + 3600)),
        ("no software_id", statement(software_id=None)),
        ("no jti", statement(jti=None)),
        ("alg confusion", statement(key=p256)),  # ES256 under the SM2 key's kid
        ("unsigned", "eyJhbGciOiJub25lIn0.eyJpc3MiOiJ6dGdhdGUtZGlyZWN0b3J5In0."),
        ("garbage", "not.a.jws"),
        ("huge", "a" * 20000),
    ]


@pytest.mark.parametrize(("case", "ssa"), _statements(), ids=[c for c, _ in _statements()])
async def test_bad_statements_are_refused(dcr: Api, case: str, ssa: str) -> None:
    doc = metadata(keys.generate("sm2"), software_statement=ssa)
    reply = await dcr.call("POST", "/v1/register", json_body=doc)
    assert (reply.status, reply.error) == (400, "invalid_software_statement"), case


async def test_a_statement_is_single_use(dcr: Api) -> None:
    doc = metadata(keys.generate("sm2"))
    assert (await dcr.call("POST", "/v1/register", json_body=doc)).status == 201
    again = await dcr.call("POST", "/v1/register", json_body=doc)
    assert (again.status, again.error) == (400, "invalid_software_statement")
    assert "jti" in again.body["error_description"]


@pytest.mark.parametrize(
    ("over", "error"),
    [
        ({"scope": "ob:payments:write"}, "invalid_client_metadata"),
        ({"redirect_uris": ["https://evil.example/cb"]}, "invalid_redirect_uri"),
        ({"redirect_uris": ["http://budgetly.example/cb"]}, "invalid_redirect_uri"),
        ({"redirect_uris": "https://budgetly.example/cb"}, "invalid_redirect_uri"),
        ({"grant_types": ["authorization_code"]}, "invalid_client_metadata"),
        ({"response_types": ["code"]}, "invalid_client_metadata"),
        ({"token_endpoint_auth_method": "client_secret_basic"}, "invalid_client_metadata"),
        ({"jwks": {"keys": []}}, "invalid_client_metadata"),
        ({"jwks": None}, "invalid_client_metadata"),
    ],
)
async def test_metadata_beyond_the_statement_is_refused(
    dcr: Api, over: dict[str, Any], error: str
) -> None:
    doc = metadata(keys.generate("sm2"), **over)
    if over.get("jwks", "") is None:
        doc.pop("jwks", None)
    reply = await dcr.call("POST", "/v1/register", json_body=doc)
    assert (reply.status, reply.error) == (400, error), reply.text


async def test_statement_redirect_uris_must_themselves_be_https(dcr: Api) -> None:
    ssa = statement(redirect_uris=["https://ok.example/cb", "https://x.example/cb#frag"])
    reply = await dcr.call(
        "POST", "/v1/register", json_body=metadata(keys.generate("sm2"), software_statement=ssa)
    )
    assert (reply.status, reply.error) == (400, "invalid_redirect_uri")


async def test_registration_is_off_without_a_directory(api: Api) -> None:
    reply = await api.call("POST", "/v1/register", json_body={"software_statement": statement()})
    assert (reply.status, reply.error) == (400, "unapproved_software_statement")


async def _stored_environment(dcr: Api, client_id: str) -> str:
    from authn.rfc7591 import open_registrations

    registrations = await open_registrations(dcr.database_url, schema=dcr.schema)
    try:
        found = await registrations.get(client_id)
    finally:
        await registrations.close()
    assert found is not None
    return found.environment


@pytest.mark.parametrize("environment", ["sandbox", "production", None])
async def test_the_statement_names_the_environment_production_by_default(
    dcr: Api, environment: str | None
) -> None:
    ssa = statement(environment=environment)  # None: a statement from before the claim
    doc = metadata(keys.generate("sm2"), software_statement=ssa)
    reply = await dcr.call("POST", "/v1/register", json_body=doc)
    assert reply.status == 201, reply.text
    expected = environment or "production"
    assert reply.body["environment"] == expected
    assert await _stored_environment(dcr, reply.body["client_id"]) == expected


@pytest.mark.parametrize("value", ["staging", "", "Sandbox", "sandbox ", 1, True, ["sandbox"], {}])
async def test_an_unknown_environment_claim_is_refused(dcr: Api, value: object) -> None:
    doc = metadata(keys.generate("sm2"), software_statement=statement(environment=value))
    reply = await dcr.call("POST", "/v1/register", json_body=doc)
    assert (reply.status, reply.error) == (400, "invalid_software_statement"), value
    assert reply.body["error_description"].startswith("environment:")


@pytest.mark.parametrize(
    ("claimed", "asked"), [("sandbox", "production"), (None, "sandbox"), ("production", "sandbox")]
)
async def test_plain_metadata_cannot_change_the_environment(
    dcr: Api, claimed: str | None, asked: str
) -> None:
    """§2.3: the directory's statement wins; a client asking for another environment in
    its own metadata is refused, never moved (a sandbox client cannot make itself
    production, nor the reverse)."""
    ssa = statement(environment=claimed)
    doc = metadata(keys.generate("sm2"), software_statement=ssa, environment=asked)
    reply = await dcr.call("POST", "/v1/register", json_body=doc)
    assert (reply.status, reply.error) == (400, "invalid_client_metadata"), reply.text
    same = metadata(keys.generate("sm2"), software_statement=statement(environment=claimed),
                    environment=claimed or "production")  # fmt: skip
    assert (await dcr.call("POST", "/v1/register", json_body=same)).status == 201
