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
from benchmarks.risk_world import (  # noqa: E402
    ABROAD,
    DATACENTRES,
    DAY,
    DOMESTIC,
    HOUR,
    City,
    Customer,
    make_customers,
    session_hour,
    transfer_amount,
    typing_sample,
    unlocated_address,
    world_table,
)
from device_fingerprint.assessment import DeviceAssessment  # noqa: E402
from risk.assessment import RiskObservation  # noqa: E402
from risk.config import RiskConfig  # noqa: E402
from risk.scorer import RiskScorer  # noqa: E402
from risk.store import MemoryRiskStore  # noqa: E402

SCENARIOS = (
    "account_takeover",
    "credential_stuffing",
    "headless_bot",
    "device_farm",
    "sim_swap",
    "impostor_pin",
)
LEGIT = "legitimate"
POST_ATTACK_LABEL = "legitimate_after_attack"
POST_ATTACK = 7 * 86_400.0
"""A victim's own sessions this soon after an attack on them are reported apart: the
attack left its marks (the attacker's location, a changed SIM) that rightly weigh on them."""
EPOCH = 1_767_225_600.0  # 2026-01-01T00:00:00Z


@dataclass(slots=True)
class Request:
    ip: str
    at: float
    operation: str | None = None
    amount: float | None = None
    keystrokes: tuple[float, ...] | None = None
    place: City | None = None
    """Where a customer's device physically is (its clock follows the local time zone);
    None leaves an attacker's device as it was built."""


@dataclass(slots=True)
class Session:
    """One login and what follows it, by one actor with one device."""

    label: str
    subject: str
    device: object
    """The device lab's handle for the device used."""
    start: float
    requests: list[Request]
    failures_before: int = 0
    measured: bool = True


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
    """Per measured request: the device assessment's wall time (ns)."""
    risk_ns: array.array[int] = field(default_factory=lambda: array.array("q"))
    """Per measured request: the risk scorer's wall time (ns)."""
    cpu_ns: array.array[int] = field(default_factory=lambda: array.array("q"))
    """Per measured request: this thread's CPU time for both (ns): the wall time less
    the moments the machine gave the CPU to someone else."""


def threshold_at(legit: list[int], fpr: float) -> int:
    """Lowest integer threshold t such that at most `fpr` of `legit` score >= t."""
    ordered = sorted(legit)
    for t in range(0, 102):
        flagged = len(ordered) - _bisect_left(ordered, t)
        if flagged <= fpr * len(ordered):
            return t
    return 101


def _bisect_left(values: list[int], x: int) -> int:
    lo, hi = 0, len(values)
    while lo < hi:
        mid = (lo + hi) // 2
        if values[mid] < x:
            lo = mid + 1
        else:
            hi = mid
    return lo


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
        self._attacked: dict[str, float] = {}

    # -- traffic ------------------------------------------------------------------------------

    def _local(self, day: int, hour: float) -> float:
        return EPOCH + day * DAY + hour * HOUR - self.offset

    def _requests(
        self, c: Customer, ip: str, start: float, place: City, *, app: bool
    ) -> list[Request]:
        rng = self.rng
        keys = typing_sample(rng, c.typing) if app else None
        reqs = [Request(ip, start, keystrokes=keys, place=place)]
        for k in range(rng.randint(2, 8)):
            reqs.append(Request(ip, start + 20 * (k + 1) + rng.uniform(0, 15), place=place))
        if rng.random() < c.transfer_share:
            confirm = typing_sample(rng, c.typing) if app else None
            at = reqs[-1].at + 25
            amount = transfer_amount(rng, c)
            reqs.append(Request(ip, at, "transfer", amount, confirm, place=place))
        return reqs

    def legitimate(self) -> list[Session]:
        rng, sessions = self.rng, []
        for c in self.customers:
            for day in range(self.warmup + self.days):
                for _ in range(_poisson(rng, c.sessions_per_day)):
                    start = self._local(day, session_hour(rng, c))
                    if rng.random() < 0.0015:
                        c.device_generation += 1  # a new phone (about one in 18 months)
                    place = c.location(start)
                    if place is None:
                        continue  # in the air
                    ip = place.address(rng)
                    if rng.random() < 0.004:
                        ip = rng.choice(ABROAD).address(rng)  # a VPN exit abroad
                    elif rng.random() < 0.02:
                        ip = unlocated_address(rng)  # roaming / an unlisted carrier range
                    app = rng.random() < 0.85
                    failures = rng.choices((0, 1, 2, 3), (90, 7, 2, 1))[0]
                    sessions.append(
                        Session(
                            LEGIT,
                            c.subject,
                            self.devices.customer_device(c, app=app),
                            start,
                            self._requests(c, ip, start, place, app=app),
                            failures,
                            measured=day >= self.warmup,
                        )
                    )
        return sessions

    def _attack_start(self) -> float:
        day = self.warmup + self.rng.randrange(self.days)
        return self._local(day, self.rng.uniform(0, 24))

    def _victim(self) -> Customer:
        return self.rng.choice(self.customers)

    def _drain(
        self, c: Customer, ip: str, start: float, typist: tuple[float, ...] | None
    ) -> list[Request]:
        """What an attacker does once in: look around, then move money out. With a `typist`
        (the app asks for the PIN) their rhythm comes with the login and the transfer."""
        rng = self.rng

        def pin() -> tuple[float, ...] | None:
            return typing_sample(rng, typist) if typist is not None else None

        reqs = [Request(ip, start, keystrokes=pin())]
        for k in range(rng.randint(1, 4)):
            reqs.append(Request(ip, start + 15 * (k + 1)))
        amount = round(c.amount_median * rng.uniform(5, 40), 2)
        reqs.append(Request(ip, reqs[-1].at + 20, "transfer", amount, pin()))
        return reqs

    def account_takeover(self) -> list[Session]:
        """Stolen credentials used from the attacker's own device, elsewhere."""
        out = []
        for i in range(self.attacks):
            c, start = self._victim(), self._attack_start()
            city = self._elsewhere(c)
            device = self.devices.attacker_device(f"ato-{i}")
            out.append(
                Session(
                    SCENARIOS[0],
                    c.subject,
                    device,
                    start,
                    self._drain(c, city.address(self.rng), start, None),
                )
            )
        return out

    def _elsewhere(self, c: Customer) -> City:
        if self.rng.random() < 0.5:
            return self.rng.choice(ABROAD + DATACENTRES)
        return self.rng.choice([d for d in DOMESTIC if d != c.home])

    def credential_stuffing(self) -> list[Session]:
        """Bots replaying leaked pairs: most fail, a few work; fast, from a few addresses."""
        out: list[Session] = []
        campaigns = max(1, self.attacks // 10)
        for n in range(campaigns):
            start = self._attack_start()
            city = self.rng.choice(DATACENTRES + ABROAD)
            pool = [city.address(self.rng) for _ in range(3)]
            device = self.devices.stuffing_device(f"stuffing-{n}")
            hits = 0
            at = start
            while hits < 10:
                at += self.rng.uniform(0.5, 3.0)
                ip = self.rng.choice(pool)
                if self.rng.random() < 0.9:
                    leaked = f"leaked-{n}-{self.rng.randrange(10**6)}"
                    name = self._victim().subject if self.rng.random() < 0.3 else leaked
                    out.append(Session("failure", name, None, at, [Request(ip, at)]))
                    continue
                hits += 1
                c = self._victim()
                out.append(
                    Session(SCENARIOS[1], c.subject, device, at, self._drain(c, ip, at, None))
                )
        return out

    def headless_bot(self) -> list[Session]:
        out = []
        for i in range(self.attacks):
            c, start = self._victim(), self._attack_start()
            place = c.home if self.rng.random() < 0.5 else self._elsewhere(c)
            device = self.devices.headless_device(f"headless-{i}")
            out.append(
                Session(
                    SCENARIOS[2],
                    c.subject,
                    device,
                    start,
                    self._drain(c, place.address(self.rng), start, None),
                )
            )
        return out

    def device_farm(self) -> list[Session]:
        """A few devices (and addresses) each driving many accounts over the period."""
        out = []
        farms = max(1, self.attacks // 25)
        for i in range(self.attacks):
            farm = i % farms
            c, start = self._victim(), self._attack_start()
            city = DOMESTIC[(farm * 3 + 5) % len(DOMESTIC)]
            device = self.devices.farm_device(f"farm-{farm}", i // farms)
            out.append(
                Session(
                    SCENARIOS[3],
                    c.subject,
                    device,
                    start,
                    self._drain(c, city.address(self.rng), start, None),
                )
            )
        return out

    def sim_swap(self) -> list[Session]:
        """The customer's phone reports another SIM (their number swapped, the SMS codes now
        the attacker's), used near the customer's home; the app asks for the PIN, which the
        attacker phished and types in their own rhythm."""
        out = []
        for _ in range(self.attacks):
            c, start = self._victim(), self._attack_start()
            device = self.devices.sim_swapped_device(c)
            stranger = self.rng.choice([o for o in self.customers if o is not c])
            reqs = self._drain(c, c.home.address(self.rng), start, stranger.typing)
            for req in reqs:
                req.place = c.home
            out.append(Session(SCENARIOS[4], c.subject, device, start, reqs))
        return out

    def impostor_pin(self) -> list[Session]:
        """Someone else types the victim's PIN on the victim's own phone, at home, at a
        habitual hour, moving a habitual amount: only the rhythm gives them away."""
        out = []
        for _ in range(self.attacks):
            c = self._victim()
            day = self.warmup + self.rng.randrange(self.days)
            start = self._local(day, session_hour(self.rng, c))
            stranger = self.rng.choice([o for o in self.customers if o is not c])
            ip = c.home.address(self.rng)
            keys = typing_sample(self.rng, stranger.typing)
            home = c.home
            reqs = [
                Request(ip, start, keystrokes=keys, place=home),
                Request(ip, start + 30, place=home),
            ]
            reqs.append(
                Request(
                    ip,
                    start + 60,
                    "transfer",
                    transfer_amount(self.rng, c),
                    typing_sample(self.rng, stranger.typing),
                    place=home,
                )
            )
            device = self.devices.customer_device(c, app=True)
            out.append(Session(SCENARIOS[5], c.subject, device, start, reqs))
        return out

    # -- running ------------------------------------------------------------------------------

    async def run(self, progress: Callable[[str], None] | None = None) -> Results:
        await self.devices.start()
        try:
            return await self._run(progress)
        finally:
            await self.devices.close()

    async def _run(self, progress: Callable[[str], None] | None) -> Results:
        sessions = self.legitimate()
        for scenario in SCENARIOS:
            sessions += getattr(self, scenario)()
        sessions.sort(key=lambda s: s.start)
        results = Results()
        for n, session in enumerate(sessions):
            await self._play(session, results)
            if progress is not None and n % 20_000 == 0:
                progress(f"{n}/{len(sessions)} sessions")
        return results

    async def _play(self, session: Session, results: Results) -> None:
        scorer = self.scorer
        if session.label == "failure":
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
            c0 = cpu()
            t0 = clock()
            located = scorer.locate(req.ip)
            verdict = await self.devices.assess(
                session.device,
                session.subject,
                req.ip,
                req.at,
                located.country if located is not None else None,
                req.place,
            )
            t1 = clock()
            amount = None if req.amount is None else Decimal(str(req.amount))
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
            t2 = clock()
            c2 = cpu()
            results.requests += 1
            if session.measured:
                results.device_ns.append(t1 - t0)
                results.risk_ns.append(t2 - t1)
                results.cpu_ns.append(c2 - c0)
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


def _poisson(rng: random.Random, mean: float) -> int:
    limit, k, p = math.exp(-mean), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


@dataclass(frozen=True)
class Report:
    threshold: int
    legit_sessions: int
    false_positive_rate: float
    detection: dict[str, float]
    attack_sessions: dict[str, int]
    top_reasons: dict[str, list[tuple[str, int]]]
    after_attack_sessions: int
    after_attack_flagged: float
    false_merge: float
    false_split: float
    requests: int
    device_us: float
    risk_us: float


def report(sim: Simulation, results: Results, fpr: float = 0.01) -> Report:
    legit = results.scores[LEGIT]
    t = threshold_at(legit, fpr)
    merge, split = sim.devices.id_error_rates()
    per = max(len(results.device_ns), 1)
    return Report(
        threshold=t,
        legit_sessions=len(legit),
        false_positive_rate=detection(legit, t),
        detection={s: detection(results.scores[s], t) for s in SCENARIOS},
        attack_sessions={s: len(results.scores[s]) for s in SCENARIOS},
        top_reasons={s: results.reasons[s].most_common(4) for s in (LEGIT, *SCENARIOS)},
        after_attack_sessions=len(results.scores[POST_ATTACK_LABEL]),
        after_attack_flagged=detection(results.scores[POST_ATTACK_LABEL], t),
        false_merge=merge,
        false_split=split,
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
    print(f"{'scenario':<22}{'sessions':>9}{'detected':>10}  target >= 95 %  top reasons")
    for s in SCENARIOS:
        ok = "ok" if rep.detection[s] >= 0.95 else "MISSED"
        reasons = ", ".join(f"{r} {n}" for r, n in rep.top_reasons[s][:3])
        print(f"{s:<22}{rep.attack_sessions[s]:>9}{rep.detection[s]:>10.1%}  {ok:<14}  {reasons}")
    legit = ", ".join(f"{r} {n}" for r, n in rep.top_reasons[LEGIT])
    print(f"legitimate top reasons: {legit}")
    print(
        f"victims' own sessions within 7 days after an attack (not in the FPR): "
        f"{rep.after_attack_sessions}, flagged {rep.after_attack_flagged:.1%}"
    )
    print(
        f"device id false merges: {rep.false_merge:.3%} (target <= 0.1 %); "
        f"false splits: {rep.false_split:.3%} (target <= 2 %)"
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
