"""A partner's request under an open-banking consent, through the real agent: the
consent is looked up on every request (revocation refuses the very next one), fills
the policy input's ``identity.consent``, and reaches the core only inside the signed
assertion — for a usable consent of the token's own client."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from authn.consents import ConsentStore, open_consents
from authn.service.routes_oauth import CLIENT_ACR
from crypto import keys
from gateway.assertion import verify_assertion
from tests.gateway.harness import (
    PARTNER_ROUTE,
    Edge,
    allowed,
    check_request,
    denied,
    start_edge,
)

PARTNER = "fintech-budgetly"  # in the default bundle's partners, 198.51.100.0/24
ADDRESS = "198.51.100.7"
PATH = "/open/v1/accounts"


@pytest.fixture
async def edge(tmp_path: Path) -> AsyncIterator[Edge]:
    started = await start_edge(tmp_path)
    try:
        yield started
    finally:
        await started.close()


@pytest.fixture
async def consents(edge: Edge) -> AsyncIterator[ConsentStore]:
    store = await open_consents(edge.config.store_url)
    try:
        yield store
    finally:
        await store.close()


async def authorised(consents: ConsentStore, client_id: str = PARTNER) -> str:
    consent = await consents.create(client_id, ["accounts:read"], time.time() + 3600)
    await consents.decide(consent.consent_id, "cst_1", authorise=True, accounts=["acc_1"])
    return consent.consent_id


async def partner_token(edge: Edge, consent_id: str | None, client_id: str = PARTNER) -> str:
    issued = await edge.issuer.issue(
        subject=client_id,
        client_id=client_id,
        acr=CLIENT_ACR,
        amr=["pop"],
        auth_time=int(time.time()),
        scope="ob:accounts:read",
        with_refresh=False,
        extra={} if consent_id is None else {"consent_id": consent_id},
    )
    return issued.access_token


def request(token: str) -> object:
    return check_request(
        path=PATH,
        route=PARTNER_ROUTE,
        headers={"authorization": f"Bearer {token}"},
        address=ADDRESS,
    )


async def test_a_partner_under_an_authorised_consent_passes_with_it_asserted(
    edge: Edge, consents: ConsentStore
) -> None:
    consent_id = await authorised(consents)
    upstream, _ = allowed(await edge.check(request(await partner_token(edge, consent_id))))
    claims = verify_assertion(
        upstream["x-ztgate-assertion"],
        expected_method="GET",
        expected_path=PATH,
        keys=edge.assertion_keys,
    )
    assert claims.kind == "partner" and claims.subject == PARTNER
    assert upstream["x-ztgate-client"] == PARTNER  # Envoy's per-partner bucket key
    assert claims.consent is not None
    assert (claims.consent.consent_id, claims.consent.customer) == (consent_id, "cst_1")
    assert claims.consent.accounts == ("acc_1",)


async def test_revocation_refuses_the_very_next_request(edge: Edge, consents: ConsentStore) -> None:
    consent_id = await authorised(consents)
    token = await partner_token(edge, consent_id)
    allowed(await edge.check(request(token)))
    assert await consents.revoke(consent_id, by="customer:cst_1")
    result = denied(await edge.check(request(token)))
    assert result.status == 403 and "consent:inactive" in result.body["reason"]


async def test_missing_foreign_and_unauthorised_consents_are_refused(
    edge: Edge, consents: ConsentStore
) -> None:
    no_consent = denied(await edge.check(request(await partner_token(edge, None))))
    assert "consent:missing" in no_consent.body["reason"]
    unknown = denied(await edge.check(request(await partner_token(edge, "cns_nope"))))
    assert "consent:inactive" in unknown.body["reason"]
    foreign = await authorised(consents, client_id="insurer-harbourshield")
    stolen = denied(await edge.check(request(await partner_token(edge, foreign))))
    assert "consent:inactive" in stolen.body["reason"]
    waiting = await consents.create(PARTNER, ["accounts:read"], time.time() + 3600)
    pending = denied(await edge.check(request(await partner_token(edge, waiting.consent_id))))
    assert "consent:inactive" in pending.body["reason"]


async def test_a_dynamically_registered_partner_is_judged_by_its_registration(
    edge: Edge, consents: ConsentStore
) -> None:
    """Not in the bundle's partner list: the facts come from its RFC 7591 registration
    (allowed networks, tier) through ``identity.partner``."""
    from authn.clients import register_client
    from authn.rfc7591 import Registration, open_registrations

    client = await register_client(
        edge.store, name="Dyn", auth_method="private_key_jwt",
        jwks={"keys": [{**keys.generate("sm2").public_key().to_jwk(), "kid": "k"}]},
        scopes="ob:accounts:read",
    )  # fmt: skip
    registrations = await open_registrations(edge.config.store_url)
    try:
        await registrations.add(
            Registration(
                client.client_id,
                "dyn-app",
                None,
                (),
                time.time(),
                ("198.51.100.0/24",),
                "partner-trial",
            ),
            statement_jti="j-1",
        )
    finally:
        await registrations.close()
    consent_id = await authorised(consents, client_id=client.client_id)
    token = await partner_token(edge, consent_id, client_id=client.client_id)
    response = await edge.check(request(token))
    allowed(response)
    limits = {h.header.key: h.header.value for h in response.ok_response.response_headers_to_add}
    assert limits["ratelimit-policy"] == '"partner-trial";q=20;w=60'
    outside = check_request(
        path=PATH,
        route=PARTNER_ROUTE,
        headers={"authorization": f"Bearer {token}"},
        address="203.0.113.9",
    )
    assert denied(await edge.check(outside)).body["reason"] == ["partner:network_not_allowed"]


async def test_an_expired_consent_is_refused(edge: Edge, consents: ConsentStore) -> None:
    then = time.time() - 3600
    consent = await consents.create(PARTNER, ["accounts:read"], then + 600, now=then)
    await consents.decide(
        consent.consent_id, "cst_1", authorise=True, accounts=["acc_1"], now=then + 10
    )
    result = denied(await edge.check(request(await partner_token(edge, consent.consent_id))))
    assert result.status == 403 and "consent:inactive" in result.body["reason"]
