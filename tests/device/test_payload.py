"""The payload reader: every refusal has its reason, unknown members are ignored, and
(property tests) no input makes it raise anything else or disagree with the schema."""

from __future__ import annotations

import contextlib
import json
import re
from typing import Any

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from device_fingerprint.payload import SCHEMAS, PayloadError, compile_schema, read_payload
from device_fingerprint.signals import signals_from_payload
from tests.device.payloads import encode, phone, web

LIMITS = {"max_bytes": 16 * 1024, "max_depth": 8}


def reason(raw: bytes, **limits: int) -> str:
    with pytest.raises(PayloadError) as info:
        read_payload(raw, **{**LIMITS, **limits})
    return info.value.reason


def test_well_formed_payloads_are_read() -> None:
    for doc in (web(), phone()):
        assert read_payload(encode(doc), **LIMITS) == doc
        jsonschema.validate(doc, SCHEMAS[doc["kind"]])


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"{" + b" " * 20_000 + b"}", "too_large"),
        (b'{"kind": "web", "ua": "\xff\xfe"}', "utf8"),
        (b'{"kind": "web", "ua": "\xed\xa0\x80"}', "utf8"),  # an encoded surrogate: not UTF-8
        ('{"kind": "web"}'.encode("utf-16"), "utf8"),  # json.loads would sniff UTF-16
        (b"", "json"),
        (b'{"kind": "web",', "json"),
        (b"{'kind': 'web'}", "json"),
        (b'{"kind": "web", "kind": "mobile"}', "duplicate_key"),
        (b'{"kind": "web", "x": NaN}', "non_finite"),
        (b'{"kind": "web", "x": -Infinity}', "non_finite"),
        (b'{"kind": "web", "x": 1e400}', "non_finite"),
        (b'{"kind": "web", "x": ' + b"9" * 5000 + b"}", "json"),  # int digit limit
        (b'["kind", "web"]', "not_object"),
        (b'"web"', "not_object"),
        (b'{"kind": "web", "ua": "a\\ud800b"}', "surrogate"),
        (b'{"kind": "web", "\\udfff": 1}', "surrogate"),
        (b'{"collector_version": "1.0.0", "ua": "x"}', "kind"),
        (b'{"kind": "tv", "collector_version": "1.0.0"}', "kind"),
        (b'{"kind": ["web"], "collector_version": "1.0.0"}', "kind"),
    ],
)
def test_malformed_input_is_refused_with_a_reason(raw: bytes, expected: str) -> None:
    assert reason(raw) == expected


def test_deep_nesting_is_refused_wherever_it_is() -> None:
    assert reason(encode(web(extra=[[[[[[[[["deep"]]]]]]]]]))) == "too_deep"
    assert reason(encode(web(extra={"a": {"b": {"c": {"d": {"e": {"f": {"g": {}}}}}}}}))) == (
        "too_deep"
    )
    # So deep the C parser itself gives up: still a reason, not a RecursionError.
    bomb = b'{"kind": "web", "x": ' + b"[" * 200_000 + b"]" * 200_000 + b"}"
    assert reason(bomb, max_bytes=1024 * 1024) == "too_deep"
    assert read_payload(encode(web(extra=[[[[["ok"]]]]])), **LIMITS)["extra"] == [[[[["ok"]]]]]


@pytest.mark.parametrize(
    ("doc", "expected"),
    [
        ({k: v for k, v in web().items() if k != "collector_version"}, "collector_version"),
        (web(collector_version="1.0"), "collector_version"),
        (web(collector_version="1.0.0\n"), "collector_version"),  # ECMA-262 `$`, not Python's
        (web(collector_version=1), "collector_version"),
        ({k: v for k, v in web().items() if k != "ua"}, "missing:ua"),
        ({k: v for k, v in phone().items() if k != "app_install_id"}, "missing:app_install_id"),
        (web(ua=""), "field:ua"),
        (web(ua="x" * 513), "field:ua"),
        (web(screen={"w": "1920", "h": 1080}), "field:screen.w"),
        (web(screen={"w": 1920}), "missing:screen.h"),
        (web(screen={"w": 1920.5, "h": 1080}), "field:screen.w"),
        (web(screen={"w": True, "h": 1080}), "field:screen.w"),
        (web(screen={"w": -1, "h": 1080}), "field:screen.w"),
        (web(hw_concurrency=10**6), "field:hw_concurrency"),
        (web(languages="zh-CN"), "field:languages"),
        (web(languages=["zh-CN"] * 17), "field:languages"),
        (web(languages=["zh-CN", 7]), "field:languages"),
        (web(canvas="5F1A9C03E2B74D61"), "field:canvas"),
        (web(canvas="5f1a9c03e2b74d6"), "field:canvas"),
        (web(webgl={"renderer": ["ANGLE"]}), "field:webgl.renderer"),
        (web(fonts=[{"name": "Arial"}]), "field:fonts"),
        (web(automation={"webdriver": "false"}), "field:automation.webdriver"),
        (web(uach={"brands": [{"brand": "Chromium"}]}), "missing:uach.brands.version"),
        (web(tz_offset=900), "field:tz_offset"),
        (phone(os="windows"), "field:os"),
        (phone(app_install_id="short"), "field:app_install_id"),
        (phone(app_install_id="ok-but-has/slash"), "field:app_install_id"),
        (phone(device_ids={"android_id": "A" * 64}), "field:device_ids.android_id"),
        (phone(integrity={"rooted": 1}), "field:integrity.rooted"),
        (phone(kind="web"), "missing:ua"),
    ],
)
def test_schema_violations_name_the_member(doc: dict[str, Any], expected: str) -> None:
    assert reason(encode(doc)) == expected


def test_unknown_members_are_ignored_and_do_not_change_the_device() -> None:
    base = signals_from_payload(read_payload(encode(web()), **LIMITS))
    noisy = web(future_signal={"anything": [1, 2.5, None, "x"]}, screen_orientation="portrait")
    noisy["webgl"] = {**noisy["webgl"], "newer_parameter": 42}
    assert signals_from_payload(read_payload(encode(noisy), **LIMITS)).signal_id == base.signal_id
    shuffled = dict(reversed(list(web().items())))
    assert signals_from_payload(read_payload(encode(shuffled), **LIMITS)).signal_id == (
        base.signal_id
    )
    integers_as_floats = web(hw_concurrency=12.0, screen={**web()["screen"], "w": 1920.0})
    assert signals_from_payload(read_payload(encode(integers_as_floats), **LIMITS)).signal_id == (
        base.signal_id
    )


def test_reasons_never_echo_the_payload() -> None:
    secret = "attacker-controlled-<script>"
    for doc in (
        web(ua=secret * 100),
        web(**{secret: {"a": {"b": {"c": {"d": {"e": {"f": {"g": {}}}}}}}}}),
    ):
        assert secret not in reason(encode(doc))


def test_the_compiler_refuses_keywords_it_does_not_implement() -> None:
    with pytest.raises(ValueError, match="additionalProperties"):
        compile_schema({"type": "object", "additionalProperties": False})
    with pytest.raises(ValueError, match="anchored"):
        compile_schema({"type": "string", "pattern": "[a-z]+"})
    with pytest.raises(KeyError):
        compile_schema({"type": "decimal"})


# --- property tests -------------------------------------------------------------------------

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=80)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=10), inner, max_size=5)
    ),
    max_leaves=20,
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=4096))
def test_arbitrary_bytes_only_ever_raise_payload_error(raw: bytes) -> None:
    try:
        doc = read_payload(raw, **LIMITS)
    except PayloadError as exc:
        assert re.fullmatch(r"[a-z0-9_]+(:[a-z_.]+)?", exc.reason), exc.reason
    else:
        signals_from_payload(doc)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=2000))
def test_arbitrary_text_only_ever_raises_payload_error(text: str) -> None:
    with contextlib.suppress(PayloadError):
        read_payload(text.encode("utf-8", "surrogatepass"), **LIMITS)


def _depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max((_depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((_depth(v) for v in value), default=0)
    return 0


def _mutations(kind: str) -> st.SearchStrategy[dict[str, Any]]:
    """A valid payload with some members replaced by arbitrary JSON (often invalid)."""
    base = web() if kind == "web" else phone()
    paths = [(k,) for k in base] + [
        (k, sub) for k, v in base.items() if isinstance(v, dict) for sub in v
    ]

    @st.composite
    def build(draw: st.DrawFn) -> dict[str, Any]:
        doc = json.loads(json.dumps(base))
        for path in draw(st.lists(st.sampled_from(paths), max_size=3)):
            target = doc
            for key in path[:-1]:
                if not isinstance(target.get(key), dict):
                    break
                target = target[key]
            else:
                if draw(st.booleans()):
                    target[path[-1]] = draw(json_values)
                else:
                    target.pop(path[-1], None)
        doc.update(draw(st.dictionaries(st.text(max_size=8), json_values, max_size=2)))
        return doc

    return build()


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(["web", "mobile"]).flatmap(lambda k: st.tuples(st.just(k), _mutations(k))))
def test_reader_agrees_with_the_published_schema(case: tuple[str, dict[str, Any]]) -> None:
    """Accept exactly what the JSON Schema accepts — beyond it, only the documented extras:
    the depth limit, and ``$`` meaning end of input (ECMA-262, the schema's regex
    dialect; the `jsonschema` package uses Python's ``$``, which also matches before a
    final newline)."""
    kind, doc = case
    raw = json.dumps(doc, ensure_ascii=False).encode("utf-8", "surrogatepass")
    try:
        read_payload(raw, **LIMITS)
        ours: str | None = None
    except PayloadError as exc:
        ours = exc.reason
    if doc.get("kind") != kind:
        return  # the kind itself was mutated: dispatch is ours, not the schema's
    errors = list(jsonschema.Draft202012Validator(SCHEMAS[kind]).iter_errors(doc))
    if ours is None:
        assert not errors, errors[0].message
    elif ours in ("too_deep", "surrogate"):
        assert _depth(doc) > LIMITS["max_depth"] or ours == "surrogate"
    elif not errors:
        assert ours == "collector_version" or ours.startswith("field:"), ours
        assert any(text.endswith("\n") for text in _strings(doc)), (ours, doc)


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.fixed_dictionaries(
        {
            "languages": st.lists(st.text(min_size=1, max_size=35), max_size=16),
            "hw_concurrency": st.integers(0, 4096),
            "fonts": st.lists(st.text(max_size=64), max_size=128),
            "screen": st.fixed_dictionaries(
                {"w": st.integers(0, 100000), "h": st.integers(0, 100000)},
                optional={"dpr": st.floats(0, 32)},
            ),
            "ua": st.text(min_size=1, max_size=512),
        }
    )
)
def test_valid_payloads_are_always_accepted(fields: dict[str, Any]) -> None:
    doc = web(**fields)
    raw = json.dumps(doc, ensure_ascii=False).encode("utf-8", "surrogatepass")
    try:
        read_payload(raw, **LIMITS)
    except PayloadError as exc:
        assert exc.reason == "surrogate"  # hypothesis text may hold lone surrogates
        return
    jsonschema.validate(doc, SCHEMAS["web"])
