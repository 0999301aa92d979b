"""`ztgate policy …` as the security team uses it: each command through
``python -m ztgate``, exit codes, one-line errors, file:line on broken policies."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest

from policy.bundle import Bundle
from policy.contract import MAX_INPUT_BYTES, example_input
from tests.conftest import Run

COMMANDS = ["test", "check", "eval", "build", "sign", "verify", "diff"]

MAIN = b"""package ztgate.main

default decision := {"allow": false, "reasons": ["deny:risk"]}

decision := {"allow": true, "reasons": ["allow:risk"]} if {
	input.risk.score < data.ztgate.limits.max_risk
}
"""
TESTS = b"""package ztgate.main_test

import data.ztgate.main

test_low_risk_allowed if main.decision.allow with input as {"risk": {"score": 1}}

test_high_risk_denied if not main.decision.allow with input as {"risk": {"score": 99}}
"""


def write_bundle(
    root: Path, *, max_risk: int = 50, main: bytes = MAIN, tests: bytes = TESTS
) -> Path:
    (root / "ztgate").mkdir(parents=True)
    (root / "ztgate" / "main.rego").write_bytes(main)
    (root / "ztgate" / "main_test.rego").write_bytes(tests)
    (root / "ztgate" / "data.json").write_text(json.dumps({"limits": {"max_risk": max_risk}}))
    (root / ".manifest").write_text(
        json.dumps({"revision": f"risk-{max_risk}", "roots": ["ztgate"]})
    )
    return root


def with_risk(score: int) -> dict[str, Any]:
    doc = copy.deepcopy(example_input())
    doc["risk"]["score"] = score
    return doc


def one_line_error(stderr: bytes) -> str:
    lines = stderr.decode().strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ztgate: "), stderr
    return lines[0]


# --- help -------------------------------------------------------------------------------


def test_policy_is_listed_in_top_level_help(ztgate: Run) -> None:
    proc = ztgate("--help")
    assert proc.returncode == 0 and "policy" in proc.stdout.decode()


@pytest.mark.parametrize("command", COMMANDS)
def test_every_policy_subcommand_has_help(ztgate: Run, command: str) -> None:
    proc = ztgate("policy", command, "--help")
    assert proc.returncode == 0
    assert f"ztgate policy {command}" in proc.stdout.decode()


# --- check (acceptance check 1) -----------------------------------------------------------


def test_check_passes_on_the_default_bundle(ztgate: Run) -> None:
    proc = ztgate("policy", "check")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout == b""


def test_a_broken_policy_fails_check_with_file_and_line(ztgate: Run, tmp_path: Path) -> None:
    broken = MAIN.replace(b"data.ztgate.limits.max_risk\n}", b"data.ztgate.limits.max_risk <\n}")
    bundle = write_bundle(tmp_path / "b", main=broken)
    proc = ztgate("policy", "check", "--bundle", str(bundle))
    assert proc.returncode == 1
    out = proc.stdout.decode()
    assert re.match(rf"{re.escape(str(bundle))}/ztgate/main\.rego:7:\d+: \S", out), out
    assert "1 error(s)" in proc.stderr.decode()


@pytest.mark.parametrize(
    ("main", "tests", "where", "message"),
    [
        (MAIN + b"\nbad if {\n\tnot_bound\n}\n", TESTS, "main.rego:10:", "unsafe"),
        (MAIN + b"\nbad := io.jwt.decode(input.t)\n", TESTS, "main.rego:9:", "io.jwt.decode"),
        (MAIN + b"\nx := 1\n\nx := 2\n", TESTS, "main.rego:11:", "conflict"),
        (MAIN, TESTS + b"\ntest_broken if {\n", "main_test.rego:", "expect"),
    ],
    ids=["unsafe-variable", "missing-builtin", "conflict", "broken-test-module"],
)
def test_check_reports_compile_errors_with_their_place(
    ztgate: Run, tmp_path: Path, main: bytes, tests: bytes, where: str, message: str
) -> None:
    bundle = write_bundle(tmp_path / "b", main=main, tests=tests)
    proc = ztgate("policy", "check", "--bundle", str(bundle))
    assert proc.returncode == 1
    out = proc.stdout.decode()
    assert where in out and message in out.lower(), out


def test_check_of_a_missing_bundle_is_a_one_line_error(ztgate: Run, tmp_path: Path) -> None:
    proc = ztgate("policy", "check", "--bundle", str(tmp_path / "nope"))
    assert proc.returncode == 2
    one_line_error(proc.stderr)


# --- test (acceptance check 1) --------------------------------------------------------------


def test_the_default_bundle_tests_pass(ztgate: Run) -> None:
    proc = ztgate("policy", "test", "--coverage")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout.decode()
    m = re.search(r"PASS: (\d+)/(\d+)", out)
    assert m and m[1] == m[2] and int(m[1]) > 0, out
    assert re.search(r"coverage: \d+\.\d% of policy lines", out)
    assert "ztgate/main.rego:" in out


def test_failing_tests_fail_with_why(ztgate: Run, tmp_path: Path) -> None:
    tests = TESTS + b'\ntest_wrong if main.decision.allow with input as {"risk": {"score": 70}}\n'
    bundle = write_bundle(tmp_path / "b", tests=tests)
    proc = ztgate("policy", "test", "--bundle", str(bundle), "-v")
    assert proc.returncode == 1
    out = proc.stdout.decode()
    assert "FAIL data.ztgate.main_test.test_wrong: undefined" in out
    assert "PASS data.ztgate.main_test.test_low_risk_allowed" in out
    assert "PASS: 2/3, FAIL: 1" in out
    assert "1 policy test(s) failed" in proc.stderr.decode()


def test_test_json_report_with_coverage(ztgate: Run, tmp_path: Path) -> None:
    bundle = write_bundle(tmp_path / "b")
    proc = ztgate("policy", "test", "--bundle", str(bundle), "--json")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["ok"] and len(report["passed"]) == 2 and report["failed"] == []
    assert report["coverage"] == 1.0
    assert [f["file"] for f in report["files"]] == ["ztgate/main.rego"]


def test_a_bundle_without_tests_does_not_pass(ztgate: Run, tmp_path: Path) -> None:
    bundle = write_bundle(tmp_path / "b", tests=b"package ztgate.main_test\n\nx := 1\n")
    proc = ztgate("policy", "test", "--bundle", str(bundle))
    assert proc.returncode == 1
    assert "no test_ rules" in proc.stderr.decode()


# --- eval (acceptance check 4) -------------------------------------------------------------


def test_eval_prints_the_decision(ztgate: Run, tmp_path: Path) -> None:
    bundle = write_bundle(tmp_path / "b")
    for score, allow in ((10, True), (90, False)):
        path = tmp_path / f"in-{score}.json"
        path.write_text(json.dumps(with_risk(score)))
        proc = ztgate("policy", "eval", "--input", str(path), "--bundle", str(bundle))
        assert proc.returncode == 0, proc.stderr
        decision = json.loads(proc.stdout)
        assert decision["allow"] is allow and decision["revision"] == "risk-50"


def test_eval_default_bundle_from_stdin(ztgate: Run) -> None:
    proc = ztgate("policy", "eval", "--input", "-", stdin=json.dumps(example_input()).encode())
    assert proc.returncode == 0, proc.stderr
    decision = json.loads(proc.stdout)
    assert set(decision) == {"allow", "reasons", "obligations", "revision"}
    assert decision["reasons"]


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"{not json", "input:"),
        (json.dumps({"version": "1"}).encode(), "input:missing:"),
        (b"[" * 5000 + b"]" * 5000, "input:"),
        (b'{"pad": "' + b"x" * (MAX_INPUT_BYTES + 10) + b'"}', "input:too_large"),
    ],
    ids=["not-json", "missing-fields", "deep", "huge"],
)
def test_eval_of_bad_input_is_a_deny_with_a_reason(
    ztgate: Run, tmp_path: Path, content: bytes, reason: str
) -> None:
    path = tmp_path / "bad.json"
    path.write_bytes(content)
    proc = ztgate("policy", "eval", "--input", str(path))
    assert proc.returncode == 0, proc.stderr
    decision = json.loads(proc.stdout)
    assert decision["allow"] is False
    assert decision["reasons"][0].startswith(reason), decision


def test_eval_of_a_missing_input_file_is_a_one_line_error(ztgate: Run, tmp_path: Path) -> None:
    proc = ztgate("policy", "eval", "--input", str(tmp_path / "none.json"))
    assert proc.returncode == 2
    assert "cannot read" in one_line_error(proc.stderr)


# --- build / sign / verify --------------------------------------------------------------


def test_build_writes_an_opa_bundle(ztgate: Run, tmp_path: Path) -> None:
    src = write_bundle(tmp_path / "src")
    (src / ".manifest").unlink()  # a source tree needs no manifest: build writes it
    out = tmp_path / "b.tar.gz"
    proc = ztgate(
        "policy",
        "build",
        "--bundle",
        str(src),
        "--revision",
        "2025-12-01.1",
        "--root",
        "ztgate",
        "--out",
        str(out),
    )
    assert proc.returncode == 0, proc.stderr
    bundle = Bundle.from_tarball(out.read_bytes())
    assert bundle.revision == "2025-12-01.1" and bundle.roots == ("ztgate",)
    assert set(bundle.modules) == {"ztgate/main.rego", "ztgate/main_test.rego"}
    proc = ztgate("policy", "test", "--bundle", str(out))  # a tarball works wherever a dir does
    assert proc.returncode == 0, proc.stdout


def test_build_refuses_a_broken_bundle(ztgate: Run, tmp_path: Path) -> None:
    src = write_bundle(tmp_path / "src", main=MAIN + b"\nbroken := {\n")
    out = tmp_path / "b.tar.gz"
    proc = ztgate("policy", "build", "--bundle", str(src), "--revision", "r", "--out", str(out))
    assert proc.returncode == 1
    assert "ztgate/main.rego:" in proc.stdout.decode()
    assert not out.exists()


@pytest.mark.parametrize("alg", ["sm2", "ec-p256"])
def test_sign_then_verify(ztgate: Run, tmp_path: Path, alg: str) -> None:
    key, pub, other = tmp_path / "k.pem", tmp_path / "p.pem", tmp_path / "o.pem"
    assert ztgate("crypto", "keygen", "--alg", alg, "--out", str(key)).returncode == 0
    assert ztgate("crypto", "pubkey", "--key", str(key), "--out", str(pub)).returncode == 0
    assert ztgate("crypto", "keygen", "--alg", alg, "--out", str(other)).returncode == 0
    built, signed = tmp_path / "b.tar.gz", tmp_path / "s.tar.gz"
    src = write_bundle(tmp_path / "src")
    assert (
        ztgate(
            "policy", "build", "--bundle", str(src), "--revision", "v1", "--out", str(built)
        ).returncode
        == 0
    )
    proc = ztgate(
        "policy",
        "sign",
        "--bundle",
        str(built),
        "--key",
        str(key),
        "--kid",
        "sec-1",
        "--out",
        str(signed),
    )
    assert proc.returncode == 0, proc.stderr

    def verify(bundle: Path, key_file: Path, kid: str = "sec-1") -> int:
        return ztgate(
            "policy", "verify", "--bundle", str(bundle), "--key", str(key_file), "--kid", kid
        ).returncode

    assert verify(signed, pub) == 0
    assert verify(signed, key) == 0  # the public half of a private key file
    assert verify(signed, other) == 1  # wrong key
    assert verify(signed, pub, "sec-2") == 1  # unknown kid
    assert verify(built, pub) == 1  # unsigned
    tampered = Bundle.from_tarball(signed.read_bytes()).with_files(
        {"ztgate/data.json": b'{"limits": {"max_risk": 100}}'}
    )
    (tmp_path / "t.tar.gz").write_bytes(tampered.to_tarball())
    assert verify(tmp_path / "t.tar.gz", pub) == 1


def test_sign_with_a_bad_key_is_a_one_line_error(ztgate: Run, tmp_path: Path) -> None:
    (tmp_path / "k.pem").write_text("not a key")
    src = write_bundle(tmp_path / "src")
    proc = ztgate(
        "policy",
        "sign",
        "--bundle",
        str(src),
        "--key",
        str(tmp_path / "k.pem"),
        "--kid",
        "k",
        "--out",
        str(tmp_path / "s.tar.gz"),
    )
    assert proc.returncode == 2
    one_line_error(proc.stderr)


# --- diff ---------------------------------------------------------------------------------


def test_diff_lists_the_recorded_inputs_whose_decision_changes(ztgate: Run, tmp_path: Path) -> None:
    active = write_bundle(tmp_path / "active", max_risk=50)
    candidate = write_bundle(tmp_path / "candidate", max_risk=30)
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    for score in (10, 40, 80):
        (inputs / f"risk-{score}.json").write_text(json.dumps(with_risk(score)))
    log = [  # decision-log entries (OPA's format) carry the input they were made on
        {"decision_id": "d1", "path": "ztgate/main/decision", "input": with_risk(45)},
        {"decision_id": "d2", "path": "ztgate/main/decision", "input": with_risk(5)},
    ]
    (inputs / "decisions.jsonl").write_text("\n".join(json.dumps(e) for e in log) + "\n")
    (inputs / "broken.json").write_text("{")
    proc = ztgate(
        "policy",
        "diff",
        "--against",
        str(active),
        "--inputs",
        str(inputs),
        "--bundle",
        str(candidate),
    )
    assert proc.returncode == 1, proc.stderr
    changed = [json.loads(line) for line in proc.stdout.decode().splitlines()]
    assert sorted(c["input"] for c in changed) == ["decisions.jsonl:1", "risk-40.json"]
    for c in changed:
        assert c["against"]["allow"] is True and c["bundle"]["allow"] is False
    assert "2 of 6 recorded input(s) change decision (risk-50 -> risk-30)" in proc.stderr.decode()

    proc = ztgate(
        "policy", "diff", "--against", str(active), "--inputs", str(inputs), "--bundle", str(active)
    )
    assert proc.returncode == 0 and proc.stdout == b""
