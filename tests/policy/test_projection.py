"""The input projection (policy.projection, policy.rego_ast.input_paths): the engine is
given only the input members the policy can read, and that never changes a decision."""

from __future__ import annotations

import copy
import string
from typing import Any

import pytest
import regorus
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from policy.bundle import Bundle
from policy.contract import TRUST_LEVELS, example_input
from policy.decision import parse_result
from policy.embedded import EmbeddedEngine
from policy.projection import Projection
from policy.rego_ast import input_paths
from ztgate.policy_cli import default_bundle

DEFAULT = default_bundle()
ENTRY = "data.ztgate.main.decision"


def paths_of(source: str) -> frozenset[tuple[str, ...]]:
    engine = regorus.Engine()
    engine.add_policy("p.rego", source)
    return input_paths(engine)


def test_default_bundle_reads_a_few_members_not_headers_or_query() -> None:
    paths = input_paths(EmbeddedEngine(DEFAULT)._prepared().working)
    assert ("route",) in paths  # partner.covers reads input.route whole (object.get)
    assert ("identity", "kind") in paths and ("request", "client_address") in paths
    assert not any(p[:2] in {("request", "headers"), ("request", "query")} for p in paths)
    assert () not in paths


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("x if input.a.b == 1", {("a", "b")}),
        ('x if input["a"].b == 1', {("a", "b")}),
        ("x if { some k; input.a[k] }", {("a",)}),  # a variable index: all of input.a
        ("x if input.a[0]", {("a",)}),
        ("x := count(input)", {()}),  # input whole
        ("x := f(input)\nf(v) := v.a", {()}),
        ("x := walk(input)", {()}),
        ("x if { y with input as {} }\ny := input.a", {(), ("a",)}),
        ('x := object.get(input.r, "p", {})', {("r",)}),
        ("x if { some s in input.scopes; s == input.q[input.k] }", {("scopes",), ("q",), ("k",)}),
        ("import input.identity as idn\nx := idn.kind", {("identity",)}),
    ],
)
def test_input_paths(source: str, expected: set[tuple[str, ...]]) -> None:
    assert paths_of(f"package p\nimport rego.v1\n{source}\n") == expected


def test_projection_keeps_paths_and_what_is_not_an_object() -> None:
    projection = Projection([("a", "b"), ("a", "c", "d"), ("e",), ("n", "x")])
    doc = {"a": {"b": [1], "c": None, "z": 1}, "e": {"deep": {"k": 1}}, "n": 5, "other": 1}
    assert projection.apply(doc) == {"a": {"b": [1], "c": None}, "e": {"deep": {"k": 1}}, "n": 5}
    assert projection.apply({"x": 1}) == {}  # absent members stay absent
    assert projection.apply([1, 2]) == [1, 2]
    assert not projection.whole


def test_a_shorter_path_keeps_everything_under_it() -> None:
    assert Projection([("a", "b"), ("a",)]).apply({"a": {"b": 1, "c": 2}}) == {
        "a": {"b": 1, "c": 2}
    }


def test_reading_input_whole_disables_the_projection() -> None:
    projection = Projection([("a",), ()])
    doc = {"a": 1, "b": 2}
    assert projection.whole and projection.apply(doc) is doc


def test_a_policy_reading_headers_sees_them() -> None:
    main = b"""package ztgate.main

import rego.v1

decision := {"allow": input.request.headers["x-app-version"] == "8.4.2", "reasons": ["r"]}
"""
    engine = EmbeddedEngine(Bundle.build({"ztgate/main.rego": main}, revision="h"))
    assert engine.evaluate(example_input()).allow
    doc = example_input(request={"headers": {"x-app-version": "1.0"}})
    assert not engine.evaluate(doc).allow


@settings(max_examples=120, suppress_health_check=[HealthCheck.too_slow])
@given(
    kind=st.sampled_from(["customer", "partner", "staff", "anonymous"]),
    trust=st.sampled_from(TRUST_LEVELS),
    score=st.integers(0, 100),
    route=st.sampled_from(
        [
            ("accounts.balances", "retail-accounts", "account"),
            ("transfers.create", "retail-payments", "transfer"),
            ("ob.accounts.balances", "open-banking-accounts", "partner"),
            ("staff.customers.view", "remote-service", "staff"),
            ("products.list", "products", "public"),
            ("nope", "x", "account"),
        ]
    ),
    client=st.sampled_from([None, "fintech-budgetly", "aggregator-suspended"]),
    address=st.sampled_from(["203.0.113.45", "198.51.100.20", "2001:db8:100::7"]),
    headers=st.dictionaries(
        st.sampled_from(["accept", "x-a", "x-b"]), st.text(string.printable.strip(), max_size=8)
    ),
)
def test_projected_and_whole_input_decide_alike(
    kind: str,
    trust: str,
    score: int,
    route: tuple[str, str, str],
    client: str | None,
    address: str,
    headers: dict[str, str],
) -> None:
    """The embedded engine (projected input) and a raw regorus engine given the whole
    document return the same decision for the default bundle."""
    doc: dict[str, Any] = example_input(
        request={"client_address": address},
        identity={"kind": kind, "client_id": client},
        device={"trust": trust},
        risk={"score": score},
        route={"id": route[0], "api_product": route[1], "classification": route[2]},
    )
    doc["request"]["headers"] = headers
    assert _whole(copy.deepcopy(doc)) == _ENGINE.evaluate(doc)


_ENGINE = EmbeddedEngine(DEFAULT)
_RAW = regorus.Engine()
for _path, _source in DEFAULT.policy_modules.items():
    _RAW.add_policy(_path, _source)
_RAW.add_data(DEFAULT.data)


def _whole(doc: dict[str, Any]) -> object:
    _RAW.set_input(doc)
    return parse_result(_RAW.eval_rule(ENTRY), DEFAULT.revision)


def test_an_unreadable_ast_means_the_whole_input(monkeypatch: pytest.MonkeyPatch) -> None:
    import policy.embedded as embedded

    def broken(engine: object) -> frozenset[tuple[str, ...]]:
        raise ValueError("no AST")

    monkeypatch.setattr(embedded, "input_paths", broken)
    engine = EmbeddedEngine(DEFAULT)
    assert engine._projection.whole
    assert engine.evaluate(example_input()).allow
