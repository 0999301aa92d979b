"""Sandbox and production through the real agent: the route's environment (a context
extension the control plane sets on sandbox routes) and the partner's (from its RFC 7591
registration) must agree, or the policy refuses with ``partner:wrong_environment``; a
gateway that says sandbox on a production route, or an environment it does not know,
is refused too."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from authn.clients import register_client
from authn.consents import ConsentStore, open_consents
from authn.rfc7591 import Registration, open_registrations
from crypto import keys
from edge_nodes.routes import context_extensions
from gateway.config import GatewayConfigError, from_document
from tests.gateway.harness import PARTNER_ROUTE, Edge, allowed, check_request, denied, start_edge
from tests.gateway.test_consents import authorised, partner_token
from ztgate.up_plan import Layout, gateway_document

ADDRESS = "198.51.100.7"
SANDBOX_ROUTE = {**PARTNER_ROUTE, "route_id": "sandbox.ob.accounts.list", "environment": "sandbox"}


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


async def registered(edge: Edge, consents: ConsentStore, environment: str) -> str:
    """A token under an authorised consent for a new client registered in `environment`."""
    client = await register_client(
        edge.store, name=f"{environment} app", auth_method="private_key_jwt",
        jwks={"keys": [{**keys.generate("sm2").public_key().to_jwk(), "kid": "k"}]},
        scopes="ob:accounts:read",
    )  # fmt: skip
    registrations = await open_registrations(edge.config.store_url)
    try:
        await registrations.add(
            Registration(
                client.client_id, f"{environment}-app", None, (), time.time(),
                ("198.51.100.0/24",), "partner-trial", environment,
            ),
            statement_jti=f"j-{client.client_id}",
        )  # fmt: skip
    finally:
        await registrations.close()
    consent_id = await authorised(consents, client_id=client.client_id)
    return await partner_token(edge, consent_id, client_id=client.client_id)


def on(route: dict[str, str], token: str, path: str) -> object:
    headers = {"authorization": f"Bearer {token}"}
    return check_request(path=path, route=route, headers=headers, address=ADDRESS)


def test_the_control_plane_tells_the_agent_which_routes_are_sandbox() -> None:
    cfg = from_document(gateway_document(Layout()), base_dir=Path("/nonexistent"))
    routes = {r.id: r for r in cfg.routes}
    sandbox = context_extensions(routes["sandbox.ob.accounts.list"])
    assert sandbox == {**PARTNER_ROUTE, **SANDBOX_ROUTE, "mtls": "true"}
    assert "environment" not in context_extensions(routes["ob.accounts.list"])
    assert routes["sandbox.ob.accounts.list"].cluster == "corebank-sandbox"


def test_one_cluster_never_serves_both_environments() -> None:
    """A sandbox route to the production bank's cluster (or the reverse) is a
    configuration error, not a route that could leak production data."""
    doc = gateway_document(Layout())
    index = next(i for i, r in enumerate(doc["routes"]) if r["id"] == "sandbox.ob.accounts.list")
    doc["routes"][index]["cluster"] = "corebank"
    with pytest.raises(GatewayConfigError, match="environment") as info:
        from_document(doc, base_dir=Path("/nonexistent"))
    assert str(info.value).startswith(f"routes[{index}].environment: sandbox route to cluster")
    doc = gateway_document(Layout())
    first = next(i for i, r in enumerate(doc["routes"]) if r["cluster"] == "corebank")
    doc["routes"][first]["environment"] = "sandbox"  # the first route of corebank
    with pytest.raises(GatewayConfigError, match="environment"):
        from_document(doc, base_dir=Path("/nonexistent"))


@pytest.mark.parametrize("value", ["staging", "Sandbox", "", True, None])
def test_the_schema_knows_two_environments(value: object) -> None:
    doc = gateway_document(Layout())
    doc["routes"][0]["environment"] = value
    with pytest.raises(GatewayConfigError, match=r"routes\[0\]\.environment"):
        from_document(doc, base_dir=Path("/nonexistent"))


async def test_each_partner_passes_only_in_its_own_environment(
    edge: Edge, consents: ConsentStore
) -> None:
    sandbox = await registered(edge, consents, "sandbox")
    production = await registered(edge, consents, "production")
    allowed(await edge.check(on(SANDBOX_ROUTE, sandbox, "/sandbox/open/v1/accounts")))
    allowed(await edge.check(on(PARTNER_ROUTE, production, "/open/v1/accounts")))
    refused = denied(await edge.check(on(PARTNER_ROUTE, sandbox, "/open/v1/accounts")))
    assert (refused.status, refused.body["reason"]) == (403, ["partner:wrong_environment"])
    refused = denied(await edge.check(on(SANDBOX_ROUTE, production, "/sandbox/open/v1/accounts")))
    assert (refused.status, refused.body["reason"]) == (403, ["partner:wrong_environment"])


async def test_a_gateway_that_disagrees_with_the_route_table_is_refused(
    edge: Edge, consents: ConsentStore
) -> None:
    sandbox = await registered(edge, consents, "sandbox")
    # A production route id with the sandbox flag: not the bundle's table entry.
    lying = {**PARTNER_ROUTE, "environment": "sandbox"}
    refused = denied(await edge.check(on(lying, sandbox, "/open/v1/accounts")))
    assert refused.body["reason"] == ["route:environment_mismatch"]
    # A sandbox route id without the flag (an older control plane): refused, not production.
    unflagged = {k: v for k, v in SANDBOX_ROUTE.items() if k != "environment"}
    refused = denied(await edge.check(on(unflagged, sandbox, "/sandbox/open/v1/accounts")))
    assert refused.body["reason"] == ["route:environment_mismatch"]


@pytest.mark.parametrize("value", ["staging", "", "SANDBOX", "sandbox "])
async def test_an_unknown_environment_is_an_invalid_route(
    edge: Edge, consents: ConsentStore, value: str
) -> None:
    sandbox = await registered(edge, consents, "sandbox")
    route = {**SANDBOX_ROUTE, "environment": value}
    refused = denied(await edge.check(on(route, sandbox, "/sandbox/open/v1/accounts")))
    assert refused.body["reason"] == ["route:invalid"]
