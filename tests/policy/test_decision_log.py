"""Decision logs (policy/decision_log.py): OPA's event format, masking, rotation, crashes."""

from __future__ import annotations

import json
import os
import re
import signal
import stat
import subprocess
import sys
import textwrap
import threading
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from policy.contract import example_input
from policy.decision import Decision, Obligations, StepUp
from policy.decision_log import (
    DEFAULT_MASKS,
    MASKED,
    DecisionLog,
    MaskRule,
    build_event,
    mask_event,
    rfc3339_ns,
)

KEY = b"pseudonym-key-for-tests-32-bytes"
DECISION = Decision(
    False,
    ("step_up_required",),
    Obligations(StepUp("urn:ztgate:acr:passkey", 300), "strict", (("x-ztgate-a", "1"),)),
    "rev-7",
)


def lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_bytes().splitlines()]


@pytest.fixture
def log_path(tmp_path: Path) -> Path:
    return tmp_path / "decisions.jsonl"


def test_event_has_opas_fields(log_path: Path) -> None:
    dlog = DecisionLog(log_path, labels={"app": "ztgate", "id": "edge-1"}, pseudonym_key=KEY)
    decision_id = dlog.record(
        example_input(), DECISION, metrics={"timer_eval_ns": 1234}, requested_by="203.0.113.45"
    )
    dlog.close()
    [event] = lines(log_path)
    assert event["decision_id"] == decision_id and uuid.UUID(decision_id).version == 4
    assert event["path"] == "ztgate/main/decision"
    assert event["bundles"] == {"ztgate": {"revision": "rev-7"}}
    assert event["labels"] == {"app": "ztgate", "id": "edge-1"}
    assert event["metrics"] == {"timer_eval_ns": 1234}
    assert event["requested_by"] == "203.0.113.45"
    assert event["result"] == {
        "allow": False,
        "reasons": ["step_up_required"],
        "obligations": {
            "step_up": {"acr": "urn:ztgate:acr:passkey", "max_age": 300},
            "mask_profile": "strict",
            "headers": {"x-ztgate-a": "1"},
            "rate_limit_tier": "default",
            "audit": "standard",
        },
    }
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z", event["timestamp"])
    assert datetime.fromisoformat(event["timestamp"][:26] + "+00:00").year >= 2024
    assert event["input"]["route"]["id"] == "accounts.balances"
    assert "/input/identity/subject" in event["masked"]


def test_rfc3339_ns() -> None:
    assert rfc3339_ns(1_700_000_000_123_456_789) == "2023-11-14T22:13:20.123456789Z"
    assert rfc3339_ns(0) == "1970-01-01T00:00:00.000000000Z"


def test_default_masks_on_a_realistic_input() -> None:
    doc = example_input()
    doc["request"]["headers"]["Authorization"] = "Bearer eyJhbGciOi.secret.sig"
    doc["request"]["headers"]["cookie"] = "sid=abc"
    doc["request"]["query"]["access_token"] = ["eyJ..."]
    doc["request"]["query"]["phone"] = ["13812345678"]
    event = build_event(
        decision_id="d",
        input_doc=doc,
        result={"allow": True},
        revision="r",
        timestamp_ns=0,
    )
    masked = mask_event(event, pseudonym_key=KEY)
    got = masked["input"]
    headers = got["request"]["headers"]
    assert "Authorization" not in headers and "cookie" not in headers
    assert "x-client-session-id" not in headers  # name-based safety net
    assert "access_token" not in got["request"]["query"]
    assert got["request"]["query"]["phone"] == ["*" * 11]
    assert got["request"]["path"] == "/accounts/v1/accounts/" + "*" * 19 + "/balances"
    assert got["route"]["params"]["account_id"].startswith("pseud:")
    assert got["identity"]["subject"].startswith("pseud:")
    assert got["device"]["id"].startswith("pseud:")
    assert got["request"]["client_address"] == doc["request"]["client_address"]  # kept
    assert got["identity"]["acr"] == doc["identity"]["acr"]
    assert "/input/request/headers/Authorization" in masked["erased"]
    assert "/input/request/query/access_token" in masked["erased"]
    assert "/input/identity/subject" in masked["masked"]
    assert masked["masked"] == sorted(masked["masked"])
    # the caller's document is untouched
    assert doc["request"]["headers"]["Authorization"].startswith("Bearer")
    assert doc["identity"]["subject"].startswith("cust-")


def test_pseudonyms_are_stable_keyed_and_distinct() -> None:
    def subject_of(subject: str, key: bytes | None) -> Any:
        event = {"input": {"identity": {"subject": subject}}}
        return mask_event(event, [MaskRule("/input/identity/subject", "hash")], pseudonym_key=key)[
            "input"
        ]["identity"]["subject"]

    a = subject_of("cust-1", KEY)
    assert a == subject_of("cust-1", KEY) and a != subject_of("cust-2", KEY)
    assert a != subject_of("cust-1", b"another-key")
    assert "cust-1" not in a
    assert subject_of("cust-1", None) == MASKED  # no key: no guessable unkeyed hash


def test_masking_nested_paths_and_lists() -> None:
    event: dict[str, Any] = {
        "input": {
            "a": {"b": [{"c": "x", "d": 1}, {"c": "y", "d": 2}]},
            "users": [{"name": "bob", "card": "6222020200112233445"}, {"name": "amy"}],
            "weird/key~": {"v": 1},
            "list": ["keep", "drop"],
        },
        "result": {"headers": {"x-ztgate-user": "bob"}},
    }
    rules = [
        MaskRule("/input/a/b/0/c"),
        MaskRule("/input/users/*/name", "upsert", "anon"),
        MaskRule("/input/users/*/card", "redact_digits"),
        MaskRule("/input/weird~1key~0/v"),
        MaskRule("/input/list/1"),
        MaskRule("/input/missing/deeper"),
        MaskRule("/input/a/b/7/c"),
        MaskRule("/result/headers/x-ztgate-user", "upsert", MASKED),
    ]
    out = mask_event(event, rules, mask_secret_names=False)
    assert out["input"]["a"]["b"] == [{"d": 1}, {"c": "y", "d": 2}]
    assert out["input"]["users"] == [{"name": "anon", "card": "*" * 19}, {"name": "anon"}]
    assert out["input"]["weird/key~"] == {}
    assert out["input"]["list"] == ["keep", None]
    assert out["result"]["headers"]["x-ztgate-user"] == MASKED
    assert out["erased"] == ["/input/a/b/0/c", "/input/list/1", "/input/weird~1key~0/v"]
    assert out["masked"] == [
        "/input/users/0/card",
        "/input/users/0/name",
        "/input/users/1/name",
        "/result/headers/x-ztgate-user",
    ]
    assert event["input"]["a"]["b"][0]["c"] == "x"  # original unchanged


def test_secret_names_are_erased_anywhere() -> None:
    event = {"input": {"deep": [{"refresh_token": "r", "ok": 1}], "Client_Secret": "s", "pin": 1}}
    out = mask_event(event, [])
    assert out["input"] == {"deep": [{"ok": 1}]}
    assert out["erased"] == ["/input/Client_Secret", "/input/deep/0/refresh_token", "/input/pin"]


@pytest.mark.parametrize("spec", ["input/x", "/data/x", "/input", "/", "/requested_by"])
def test_mask_paths_must_point_below_input_or_result(spec: str) -> None:
    with pytest.raises(ValueError):
        MaskRule.parse(spec)


def test_opa_mask_rule_forms() -> None:
    assert MaskRule.parse("/input/password") == MaskRule("/input/password", "remove")
    rule = MaskRule.parse({"op": "upsert", "path": "/input/password", "value": "**REDACTED**"})
    assert rule == MaskRule("/input/password", "upsert", "**REDACTED**")
    with pytest.raises(ValueError):
        MaskRule.parse({"op": "explode", "path": "/input/x"})


json_leaf = st.none() | st.booleans() | st.integers() | st.text(max_size=6)
json_tree = st.recursive(
    json_leaf,
    lambda kids: (
        st.lists(kids, max_size=3) | st.dictionaries(st.text(max_size=4), kids, max_size=3)
    ),
    max_leaves=15,
)


@settings(max_examples=200, deadline=None)
@given(json_tree, st.sampled_from(DEFAULT_MASKS))
def test_masking_never_fails_and_never_mutates(doc: Any, rule: MaskRule) -> None:
    event = {"input": {"request": {"headers": doc, "query": doc}, "identity": doc}, "result": doc}
    before = json.dumps(event, sort_keys=True)
    out = mask_event(event, [rule], pseudonym_key=KEY)
    json.dumps(out)
    assert json.dumps(event, sort_keys=True) == before


# -- the writer --------------------------------------------------------------------------------


def test_file_is_0600_and_appended(log_path: Path) -> None:
    log_path.write_bytes(b'{"old": true}\n')
    log_path.chmod(0o644)
    dlog = DecisionLog(log_path)
    for _ in range(3):
        dlog.record(example_input(), DECISION)
    dlog.close()
    assert stat.S_IMODE(log_path.stat().st_mode) == 0o600
    events = lines(log_path)
    assert events[0] == {"old": True} and len(events) == 4
    assert dlog.written == 3 and dlog.dropped == 0


def test_symlinked_log_path_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere"
    target.write_bytes(b"")
    (tmp_path / "link").symlink_to(target)
    with pytest.raises(OSError):
        DecisionLog(tmp_path / "link")


def test_rotation_by_size(log_path: Path) -> None:
    dlog = DecisionLog(log_path, max_bytes=16 * 1024, backups=2)
    ids = [dlog.record(example_input(), DECISION) for _ in range(40)]
    dlog.close()
    files = [
        log_path,
        log_path.with_name("decisions.jsonl.1"),
        log_path.with_name("decisions.jsonl.2"),
    ]
    assert all(f.exists() for f in files)
    assert not log_path.with_name("decisions.jsonl.3").exists()
    kept = [e["decision_id"] for f in reversed(files) for e in lines(f)]
    assert kept == ids[-len(kept) :]  # oldest rotated away, order kept, nothing torn
    assert all(f.stat().st_size <= 16 * 1024 for f in files)
    assert all(stat.S_IMODE(f.stat().st_mode) == 0o600 for f in files)


def test_oversized_event_keeps_its_metadata(log_path: Path) -> None:
    dlog = DecisionLog(log_path, max_event_bytes=4096)
    doc = example_input()
    doc["request"]["headers"]["x-big"] = "a" * 10_000
    decision_id = dlog.record(doc, DECISION)
    dlog.close()
    [event] = lines(log_path)
    assert event["decision_id"] == decision_id and event["result"]["allow"] is False
    assert event["input"]["ztgate_truncated"] is True and "/input" in event["erased"]


def test_record_never_raises_and_counts_drops(log_path: Path) -> None:
    dlog = DecisionLog(log_path)
    dlog.record({"odd": object(), "n": float("nan")}, DECISION)
    dlog.flush()
    dlog.close()
    dlog.record(example_input(), DECISION)  # after close: dropped, not raised
    assert dlog.dropped == 1
    [event] = lines(log_path)
    assert event["input"]["odd"] == "<object>"


def test_a_full_queue_refuses_offers_and_counts_them(log_path: Path) -> None:
    writing, release = threading.Event(), threading.Event()

    class StalledDisk(DecisionLog):
        def _write(self, lines: list[bytes]) -> None:
            writing.set()
            release.wait()
            super()._write(lines)

    dlog = StalledDisk(log_path, queue_size=3, write_interval=0.01)
    assert dlog.offer(example_input(), DECISION, decision_id="first")
    assert writing.wait(10)  # the writer holds "first" and is stuck on the disk
    assert [dlog.offer(example_input(), DECISION, decision_id=f"d{i}") for i in range(4)] == [
        True,
        True,
        True,
        False,
    ]
    assert (dlog.backlog, dlog.dropped) == (3, 1)
    release.set()
    dlog.close()
    assert [event["decision_id"] for event in lines(log_path)] == ["first", "d0", "d1", "d2"]


def test_unserialisable_input_still_logs_the_decision(log_path: Path) -> None:
    deep: Any = []
    for _ in range(100_000):
        deep = [deep]
    dlog = DecisionLog(log_path)
    decision_id = dlog.record({"version": "1", "request": deep}, DECISION)
    dlog.close()
    [event] = lines(log_path)
    assert event["decision_id"] == decision_id and event["result"]["allow"] is False
    assert event["input"] == {"ztgate_unloggable": "RecursionError"} and dlog.errors == 0


def test_torn_last_line_is_cut_on_open(log_path: Path) -> None:
    good = json.dumps({"decision_id": "a"}) + "\n"
    log_path.write_text(good + '{"decision_id": "b", "inp')
    dlog = DecisionLog(log_path)
    dlog.record(example_input(), DECISION)
    dlog.close()
    events = lines(log_path)
    assert events[0]["decision_id"] == "a" and len(events) == 2
    log_path.write_text('{"no newline at all"')
    DecisionLog(log_path).close()
    assert log_path.read_bytes() == b""


def test_a_crash_mid_write_leaves_valid_json_lines(log_path: Path) -> None:
    """SIGKILL a process that is logging flat out; every line must stay whole JSON."""
    script = textwrap.dedent(
        f"""
        import sys
        from policy.contract import example_input
        from policy.decision import Decision
        from policy.decision_log import DecisionLog
        dlog = DecisionLog({str(log_path)!r}, max_bytes=1 << 30)
        doc = example_input()
        d = Decision(True, ("ok",), revision="r")
        print("ready", flush=True)
        while True:
            dlog.record(doc, d)
        """
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, cwd=Path(__file__).parents[2]
    )
    assert proc.stdout is not None
    assert proc.stdout.readline() == b"ready\n"
    while not log_path.exists() or log_path.stat().st_size < 512 * 1024:
        os.sched_yield()
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    *whole, _torn = log_path.read_bytes().split(b"\n")
    assert all(json.loads(line) for line in whole)  # at worst the tail after the last \n is torn
    DecisionLog(log_path).close()  # reopening repairs a torn tail, if the kill made one
    raw = log_path.read_bytes()
    assert raw.endswith(b"\n")
    events = lines(log_path)
    assert len(events) > 10 and all(e["bundles"]["ztgate"]["revision"] == "r" for e in events)
