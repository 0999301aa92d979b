"""Scenario simulator: legitimate customers and six attacks through the real pipeline.

Every request's device payload goes through the real `device_fingerprint`
assessor (`benchmarks/risk_devices.py`), then the real `RiskScorer`; nothing
is a hand-made assessment. The first `--warmup` days are legitimate traffic
only (profiles and device bindings form); during the following `--days` the
attacks run alongside ordinary traffic.

A *session* is the unit judged: its score is the highest score of its
requests, as a gateway would step up or deny at that request. The threshold
is the lowest score that flags at most 1 % of the legitimate sessions of the
measured period; each scenario's detection rate is the share of its sessions
at or above it.

    .venv/bin/python benchmarks/risk_scenarios.py [--customers 2000] [--seed 1]
"""

from __future__ import annotations

import argparse
import array
import asyncio
import math
import os
import random
import sys
import time
from bisect import bisect_left
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

# Run as a script, sys.path[0] is benchmarks/, where risk.py would shadow the `risk`
# package: put the repository root there instead.
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]
sys.path.insert(0, str(Path(_HERE).parent))

from benchmarks.risk_devices import DeviceLab  # noqa: E402
from benchmarks.risk_traffic import FAILURE, LEGIT, SCENARIOS, Session, Traffic  # noqa: E402
from benchmarks.risk_world import (  # noqa: E402
    make_customers,
    world_table,
)
from device_fingerprint.assessment import DeviceAssessment  # noqa: E402
from risk.assessment import RiskObservation  # noqa: E402
from risk.config import RiskConfig  # noqa: E402
from risk.scorer import RiskScorer  # noqa: E402
from risk.store import MemoryRiskStore  # noqa: E402

POST_ATTACK_LABEL = "legitimate_after_attack"
POST_ATTACK = 7 * 86_400.0
"""A victim's own sessions this soon after an attack on them are reported apart: the
attack left its marks (the attacker's location, a changed SIM) that rightly weigh on them."""


@dataclass(slots=True)
class Results:
    scores: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    reasons: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    sessions: dict[str, list[tuple[int, tuple[str, ...]]]] = field(
        default_factory=lambda: defaultdict(list)
    )
    """Per label: each measured session's score and reasons (for explaining the misses)."""
    requests: int = 0
    device_ns: array.array[int] = field(default_factory=lambda: array.array("q"))
    """Per measured request: the device assessor's wall time (ns), `DeviceAssessor.assess`
    alone (the simulator's rendering of the payload is left out)."""
    risk_ns: array.array[int] = field(default_factory=lambda: array.array("q"))
    """Per measured request: the risk scorer's wall time (ns)."""
    device_cpu_ns: array.array[int] = field(default_factory=lambda: array.array("q"))
    """Per measured request: this thread's CPU time in the device assessor (ns): the wall
    time less the moments the machine gave the CPU to someone else."""
    risk_cpu_ns: array.array[int] = field(default_factory=lambda: array.array("q"))
    """Per measured request: this thread's CPU time in the risk scorer (ns)."""
    cases: list[str] = field(default_factory=list)
    """Per measured request: what the device assessment had to do (`risk_devices.CASES`)."""

    @property
    def cpu_ns(self) -> array.array[int]:
        """Per measured request: this thread's CPU time for both (ns)."""
        pairs = zip(self.device_cpu_ns, self.risk_cpu_ns, strict=True)
        return array.array("q", (d + r for d, r in pairs))


def threshold_at(legit: list[int], fpr: float) -> int:
    """Lowest integer threshold t such that at most `fpr` of `legit` score >= t."""
    ordered = sorted(legit)
    for t in range(0, 102):
        flagged = len(ordered) - bisect_left(ordered, t)
        if flagged <= fpr * len(ordered):
            return t
    return 101


def detection(scores: list[int], threshold: int) -> float:
    return sum(s >= threshold for s in scores) / len(scores) if scores else math.nan


class Simulation:
    def __init__(
        self,
        *,
        seed: int,
        customers: int,
        warmup_days: int,
        days: int,
        attacks: int,
        config: RiskConfig | None = None,
    ) -> None:
        self.rng = random.Random(seed)
        self.config = config or RiskConfig()
        self.offset = self.config.hour.utc_offset_minutes * 60.0
        self.warmup, self.days, self.attacks = warmup_days, days, attacks
        total = warmup_days + days
        self.customers = make_customers(self.rng, customers, total, self.offset)
        self.devices = DeviceLab(seed)
        store = MemoryRiskStore(self.config.rate, self.config.profile)
        self.scorer = RiskScorer(self.config, store, world_table())
        self.traffic = Traffic(
            self.rng,
            self.customers,
            self.devices,
            warmup_days=warmup_days,
            days=days,
            attacks=attacks,
            utc_offset=self.offset,
        )
        self._attacked: dict[str, float] = {}

    # -- running ------------------------------------------------------------------------------

    async def run(self, progress: Callable[[str], None] | None = None) -> Results:
        await self.devices.start()
        try:
            return await self._run(progress)
        finally:
            await self.devices.close()

    async def _run(self, progress: Callable[[str], None] | None) -> Results:
        sessions = self.traffic.sessions()
        results = Results()
        for n, session in enumerate(sessions):
            await self._play(session, results)
            if progress is not None and n % 20_000 == 0:
                progress(f"{n}/{len(sessions)} sessions")
        return results

    async def _play(self, session: Session, results: Results) -> None:
        scorer = self.scorer
        if session.label == FAILURE:
            await scorer.record_auth_failure(session.subject, session.requests[0].ip, session.start)
            return
        first = session.requests[0]
        for k in range(session.failures_before):
            at = session.start - 15 * (session.failures_before - k)
            await scorer.record_auth_failure(session.subject, first.ip, at)
        high = 0
        seen: Counter[str] = Counter()
        verdict: DeviceAssessment | None = None
        clock, cpu = time.perf_counter_ns, time.thread_time_ns
        for req in session.requests:
            c0, t0 = cpu(), clock()
            located = scorer.locate(req.ip)  # the gateway's step before the assessor
            t1, c1 = clock(), cpu()
            verdict = await self.devices.assess(
                session.device,
                session.subject,
                req.ip,
                req.at,
                located.country if located is not None else None,
                req.place,
            )
            device = self.devices.last
            amount = None if req.amount is None else Decimal(str(req.amount))
            c2, t2 = cpu(), clock()
            risk = await scorer.score(
                RiskObservation(
                    subject=session.subject,
                    client_ip=req.ip,
                    at=req.at,
                    device=verdict,
                    route_id="transfer" if req.operation else "accounts",
                    sensitive_operation=req.operation,
                    amount=amount,
                    keystrokes=req.keystrokes,
                )
            )
            t3, c3 = clock(), cpu()
            results.requests += 1
            if session.measured:
                results.device_ns.append(t1 - t0 + device.wall_ns)
                results.risk_ns.append(t3 - t2)
                results.device_cpu_ns.append(c1 - c0 + device.cpu_ns)
                results.risk_cpu_ns.append(c3 - c2)
                results.cases.append(device.case)
            high = max(high, risk.score)
            seen.update(risk.reasons)
        low = high <= self.config.profile.learn_max_score
        await scorer.end_session(session.subject, low_risk=low)
        label = session.label
        if label == LEGIT:
            # the customer passes any step-up on their own device, which binds it;
            # attackers fail it (or the session is over before they could bind)
            assert verdict is not None
            await self.devices.session_succeeded(
                session.device, session.subject, verdict, session.requests[-1].at
            )
            attacked = self._attacked.get(session.subject)
            if attacked is not None and session.start - attacked < POST_ATTACK:
                label = POST_ATTACK_LABEL
        else:
            self._attacked[session.subject] = session.requests[-1].at
        if session.measured:
            results.scores[label].append(high)
            results.reasons[label].update(seen)
            results.sessions[label].append((high, tuple(sorted(seen))))


@dataclass(frozen=True)
class Report:
    threshold: int
    legit_sessions: int
    false_positive_rate: float
    detection: dict[str, float]
    attack_sessions: dict[str, int]
    top_reasons: dict[str, list[tuple[str, int]]]
    flagged: list[tuple[tuple[str, ...], int]]
    """The commonest reason sets of the legitimate sessions at or above the threshold."""
    missed: dict[str, list[tuple[tuple[str, ...], int]]]
    """Per scenario, the commonest reason sets of the sessions below the threshold."""
    after_attack_sessions: int
    after_attack_flagged: float
    false_merge: float
    false_split: float
    merge_trials: int
    """Sightings of a device whose subject had another device it could be taken for."""
    repeat_sightings: int
    """Sightings of a device its subject already had an id for."""
    requests: int
    device_us: float
    risk_us: float


def report(sim: Simulation, results: Results, fpr: float = 0.01) -> Report:
    legit = results.scores[LEGIT]
    t = threshold_at(legit, fpr)
    merges, trials, splits, repeats = sim.devices.id_counts()
    per = max(len(results.device_ns), 1)
    return Report(
        threshold=t,
        legit_sessions=len(legit),
        false_positive_rate=detection(legit, t),
        detection={s: detection(results.scores[s], t) for s in SCENARIOS},
        attack_sessions={s: len(results.scores[s]) for s in SCENARIOS},
        top_reasons={s: results.reasons[s].most_common(4) for s in (LEGIT, *SCENARIOS)},
        flagged=Counter(r for score, r in results.sessions[LEGIT] if score >= t).most_common(6),
        missed={
            s: Counter(r for score, r in results.sessions[s] if score < t).most_common(3)
            for s in SCENARIOS
        },
        after_attack_sessions=len(results.scores[POST_ATTACK_LABEL]),
        after_attack_flagged=detection(results.scores[POST_ATTACK_LABEL], t),
        false_merge=merges / trials if trials else 0.0,
        false_split=splits / repeats if repeats else 0.0,
        merge_trials=trials,
        repeat_sightings=repeats,
        requests=results.requests,
        device_us=sum(results.device_ns) / per / 1000,
        risk_us=sum(results.risk_ns) / per / 1000,
    )


async def simulate(
    *,
    seed: int,
    customers: int,
    warmup_days: int,
    days: int,
    attacks: int,
    progress: Callable[[str], None] | None = None,
) -> Report:
    sim = Simulation(
        seed=seed, customers=customers, warmup_days=warmup_days, days=days, attacks=attacks
    )
    results = await sim.run(progress)
    return report(sim, results)


def _print(rep: Report, elapsed: float) -> None:
    print(f"legitimate sessions measured: {rep.legit_sessions}; requests scored: {rep.requests}")
    print(
        f"threshold at 1 % FPR: score >= {rep.threshold} (actual FPR {rep.false_positive_rate:.2%})"
    )
    print(
        f"{'scenario':<22}{'sessions':>9}{'detected':>10}  target >= 95 %  top reasons (requests)"
    )
    for s in SCENARIOS:
        ok = "ok" if rep.detection[s] >= 0.95 else "MISSED"
        reasons = ", ".join(f"{r} {n}" for r, n in rep.top_reasons[s][:3])
        print(f"{s:<22}{rep.attack_sessions[s]:>9}{rep.detection[s]:>10.1%}  {ok:<14}  {reasons}")
    legit = ", ".join(f"{r} {n}" for r, n in rep.top_reasons[LEGIT])
    print(f"legitimate top reasons (requests): {legit}")
    print("flagged legitimate sessions, commonest reason sets:")
    for reasons, n in rep.flagged:
        print(f"  {n:>5}  {', '.join(reasons) or '-'}")
    for s in SCENARIOS:
        for reasons, n in rep.missed[s]:
            print(f"  missed {s}: {n} x {', '.join(reasons) or '-'}")
    print(
        f"victims' own sessions within 7 days after an attack (not in the FPR): "
        f"{rep.after_attack_sessions}, flagged {rep.after_attack_flagged:.1%}"
    )
    print(
        f"device id false merges: {rep.false_merge:.3%} of {rep.merge_trials} sightings "
        f"(target <= 0.1 %); false splits: {rep.false_split:.3%} of "
        f"{rep.repeat_sightings} repeat sightings (target <= 2 %)"
    )
    print(
        f"mean per request: device {rep.device_us:.0f} us, risk {rep.risk_us:.0f} us; "
        f"run {elapsed:.0f} s"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=2000)
    parser.add_argument("--warmup", type=int, default=45, help="days of legitimate traffic only")
    parser.add_argument("--days", type=int, default=30, help="days measured, attacks included")
    parser.add_argument("--attacks", type=int, default=200, help="sessions per scenario")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    started = time.perf_counter()
    rep = asyncio.run(
        simulate(
            seed=args.seed,
            customers=args.customers,
            warmup_days=args.warmup,
            days=args.days,
            attacks=args.attacks,
            progress=lambda m: print(m, file=sys.stderr),
        )
    )
    _print(rep, time.perf_counter() - started)


if __name__ == "__main__":
    main()
