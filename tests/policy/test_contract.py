"""policy.contract: the input document's validation agrees with its JSON Schema, and
bad input is a reason, never an exception (issue 4, acceptance check 4).

The JSON Schema (policy/schema/input-v1.json) is checked with the `jsonschema`
package — test-only — and the hand-written `check_input` must accept and reject
exactly the same documents: at every limit the schema states (walked from the
schema itself) and on documents hypothesis generates and mutates.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator
from typing import Any

import jsonschema  # type: ignore[import-untyped]
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator, ValidationError

from policy.contract import (
    CLASSIFICATIONS,
    KINDS,
    MAX_DEPTH,
    MAX_INPUT_BYTES,
    TRUST_LEVELS,
    check_input,
    example_input,
    input_schema,
    load_json,
    parse_input_json,
)

SCHEMA = input_schema()
NOW = example_input()["time"]["now"]


def _ecma_pattern(
    validator: Any, pattern: str, instance: object, schema: object
) -> Iterator[ValidationError]:
    """JSON Schema patterns are ECMA-262, where ``$`` ends the input; Python's ``$``
    also matches before a final newline, so jsonschema would accept ``"GET\\n"``."""
    if isinstance(instance, str) and not re.search(re.sub(r"\$$", r"\\Z", pattern), instance):
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


_Validator = jsonschema.validators.extend(Draft202012Validator, {"pattern": _ecma_pattern})
VALIDATOR = _Validator(SCHEMA, format_checker=Draft202012Validator.FORMAT_CHECKER)


def schema_valid(doc: object) -> bool:
    return bool(VALIDATOR.is_valid(doc))


def assert_agree(doc: object) -> None:
    reason = check_input(doc)
    assert (reason is None) == schema_valid(doc), (
        reason,
        [e.message for e in VALIDATOR.iter_errors(doc)][:3],
        doc,
    )


def with_value(doc: dict[str, Any], path: tuple[str | int, ...], value: object) -> dict[str, Any]:
    out = copy.deepcopy(doc)
    node: Any = out
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = value
    return out


PARTNER = example_input(
    request={"client_address": "2001:db8:100::7", "tls": {"client_cert_sha256": "ab" * 32}},
    identity={
        "kind": "partner",
        "client_id": "fintech-budgetly",
        "consent": {
            "id": "cns-5b2e91",
            "status": "active",
            "resources": ["6222020200112233445"],
            "expires_at": NOW + 86400,
        },
        "roles": ["reader"],
    },
    device={"anomalies": ["emulator"]},
)

# -- the schema and the facts -----------------------------------------------------------


def test_schema_is_valid_draft_2020_12() -> None:
    Draft202012Validator.check_schema(SCHEMA)
    assert SCHEMA["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert SCHEMA["properties"]["version"] == {
        "description": SCHEMA["properties"]["version"]["description"],
        "const": "1",
    }


def test_enums_are_the_contract_constants() -> None:
    defs = SCHEMA["$defs"]
    assert tuple(defs["identity"]["properties"]["kind"]["enum"]) == KINDS
    assert tuple(defs["device"]["properties"]["trust"]["enum"]) == TRUST_LEVELS
    assert tuple(defs["route"]["properties"]["classification"]["enum"]) == CLASSIFICATIONS


def test_example_input_is_valid_and_about_2_kb() -> None:
    for doc in (example_input(), PARTNER):
        assert check_input(doc) is None
        assert schema_valid(doc)
    assert 1500 <= len(json.dumps(example_input())) <= 2600


def test_example_input_overrides_merge_deeply_and_copy() -> None:
    doc = example_input(risk={"score": 80}, identity={"consent": {"id": "c"}})
    assert doc["risk"] == {"score": 80, "reasons": example_input()["risk"]["reasons"]}
    assert doc["identity"]["consent"] == {"id": "c"}
    assert doc["identity"]["subject"] == example_input()["identity"]["subject"]
    doc["request"]["headers"].clear()
    assert example_input()["request"]["headers"]


# -- every limit the schema states, walked from the schema ----------------------------


def _resolve(node: dict[str, Any]) -> dict[str, Any]:
    if "$ref" in node:
        return _resolve(SCHEMA["$defs"][node["$ref"].rsplit("/", 1)[-1]])
    for option in node.get("anyOf", ()):
        if "$ref" in option:  # a nullable reference: the non-null branch holds the limits
            return _resolve(option)
    return node


def _candidates(node: dict[str, Any], value: object) -> Iterator[object]:
    """Values on both sides of each limit of `node`, built from a valid `value`."""
    if isinstance(value, str):
        seed = value or "a"
        for limit in (node.get("maxLength"), node.get("minLength")):
            if limit is not None:
                for size in (limit - 1, limit, limit + 1):
                    if size >= 0:
                        yield (seed * (size // len(seed) + 1))[:size]
        if "pattern" in node:
            yield from ("", value + "\n", " " + value, value.upper(), value + "\u00e9")
    if isinstance(value, list):
        item = value[0] if value else "x"
        if "maxItems" in node:
            yield from ([item] * node["maxItems"], [item] * (node["maxItems"] + 1))
        yield from ([1], [None], [["x"]], "x", {})
    if isinstance(value, dict) and "maxProperties" in node:
        inner = next(iter(value.values()), "v")
        for size in (node["maxProperties"], node["maxProperties"] + 1):
            yield {f"x-k{i}": inner for i in range(size)}
    if "minimum" in node or "maximum" in node:
        low, high = node.get("minimum", 0), node.get("maximum", 2**60)
        yield from (low - 1, low, high, high + 1, float(high), 1.5, True, "1")
    if "enum" in node or "const" in node:
        allowed = node.get("enum", [node.get("const")])
        yield from (*allowed, str(allowed[0]).upper(), None, 1)
    yield from (None, True, 0, "", [], {})  # wrong types, and null where not allowed


def _boundary_cases(
    node: dict[str, Any], value: object, path: tuple[str | int, ...]
) -> Iterator[tuple[tuple[str | int, ...], object]]:
    node = _resolve(node)
    if path:
        for candidate in _candidates(node, value):
            yield path, candidate
    if isinstance(value, dict):
        properties = node.get("properties", {})
        extra = node.get("additionalProperties")
        for key, child in value.items():
            child_schema = properties.get(key, extra)
            if isinstance(child_schema, dict):
                yield from _boundary_cases(child_schema, child, (*path, key))
        if "properties" in node:
            yield (*path, "unexpected"), "x"
    if isinstance(value, list) and value and "items" in node:
        yield from _boundary_cases(node["items"], value[0], (*path, 0))


def _all_boundary_cases() -> list[tuple[dict[str, Any], tuple[str | int, ...], object]]:
    cases = []
    for base in (example_input(), PARTNER):
        for path, value in _boundary_cases(SCHEMA, base, ()):
            cases.append((base, path, value))
    return cases


BOUNDARY_CASES = _all_boundary_cases()


def test_boundary_walk_reaches_every_member() -> None:
    touched = {
        ".".join(str(p) for p in path if isinstance(p, str)) for _, path, _ in BOUNDARY_CASES
    }
    for member in (
        "request.headers.accept",
        "request.tls.client_cert_sha256",
        "identity.consent.expires_at",
        "route.params.account_id",
        "time.now",
        "risk.score",
    ):
        assert member in touched
    assert len(BOUNDARY_CASES) > 500


def test_check_input_agrees_with_schema_at_every_limit() -> None:
    disagreements = []
    for base, path, value in BOUNDARY_CASES:
        doc = with_value(base, path, value)
        if (check_input(doc) is None) != schema_valid(doc):
            disagreements.append((path, value, check_input(doc)))
    assert not disagreements, disagreements[:10]


def test_required_members_missing() -> None:
    for base in (example_input(), PARTNER):
        for path, _ in _boundary_cases(SCHEMA, base, ()):
            if path[-1] == "unexpected" or isinstance(path[-1], int):
                continue
            doc = copy.deepcopy(base)
            node: Any = doc
            for step in path[:-1]:
                node = node[step]
            del node[path[-1]]
            assert_agree(doc)


# -- reasons -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("doc", "reason"),
    [
        (example_input(identity={"subject": 7}), "input:type:identity.subject"),
        (example_input(risk={"score": "12"}), "input:type:risk.score"),
        (example_input(risk={"score": True}), "input:type:risk.score"),
        (example_input(risk={"score": 101}), "input:value:risk.score"),
        (example_input(identity={"kind": "admin"}), "input:value:identity.kind"),
        (example_input(version="2"), "input:value:version"),
        (
            example_input(request={"client_address": "fe80::1%eth0"}),
            "input:value:request.client_address",
        ),
        (
            example_input(request={"client_address": "010.1.1.1"}),
            "input:value:request.client_address",
        ),
        (example_input(request={"path": "/a?b=1"}), "input:value:request.path"),
        (example_input(request={"method": "GET\n"}), "input:value:request.method"),
        (example_input(request={"headers": {"X-Upper": "v"}}), "input:value:request.headers"),
        (example_input(request={"headers": {"a": "line\nbreak"}}), "input:value:request.headers"),
        (example_input(identity={"scopes": ["s"] * 65}), "input:too_long:identity.scopes"),
        (example_input(identity={"consent": {"id": "c"}}), "input:missing:identity.consent.status"),
        (example_input(route={"params": {"id": 5}}), "input:type:route.params"),
        (example_input(time={"now": -1}), "input:value:time.now"),
        (example_input(time={"now": 2.0**53}), "input:value:time.now"),
        (example_input(extra=1), "input:unknown:$"),
        (example_input(device={"jailbroken": True}), "input:unknown:device"),
        ([], "input:type:$"),
        (None, "input:type:$"),
    ],
)
def test_reasons(doc: object, reason: str) -> None:
    assert check_input(doc) == reason


def test_missing_member_reason() -> None:
    doc = example_input()
    del doc["identity"]["subject"]
    assert check_input(doc) == "input:missing:identity.subject"
    del doc["route"]["params"]  # the one optional member
    doc["identity"]["subject"] = None
    assert check_input(doc) is None


def test_integral_floats_are_integers_as_in_json_schema() -> None:
    doc = example_input(risk={"score": 12.0}, time={"now": float(NOW)})
    assert check_input(doc) is None
    assert schema_valid(doc)
    assert check_input(example_input(risk={"score": 12.5})) == "input:type:risk.score"


def test_not_json_is_refused() -> None:
    """Beyond the schema: values JSON cannot carry (regorus would take them anyway)."""
    assert check_input(example_input(identity={"scopes": ("a",)})) == "input:type:identity.scopes"
    assert check_input(example_input(route={"params": {1: "x"}})) == "input:type:route.params"
    assert check_input(example_input(risk={"score": float("nan")})) == "input:type:risk.score"


@pytest.mark.parametrize(
    "where",
    [
        {"identity": {"subject": "cust-\ud800"}},
        {"request": {"headers": {"user-agent": "x\udfff"}}},
        {"request": {"query": {"q\ud83d": ["1"]}}},
        {"identity": {"scopes": ["ok", "\udc00"]}},
        {"route": {"params": {"account_id": "\ud800"}}},
    ],
)
def test_lone_surrogates_are_refused(where: dict[str, Any]) -> None:
    """I-JSON (RFC 7493): regorus' Engine.set_input crashes the process on them."""
    reason = check_input(example_input(**where))
    assert reason is not None and reason.startswith("input:value:")
    assert check_input(example_input(identity={"subject": "客户-😀"})) is None


def test_too_deep() -> None:
    nested: Any = "x"
    for _ in range(MAX_DEPTH + 1):
        nested = [nested]
    assert check_input(example_input(identity={"consent": nested})) == "input:too_deep"
    assert (
        check_input(example_input(identity={"consent": [[["x"]]]})) == "input:type:identity.consent"
    )


def test_cycles_and_shared_structures_end() -> None:
    loop: list[Any] = []
    loop.append(loop)
    assert check_input(example_input(identity={"amr": loop})) == "input:too_deep"
    wide: Any = ["x"]
    for _ in range(25):  # 2**25 paths through 26 lists: must not be walked path by path
        wide = [wide, wide]
    assert check_input(example_input(identity={"amr": wide})) == "input:type:identity.amr"


def test_hostile_objects_are_a_reason_not_an_exception() -> None:
    class Hostile(dict):  # type: ignore[type-arg]
        def get(self, *args: object) -> object:
            raise RuntimeError("boom")

    assert check_input(Hostile(example_input())) == "input:malformed"


# -- parsing JSON ------------------------------------------------------------------------


def test_parse_input_json_round_trip() -> None:
    assert parse_input_json(json.dumps(example_input()).encode()) == example_input()


def test_parse_input_json_size_limit_before_parsing() -> None:
    big = example_input(request={"headers": {"x-pad": "a" * 4000}})
    raw = json.dumps(big).encode()
    assert parse_input_json(raw + b" " * (MAX_INPUT_BYTES - len(raw))) == big
    assert parse_input_json(raw + b" " * (MAX_INPUT_BYTES - len(raw) + 1)) == "input:too_large"
    assert parse_input_json(b"[" * (MAX_INPUT_BYTES + 1)) == "input:too_large"


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"", "input:malformed_json"),
        (b"{", "input:malformed_json"),
        (b'{"version": NaN}', "input:malformed_json"),
        (b'{"version": Infinity}', "input:malformed_json"),
        (b"\xff\xfe{}", "input:malformed_json"),
        (b'{"a": 1' + b"0" * 5000 + b"}", "input:malformed_json"),
        (b"[" * 100_000 + b"]" * 100_000, "input:too_deep"),
        (b'{"a":' * 50 + b"1" + b"}" * 50, "input:too_deep"),
        (b"[]", "input:type:$"),
        (b'"text"', "input:type:$"),
        (b"{}", "input:missing:version"),
        (b'{"version": "1", "request": {}}', "input:missing:request.method"),
    ],
)
def test_parse_input_json_reasons(raw: bytes, reason: str) -> None:
    assert parse_input_json(raw) == reason


def test_load_json_returns_any_json_value() -> None:
    assert load_json(b'{"input": [1, "a"]}') == ({"input": [1, "a"]}, None)
    assert load_json(b'"input:too_large"') == ("input:too_large", None)
    assert load_json(b"nul") == (None, "input:malformed_json")


# -- hypothesis: generated and mutated documents -----------------------------------------

JSON_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**60), max_value=2**60)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
    | st.sampled_from(
        [
            "1",
            "customer",
            "staff",
            "bound_with_key",
            "account",
            "GET",
            "/x",
            "::1",
            "1.2.3.4",
            "fe80::1%eth0",
            "01.2.3.4",
            "::ffff:1.2.3.4",
            "ab" * 32,
            "x-id",
            12.0,
            100,
            101,
            -1,
        ]
    )
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


def _paths(value: object, path: tuple[str | int, ...] = ()) -> Iterator[tuple[str | int, ...]]:
    if path:
        yield path
    if isinstance(value, dict):
        for key, child in value.items():
            yield from _paths(child, (*path, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield from _paths(child, (*path, index))


@st.composite
def mutated(draw: st.DrawFn) -> object:
    """A valid document with a few members deleted, replaced or added."""
    doc: Any = copy.deepcopy(draw(st.sampled_from([example_input(), PARTNER])))
    for _ in range(draw(st.integers(1, 3))):
        paths = list(_paths(doc))
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent: Any = doc
        for step in path[:-1]:
            parent = parent[step]
        action = draw(st.sampled_from(["delete", "replace", "add"]))
        if action == "delete":
            del parent[path[-1]]
        elif action == "replace":
            parent[path[-1]] = draw(JSON_VALUES)
        elif isinstance(parent, dict):
            parent[draw(st.text(max_size=10))] = draw(JSON_VALUES)
        else:
            parent.append(draw(JSON_VALUES))
    return doc


NAME = st.from_regex(r"[a-z0-9-]{1,20}", fullmatch=True)
TEXT = st.text(max_size=30)
OPT_ID = st.none() | st.text(min_size=1, max_size=40)
STAMP = st.integers(min_value=0, max_value=2**53 - 1)


@st.composite
def valid_documents(draw: st.DrawFn) -> dict[str, Any]:
    """Documents built from the schema's facts: all valid, in all their variety."""
    consent = st.none() | st.fixed_dictionaries(
        {
            "id": st.text(min_size=1, max_size=20),
            "status": st.text(max_size=10),
            "resources": st.lists(TEXT, max_size=3),
            "expires_at": STAMP,
        }
    )
    route = draw(
        st.fixed_dictionaries(
            {
                "id": st.text(min_size=1, max_size=30),
                "api_product": st.text(min_size=1, max_size=30),
                "classification": st.sampled_from(CLASSIFICATIONS),
            },
            optional={"params": st.dictionaries(st.text(max_size=10), TEXT, max_size=3)},
        )
    )
    return {
        "version": "1",
        "request": {
            "method": draw(st.from_regex(r"[A-Z]{1,16}", fullmatch=True)),
            "path": draw(st.from_regex(r"/[a-zA-Z0-9/._~%-]{0,40}", fullmatch=True)),
            "host": draw(st.from_regex(r"[a-z0-9.-]{1,30}(:[0-9]{1,5})?", fullmatch=True)),
            "headers": draw(
                st.dictionaries(
                    NAME,
                    st.text(st.characters(blacklist_categories=("Cc", "Cs")), max_size=30),
                    max_size=5,
                )
            ),
            "query": draw(st.dictionaries(TEXT, st.lists(TEXT, max_size=3), max_size=3)),
            "client_address": str(draw(st.ip_addresses())),
            "tls": {
                "ja4": draw(st.none() | st.from_regex(r"[A-Za-z0-9_]{1,40}", fullmatch=True)),
                "client_cert_sha256": draw(
                    st.none() | st.from_regex(r"[0-9a-f]{64}", fullmatch=True)
                ),
                "version": draw(st.none() | st.text(max_size=10)),
            },
        },
        "identity": {
            "subject": draw(OPT_ID),
            "kind": draw(st.sampled_from(KINDS)),
            "acr": draw(st.none() | TEXT),
            "amr": draw(st.lists(TEXT, max_size=3)),
            "auth_time": draw(st.none() | STAMP),
            "scopes": draw(st.lists(TEXT, max_size=4)),
            "client_id": draw(OPT_ID),
            "consent": draw(consent),
            "roles": draw(st.lists(TEXT, max_size=3)),
        },
        "device": {
            "id": draw(OPT_ID),
            "known": draw(st.booleans()),
            "bound_to_subject": draw(st.booleans()),
            "trust": draw(st.sampled_from(TRUST_LEVELS)),
            "anomalies": draw(st.lists(TEXT, max_size=3)),
        },
        "risk": {
            "score": draw(st.integers(0, 100) | st.integers(0, 100).map(float)),
            "reasons": draw(st.lists(TEXT, max_size=3)),
        },
        "route": route,
        "time": {"now": draw(STAMP)},
    }


@settings(max_examples=100, suppress_health_check=[HealthCheck.too_slow])
@given(valid_documents())
def test_generated_valid_documents_pass_both(doc: dict[str, Any]) -> None:
    assert check_input(doc) is None, check_input(doc)
    assert schema_valid(doc)


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_mutated_documents_agree(doc: object) -> None:
    assert_agree(doc)


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(valid_documents(), st.data())
def test_mutated_generated_documents_agree(doc: dict[str, Any], data: st.DataObject) -> None:
    path = data.draw(st.sampled_from(list(_paths(doc))))
    assert_agree(with_value(doc, path, data.draw(JSON_VALUES)))


@settings(max_examples=300)
@given(JSON_VALUES)
def test_arbitrary_json_agrees_and_never_raises(doc: object) -> None:
    assert_agree(doc)


@settings(max_examples=300)
@given(st.binary(max_size=200) | JSON_VALUES.map(lambda v: json.dumps(v).encode()))
def test_parse_input_json_never_raises(raw: bytes) -> None:
    result = parse_input_json(raw)
    assert isinstance(result, dict | str)
    if isinstance(result, str):
        assert result.startswith("input:")


@settings(max_examples=200)
@given(
    st.from_regex(r"[0-9]{0,4}(\.[0-9+ ]{0,4}){0,4}", fullmatch=True)
    | st.ip_addresses().map(str)
    | st.from_regex(r"[0-9a-fA-F:.%]{2,45}", fullmatch=True)
)
def test_client_address_agrees_with_ip_formats(address: str) -> None:
    """The IPv4 fast path accepts exactly what the ipv4/ipv6 formats accept."""
    assert_agree(example_input(request={"client_address": address}))
