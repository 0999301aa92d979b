"""The catalogue is a valid OpenAPI 3.1 document, its examples fit its schemas, and it
agrees with the edge's route table, the policy's scopes and the core bank's router."""

from __future__ import annotations

import copy
import json
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from openapi_spec_validator import OpenAPIV31SpecValidator

from gateway.catalogue.portal import openapi_document
from gateway.corebank import start_corebank, trust_identity_headers
from tests.catalogue.spec import Catalogue, operations
from tests.corebank.harness import AS_OF

OPEN = "/open/v1/"


def spec_errors(doc: dict[str, Any]) -> list[str]:
    return [f"{list(e.path)}: {e.message}" for e in OpenAPIV31SpecValidator(doc).iter_errors()]


def test_the_document_is_valid_openapi_3_1() -> None:
    doc = openapi_document()
    assert doc["openapi"].startswith("3.1.")
    assert spec_errors(doc) == []


def test_the_validator_rejects_a_broken_document() -> None:
    """The check above can fail: a response without its description, a token flow
    without its endpoint are caught."""
    doc = openapi_document()
    broken = copy.deepcopy(doc)
    del broken["paths"]["/open/v1/accounts"]["get"]["responses"]["200"]["description"]
    assert spec_errors(broken)
    broken = copy.deepcopy(doc)
    broken["components"]["securitySchemes"]["partnerToken"]["flows"]["clientCredentials"].pop(
        "tokenUrl"
    )
    assert spec_errors(broken)


def test_the_packaged_file_is_the_document() -> None:
    """Shipped as package data (pyproject), read through importlib.resources."""
    raw = resources.files("gateway.catalogue").joinpath("openapi.json").read_bytes()
    assert json.loads(raw) == openapi_document()


def test_every_example_fits_its_schema() -> None:
    cat = Catalogue()
    seen = 0
    for where, schema_at, value in cat.media_examples():
        errors = [e.message for e in cat.validator(schema_at).iter_errors(value)]
        assert errors == [], where
        seen += 1
    # every operation shows at least one example of its success answer
    for op in operations(cat.doc):
        for status, response in op.doc["responses"].items():
            if status.startswith("2") and "content" in response:
                assert response["content"]["application/json"]["examples"], (op.path, status)
    assert seen >= 20


def test_strict_validation_refuses_what_the_document_does_not_describe() -> None:
    cat = Catalogue()
    check = cat.validator("/components/schemas/Payment")
    example = cat.doc["paths"]["/open/v1/payments/{payment_id}"]["get"]["responses"]["200"]
    payment = example["content"]["application/json"]["examples"]["paid"]["value"]
    assert check.is_valid(payment)
    assert not check.is_valid({**payment, "undocumented": 1})
    assert not check.is_valid({**payment, "instructedAmount": {"amount": 88, "currency": "CNY"}})
    consent = cat.validator("/components/schemas/Consent")
    authorised = {"consent_id": "c1", "status": "authorised", "permissions": ["accounts:read"],
                  "expires_at": 2, "created_at": 1}  # fmt: skip
    assert not consent.is_valid(authorised)  # an authorised consent names its accounts
    assert consent.is_valid({**authorised, "accounts": ["acc_1"]})


def _gateway_routes() -> dict[str, dict[str, Any]]:
    raw = resources.files("gateway").joinpath("defaults/gateway.json").read_text()
    return {r["id"]: r for r in json.loads(raw)["routes"]}


def _policy_routes() -> dict[str, dict[str, Any]]:
    path = Path(__file__).parents[2] / "policy/bundles/default/ztgate/config/data.json"
    routes: dict[str, dict[str, Any]] = json.loads(path.read_text())["routes"]
    return routes


def _edge_route(routes: dict[str, dict[str, Any]], path: str, method: str) -> dict[str, Any]:
    found = [
        r
        for r in routes.values()
        if path in (r.get("path"), r.get("template")) and method.upper() in r["methods"]
    ]
    assert len(found) == 1, f"{method} {path}: edge routes {found}"
    return found[0]


def test_partner_operations_are_the_edges_mtls_partner_routes() -> None:
    """Each /open/v1 operation is one edge route (mTLS, partner classification, its API
    product); every ob.* edge route is documented; the documented scope is the one the
    policy's route table requires."""
    doc = openapi_document()
    routes, policy = _gateway_routes(), _policy_routes()
    documented = set()
    for op in operations(doc):
        if not op.path.startswith(OPEN):
            continue
        route = _edge_route(routes, op.path, op.method)
        documented.add(route["id"])
        assert route["mtls"] is True and route["classification"] == "partner", route["id"]
        assert f"`{route['id']}`" in op.doc["description"]
        assert route["api_product"] in {t["description"].split("`")[1] for t in doc["tags"]
                                        if t["name"] in op.doc["tags"]}  # fmt: skip
        (requirement,) = op.doc["security"]
        assert requirement["partnerCertificate"] == []
        if "scope" in policy.get(route["id"], {}):
            assert requirement["partnerToken"] == [policy[route["id"]]["scope"]], route["id"]
    assert documented == {rid for rid in routes if rid.startswith("ob.")}


def test_the_sandbox_serves_every_partner_operation_under_its_server() -> None:
    """Every ob.* route has exactly one sandbox twin, sandbox.<id> at /sandbox<path>: the
    same methods, security, limits and masking, environment sandbox, to a cluster no
    production route uses; the policy's entries differ by the environment alone, the
    masking rules not at all; the document's second server is the first's /sandbox."""
    routes, policy = _gateway_routes(), _policy_routes()
    raw = resources.files("gateway").joinpath("defaults/gateway.json").read_text()
    production_clusters = {r["cluster"] for r in json.loads(raw)["routes"]
                           if r.get("environment", "production") == "production"}  # fmt: skip
    rules = json.loads(
        resources.files("gateway.masking").joinpath("rules/default.json").read_text("utf-8")
    )["routes"]
    twins = {rid for rid in routes if routes[rid].get("environment") == "sandbox"}
    assert twins == {f"sandbox.{rid}" for rid in routes if rid.startswith("ob.")}
    for rid in twins:
        twin, original = routes[rid], routes[rid.removeprefix("sandbox.")]
        assert "environment" not in original
        assert twin["cluster"] not in production_clusters, rid
        for kind in ("path", "template"):
            if kind in original:
                assert twin[kind] == "/sandbox" + original[kind], rid
        same = {"id", "path", "template", "cluster", "environment"}
        assert {k: v for k, v in twin.items() if k not in same} == {
            k: v for k, v in original.items() if k not in same
        }, rid
        assert policy[rid] == {**policy[original["id"]], "environment": "sandbox"}, rid
        assert rules.get(rid) == rules.get(original["id"]), rid
    first, sandbox = openapi_document()["servers"]
    assert sandbox["url"] == first["url"] + "/sandbox"
    assert sandbox["variables"] == first["variables"]


def test_documented_scopes_are_declared_and_partner_scopes_only() -> None:
    doc = openapi_document()
    flow = doc["components"]["securitySchemes"]["partnerToken"]["flows"]["clientCredentials"]
    assert flow["tokenUrl"].endswith("/v1/token")
    declared = set(flow["scopes"])
    used = {s for op in operations(doc) for req in op.doc["security"]
            for s in req.get("partnerToken", [])}  # fmt: skip
    assert used == declared
    assert all(scope.startswith("ob:") for scope in declared)
    assert doc["components"]["securitySchemes"]["partnerCertificate"]["type"] == "mutualTLS"


def test_payment_initiation_is_signed_and_idempotent() -> None:
    doc = openapi_document()
    op = doc["paths"]["/open/v1/payments"]["post"]
    params = {p["$ref"].rsplit("/", 1)[1] for p in op["parameters"]}
    names = {doc["components"]["parameters"][p]["name"] for p in params}
    assert names == {"Idempotency-Key", "Signature-Input", "Signature", "Content-Digest"}
    assert all(doc["components"]["parameters"][p]["required"] for p in params)


def test_errors_carry_the_edges_headers() -> None:
    cat = Catalogue()
    for op in operations(cat.doc):
        assert "401" in op.doc["responses"] and "403" in op.doc["responses"], op.path
        assert cat.response_headers(op, 401)["WWW-Authenticate"]["required"] is True
        limited = cat.response_headers(op, 429)
        assert limited["Retry-After"]["required"] is True
        assert {"RateLimit", "RateLimit-Policy"} <= set(limited)


async def test_documented_partner_paths_are_the_core_banks_routes(tmp_path: Path) -> None:
    """Every /open/v1 route of the running core bank is documented, and nothing else is."""
    running = await start_corebank(
        tmp_path / "bank", authenticate=trust_identity_headers, customers=5, as_of=AS_OF
    )
    try:
        served = {
            (route.method.lower(), route.resource.canonical)
            for route in running.runner.app.router.routes()
            if route.resource is not None
            and route.resource.canonical.startswith(OPEN)
            and route.method != "HEAD"
        }
    finally:
        await running.stop()
    documented = {(op.method, op.path) for op in operations(openapi_document())
                  if op.path.startswith(OPEN)}  # fmt: skip
    assert served == documented
    assert len(served) == 5


@pytest.mark.parametrize("path", ["/v1/consents", "/v1/consents/{consent_id}"])
def test_the_consent_api_is_on_the_authn_origin(path: str) -> None:
    item = openapi_document()["paths"][path]
    assert item["servers"][0]["variables"]["authn"]["default"] == "localhost:8081"
    for method in ("get", "post", "delete"):
        if method in item:
            assert item[method]["security"] == [{"partnerToken": ["ob:consents"]}]
