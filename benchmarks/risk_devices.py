"""The device half of the risk scenario simulator: synthetic devices, the real assessor.

Devices come from `device_fingerprint.synthetic` (market-share populations,
monthly drift, attack devices); each request's `DeviceObservation` is
`synthetic.observe`'s rendering of the device's collector payload, User-Agent,
client hints and JA4, and its verdict comes from the real `DeviceAssessor` over
a real `DeviceRegistry` (SQLite in a temporary directory), on the simulated
clock. The country the assessor checks time zones against is the risk
scorer's geolocation of the request's address, as in the gateway.

Customers have the banking app (which proves a device-held key on every
request, DPoP) and often a browser too; a customer binds a device after the
step-up any new device triggers. Ground truth (`SyntheticDevice.uid`) is kept
beside every verdict to count device-id false merges and false splits, with
`device_fingerprint.id_quality`'s definitions, on the real assessor's ids.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import random
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

from benchmarks.risk_world import DAY, City, Customer
from device_fingerprint import assessor, registry, synthetic
from device_fingerprint import config as device_config
from device_fingerprint.assessment import DeviceAssessment, TrustLevel
from device_fingerprint.signals import signals_from_payload

__all__ = ["CASES", "Case", "DeviceLab", "Handle", "Timing"]

DRIFT_EVERY = 30 * DAY
"""`synthetic.drift` is one month of normal use."""

Case = Literal["cached", "reloaded", "drift", "first sighting", "other"]
CASES: tuple[Case, ...] = ("cached", "reloaded", "drift", "first sighting", "other")
"""What one assessment had to do, told from outside the assessor: *first sighting* (the
verdict says ``device:new``), *drift* (the device's features differ from the last ones
this device id was seen with), *reloaded* (the subject was not assessed within
`DeviceConfig.cache_ttl`, so its devices were read from the registry), *cached*
(none of those), *other* (no device id: a refused payload, no signals)."""


@dataclass(frozen=True, slots=True)
class Timing:
    """The last `DeviceLab.assess`: the assessor's own wall and thread CPU time (ns), and
    its case. The harness's work (rendering the payload, counting ids) is outside."""

    wall_ns: int
    cpu_ns: int
    case: Case


@dataclass(slots=True)
class Handle:
    """One physical device as the simulator uses it."""

    device: synthetic.SyntheticDevice
    key: str | None = None
    """RFC 7638 thumbprint of the app's device-held key (DPoP), when it has one."""
    drifted_at: float = 0.0
    legitimate: bool = True
    """Counted for device-id quality (attack devices are not)."""


def _thumbprint(rng: random.Random) -> str:
    return hashlib.sha256(rng.randbytes(32)).hexdigest()[:43]


class DeviceLab:
    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed * 7919 + 17)
        shm = Path("/dev/shm")
        self._dir = tempfile.TemporaryDirectory(
            prefix="risk-scenarios-", dir=shm if shm.is_dir() else None
        )
        self._now = 0.0
        self._registry: registry.DeviceRegistry | None = None
        self._assessor: assessor.DeviceAssessor | None = None
        self._devices: dict[tuple[str, int, bool], Handle] = {}
        self._farms: dict[str, Handle] = {}
        self._bound: set[tuple[str, str]] = set()
        self._owners: dict[tuple[str, str], str] = {}
        """(subject, device id) -> the physical device (uid) it was first given to."""
        self._ids: dict[tuple[str, str], set[str]] = {}
        """(subject, uid) -> the device ids that device was given for that subject."""
        self._uids: dict[str, set[str]] = {}
        """subject -> the physical devices seen for them."""
        self._recorded = self._split = self._merge_trials = self._merged = 0
        self._digests: dict[tuple[str, str], str] = {}
        """(subject, device id) -> the features digest it was last seen with."""
        self._assessed: dict[str, float] = {}
        """subject -> when it was last assessed (simulated clock)."""
        self._ttl = device_config.DeviceConfig().cache_ttl
        self.last = Timing(0, 0, "other")

    async def start(self) -> None:
        url = f"sqlite:///{Path(self._dir.name) / 'devices.db'}"
        config = device_config.DeviceConfig()
        self._registry = await registry.open_registry(url, config)
        self._assessor = assessor.DeviceAssessor(self._registry, config, clock=lambda: self._now)

    async def close(self) -> None:
        if self._assessor is not None:
            await self._assessor.close()
        if self._registry is not None:
            await self._registry.close()
        self._dir.cleanup()

    # -- devices ------------------------------------------------------------------------------

    def customer_device(self, customer: Customer, *, app: bool) -> Handle:
        """The customer's app (one phone per `device_generation`) or browser."""
        slot = (customer.subject, customer.device_generation, app)
        handle = self._devices.get(slot)
        if handle is None:
            rng = self.rng
            if app:
                device = synthetic.random_device(rng, rng.choice(("android-app", "ios-app")))
                handle = Handle(device, key=_thumbprint(rng))
            else:
                handle = Handle(synthetic.random_device(rng))
            self._devices[slot] = handle
        return handle

    def attacker_device(self, name: str) -> Handle:
        """The attacker's own phone or computer: clean, just never seen for the victim."""
        return Handle(synthetic.random_device(self.rng), legitimate=False)

    def stuffing_device(self, name: str) -> Handle:
        """A real browser's payload replayed by a script (its TLS stack is the script's)."""
        base = synthetic.random_device(self.rng, "windows-chrome")
        return Handle(synthetic.scripted_client(base, self.rng), legitimate=False)

    def headless_device(self, name: str) -> Handle:
        stealth = self.rng.random() < 0.5
        return Handle(synthetic.headless_browser(self.rng, stealth=stealth), legitimate=False)

    def farm_device(self, farm: str, account: int) -> Handle:
        """One phone of a farm; between accounts the app is reinstalled half the time."""
        handle = self._farms.get(farm)
        if handle is None:
            handle = self._farms[farm] = Handle(synthetic.device_farm(self.rng), legitimate=False)
        elif self.rng.random() < 0.5:
            handle.device = synthetic.reinstall(handle.device, self.rng)
        return handle

    def sim_swapped_device(self, customer: Customer) -> Handle:
        """The customer's own phone, now reporting another SIM (their number swapped)."""
        own = self.customer_device(customer, app=True)
        swapped = synthetic.sim_swap(own.device, self.rng)
        return Handle(swapped, key=own.key, legitimate=False)

    # -- verdicts ------------------------------------------------------------------------------

    async def assess(
        self,
        handle: Handle,
        subject: str,
        ip: str,
        at: float,
        region: str | None,
        place: City | None = None,
    ) -> DeviceAssessment:
        """The real assessor's verdict; `place` sets the device's clock to where it is."""
        assert self._assessor is not None, "start() first"
        self._now = at
        if handle.legitimate and at - handle.drifted_at >= DRIFT_EVERY:
            if handle.drifted_at:
                before = handle.device.app.get("install_id")
                handle.device = synthetic.drift(handle.device, self.rng)
                if handle.key is not None and handle.device.app.get("install_id") != before:
                    handle.key = _thumbprint(self.rng)  # a reinstall makes a new key
            handle.drifted_at = at
        device = handle.device
        if place is not None:
            device = replace(device, region=place.country, tz=place.tz)
        obs = replace(
            synthetic.observe(device, subject, now=at, key_thumbprint=handle.key), client_ip=ip
        )
        assess = self._assessor.assess
        c0, t0 = time.thread_time_ns(), time.perf_counter_ns()
        verdict = await assess(obs, region=region)
        t1, c1 = time.perf_counter_ns(), time.thread_time_ns()
        self.last = Timing(t1 - t0, c1 - c0, self._case(obs.signals, subject, at, verdict))
        if handle.legitimate and verdict.device_id is not None:
            self._count(subject, handle.device.uid, verdict.device_id)
        return verdict

    def _case(
        self, payload: bytes | None, subject: str, at: float, verdict: DeviceAssessment
    ) -> Case:
        last, self._assessed[subject] = self._assessed.get(subject), at
        if verdict.device_id is None:
            return "other"
        digest = ""
        if payload is not None:
            with contextlib.suppress(Exception):  # the assessor judged it; not our business
                digest = signals_from_payload(json.loads(payload)).digest
        before = self._digests.get((subject, verdict.device_id))
        self._digests[(subject, verdict.device_id)] = digest
        if "device:new" in verdict.reasons:
            return "first sighting"
        if before is not None and before != digest:
            return "drift"
        if last is None or at - last >= self._ttl:
            return "reloaded"
        return "cached"

    def _count(self, subject: str, uid: str, device_id: str) -> None:
        """`device_fingerprint.id_quality`'s definitions, per subject: a *split* is a device
        the subject already had an id for getting another one (over such sightings); a
        *merge* is a device getting an id another of the subject's devices holds (over
        sightings where the subject had another device to be confused with)."""
        ids = self._ids.setdefault((subject, uid), set())
        devices = self._uids.setdefault(subject, set())
        owner = self._owners.setdefault((subject, device_id), uid)
        if ids:
            self._recorded += 1
            self._split += device_id not in ids
        if devices - {uid}:
            self._merge_trials += 1
            self._merged += owner != uid
        ids.add(device_id)
        devices.add(uid)

    async def session_succeeded(
        self, handle: Handle, subject: str, verdict: DeviceAssessment, at: float
    ) -> None:
        """The customer passed the step-up a new device triggers and bound the device."""
        assert self._registry is not None
        if verdict.device_id is None or verdict.bound_to_subject:
            return
        if verdict.trust is TrustLevel.SUSPICIOUS or (subject, verdict.device_id) in self._bound:
            return
        try:
            await self._registry.bind(
                subject,
                verdict,
                actor=registry.Actor("customer", subject),
                acr=device_config.ACR_MFA,
                name="phone",
                now=at,
            )
            self._bound.add((subject, verdict.device_id))
        except registry.RegistryError:
            pass  # e.g. the bound-device limit: the device stays merely known

    def id_counts(self) -> tuple[int, int, int, int]:
        """(false merges, merge trials, false splits, repeat sightings), as in `_count`."""
        return self._merged, self._merge_trials, self._split, self._recorded
