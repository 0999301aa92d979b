"""The security team's tools below the CLI: `policy.check.check_bundle`,
`policy.testing.run_tests` and the rule listing of `policy.rego_ast`."""

from __future__ import annotations

import regorus

from policy.bundle import Bundle
from policy.check import CheckError, check_bundle
from policy.rego_ast import bundle_rules
from policy.testing import run_tests

MAIN = b"""package ztgate.main

default decision := {"allow": false}

decision := {"allow": true} if input.ok

helper(x) := x + 1
"""
UNUSED = b"""package ztgate.unused

never := 1 if input.never

also := 2 if input.never
"""


def bundle(**files: bytes) -> Bundle:
    return Bundle.build({k.replace("__", "/") + ".rego": v for k, v in files.items()}, revision="r")


def test_check_bundle_sorts_every_error_and_formats_file_line_col() -> None:
    errors = check_bundle(
        bundle(ztgate__main=MAIN + b"\nx := {\n", ztgate__b=b"package b\n\ny if {\n\t1 ==\n}\n")
    )
    assert [e.file for e in errors] == ["ztgate/b.rego", "ztgate/main.rego"]
    assert all(e.line > 0 and e.col > 0 and e.message for e in errors)
    assert str(errors[0]).startswith(f"ztgate/b.rego:{errors[0].line}:{errors[0].col}: ")
    assert str(CheckError("", 0, 0, "plain")) == "plain"


def test_check_bundle_entrypoint_is_optional() -> None:
    other = bundle(lib=b"package lib\n\nx := 1\n")
    assert [e.message for e in check_bundle(other)] == [
        "entry rule data.ztgate.main.decision is not defined"
    ]
    assert check_bundle(other, entrypoint=None) == []
    assert check_bundle(bundle(ztgate__main=MAIN)) == []


def test_run_tests_reports_each_way_a_test_fails() -> None:
    tests = b"""package ztgate.main_test

import data.ztgate.main

test_ok if main.decision.allow with input as {"ok": true}

test_false := false

test_undefined if {
	print("looked at", input)
	main.decision.allow
}

test_error if {
	x := 1 / 0
	x
}

test_twice if true

test_twice if false
"""
    report = run_tests(bundle(ztgate__main=MAIN, ztgate__main_test=tests))
    assert report.passed == ("data.ztgate.main_test.test_ok",)
    why = dict(report.failed)
    assert why["data.ztgate.main_test.test_false"] == "false"
    assert why["data.ztgate.main_test.test_undefined"].startswith("undefined (prints: ")
    assert "looked at" in why["data.ztgate.main_test.test_undefined"]
    assert why["data.ztgate.main_test.test_error"].startswith("error: ztgate/main_test.rego:15:")
    assert "defined 2 times" in why["data.ztgate.main_test.test_twice"]
    assert not report.ok
    assert report.as_json()["failed"][0] == {
        "test": "data.ztgate.main_test.test_error",
        "why": why["data.ztgate.main_test.test_error"],
    }


def test_coverage_counts_modules_no_test_reached() -> None:
    tests = b'package t\n\ntest_ok if data.ztgate.main.decision.allow with input as {"ok": true}\n'
    report = run_tests(bundle(ztgate__main=MAIN, ztgate__unused=UNUSED, ztgate__main_test=tests))
    assert report.ok
    files = {f.file: f for f in report.files}
    assert set(files) == {"ztgate/main.rego", "ztgate/unused.rego"}  # tests are not covered
    unused = files["ztgate/unused.rego"]
    assert unused.covered == 0 and unused.total == 2 and unused.not_covered == (3, 5)
    assert unused.uncovered_rules == ("never (line 3)", "also (line 5)")
    assert report.coverage is not None and 0 < report.coverage < 1


def test_run_tests_of_a_broken_bundle_fails_instead_of_raising() -> None:
    report = run_tests(bundle(ztgate__main=b"package ztgate.main\n\nx := {\n"))
    assert not report.ok and report.failed[0][0] == "<compile>"
    assert report.failed[0][1].startswith("ztgate/main.rego:")


def test_bundle_rules_lists_heads_with_their_paths() -> None:
    engine = regorus.Engine()
    engine.add_policy(
        "m.rego",
        'package a.b\n\nx := 1\n\np["k"] := 2\n\nq[k] := 3 if some k in [1]\n\n'
        "s contains 1\n\nf(y) := y\n\ndefault d := false\n\nr.s.t := 4\n",
    )
    rules = {(r.name, r.line, r.function) for r in bundle_rules(engine)}
    assert rules == {
        ("x", 3, False),
        ("p.k", 5, False),
        ("q", 7, False),
        ("s", 9, False),
        ("f", 11, True),
        ("d", 13, False),
        ("r.s.t", 15, False),
    }
    assert {r.package for r in bundle_rules(engine)} == {"data.a.b"}
