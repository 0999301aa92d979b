"""gateway.config: the gateway configuration file — errors name the offending key,
the loader enforces exactly its published JSON Schema, and the embedded default
agrees with the default policy bundle's route table."""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped]
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator, ValidationError

from gateway import config
from gateway.config import GatewayConfigError, from_document, loads
from gateway.config_schema import check_schema, validate

DEFAULT = json.loads(
    (Path(config.__file__).parent / "defaults" / "gateway.json").read_text(encoding="utf-8")
)
BASE = Path("/nonexistent")


def _ecma_pattern(
    validator: Any, pattern: str, instance: object, schema: object
) -> Iterator[ValidationError]:
    """ECMA-262 ``$`` ends the input; Python's also matches before a final newline."""
    if isinstance(instance, str) and not re.search(re.sub(r"\$$", r"\\Z", pattern), instance):
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


VALIDATOR = jsonschema.validators.extend(Draft202012Validator, {"pattern": _ecma_pattern})(
    config.schema()
)


def doc_with(change: Callable[[dict[str, Any]], object]) -> dict[str, Any]:
    doc = copy.deepcopy(DEFAULT)
    change(doc)
    return doc


def error_of(doc: object) -> str:
    with pytest.raises(GatewayConfigError) as info:
        from_document(doc, base_dir=BASE)
    return str(info.value)


def test_default_configuration_is_valid_and_complete() -> None:
    VALIDATOR.validate(DEFAULT)
    cfg = config.load_default(Path("/state"))
    assert cfg.listeners[0].tls is not None and cfg.listeners[0].tls.client_ca == "edge-client-ca"
    assert cfg.certificates["edge-server"].private_key == Path("/state/pki/edge-server.key")
    assert cfg.agent.timeout_ms == 250 and len(cfg.agent.ports) >= 2
    ids = {r.id for r in cfg.routes}
    assert {"products.list", "accounts.balances", "transfers.create", "ob.payments.create"} <= ids
    assert {"staff.customers.view", "authn.api"} <= ids
    assert all(r.mtls for r in cfg.routes if r.classification == "partner")
    assert all(c.health_check is not None for c in cfg.clusters.values())


def test_default_routes_agree_with_the_default_policy_bundle() -> None:
    """The policy looks a route's requirements up by id: every route the gateway
    serves must be known there with the same product, classification and environment."""
    data_path = Path(config.__file__).parents[1] / "policy/bundles/default/ztgate/config/data.json"
    policy_routes = json.loads(data_path.read_text())["routes"]
    missing = []
    for route in config.load_default(BASE).routes:
        known = policy_routes.get(route.id)
        if known is None:
            missing.append(route.id)
            continue
        assert known["classification"] == route.classification, route.id
        assert known["api_product"] == route.api_product, route.id
        assert known.get("environment", "production") == route.environment, route.id
    # A missing route would be denied route:unknown for everyone.
    assert missing == []


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            lambda d: d["routes"][2].update(cluster="core"),
            "routes[2].cluster: unknown cluster 'core'",
        ),
        (lambda d: d.pop("routes"), "routes: is required"),
        (lambda d: d.update(version=2), "version: must be one of 1"),
        (lambda d: d["listeners"][0].update(prot=1), "listeners[0].prot: unknown key"),
        (lambda d: d["listeners"][0].update(port=0), "listeners[0].port: must be at least 1"),
        (lambda d: d["listeners"][0].update(port="8443"), "listeners[0].port: must be integer"),
        (lambda d: d["listeners"][0].update(port=True), "listeners[0].port: must be integer"),
        (
            lambda d: d["listeners"][0]["tls"].update(certificate="nope"),
            "listeners[0].tls.certificate: unknown secret 'nope'",
        ),
        (
            lambda d: d["listeners"][0].update(tls="yes"),
            "listeners[0].tls: must be object or null, not string",
        ),
        (
            lambda d: d["listeners"][0].update(address="10.0.0.1", tls=None),
            "listeners[0].tls: is required on a non-loopback address",
        ),
        (
            lambda d: d["listeners"][0].update(address="localhost"),
            "listeners[0].address: must match ^[0-9A-Fa-f.:]+$ (an IPv4 or IPv6 address literal)",
        ),
        (
            lambda d: d["clusters"]["corebank"]["endpoints"][0].update(address="999.1.1.1"),
            "clusters.corebank.endpoints[0].address: '999.1.1.1' is not an IP address",
        ),
        (
            lambda d: d["clusters"].update({"Core Bank": d["clusters"]["corebank"]}),
            'clusters["Core Bank"]: invalid name: must match',
        ),
        (
            lambda d: d["clusters"].update(ztgate_x=d["clusters"]["corebank"]),
            "clusters.ztgate_x: names starting with 'ztgate_' are reserved",
        ),
        (
            lambda d: d["routes"][3].update(id=d["routes"][0]["id"]),
            "routes[3].id: duplicates routes[0]",
        ),
        (
            lambda d: d["routes"][0].update(prefix="/x/"),
            "routes[0]: needs exactly one of path, prefix, template, regex",
        ),
        (
            lambda d: d["routes"][1].update(template="/products/v1/{id}/{id}"),
            "routes[1].template: variable {id} appears twice",
        ),
        (
            lambda d: d["routes"][1].update(template="/products/v1/x{id}"),
            "routes[1].template: segment 'x{id}' must be literal or one {name}",
        ),
        (
            lambda d: d["routes"][1].update(template="/products/v1/plain"),
            "routes[1].template: has no {variable}; use path instead",
        ),
        (
            lambda d: d["routes"].insert(0, {**d["routes"][0], "id": "x", "path": "/api/products"}),
            "routes[1]: unreachable: routes[0] (path '/api/products') matches first",
        ),
        (
            lambda d: d["routes"].insert(
                0,
                {
                    "id": "all",
                    "prefix": "/api/accounts/",
                    "cluster": "corebank",
                    "api_product": "p",
                    "classification": "public",
                },
            ),
            "routes[4]: unreachable: routes[0] (prefix '/api/accounts/') matches first",
        ),
        (
            lambda d: d["routes"][0].update(classification="secret"),
            'routes[0].classification: must be one of "public", "account"',
        ),
        (
            lambda d: d["routes"][0].update(methods=["GET", "GET"]),
            "routes[0].methods[1]: duplicates an earlier item",
        ),
        (
            lambda d: d["routes"][0].update(path="/a b"),
            "routes[0].path: must match",
        ),
        (
            lambda d: d["routes"][0].update(regex="(", path=None) or d["routes"][0].pop("path"),
            "routes[0].regex: not a regular expression",
        ),
        (
            lambda d: d["listeners"][0]["tls"].update(client_ca=None),
            "routes[10].mtls: no listener has tls.client_ca",
        ),
        (
            lambda d: d["routes"][0].update(signed=True, masking=False),
            "routes[0].signed: needs masking: true",
        ),
        (
            lambda d: d["agent"].update(timeout_ms=0),
            "agent.timeout_ms: must be at least 10",
        ),
        (
            lambda d: d["control_plane"].update(admin_port=d["control_plane"]["xds_port"]),
            "control_plane.admin_port: must differ from xds_port",
        ),
        (
            lambda d: d.update(nodes={"edge-2": {"listener_ports": {"nope": 9443}}}),
            "nodes.edge-2.listener_ports.nope: unknown listener",
        ),
        (
            lambda d: d.update(nodes={"bad id!": {}}),
            'nodes["bad id!"]: invalid name',
        ),
        (
            lambda d: d["listeners"].append({"name": "two", "port": 8443, "tls": None}),
            "listeners: listeners 'edge-https' and 'two' share port 8443",
        ),
        (
            lambda d: d["secrets"]["trusted_cas"].update({"edge-server": {"file": "x.pem"}}),
            "secrets.trusted_cas.edge-server: name already used by a certificate",
        ),
    ],
)
def test_errors_name_the_offending_key(
    change: Callable[[dict[str, Any]], object], expected: str
) -> None:
    assert error_of(doc_with(change)).startswith(expected)


def test_relative_secret_paths_are_taken_from_the_file_directory(tmp_path: Path) -> None:
    path = tmp_path / "gw.json"
    path.write_text(json.dumps(DEFAULT))
    cfg = config.load(path)
    assert cfg.certificates["edge-server"].certificate_chain == tmp_path / "pki/edge-server.crt"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b'{"version": 1, "version": 1}', "duplicate key 'version'"),
        (b'{"version": NaN}', "is not valid JSON"),
        (b"\xff\xfe{}", "is not valid JSON"),
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
        (b" " * (config.MAX_FILE + 1), "larger than"),
        (b"[]", "must be object, not array"),
    ],
)
def test_bad_json_is_refused_clearly(raw: bytes, expected: str) -> None:
    with pytest.raises(GatewayConfigError) as info:
        loads(raw, base_dir=BASE)
    assert expected in str(info.value)


def test_unreadable_file_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(GatewayConfigError, match="cannot read"):
        config.load(tmp_path / "missing.json")


def test_schema_uses_only_supported_keywords() -> None:
    check_schema(config.schema())
    with pytest.raises(GatewayConfigError, match="unsupported schema keyword 'oneOf'"):
        check_schema({"type": "object", "properties": {"a": {"oneOf": []}}})


def test_integral_floats_are_integers_and_booleans_are_not() -> None:
    cfg = from_document(doc_with(lambda d: d["listeners"][0].update(port=8443.0)), base_dir=BASE)
    assert cfg.listeners[0].port == 8443 and isinstance(cfg.listeners[0].port, int)
    assert "must be integer" in error_of(doc_with(lambda d: d["agent"].update(timeout_ms=1.5)))


# --- the loader and jsonschema agree on what the schema allows ----------------------


def _schema_ok(doc: object) -> bool:
    try:
        validate(doc, config.schema())
    except GatewayConfigError:
        return False
    return True


JSON_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**31), max_value=2**31),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=12),
    st.sampled_from(["GET", "public", "/x", "127.0.0.1", "edge-server", "TLSv1_3", "a.b"]),
)
JSON = st.recursive(
    JSON_SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _paths(v, (*prefix, i))
    return out


@st.composite
def mutated(draw: st.DrawFn) -> dict[str, Any]:
    doc = copy.deepcopy(DEFAULT)
    for _ in range(draw(st.integers(1, 3))):
        paths = _paths(doc)
        path = draw(st.sampled_from(paths[1:]))
        parent: Any = doc
        for part in path[:-1]:
            parent = parent[part]
        action = draw(st.sampled_from(["replace", "delete", "add"]))
        if action == "replace":
            parent[path[-1]] = draw(JSON)
        elif action == "delete":
            del parent[path[-1]]
        elif isinstance(parent, dict):
            parent[draw(st.sampled_from(["extra", "port", "tls", "methods", "nodes"]))] = draw(JSON)
        else:
            parent.append(draw(JSON))
    return doc


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_loader_enforces_exactly_the_published_schema(doc: dict[str, Any]) -> None:
    assert _schema_ok(doc) == VALIDATOR.is_valid(doc)


@settings(max_examples=300, deadline=None)
@given(st.one_of(JSON, mutated()))
def test_any_document_gives_a_config_or_a_config_error(doc: object) -> None:
    try:
        from_document(doc, base_dir=BASE)
    except GatewayConfigError as exc:
        assert exc.problem
