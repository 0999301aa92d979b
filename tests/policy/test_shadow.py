"""Dry-run / shadow evaluation (policy/shadow.py): compared, logged, counted, never enforced."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest

from policy.bundle import Bundle
from policy.contract import example_input
from policy.decision import Decision
from policy.decision_log import DecisionLog
from policy.embedded import EmbeddedEngine
from policy.reload import PolicyHolder
from policy.shadow import Shadow, ShadowedEngine, differences


def bundle(revision: str, rule: str) -> Bundle:
    source = f"package ztgate.main\n\n{rule}\n"
    return Bundle.build({"ztgate/main/main.rego": source.encode()}, revision=revision)


# The active bundle allows customers only; the candidate also lets partners through
# and changes the rate-limit tier for everyone.
ACTIVE = bundle(
    "active-1",
    'default decision := {"allow": false, "reasons": ["not_customer"]}\n'
    'decision := {"allow": true, "reasons": ["customer"]} if input.identity.kind == "customer"',
)
CANDIDATE = bundle(
    "candidate-2",
    'default decision := {"allow": false, "reasons": ["not_customer"]}\n'
    'decision := {"allow": true, "reasons": ["customer"], '
    '"obligations": {"rate_limit_tier": "gold"}} if input.identity.kind == "customer"\n'
    'decision := {"allow": true, "reasons": ["partner"]} if input.identity.kind == "partner"',
)


def doc(kind: str) -> dict[str, Any]:
    return example_input(identity={"kind": kind})


@pytest.fixture
def engines() -> tuple[EmbeddedEngine, EmbeddedEngine]:
    return EmbeddedEngine(ACTIVE), EmbeddedEngine(CANDIDATE)


def test_differences() -> None:
    a = Decision(True, ("x",), revision="1")
    assert differences(a, Decision(True, ("x",), revision="2")) == ()
    assert differences(a, Decision(False, ("y",), revision="1")) == ("allow", "reasons")


def test_differing_decisions_are_logged_and_counted(
    tmp_path: Path, engines: tuple[EmbeddedEngine, EmbeddedEngine]
) -> None:
    active, candidate = engines
    path = tmp_path / "shadow.jsonl"
    dlog = DecisionLog(path, labels={"app": "ztgate"})
    shadow = Shadow(candidate, decision_log=dlog)
    kinds = ["customer", "partner", "staff", "partner", "anonymous"]
    ids: list[str] = []
    for kind in kinds:
        enforced = active.evaluate(doc(kind))
        ids.append(f"id-{kind}-{len(ids)}")
        assert shadow.submit(doc(kind), enforced, decision_id=ids[-1])
    shadow.close()
    dlog.close()
    stats = shadow.stats
    assert (stats.submitted, stats.evaluated, stats.dropped, stats.errors) == (5, 5, 0, 0)
    assert stats.differing == 3  # the customer (obligations) and both partners (allow)
    assert (stats.deny_to_allow, stats.allow_to_deny) == (2, 0)

    events = [json.loads(line) for line in path.read_bytes().splitlines()]
    assert [e["decision_id"] for e in events] == [ids[0], ids[1], ids[3]]
    partner = events[1]
    assert partner["labels"] == {"app": "ztgate", "mode": "shadow"}
    assert partner["bundles"] == {"ztgate": {"revision": "active-1"}}
    assert partner["result"]["allow"] is False  # what was enforced
    assert partner["shadow"]["revision"] == "candidate-2"
    assert partner["shadow"]["result"]["allow"] is True  # what the candidate would do
    assert partner["shadow"]["differs"] == ["allow", "reasons"]
    assert events[0]["shadow"]["differs"] == ["obligations"]
    assert partner["input"]["identity"]["subject"] != doc("partner")["identity"]["subject"]


def test_same_bundle_in_shadow_logs_nothing(
    tmp_path: Path, engines: tuple[EmbeddedEngine, EmbeddedEngine]
) -> None:
    active, _ = engines
    dlog = DecisionLog(tmp_path / "shadow.jsonl")
    shadow = Shadow(EmbeddedEngine(ACTIVE), decision_log=dlog)
    for kind in ("customer", "partner", "staff"):
        shadow.submit(doc(kind), active.evaluate(doc(kind)))
    shadow.close()
    dlog.close()
    assert shadow.stats.differing == 0 and shadow.stats.evaluated == 3
    assert (tmp_path / "shadow.jsonl").read_bytes() == b""


class GatedCandidate:
    """The real candidate engine behind a gate, so a test can hold the worker busy."""

    def __init__(self, engine: EmbeddedEngine) -> None:
        self.engine = engine
        self.gate = threading.Event()
        self.entered = threading.Event()

    @property
    def revision(self) -> str:
        return self.engine.revision

    def evaluate(self, input_doc: object) -> Decision:
        self.entered.set()
        self.gate.wait(timeout=30)
        return self.engine.evaluate(input_doc)


def test_a_full_queue_drops_and_counts_without_blocking(
    engines: tuple[EmbeddedEngine, EmbeddedEngine],
) -> None:
    active, candidate = engines
    gated = GatedCandidate(candidate)
    shadow = Shadow(gated, queue_size=2)
    enforced = active.evaluate(doc("partner"))
    assert shadow.submit(doc("partner"), enforced)
    assert gated.entered.wait(timeout=30)  # the worker holds the first sample
    accepted = [shadow.submit(doc("partner"), enforced) for _ in range(10)]
    assert accepted == [True, True] + [False] * 8
    gated.gate.set()
    shadow.close()
    stats = shadow.stats
    assert (stats.submitted, stats.dropped, stats.evaluated, stats.deny_to_allow) == (3, 8, 3, 3)
    assert not shadow.submit(doc("partner"), enforced)  # closed: dropped, not raised
    assert shadow.stats.dropped == 9


async def test_shadowed_engine_enforces_only_the_active_bundle(tmp_path: Path) -> None:
    holder = PolicyHolder(require_tests=False)
    assert (await holder.load(ACTIVE)).ok
    dlog = DecisionLog(tmp_path / "shadow.jsonl")
    shadow = Shadow(EmbeddedEngine(CANDIDATE), decision_log=dlog)
    engine = ShadowedEngine(holder, shadow)
    decision = await engine.decide(doc("partner"))
    assert not decision.allow and decision.revision == "active-1"  # the candidate never enforces
    assert engine.revision == "active-1"
    await engine.close()
    dlog.close()
    assert shadow.stats.deny_to_allow == 1
    assert (await holder.decide(doc("customer"))).reasons == ("policy:closed",)


def test_invalid_input_is_compared_too(engines: tuple[EmbeddedEngine, EmbeddedEngine]) -> None:
    active, candidate = engines
    shadow = Shadow(candidate)
    bad: Any = {"version": "1"}
    shadow.submit(bad, active.evaluate(bad))
    shadow.close()
    assert shadow.stats.evaluated == 1 and shadow.stats.differing == 0 and not shadow.stats.errors
