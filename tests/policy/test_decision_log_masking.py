"""The compiled decision-log masking (policy/decision_log.py `_Masker`) against its
plain reading, kept here as the reference: every rule applied in order, each walking
its pointer over a deep copy of the event, then the name-based erasure over the
whole input. The two must agree on the masked event, ``erased`` and ``masked``
(documents as JSON gives them: no member shared between two places)."""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterable
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from crypto import sm3
from policy.contract import example_input
from policy.decision_log import (
    DEFAULT_MASKS,
    MASKED,
    MaskRule,
    _Masker,
    build_event,
    mask_event,
)

KEY = b"pseudonym-key-for-tests-32-bytes"
_DIGITS = re.compile(r"\d{6,}")
_SECRET_NAMES = frozenset(
    {"authorization", "proxy-authorization", "cookie", "set-cookie", "dpop", "x-api-key"}
    | {"api_key", "apikey", "pin", "otp", "cvv", "cvv2", "cvn", "passwd", "code_verifier"}
)
_SECRET_WORDS = ("token", "secret", "password", "credential", "session")


# -- the reference: the plain reading ---------------------------------------------------


def _pointer(path: str) -> list[str]:
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _escape(part: str) -> str:
    return part.replace("~", "~0").replace("/", "~1")


def _matches(node: Any, head: str) -> list[Any]:
    if isinstance(node, dict):
        if head == "*":
            return list(node)
        lowered = head.lower()
        return [k for k in node if isinstance(k, str) and k.lower() == lowered]
    if isinstance(node, list):
        if head == "*":
            return list(range(len(node)))
        if head.isdigit() and int(head) < len(node) and (head == "0" or head[0] != "0"):
            return [int(head)]
    return []


def _replace(value: Any, rule: MaskRule, key: bytes | None) -> Any:
    if rule.op == "upsert":
        return rule.value
    if rule.op == "hash":
        if value is None:
            return None
        if key is None:
            return MASKED
        data = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str).encode()
        return "pseud:" + sm3.hmac(key, data)[:16].hex()
    if isinstance(value, str):
        return _DIGITS.sub(lambda m: "*" * len(m.group()), value)
    return value


def _walk(node: Any, parts: list[str], where: str, rule: MaskRule, key: bytes | None,
          erased: set[str], masked: set[str]) -> None:  # fmt: skip
    head, rest = parts[0], parts[1:]
    for k in _matches(node, head):
        pointer = f"{where}/{_escape(str(k))}"
        if rest:
            _walk(node[k], rest, pointer, rule, key, erased, masked)
        elif rule.op == "remove":
            if isinstance(node, dict):
                del node[k]
            else:
                node[k] = None
            erased.add(pointer)
        else:
            node[k] = _replace(node[k], rule, key)
            masked.add(pointer)


def _secret_name(name: str) -> bool:
    lowered = name.lower()
    return lowered in _SECRET_NAMES or any(word in lowered for word in _SECRET_WORDS)


def _erase_by_name(root: Any, where: str, erased: set[str]) -> None:
    stack: list[tuple[Any, str]] = [(root, where)]
    while stack:
        node, path = stack.pop()
        if isinstance(node, dict):
            for k in list(node):
                pointer = f"{path}/{_escape(str(k))}"
                if isinstance(k, str) and _secret_name(k):
                    del node[k]
                    erased.add(pointer)
                else:
                    stack.append((node[k], pointer))
        elif isinstance(node, list):
            stack.extend((item, f"{path}/{i}") for i, item in enumerate(node))


def reference(event: dict[str, Any], rules: Iterable[MaskRule], key: bytes | None,
              by_name: bool = True) -> dict[str, Any]:  # fmt: skip
    out = dict(event)
    for top in ("input", "result"):
        if top in out:
            out[top] = copy.deepcopy(out[top])
    erased: set[str] = set()
    masked: set[str] = set()
    for rule in rules:
        _walk(out, _pointer(rule.path), "", rule, key, erased, masked)
    if by_name and isinstance(out.get("input"), dict | list):
        _erase_by_name(out["input"], "/input", erased)
    if erased:
        out["erased"] = sorted(erased)
    if masked:
        out["masked"] = sorted(masked)
    return out


# -- strategies -------------------------------------------------------------------------

NAMES = [
    "a",
    "B",
    "b",
    "0",
    "1",
    "01",
    "x/y",
    "t~",
    "token",
    "Pin",
    "path",
    "*",
    "my_Secret",
    "cvv2",
]
name = st.sampled_from(NAMES) | st.text(max_size=3)
leaf = st.none() | st.booleans() | st.integers() | st.sampled_from(["", "12345678", "ab 1234567"])
tree = st.recursive(
    leaf | st.text(max_size=4),
    lambda kids: st.lists(kids, max_size=3) | st.dictionaries(name, kids, max_size=4),
    max_leaves=20,
)
segment = st.sampled_from(["*", *NAMES]).map(_escape)
rule = st.builds(
    MaskRule,
    st.builds(
        lambda top, rest: "/" + "/".join([top, *rest]),
        st.sampled_from(["input", "result"]),
        st.lists(segment, min_size=1, max_size=3),
    ),
    st.sampled_from(["remove", "upsert", "hash", "redact_digits"]),
    st.sampled_from([MASKED, 7, None, "x"]),
)


@settings(max_examples=400, deadline=None)
@given(tree, tree, st.lists(rule, max_size=6), st.sampled_from([KEY, None]), st.booleans())
def test_compiled_masking_equals_the_plain_reading(
    doc: Any, result: Any, rules: list[MaskRule], key: bytes | None, by_name: bool
) -> None:
    event = {"decision_id": "d", "input": doc, "result": result}
    before = json.dumps(event, sort_keys=True)
    got = mask_event(event, rules, pseudonym_key=key, mask_secret_names=by_name)
    expected = reference(event, rules, key, by_name)
    assert got == expected
    logged, text = _Masker(rules, key, by_name).line(event)  # what DecisionLog writes
    assert logged == expected and json.loads(text) == expected
    assert json.dumps(event, sort_keys=True) == before  # the caller's event is unchanged


header_names = st.sampled_from(
    ["Authorization", "cookie", "x-session-id", "user-agent", "X-Api-Key", "dpop", "accept"]
) | st.text(min_size=1, max_size=8)
query = st.dictionaries(
    st.sampled_from(["access_token", "code", "phone", "page", "Code"]) | st.text(max_size=5),
    st.lists(st.sampled_from(["13812345678", "1", "abc"]) | st.text(max_size=8), max_size=3),
    max_size=4,
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(header_names, st.text(max_size=10), max_size=6), query, st.booleans())
def test_default_masks_on_inputs_equal_the_plain_reading(
    headers: dict[str, str], params: dict[str, list[str]], anonymous: bool
) -> None:
    doc = example_input()
    doc["request"]["headers"].update(headers)
    doc["request"]["query"] = params
    if anonymous:
        doc["identity"]["subject"] = None
    event = build_event(
        decision_id="d", input_doc=doc, result={"allow": True}, revision="r", timestamp_ns=0
    )
    expected = reference(event, DEFAULT_MASKS, KEY)
    assert mask_event(event, pseudonym_key=KEY) == expected
    logged, text = _Masker(DEFAULT_MASKS, KEY, True).line(event)
    assert logged == expected and json.loads(text) == expected


def test_rule_order_decides_between_a_member_and_its_parent() -> None:
    event = {"input": {"x": {"token_id": "t", "n": "1234567"}}}
    first_child = [MaskRule("/input/x/n", "redact_digits"), MaskRule("/input/x", "hash")]
    first_parent = list(reversed(first_child))
    for rules in (first_child, first_parent):
        assert mask_event(event, rules, pseudonym_key=KEY) == reference(event, rules, KEY)
    child_first = mask_event(event, first_child, pseudonym_key=KEY)
    assert child_first["masked"] == ["/input/x", "/input/x/n"]
    assert mask_event(event, first_parent, pseudonym_key=KEY)["masked"] == ["/input/x"]
    assert (
        child_first["input"]["x"]
        != mask_event(event, first_parent, pseudonym_key=KEY)["input"]["x"]
    )  # the pseudonym of the redacted member, not of the original
