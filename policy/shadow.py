"""Dry-run (shadow) evaluation: a candidate bundle judged beside the active one.

Issue 4, "Dry-run / shadow": a candidate bundle runs beside the active one on
the same inputs, its differing decisions are logged, and it never enforces.

The request path only *offers* work: `Shadow.submit` puts ``(input, active
decision)`` on a bounded queue and returns at once — when the queue is full the
sample is dropped and counted, so a slow candidate can never slow requests. A
worker thread evaluates the candidate and compares: decisions differ when
``allow``, ``reasons`` or ``obligations`` differ (the revision does not count).
Each difference is written to the decision log (`policy.decision_log`) as an
OPA event whose ``result`` is the active decision that was enforced, labelled
``mode: shadow``, with a ``shadow`` member carrying the candidate's revision,
its result and which parts differ; and it is counted (`ShadowStats`, with
deny→allow — the dangerous direction — apart). The candidate's decision is
never returned to anyone.

`ShadowedEngine` wraps the serving engine so that every decision is offered to
the shadow without the caller changing anything.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, Final, Protocol

from policy.decision import Decision
from policy.decision_log import DecisionLog, decision_result
from policy.engine import PolicyEngine

__all__ = ["Shadow", "ShadowStats", "ShadowedEngine", "differences"]

log = logging.getLogger("ztgate.policy.shadow")

_STOP: Final = object()


class Evaluator(Protocol):
    """What the candidate must offer (`policy.embedded.EmbeddedEngine` does)."""

    @property
    def revision(self) -> str: ...

    def evaluate(self, input_doc: object) -> Decision: ...


@dataclass(frozen=True)
class ShadowStats:
    submitted: int
    dropped: int
    evaluated: int
    differing: int
    deny_to_allow: int
    """Requests the active bundle denied and the candidate would allow."""
    allow_to_deny: int
    errors: int


def differences(active: Decision, candidate: Decision) -> tuple[str, ...]:
    """Which of ``allow``, ``reasons``, ``obligations`` differ (empty: same decision)."""
    if replace(active, revision="") == replace(candidate, revision=""):
        return ()
    return tuple(
        name
        for name in ("allow", "reasons", "obligations")
        if getattr(active, name) != getattr(candidate, name)
    )


class Shadow:
    """Evaluate `candidate` on a worker thread beside the active engine; log differences.

    `decision_log` receives one event per differing decision (None: count only).
    """

    def __init__(
        self,
        candidate: Evaluator,
        *,
        decision_log: DecisionLog | None = None,
        queue_size: int = 1000,
    ) -> None:
        if queue_size <= 0:
            raise ValueError("queue_size must be positive")
        self.candidate = candidate
        self._log = decision_log
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=queue_size)
        self._counts = dict.fromkeys(
            ("submitted", "dropped", "evaluated", "differing", "deny_to_allow", "allow_to_deny"),
            0,
        )
        self._counts["errors"] = 0
        self._count_lock = threading.Lock()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="policy-shadow", daemon=True)
        self._thread.start()

    @property
    def revision(self) -> str:
        return self.candidate.revision

    def _bump(self, *names: str) -> None:
        with self._count_lock:
            for name in names:
                self._counts[name] += 1

    @property
    def stats(self) -> ShadowStats:
        with self._count_lock:
            return ShadowStats(**self._counts)

    def submit(
        self, input_doc: Mapping[str, Any], active: Decision, *, decision_id: str | None = None
    ) -> bool:
        """Offer one enforced decision for comparison; False when dropped. Never blocks."""
        if self._closed:
            self._bump("dropped")
            return False
        try:
            self._queue.put_nowait((input_doc, active, decision_id))
        except queue.Full:
            self._bump("dropped")
            return False
        self._bump("submitted")
        return True

    def flush(self) -> None:
        """Wait until every submitted sample has been compared (tests, shutdown)."""
        self._queue.join()

    def close(self) -> None:
        """Finish the queued samples and stop the worker."""
        if self._closed:
            return
        self._closed = True
        self._queue.put(_STOP)
        self._thread.join()

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            try:
                if item is _STOP:
                    return
                self._compare(*item)
            except Exception as exc:  # the shadow must never stop on one bad sample
                self._bump("errors")
                log.warning(
                    "shadow comparison failed",
                    extra={"event": "policy.shadow_error", "error_type": type(exc).__name__},
                )
            finally:
                self._queue.task_done()

    def _compare(
        self, input_doc: Mapping[str, Any], active: Decision, decision_id: str | None
    ) -> None:
        candidate = self.candidate.evaluate(input_doc)
        diff = differences(active, candidate)
        if not diff:
            self._bump("evaluated")
            return
        names = ["evaluated", "differing"]
        if active.allow != candidate.allow:
            names.append("allow_to_deny" if active.allow else "deny_to_allow")
        self._bump(*names)
        if self._log is not None:
            self._log.record(
                input_doc,
                active,
                decision_id=decision_id,
                extra={
                    "labels": {"mode": "shadow"},
                    "shadow": {
                        "revision": candidate.revision,
                        "result": decision_result(candidate),
                        "differs": list(diff),
                    },
                },
            )


class ShadowedEngine:
    """A `PolicyEngine` that enforces `active` and offers every decision to `shadow`."""

    def __init__(self, active: PolicyEngine, shadow: Shadow) -> None:
        self.active = active
        self.shadow = shadow

    @property
    def revision(self) -> str:
        return self.active.revision

    async def decide(self, input_doc: Mapping[str, Any]) -> Decision:
        decision = await self.active.decide(input_doc)
        self.shadow.submit(input_doc, decision)
        return decision

    async def close(self) -> None:
        await asyncio.to_thread(self.shadow.close)
        await self.active.close()
