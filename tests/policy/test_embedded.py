"""The embedded regorus engine: compile errors with file:line, fail-closed evaluation,
thread safety, and the raw query the OPA REST API answers from."""

from __future__ import annotations

import asyncio
import copy
import gc
import json
import logging
import sys
import threading
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from policy.bundle import Bundle, BundleError
from policy.check import check_bundle
from policy.contract import example_input
from policy.decision import Decision, parse_result
from policy.embedded import (
    EmbeddedEngine,
    PolicyCompileError,
    PolicyEvalError,
    data_query,
    parse_errors,
    rule_path,
)
from policy.testing import run_tests

MAIN = b"""package ztgate.main

default decision := {"allow": false, "reasons": ["deny:default"]}

decision := {"allow": true, "reasons": ["allow:low_risk"], "obligations": ob} if {
	input.risk.score < data.ztgate.limits.max_risk
	input.identity.subject
}

ob := {
	"audit": "none", "mask_profile": "customer",
	"headers": {"x-ztgate-kind": input.identity.kind},
}

tags contains t if some t in ["b", "a", "c"]
"""


def bundle(
    main: bytes = MAIN, revision: str = "r1", extra: dict[str, bytes] | None = None
) -> Bundle:
    files = {"ztgate/main.rego": main, "ztgate/data.json": b'{"limits": {"max_risk": 50}}'}
    return Bundle.build({**files, **(extra or {})}, revision=revision)


def with_risk(score: int) -> dict[str, Any]:
    doc = copy.deepcopy(example_input())
    doc["risk"]["score"] = score
    return doc


@pytest.fixture(scope="module")
def engine() -> EmbeddedEngine:
    return EmbeddedEngine(bundle())


# --- compile ---------------------------------------------------------------------------


def test_syntax_error_names_file_and_line() -> None:
    broken = MAIN.replace(b"input.identity.subject\n}", b"input.identity.subject ==\n}")
    with pytest.raises(PolicyCompileError) as info:
        EmbeddedEngine(bundle(broken))
    (file, line, message), *_ = info.value.errors
    assert (file, line) == ("ztgate/main.rego", 8)
    assert message
    assert str(info.value).startswith("ztgate/main.rego:8: ")


def test_every_broken_module_is_reported() -> None:
    broken = bundle(
        MAIN.replace(b"default decision", b"default decision ="),
        extra={"ztgate/x.rego": b"package x\n\ny := {\n"},
    )
    with pytest.raises(PolicyCompileError) as info:
        EmbeddedEngine(broken)
    assert {f for f, _, _ in info.value.errors} == {"ztgate/main.rego", "ztgate/x.rego"}


def test_unsafe_variable_is_a_compile_error_with_line() -> None:
    source = MAIN + b"\nbad if {\n\tnot_bound\n}\n"
    line = source.splitlines().index(b"\tnot_bound") + 1
    with pytest.raises(PolicyCompileError) as info:
        EmbeddedEngine(bundle(source))
    assert info.value.errors[0][:2] == ("ztgate/main.rego", line)
    assert "unsafe" in info.value.errors[0][2]


def test_missing_entry_rule_is_a_compile_error() -> None:
    with pytest.raises(PolicyCompileError, match=r"data\.ztgate\.main\.decision"):
        EmbeddedEngine(bundle(b"package ztgate.main\n\nother := 1\n"))
    engine = EmbeddedEngine(bundle(), entrypoint="ztgate/main/ob")
    assert engine.rule == "data.ztgate.main.ob"


def test_test_modules_are_not_compiled_into_the_engine() -> None:
    engine = EmbeddedEngine(bundle(extra={"ztgate/main_test.rego": b"package t\n\ntest_x if {\n"}))
    assert engine.evaluate(with_risk(10)).allow


def test_data_that_would_crash_regorus_is_a_compile_error() -> None:
    """A ``"\\ud800"`` escape in data.json decodes to a lone surrogate, which segfaults
    regorus's ``add_data``: refused, as is nesting Python's JSON parser cannot read."""
    for raw in (b'{"limits": {"max_risk": 50, "x": "\\ud800"}}', b'{"limits": {"max_risk": NaN}}'):
        b = Bundle.build({"ztgate/main.rego": MAIN, "ztgate/data.json": raw}, revision="r")
        with pytest.raises(PolicyCompileError, match="bundle data"):
            EmbeddedEngine(b)
        assert [e.file for e in check_bundle(b)] == ["data.json"]
        assert run_tests(b).failed[0][0] == "<compile>"
    deep = b'{"a": ' * 100_000 + b"1" + b"}" * 100_000
    with pytest.raises(BundleError, match="nested too deeply"):
        Bundle.build({"ztgate/main.rego": MAIN, "ztgate/data.json": deep}, revision="r")


def test_parse_errors_reads_regorus_locations() -> None:
    exc = RuntimeError(
        "\n--> a/b.rego:12:5\n  |\n12 |   x ==\n  |     ^\nerror: expecting expression"
    )
    assert parse_errors(exc) == [("a/b.rego", 12, 5, "expecting expression")]
    assert parse_errors(RuntimeError("boom\n\nStack backtrace:\n 0: x"), "f") == [
        ("f", 0, 0, "boom")
    ]


@given(st.text(max_size=300))
def test_parse_errors_never_raises(text: str) -> None:
    assert parse_errors(RuntimeError(text))


# --- evaluation --------------------------------------------------------------------------


def test_decisions_follow_the_policy_and_carry_the_revision(engine: EmbeddedEngine) -> None:
    allowed = engine.evaluate(with_risk(10))
    assert allowed.allow and allowed.reasons == ("allow:low_risk",)
    assert allowed.revision == "r1" == engine.revision
    assert allowed.obligations.mask_profile == "customer"
    assert dict(allowed.obligations.headers) == {
        "x-ztgate-kind": example_input()["identity"]["kind"]
    }
    denied = engine.evaluate(with_risk(90))
    assert not denied.allow and denied.reasons == ("deny:default",)


@pytest.mark.parametrize(
    "doc",
    [None, [], "x", 1, {}, {"request": {}}],
    ids=["null", "list", "string", "number", "empty", "partial"],
)
def test_malformed_input_is_a_deny_with_a_reason(engine: EmbeddedEngine, doc: object) -> None:
    decision = engine.evaluate(doc)
    assert not decision.allow
    assert decision.reasons and decision.reasons[0].startswith("input:")


def test_wrong_type_and_deep_input_are_denied(engine: EmbeddedEngine) -> None:
    doc = with_risk(10)
    doc["risk"]["score"] = "low"
    assert engine.evaluate(doc).reasons[0].startswith("input:")
    deep: dict[str, Any] = {}
    node = deep
    for _ in range(10_000):
        node["a"] = {}
        node = node["a"]
    doc = with_risk(10)
    doc["request"]["headers"] = deep
    decision = engine.evaluate(doc)
    assert not decision.allow and decision.reasons[0].startswith("input:")


@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
        lambda kids: (
            st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=8), kids, max_size=4)
        ),
        max_leaves=30,
    )
)
@settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_arbitrary_input_never_raises_and_never_allows(engine: EmbeddedEngine, doc: object) -> None:
    decision = engine.evaluate(doc)
    assert isinstance(decision, Decision) and not decision.allow


@pytest.mark.parametrize(
    ("rule", "reason"),
    [
        ('decision := "yes"', "policy:malformed_result"),
        ('decision := {"allow": "true"}', "policy:malformed_result:allow"),
        ('decision := {"allow": true, "reasons": [1]}', "policy:malformed_result:reasons"),
        (
            'decision := {"allow": true, "obligations": {"audit": "loud"}}',
            "policy:malformed_result:obligations.audit",
        ),
        ('decision := {"allow": true} if input.risk.score > 1000', "policy:undefined_result"),
    ],
)
def test_malformed_results_are_denied(rule: str, reason: str) -> None:
    engine = EmbeddedEngine(bundle(f"package ztgate.main\n\n{rule}\n".encode()))
    decision = engine.evaluate(with_risk(10))
    assert not decision.allow and decision.reasons == (reason,)


@pytest.mark.parametrize(
    "body",
    [
        "x := 1 / (input.risk.score - 10)",  # divide by zero at run time
        "x := io.jwt.decode(input.identity.subject)",  # builtin regorus lacks
        "x := crypto.x509.parse_certificates(input.identity.subject)",
        "x := to_number(input.identity.subject)",  # not a number
    ],
)
def test_evaluation_errors_and_missing_builtins_are_denied(
    body: str, caplog: pytest.LogCaptureFixture
) -> None:
    # `input.risk.score >= 0` first: with the empty input compilation probes with, the
    # call is not reached, so it fails at decision time (reached, it fails to compile).
    source = (
        'package ztgate.main\n\ndecision := {"allow": true, "reasons": [sprintf("%v", [x])]} if {\n'
        f"\tinput.risk.score >= 0\n\t{body}\n}}\n"
    )
    engine = EmbeddedEngine(bundle(source.encode()))
    doc = with_risk(10)
    doc["identity"]["subject"] = "secret-subject-7731"
    with caplog.at_level(logging.WARNING, logger="ztgate.policy.embedded"):
        decision = engine.evaluate(doc)
    assert not decision.allow and decision.reasons == ("policy:eval_error",)
    assert decision.revision == "r1"
    assert caplog.records and caplog.records[0].error_type == "RuntimeError"  # type: ignore[attr-defined]
    assert "secret-subject-7731" not in caplog.text
    assert all("secret-subject-7731" not in str(vars(r)) for r in caplog.records)


def test_missing_builtin_reached_without_input_fails_to_compile() -> None:
    source = b'package ztgate.main\n\ndecision := {"allow": io.jwt.decode(input.t)[0] == 1}\n'
    with pytest.raises(PolicyCompileError) as info:
        EmbeddedEngine(bundle(source))
    assert info.value.errors[0][:2] == ("ztgate/main.rego", 3)
    assert "io.jwt.decode" in info.value.errors[0][2]


def test_conflicting_rule_values_are_denied() -> None:
    source = (
        b'package ztgate.main\n\ndecision := {"allow": true}\n\n'
        b'decision := {"allow": false} if input.risk.score < 50\n'
    )
    engine = EmbeddedEngine(bundle(source))
    assert engine.evaluate(with_risk(10)).reasons == ("policy:eval_error",)
    assert engine.evaluate(with_risk(90)).allow


async def test_decide_is_evaluate(engine: EmbeddedEngine) -> None:
    assert (await engine.decide(with_risk(10))).allow
    assert not (await engine.decide(with_risk(99))).allow
    results = await asyncio.gather(*(engine.decide(with_risk(s)) for s in range(0, 100, 5)))
    assert [d.allow for d in results] == [s < 50 for s in range(0, 100, 5)]


async def test_close_refuses_new_threads() -> None:
    engine = EmbeddedEngine(bundle())
    await engine.close()
    out: list[Decision] = []
    t = threading.Thread(target=lambda: out.append(engine.evaluate(with_risk(10))))
    t.start()
    t.join()
    assert out[0].reasons == ("policy:eval_error",)


# --- threads ----------------------------------------------------------------------------


def test_many_threads_decide_concurrently_with_correct_results() -> None:
    """Two engines (two revisions, opposite thresholds) shared by 16 threads: every
    decision matches its input and the engine's own revision."""
    strict = EmbeddedEngine(
        Bundle.build(
            {"ztgate/main.rego": MAIN, "ztgate/data.json": b'{"limits": {"max_risk": 20}}'},
            revision="strict",
        )
    )
    lax = EmbeddedEngine(bundle(revision="lax"))
    inputs = [with_risk(s) for s in range(0, 100, 3)]
    errors: list[str] = []
    start = threading.Barrier(16)

    def work(seed: int) -> None:
        try:
            decide(seed)
        except BaseException as exc:  # a dead thread must fail the test, not vanish
            errors.append(f"thread {seed}: {type(exc).__name__}: {exc}")

    def decide(seed: int) -> None:
        start.wait()
        for i in range(150):
            score = inputs[(seed + i) % len(inputs)]["risk"]["score"]
            eng, limit = (strict, 20) if (seed + i) % 2 else (lax, 50)
            d = eng.evaluate(inputs[(seed + i) % len(inputs)])
            if d.allow != (score < limit) or d.revision != eng.revision:
                errors.append(f"thread {seed}: score {score} on {eng.revision}: {d}")

    threads = [threading.Thread(target=work, args=(n,)) for n in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


def test_engines_made_used_and_dropped_on_different_threads() -> None:
    """regorus objects are unsendable: building the EmbeddedEngine on one thread, using
    it on others and dropping it on a third must neither panic nor leak noisily."""
    unraisable: list[object] = []
    old_hook = sys.unraisablehook
    sys.unraisablehook = unraisable.append
    try:
        made: list[EmbeddedEngine] = []
        t = threading.Thread(target=lambda: made.append(EmbeddedEngine(bundle(revision="x"))))
        t.start()
        t.join()
        assert made[0].evaluate(with_risk(10)).allow  # main thread
        results: list[bool] = []

        def use_then_drop() -> None:
            results.append(made[0].evaluate(with_risk(10)).allow)
            made.clear()  # the last reference goes away on this thread
            gc.collect()

        t = threading.Thread(target=use_then_drop)
        t.start()
        t.join()
        assert results == [True]
        EmbeddedEngine(bundle(revision="y"))  # prepares another engine: frees stale ones here
        gc.collect()
    finally:
        sys.unraisablehook = old_hook
    assert unraisable == []


# --- query (OPA REST API) -----------------------------------------------------------------


def test_query_returns_raw_values(engine: EmbeddedEngine) -> None:
    defined, value = engine.query("ztgate/main/decision", with_risk(10))
    assert defined and value["allow"] is True and value["reasons"] == ["allow:low_risk"]
    assert engine.query("ztgate/main/tags", None) == (True, ["a", "b", "c"])  # sets: sorted lists
    assert engine.query("ztgate/limits/max_risk", None) == (True, 50)
    assert engine.query("ztgate/nope", None) == (False, None)
    defined, whole = engine.query("", None)
    assert defined and whole["ztgate"]["limits"] == {"max_risk": 50}


def test_query_of_the_entry_rule_is_what_evaluate_decides(engine: EmbeddedEngine) -> None:
    """The OPA REST API answers the decision path from `query`: same result (check 3)."""
    for score in (0, 49, 50, 99):
        doc = with_risk(score)
        defined, value = engine.query("ztgate/main/decision", doc)
        assert defined
        assert parse_result(value, engine.revision) == engine.evaluate(doc)
    undefined = EmbeddedEngine(bundle(b"package ztgate.main\n\ndecision := 1 if input.x\n"))
    assert undefined.query("ztgate/main/decision", {"x": False}) == (False, None)
    assert undefined.query("/ztgate/main/decision/", {"x": True}) == (True, 1)


def test_query_without_input_does_not_see_an_earlier_input(engine: EmbeddedEngine) -> None:
    assert engine.query("ztgate/main/ob", with_risk(10))[0]
    assert engine.query("ztgate/main/ob", None) == (False, None)


def test_query_paths_cannot_inject_rego(engine: EmbeddedEngine) -> None:
    assert data_query('a"]; x := ["b') == 'data["a\\"]; x := [\\"b"]'
    assert engine.query('ztgate"] == data["ztgate', None) == (False, None)


def test_query_refuses_input_that_would_crash_regorus(engine: EmbeddedEngine) -> None:
    """Any path, any input (the OPA REST API): deep nesting overflows regorus's stack and
    a lone surrogate (``json.loads('"\\ud800"')``) segfaults it; both are refused."""
    deep: list[Any] = []
    for _ in range(100):
        deep = [deep]
    for doc, reason in [
        ({"x": deep}, "input:too_deep"),
        ({"x": json.loads('"\\ud800"')}, "input:not_json"),
        ({json.loads('"\\udfff"'): 1}, "input:not_json"),
        ({"x": float("nan")}, "input:not_json"),
        ({"x": float("inf")}, "input:not_json"),
        ({1: "x"}, "input:not_json"),
        ({"x": object()}, "input:not_json"),
        ({"x": b"bytes"}, "input:not_json"),
    ]:
        with pytest.raises(PolicyEvalError, match=reason):
            engine.query("ztgate/limits", doc)
    assert engine.query("ztgate/limits/max_risk", {"x": ["é", 1.5, None, True]}) == (True, 50)


def test_query_error_is_a_policy_eval_error() -> None:
    engine = EmbeddedEngine(bundle(MAIN + b"\nboom := 1 / input.zero\n"))
    with pytest.raises(PolicyEvalError):
        engine.query("ztgate/main/boom", {"zero": 0})


def test_rule_path() -> None:
    assert rule_path("ztgate/main/decision") == "data.ztgate.main.decision"
    assert rule_path("/a/b/") == "data.a.b"
    for bad in ("", "a/b-c", "a/1b"):
        with pytest.raises(ValueError, match="entrypoint"):
            rule_path(bad)
