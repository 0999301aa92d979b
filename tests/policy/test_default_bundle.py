"""The default zero-trust bundle (policy/bundles/default), evaluated the way the gateway
evaluates it: `policy.embedded.EmbeddedEngine` (regorus) on `example_input` variations.

Every classification's allow path and its deny paths with their reasons, step-up
obligations, deny by default, malformed input (issue 4, acceptance check 4),
fail-closed builtins, and the bundle's own Rego unit tests.
"""

from __future__ import annotations

import copy
import json
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
import regorus
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import policy
from policy.bundle import Bundle
from policy.contract import MAX_INPUT_BYTES, TRUST_LEVELS, example_input, parse_input_json
from policy.decision import Decision, StepUp
from policy.embedded import EmbeddedEngine
from policy.testing import run_tests

BUNDLE_DIR = Path(policy.__file__).parent / "bundles" / "default"
BUNDLE = Bundle.from_dir(BUNDLE_DIR)
ROUTES: dict[str, dict[str, str]] = json.loads(BUNDLE.files["ztgate/config/data.json"])["routes"]
NOW = example_input()["time"]["now"]
PASSKEY, MFA, PWD = (f"urn:ztgate:acr:{level}" for level in ("passkey", "mfa", "pwd"))
ANONYMOUS: dict[str, Any] = {
    "subject": None,
    "kind": "anonymous",
    "acr": None,
    "amr": [],
    "auth_time": None,
    "scopes": [],
    "client_id": None,
    "consent": None,
    "roles": [],
}


@pytest.fixture(scope="module")
def engine() -> EmbeddedEngine:
    return EmbeddedEngine(BUNDLE)


def public(**over: Any) -> dict[str, Any]:
    base = example_input(
        identity=ANONYMOUS,
        device={"id": None, "known": False, "bound_to_subject": False, "trust": "new"},
        route={"id": "products.list", "api_product": "products", "classification": "public"},
    )
    return _merge(base, over)


def transfer(**over: Any) -> dict[str, Any]:
    base = example_input(
        request={"method": "POST", "path": "/payments/v1/transfers"},
        route={
            "id": "transfers.create",
            "api_product": "retail-payments",
            "classification": "transfer",
            "params": {},
        },
    )
    return _merge(base, over)


def partner(**over: Any) -> dict[str, Any]:
    identity = {
        **ANONYMOUS,
        "subject": "fintech-budgetly",
        "kind": "partner",
        "client_id": "fintech-budgetly",
        "scopes": ["ob:accounts:read"],
        "consent": {
            "id": "cns-5b2e91",
            "status": "active",
            "resources": ["6222020200112233445"],
            "expires_at": NOW + 86400,
        },
    }
    base = example_input(
        request={"client_address": "198.51.100.20"},
        identity=identity,
        device={"id": None, "known": False, "bound_to_subject": False, "trust": "new"},
        route={
            "id": "ob.accounts.balances",
            "api_product": "open-banking-accounts",
            "classification": "partner",
        },
    )
    return _merge(base, over)


def staff(**over: Any) -> dict[str, Any]:
    identity = {
        **ANONYMOUS,
        "subject": "staff-0042",
        "kind": "staff",
        "acr": MFA,
        "auth_time": NOW - 1800,
        "roles": ["csr"],
    }
    base = example_input(
        identity=identity,
        device={"bound_to_subject": False},
        route={
            "id": "staff.customers.view",
            "api_product": "remote-service",
            "classification": "staff",
            "params": {"customer_id": "cust-7d3f9a20"},
        },
    )
    return _merge(base, over)


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _merge(base[key], value)
        else:
            base[key] = copy.deepcopy(value)
    return base


def assert_denied(decision: Decision, *reasons: str) -> None:
    assert decision.allow is False
    assert decision.reasons == tuple(sorted(reasons))
    assert decision.obligations.step_up is None
    assert decision.obligations.mask_profile == "strict"
    assert decision.obligations.audit == "full"
    assert decision.obligations.headers == ()
    assert decision.revision == "default-1"


def assert_step_up(decision: Decision, step_up: StepUp, *reasons: str) -> None:
    assert decision.allow is False
    assert decision.reasons == tuple(sorted(reasons))
    assert decision.obligations.step_up == step_up


# -- the bundle's own Rego tests ---------------------------------------------------------


def test_rego_unit_tests_pass_with_full_coverage() -> None:
    report = run_tests(BUNDLE)
    assert report.ok, report.failed
    assert len(report.passed) >= 70
    assert report.coverage == 1.0


def test_rego_unit_tests_catch_a_weakened_rule() -> None:
    path = "ztgate/customer.rego"
    weakened = BUNDLE.files[path].replace(b"input.risk.score <", b"input.risk.score <=")
    assert weakened != BUNDLE.files[path]
    report = run_tests(BUNDLE.with_files({path: weakened}))
    assert not report.ok
    assert {name for name, _ in report.failed} == {
        "data.ztgate.customer_test.test_account_risk_at_threshold_denied",
        "data.ztgate.customer_test.test_account_route_overrides_risk_threshold",
        "data.ztgate.routes_test.test_cards_detail_needs_cards_read_and_lower_risk",
    }


def test_bundle_layout() -> None:
    assert BUNDLE.revision == "default-1"
    assert BUNDLE.roots == ("ztgate",)
    assert set(BUNDLE.policy_modules) == {
        f"ztgate/{name}.rego"
        for name in (
            "main",
            "common",
            "routes",
            "public",
            "customer",
            "transfer",
            "partner",
            "staff",
        )
    }
    assert all(p.endswith("_test.rego") for p in set(BUNDLE.modules) - set(BUNDLE.policy_modules))
    config = BUNDLE.data["ztgate"]["config"]
    assert {"routes", "partners", "classifications", "acr_levels", "trust_levels"} <= set(config)
    for route_id, route in config["routes"].items():
        assert route["classification"] in config["classifications"], route_id
        if route["classification"] in ("account", "transfer", "partner"):
            assert route.get("scope"), route_id
        if route["classification"] == "staff":
            assert route.get("roles"), route_id


# -- public ------------------------------------------------------------------------------


def test_public_open_to_anonymous(engine: EmbeddedEngine) -> None:
    decision = engine.evaluate(public(risk={"score": 95}))
    assert decision.allow and decision.reasons == ("allow:public",)
    assert decision.obligations.mask_profile == "public"
    assert decision.obligations.audit == "none"
    assert decision.obligations.headers == (("x-ztgate-classification", "public"),)


# -- account -----------------------------------------------------------------------------


def test_account_allowed(engine: EmbeddedEngine) -> None:
    decision = engine.evaluate(example_input())
    assert decision.allow is True
    assert decision.reasons == ("allow:account",)
    assert decision.obligations.mask_profile == "customer"
    assert decision.obligations.rate_limit_tier == "customer"
    assert decision.obligations.audit == "standard"
    assert decision.revision == "default-1"


def test_account_mfa_allowed(engine: EmbeddedEngine) -> None:
    assert engine.evaluate(example_input(identity={"acr": MFA})).allow


def test_account_password_only_steps_up_to_mfa(engine: EmbeddedEngine) -> None:
    decision = engine.evaluate(example_input(identity={"acr": PWD}))
    assert_step_up(decision, StepUp(acr=MFA), "step_up:acr_too_weak")


@pytest.mark.parametrize(
    ("change", "reasons"),
    [
        ({"identity": {"kind": "partner"}}, ["identity:not_customer"]),
        ({"identity": {"scopes": ["openid"]}}, ["identity:missing_scope"]),
        ({"device": {"bound_to_subject": False}}, ["device:not_bound"]),
        (
            {"device": {"known": False, "bound_to_subject": False}},
            ["device:not_bound", "device:unknown"],
        ),
        ({"risk": {"score": 70}}, ["risk:too_high"]),
        (
            {"identity": {"acr": PWD}, "risk": {"score": 90}},
            ["risk:too_high", "step_up:acr_too_weak"],
        ),
        (
            {"identity": ANONYMOUS},
            ["identity:missing_scope", "identity:not_customer", "step_up:acr_too_weak"],
        ),
    ],
)
def test_account_denied(engine: EmbeddedEngine, change: dict[str, Any], reasons: list[str]) -> None:
    assert_denied(engine.evaluate(example_input(**change)), *reasons)


# -- transfer ----------------------------------------------------------------------------

TRANSFER_STEP_UP = StepUp(acr=PASSKEY, max_age=300)


def test_transfer_fresh_passkey_allowed(engine: EmbeddedEngine) -> None:
    decision = engine.evaluate(transfer())
    assert decision.allow and decision.reasons == ("allow:transfer",)
    assert decision.obligations.audit == "full"


@pytest.mark.parametrize(
    ("identity", "reasons"),
    [
        ({"auth_time": NOW - 301}, ["step_up:auth_too_old"]),
        ({"auth_time": None}, ["step_up:auth_too_old"]),
        ({"acr": MFA}, ["step_up:acr_too_weak"]),
        ({"acr": PWD, "auth_time": NOW - 7200}, ["step_up:acr_too_weak", "step_up:auth_too_old"]),
    ],
)
def test_transfer_weak_or_old_factor_steps_up(
    engine: EmbeddedEngine, identity: dict[str, Any], reasons: list[str]
) -> None:
    assert_step_up(engine.evaluate(transfer(identity=identity)), TRANSFER_STEP_UP, *reasons)


@pytest.mark.parametrize(
    ("change", "reasons"),
    [
        ({"risk": {"score": 30}}, ["risk:too_high"]),
        (
            {"risk": {"score": 30}, "identity": {"auth_time": NOW - 900}},
            ["risk:too_high", "step_up:auth_too_old"],
        ),
        ({"device": {"trust": "known"}}, ["device:untrusted"]),
        ({"device": {"trust": "new"}}, ["device:untrusted"]),
        ({"device": {"trust": "suspicious"}}, ["device:suspicious", "device:untrusted"]),
        ({"device": {"anomalies": ["ja4_mismatch"]}}, ["device:anomalous"]),
        ({"device": {"bound_to_subject": False}}, ["device:not_bound"]),
        ({"identity": {"scopes": ["accounts:read"]}}, ["identity:missing_scope"]),
    ],
)
def test_transfer_denied(
    engine: EmbeddedEngine, change: dict[str, Any], reasons: list[str]
) -> None:
    assert_denied(engine.evaluate(transfer(**change)), *reasons)


# -- partner -----------------------------------------------------------------------------


def test_partner_allowed(engine: EmbeddedEngine) -> None:
    decision = engine.evaluate(partner())
    assert decision.allow and decision.reasons == ("allow:partner",)
    assert decision.obligations.mask_profile == "partner"
    assert decision.obligations.rate_limit_tier == "partner-standard"
    assert dict(decision.obligations.headers) == {
        "x-ztgate-classification": "partner",
        "x-ztgate-consent-id": "cns-5b2e91",
    }


def test_partner_ipv6_network_allowed(engine: EmbeddedEngine) -> None:
    assert engine.evaluate(partner(request={"client_address": "2001:db8:100::7"})).allow


@pytest.mark.parametrize(
    ("change", "reasons"),
    [
        ({"request": {"client_address": "203.0.113.45"}}, ["partner:network_not_allowed"]),
        ({"request": {"client_address": "::ffff:198.51.100.20"}}, ["partner:network_not_allowed"]),
        ({"identity": {"client_id": "fintech-unknown"}}, ["partner:unknown_client"]),
        (
            {
                "identity": {"client_id": "aggregator-suspended"},
                "request": {"client_address": "203.0.113.200"},
            },
            ["partner:inactive"],
        ),
        ({"identity": {"scopes": []}}, ["identity:missing_scope"]),
        ({"identity": {"kind": "customer"}}, ["identity:not_partner"]),
        ({"identity": {"consent": None}}, ["consent:missing"]),
        ({"identity": {"consent": {"status": "revoked"}}}, ["consent:inactive"]),
        ({"identity": {"consent": {"expires_at": NOW}}}, ["consent:expired"]),
        (
            {"route": {"params": {"account_id": "6222020200000000000"}}},
            ["consent:resource_not_covered"],
        ),
        ({"risk": {"score": 60}}, ["risk:too_high"]),
    ],
)
def test_partner_denied(engine: EmbeddedEngine, change: dict[str, Any], reasons: list[str]) -> None:
    assert_denied(engine.evaluate(partner(**change)), *reasons)


def test_partner_address_the_policy_cannot_parse_fails_closed() -> None:
    """net.cidr_contains errors (never returns false) on a bad address, so even a caller
    that skipped input validation cannot turn it into an allow or a missing reason."""
    raw = regorus.Engine()
    for path, source in BUNDLE.policy_modules.items():
        raw.add_policy(path, source)
    raw.add_data(BUNDLE.data)
    raw.set_input(partner(request={"client_address": "198.51.100.20:443"}))
    with pytest.raises(RuntimeError, match="IP address"):
        raw.eval_rule("data.ztgate.main.decision")


# -- staff -------------------------------------------------------------------------------


def test_staff_allowed_with_restrictive_mask(engine: EmbeddedEngine) -> None:
    decision = engine.evaluate(staff())
    assert decision.allow and decision.reasons == ("allow:staff",)
    assert decision.obligations.mask_profile == "staff_restricted"
    assert decision.obligations.audit == "full"


def test_staff_supervisor_route_mask(engine: EmbeddedEngine) -> None:
    doc = staff(identity={"roles": ["csr_supervisor"]}, route={"id": "staff.customers.unlock"})
    assert engine.evaluate(doc).obligations.mask_profile == "staff_minimal"


def test_staff_password_only_steps_up(engine: EmbeddedEngine) -> None:
    decision = engine.evaluate(staff(identity={"acr": PWD}))
    assert_step_up(decision, StepUp(acr=MFA), "step_up:acr_too_weak")


@pytest.mark.parametrize(
    ("change", "reasons"),
    [
        ({"identity": {"roles": ["teller"]}}, ["identity:missing_role"]),
        ({"route": {"id": "staff.customers.unlock"}}, ["identity:missing_role"]),
        ({"identity": {"kind": "customer"}}, ["identity:not_staff"]),
        ({"device": {"trust": "known"}}, ["device:untrusted"]),
        ({"device": {"trust": "suspicious"}}, ["device:suspicious", "device:untrusted"]),
        ({"device": {"known": False}}, ["device:unknown"]),
        ({"risk": {"score": 50}}, ["risk:too_high"]),
    ],
)
def test_staff_denied(engine: EmbeddedEngine, change: dict[str, Any], reasons: list[str]) -> None:
    assert_denied(engine.evaluate(staff(**change)), *reasons)


# -- deny by default ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("route", "reasons"),
    [
        ({"id": "accounts.export"}, ["route:unknown"]),
        ({"classification": "public"}, ["route:classification_mismatch"]),
        ({"api_product": "products"}, ["route:api_product_mismatch"]),
        (
            {"classification": "public", "api_product": "products"},
            ["route:api_product_mismatch", "route:classification_mismatch"],
        ),
        ({"environment": "sandbox"}, ["route:environment_mismatch"]),
    ],
)
def test_route_table_decides(
    engine: EmbeddedEngine, route: dict[str, Any], reasons: list[str]
) -> None:
    assert_denied(engine.evaluate(example_input(route=route)), *reasons)


def test_every_route_of_the_default_gateway_configuration_is_in_the_table() -> None:
    """A route the gateway serves but the table lacks is denied ``route:unknown`` for
    everyone: each route of gateway/defaults/gateway.json needs an entry with the same
    classification, API product and environment (the table is the authority, the gateway
    must agree)."""
    raw = resources.files("gateway").joinpath("defaults/gateway.json").read_bytes()
    gateway_routes = json.loads(raw)["routes"]
    assert gateway_routes
    missing = sorted(r["id"] for r in gateway_routes if r["id"] not in ROUTES)
    assert missing == [], f"routes missing from the bundle's data: {missing}"
    for route in gateway_routes:
        entry = ROUTES[route["id"]]
        assert (entry["classification"], entry["api_product"]) == (
            route["classification"],
            route["api_product"],
        ), route["id"]
        assert entry.get("environment", "production") == route.get("environment", "production")


def test_every_route_in_the_table_denies_anonymous_unless_public(engine: EmbeddedEngine) -> None:
    for route_id, route in ROUTES.items():
        doc = public(
            route={
                "id": route_id,
                "api_product": route["api_product"],
                "classification": route["classification"],
            }
        )
        decision = engine.evaluate(doc)
        assert decision.allow == (route["classification"] == "public"), route_id
        assert decision.reasons, route_id


@settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    kind=st.sampled_from(["customer", "partner", "staff", "anonymous"]),
    acr=st.sampled_from([None, PWD, MFA, PASSKEY, "urn:other"]),
    known=st.booleans(),
    bound=st.booleans(),
    trust=st.sampled_from(TRUST_LEVELS),
    score=st.integers(0, 100),
    age=st.integers(-120, 4000),
    route=st.sampled_from(
        [
            *sorted(ROUTES.items()),
            ("unknown.route", {"classification": "account", "api_product": "x"}),
        ]
    ),
)
def test_every_decision_is_well_formed_and_explained(
    engine: EmbeddedEngine,
    kind: str,
    acr: str | None,
    known: bool,
    bound: bool,
    trust: str,
    score: int,
    age: int,
    route: tuple[str, dict[str, str]],
) -> None:
    """Any valid input: a decision from the policy (never an eval error or the default),
    with at least one reason, and step-up only on a deny."""
    route_id, entry = route
    doc = example_input(
        identity={"kind": kind, "acr": acr, "auth_time": NOW - age, "roles": ["csr"]},
        device={"known": known, "bound_to_subject": bound, "trust": trust},
        risk={"score": score},
        route={
            "id": route_id,
            "api_product": entry["api_product"],
            "classification": entry["classification"],
        },
    )
    decision = engine.evaluate(doc)
    assert decision.reasons
    assert not {"policy:eval_error", "policy:no_rule_matched"} & set(decision.reasons)
    if decision.allow:
        assert decision.reasons[0].startswith("allow:")
        assert decision.obligations.step_up is None
    else:
        assert not any(r.startswith("allow:") for r in decision.reasons)
    if entry["classification"] != "public" and score >= 70:
        assert not decision.allow  # no protected route tolerates a risk of 70 or more


# -- malformed input (acceptance check 4) ------------------------------------------------


@pytest.mark.parametrize(
    ("doc", "reason"),
    [
        ({}, "input:missing:version"),
        ([], "input:type:$"),
        ("text", "input:type:$"),
        (example_input(identity={"subject": 5}), "input:type:identity.subject"),
        (example_input(risk={"score": -1}), "input:value:risk.score"),
        (example_input(identity={"subject": "\ud800"}), "input:value:identity.subject"),
        (
            example_input(request={"client_address": "not-an-ip"}),
            "input:value:request.client_address",
        ),
    ],
)
def test_malformed_input_is_a_deny_with_reason(
    engine: EmbeddedEngine, doc: object, reason: str
) -> None:
    decision = engine.evaluate(doc)
    assert decision.allow is False
    assert decision.reasons == (reason,)
    assert decision.revision == "default-1"


def test_missing_members_each_denied(engine: EmbeddedEngine) -> None:
    for member in ("request", "identity", "device", "risk", "route", "time"):
        doc = example_input()
        del doc[member]
        assert engine.evaluate(doc).reasons == (f"input:missing:{member}",)


def test_huge_and_deep_json_denied_before_evaluation() -> None:
    assert parse_input_json(b"{" * (MAX_INPUT_BYTES + 1)) == "input:too_large"
    assert parse_input_json(b"[" * 200_000) == "input:too_deep"


def test_deep_input_never_reaches_the_engine(engine: EmbeddedEngine) -> None:
    nested: Any = "x"
    for _ in range(100_000):  # deep enough to overflow regorus' stack if it got there
        nested = [nested]
    doc = example_input()
    doc["identity"]["consent"] = nested
    assert engine.evaluate(doc).reasons == ("input:too_deep",)


def test_missing_builtin_fails_closed(engine: EmbeddedEngine) -> None:
    """regorus has no crypto.* builtins: using one is an evaluation error, never a
    silent undefined that `not` would turn into true."""
    trap = b"""package ztgate.customer

import rego.v1

decision := {"allow": true, "reasons": ["allow:account"]} if {
\tnot crypto.sha256(input.identity.subject) == "x"
}
"""
    broken = EmbeddedEngine(BUNDLE.with_files({"ztgate/customer.rego": trap}))
    decision = broken.evaluate(example_input())
    assert decision.allow is False
    assert decision.reasons == ("policy:eval_error",)
