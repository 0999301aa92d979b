"""Traffic for the risk scenario simulator: ordinary sessions and the six attacks.

`Traffic` turns the world (`benchmarks.risk_world`) and the device lab
(`benchmarks.risk_devices`) into sessions — a login and what follows it —
each with its actor's device and requests; `benchmarks.risk_scenarios` plays
them in time order through the real pipeline. The attacks are described in
docs/risk.md ("The attacks").
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from benchmarks.risk_devices import DeviceLab
from benchmarks.risk_world import (
    ABROAD,
    DATACENTRES,
    DAY,
    DOMESTIC,
    HOUR,
    City,
    Customer,
    session_hour,
    transfer_amount,
    typing_sample,
    unlocated_address,
)

__all__ = ["FAILURE", "LEGIT", "SCENARIOS", "Request", "Session", "Traffic"]

SCENARIOS = (
    "account_takeover",
    "credential_stuffing",
    "headless_bot",
    "device_farm",
    "sim_swap",
    "impostor_pin",
)
LEGIT = "legitimate"
FAILURE = "failure"
"""A failed authentication on its own (credential stuffing's misses)."""
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


class Traffic:
    def __init__(
        self,
        rng: random.Random,
        customers: list[Customer],
        devices: DeviceLab,
        *,
        warmup_days: int,
        days: int,
        attacks: int,
        utc_offset: float,
    ) -> None:
        self.rng, self.customers, self.devices = rng, customers, devices
        self.warmup, self.days, self.attacks = warmup_days, days, attacks
        self.offset = utc_offset

    def sessions(self) -> list[Session]:
        """Every session of the run, ordinary and attacks, in time order."""
        out = self.legitimate()
        for scenario in SCENARIOS:
            out += getattr(self, scenario)()
        out.sort(key=lambda s: s.start)
        return out

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
                    out.append(Session(FAILURE, name, None, at, [Request(ip, at)]))
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


def _poisson(rng: random.Random, mean: float) -> int:
    limit, k, p = math.exp(-mean), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1
