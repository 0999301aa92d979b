"""`DeviceAssessor.assess`: one request's device → a `DeviceAssessment`. It never raises.

Per request: parse the collector payload (`device_fingerprint.payload`; cached
by a SHA-256 digest of the bytes), check its claims (`device_fingerprint.consistency`),
find the device among the subject's — by key thumbprint when the request proved
possession of a key (DPoP, verified by authn), else by fingerprint with fuzzy
matching (`device_fingerprint.matching`) — and turn its binding state, the
shared-device graph and the anomalies into a trust level with reasons.

Trust and reasons:

======================= ===============================================================
``bound_with_key``      ``key:bound`` — a key-bound device proved its key
``bound``               ``binding:bound`` — a fingerprint-bound device
``known``               ``device:known`` — seen before for this subject
``new``                 ``device:new`` (first sighting, now recorded), ``signals:absent``
                        (neither payload nor key), ``subject:anonymous``
``suspicious``          ``payload:invalid:<code>`` (see `device_fingerprint.payload`),
                        ``binding:revoked``, ``anomaly:<anomaly>`` for every anomaly
                        matching `DeviceConfig.suspicious_anomalies`,
                        ``assessor:error`` (e.g. the registry is unreachable)
======================= ===============================================================

Anomalies besides consistency's: ``key:proof_missing`` (a fingerprint of a
key-bound device arrived without the key), ``key:signals_mismatch`` (a proven key
with another device's fingerprint), ``graph:shared_device`` (the device served
`farm_subjects` subjects within `farm_window`), ``graph:device_hopping`` (the
subject used `hop_new_devices` new devices within `hop_window`; not held against
a bound device, so the owner can still act), ``sim:changed``.

Request path (issue 5, check 3: p99 <= 1 ms with the risk score): a cached
subject costs no database call, whatever the device did. First sightings,
drift and hourly ``last_seen`` touches change the cached devices in memory
under a per-subject lock and are queued for the registry's background writer
(`DeviceRegistry.flush`, write-behind); shared-device sightings are queued and
counted in a per-process graph view that a background task refreshes from the
registry every `graph_refresh`; a cached subject older than `cache_ttl` is
answered from memory while a background task rereads it. Only a subject not in
the cache is read on the request path (one query). A revocation made through
this process's registry takes effect on the very next request; one made by
another process within `DeviceConfig.sync_seconds` (the sync loop reads the
audit trail).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import math
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, Final

from device_fingerprint import consistency
from device_fingerprint.assessment import DeviceAssessment, DeviceObservation, TrustLevel
from device_fingerprint.cache import LRU, GraphView, Known, SubjectEntry
from device_fingerprint.config import DeviceConfig
from device_fingerprint.matching import Matcher
from device_fingerprint.payload import PayloadError, read_payload
from device_fingerprint.registry import Device, DeviceRegistry
from device_fingerprint.signals import Signals, signals_from_payload

__all__ = ["DeviceAssessor"]

log = logging.getLogger("ztgate.device.assessor")
SYNC_OVERLAP: Final = 30.0
"""Seconds of the audit trail re-read on every sync (late commits, clock skew)."""
_LOCKS: Final = 64
_BACKGROUND: Final = 256
"""Background reloads and graph refreshes in flight at most (more wait for a later request)."""


@dataclass(slots=True)
class _Plan:
    """What one request resolves to, and the registry work it needs first."""

    device_id: str
    known: Known | None
    new: bool = False
    drift: bool = False
    sim_changed: bool = False
    touch: bool = False
    anomalies: list[str] = field(default_factory=list)

    @property
    def cold(self) -> bool:
        """The subject's devices change (in memory, under the subject's lock)."""
        return self.new or self.drift or self.touch


class DeviceAssessor:
    def __init__(
        self,
        registry: DeviceRegistry,
        config: DeviceConfig | None = None,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._registry = registry
        self._config = config or DeviceConfig()
        self._clock = clock
        self._matcher = Matcher(self._config)
        self._payloads: LRU[bytes, Signals | str] = LRU(self._config.payload_cache)
        self._consistency: LRU[tuple[object, ...], tuple[str, ...]] = LRU(
            self._config.payload_cache
        )
        self._subjects: LRU[str, SubjectEntry] = LRU(self._config.cache_subjects)
        self._farm: LRU[str, GraphView] = LRU(self._config.cache_subjects)
        self._locks = [asyncio.Lock() for _ in range(_LOCKS)]
        self._generation = 0
        """Bumped by every `evict`: a load that raced an eviction is not cached."""
        self._background: set[asyncio.Task[None]] = set()
        self._sync_mark = clock()
        self._synced: dict[str, float] = {}
        self._sync_task: asyncio.Task[None] | None = None
        registry.on_change(self.evict)

    @property
    def config(self) -> DeviceConfig:
        return self._config

    def evict(self, subject: str) -> None:
        """Forget `subject`'s cached devices (a binding changed)."""
        self._generation += 1
        self._subjects.pop(subject)

    # -- the one public verdict -----------------------------------------------------------

    async def assess(
        self, obs: DeviceObservation, *, region: str | None = None
    ) -> DeviceAssessment:
        """The device verdict for one request. `region` is the ISO 3166 country the
        client address geolocates to, when the caller knows it. Never raises (but lets
        cancellation through): any failure is a ``suspicious`` verdict."""
        try:
            return await self._assess(obs, region)
        except Exception as exc:  # fail closed, whatever broke
            log.error("device assessment failed", extra={"error_type": type(exc).__name__})
            return DeviceAssessment(
                None, False, False, TrustLevel.SUSPICIOUS, (), ("assessor:error",)
            )

    async def _assess(self, obs: DeviceObservation, region: str | None) -> DeviceAssessment:
        now = self._clock()
        key_id = f"jkt:{obs.key_thumbprint}" if obs.key_thumbprint else None
        signals: Signals | None = None
        digest = None
        if obs.signals is not None:
            if len(obs.signals) > self._config.max_payload_bytes:
                reason = "payload:invalid:too_large"  # refused before hashing it
                return DeviceAssessment(key_id, False, False, TrustLevel.SUSPICIOUS, (), (reason,))
            # A process-local cache key, never stored or shown: SHA-256 costs a sixth of
            # SM3 here, and device ids themselves stay SM3 (`signals.canonical_id`).
            digest = hashlib.sha256(obs.signals).digest()
            parsed = self._parse(obs.signals, digest)
            if isinstance(parsed, str):
                reason = f"payload:invalid:{parsed}"
                return DeviceAssessment(key_id, False, False, TrustLevel.SUSPICIOUS, (), (reason,))
            signals = parsed
        anomalies = list(self._anomalies_of(obs, digest, signals, region, now))
        if obs.subject is None:
            device_id = key_id or (signals.signal_id if signals else None)
            return self._verdict(device_id, None, True, False, anomalies, "subject:anonymous")
        if key_id is None and signals is None:
            return self._verdict(None, None, True, False, anomalies, "signals:absent")
        plan = await self._resolve(obs.subject, signals, key_id, now)
        anomalies.extend(plan.anomalies)
        return self._verdict(
            plan.device_id, plan.known, plan.new, key_id is not None, anomalies, None
        )

    def _verdict(
        self,
        device_id: str | None,
        known: Known | None,
        new: bool,
        proven: bool,
        anomalies: list[str],
        why: str | None,
    ) -> DeviceAssessment:
        bound = False
        if why is not None:
            trust, reasons = TrustLevel.NEW, [why]
        elif new or known is None:
            trust, reasons = TrustLevel.NEW, ["device:new"]
        elif known.state == "revoked":
            trust, reasons = TrustLevel.SUSPICIOUS, ["binding:revoked"]
        elif known.state == "bound" and known.key_bound and proven:
            trust, reasons, bound = TrustLevel.BOUND_WITH_KEY, ["key:bound"], True
        elif known.state == "bound" and not known.key_bound:
            trust, reasons, bound = TrustLevel.BOUND, ["binding:bound"], True
        else:
            trust, reasons = TrustLevel.KNOWN, ["device:known"]
        anomalies = sorted(set(anomalies))
        prefixes = self._config.suspicious_anomalies
        severe = [
            a
            for a in anomalies
            if a.startswith(prefixes) and not (bound and a == "graph:device_hopping")
        ]
        if severe:
            trust = TrustLevel.SUSPICIOUS
            reasons += [f"anomaly:{a}" for a in severe]
        is_known = known is not None and not new
        return DeviceAssessment(device_id, is_known, bound, trust, tuple(anomalies), tuple(reasons))

    def _anomalies_of(
        self,
        obs: DeviceObservation,
        digest: bytes | None,
        signals: Signals | None,
        region: str | None,
        now: float,
    ) -> tuple[str, ...]:
        """`consistency.anomalies`, memoised: it is a function of the payload, the
        headers, the region and the hour (the time-zone check reads the offset at the
        request's hour), and a client repeats all of them request after request."""
        key = (
            digest,
            obs.user_agent,
            tuple(obs.client_hints.items()),
            obs.ja4,
            region,
            int(now // 3600),
        )
        found = self._consistency.get(key)
        if found is None:
            found = consistency.anomalies(
                signals,
                user_agent=obs.user_agent,
                client_hints=obs.client_hints,
                ja4=obs.ja4,
                region=region,
                now=now,
            )
            self._consistency.put(key, found)
        return found

    def _parse(self, raw: bytes, digest: bytes) -> Signals | str:
        cached = self._payloads.get(digest)
        if cached is not None:
            return cached
        try:
            doc = read_payload(
                raw, max_bytes=self._config.max_payload_bytes, max_depth=self._config.max_depth
            )
            result: Signals | str = signals_from_payload(doc)
        except PayloadError as exc:
            result = exc.reason
        self._payloads.put(digest, result)
        return result

    # -- resolving the device ---------------------------------------------------------------

    async def _resolve(
        self, subject: str, signals: Signals | None, key_id: str | None, now: float
    ) -> _Plan:
        entry = self._subjects.get(subject)
        if entry is not None:
            if now - entry.loaded_at >= self._config.cache_ttl:
                self._reload_later(subject, entry)
            plan = self._plan(entry, subject, signals, key_id, now)
            if not plan.cold:
                await self._graph(plan, entry, subject, signals, now)
                return plan
        async with self._locks[hash(subject) % _LOCKS]:
            for _ in range(2):
                entry = await self._entry(subject, now)
                plan = self._plan(entry, subject, signals, key_id, now)
                if await self._apply(entry, subject, signals, plan, now):
                    await self._graph(plan, entry, subject, signals, now)
                    return plan
                self.evict(subject)  # a first sighting already queued: reload, once
            raise RuntimeError("device record kept changing")

    async def _entry(self, subject: str, now: float) -> SubjectEntry:
        """The subject's cached devices; read from the registry only when not cached
        (a stale entry is used, and reloaded in the background: `_reload_later`)."""
        entry = self._subjects.get(subject)
        if entry is None:
            generation = self._generation
            entry = await self._load(subject, now)
            if generation == self._generation:  # no binding changed meanwhile
                self._subjects.put(subject, entry)
        elif now - entry.loaded_at >= self._config.cache_ttl:
            self._reload_later(subject, entry)
        return entry

    async def _load(self, subject: str, now: float) -> SubjectEntry:
        devices, _ = await self._registry.subject_devices(subject, now)
        return SubjectEntry({d.device_id: Known.of(d) for d in devices}, now)

    def _spawn(self, work: Coroutine[Any, Any, None]) -> bool:
        """Run `work` in the background (bounded; False, and `work` dropped, when full)."""
        if len(self._background) >= _BACKGROUND:
            work.close()
            return False
        task = asyncio.create_task(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return True

    def _reload_later(self, subject: str, stale: SubjectEntry) -> None:
        """`cache_ttl` passed: this request uses the cached devices, a background task
        rereads them (bindings changed elsewhere reach us through `sync_changes`; this
        reload is the backstop, and off the request path)."""
        if not stale.reloading:
            stale.reloading = self._spawn(self._reload(subject, stale))

    async def _reload(self, subject: str, stale: SubjectEntry) -> None:
        """Without the subject's lock (requests must not wait for it): the result is
        dropped if the entry was evicted, or changed by a request, meanwhile."""
        try:
            generation, version = self._generation, stale.version
            fresh = await self._load(subject, self._clock())
            if (
                generation == self._generation
                and version == stale.version
                and self._subjects.get(subject) is stale
            ):
                fresh.memo, fresh.sighted = stale.memo, stale.sighted
                self._subjects.put(subject, fresh)
        except Exception as exc:  # the stale entry stays; the next request retries
            log.warning("device reload failed", extra={"error_type": type(exc).__name__})
        finally:
            stale.reloading = False

    async def _graph(
        self, plan: _Plan, entry: SubjectEntry, subject: str, signals: Signals | None, now: float
    ) -> None:
        """The shared-device graph, from memory: record the subject's sighting (queued,
        at most every `touch_seconds`) and count the device's subjects in this process's
        view, which a background task refreshes from the registry every `graph_refresh`
        (other processes' sightings)."""
        graph_key = signals.graph_key if signals is not None else None
        if graph_key is None:
            return
        config = self._config
        view = self._farm.get(graph_key)
        if view is None:
            view = GraphView(self._registry.queued_sightings(graph_key), -math.inf)
            self._farm.put(graph_key, view)
        if now - entry.sighted.get(graph_key, -math.inf) >= config.touch_seconds:
            entry.sighted[graph_key] = now
            view.subjects[subject] = max(now, view.subjects.get(subject, now))
            await self._registry.record_sighting(graph_key, subject, now)
        if now - view.loaded_at >= config.graph_refresh and not view.refreshing:
            view.refreshing = self._spawn(self._refresh_graph(graph_key, view))
        if view.count(now - config.farm_window) >= config.farm_subjects:
            plan.anomalies.append("graph:shared_device")

    async def _refresh_graph(self, graph_key: str, view: GraphView) -> None:
        try:
            now = self._clock()
            seen = await self._registry.subjects_seen(graph_key, now)
            view.merge(seen, now - self._config.farm_window)
            view.loaded_at = now
        except Exception as exc:  # the view stays as it was; the next request retries
            log.warning("device graph refresh failed", extra={"error_type": type(exc).__name__})
        finally:
            view.refreshing = False

    def _plan(
        self,
        entry: SubjectEntry,
        subject: str,
        signals: Signals | None,
        key_id: str | None,
        now: float,
    ) -> _Plan:
        """Which device this is and what must be written — without touching the database."""
        config = self._config
        if key_id is not None:
            known = entry.devices.get(key_id)
            plan = _Plan(key_id, known, new=known is None)
            if known is not None and signals is not None and known.digest != signals.digest:
                if (
                    known.features
                    and self._matcher.score(known.features, signals.features)
                    < self._matcher.threshold
                ):
                    plan.anomalies.append("key:signals_mismatch")  # keep the reference as it was
                else:
                    plan.drift = True
        else:
            assert signals is not None
            device_id = entry.memo.get(signals.signal_id)
            if device_id is None or device_id not in entry.devices:
                device_id = self._match(entry, signals)
            known = entry.devices.get(device_id) if device_id else None
            plan = _Plan(device_id or signals.signal_id, known, new=known is None)
            if known is not None:
                if known.key_bound:
                    plan.anomalies.append("key:proof_missing")
                plan.drift = known.digest != signals.digest  # any change, stable or not
                if not plan.drift:
                    entry.remember(signals.signal_id, known.device_id)
        known = plan.known
        if known is not None and signals is not None and signals.kind == "mobile":
            before, after = known.features.get("sim"), signals.features.get("sim")
            plan.sim_changed = (
                plan.drift and before is not None and after is not None and before != after
            )
        if known is not None:
            plan.touch = not plan.drift and now - known.last_seen >= config.touch_seconds
            changed = known.sim_changed_at
            if plan.sim_changed or (
                changed is not None and now - changed <= config.sim_change_window
            ):
                plan.anomalies.append("sim:changed")
        recent = entry.new_since(now - config.hop_window)
        if recent + (1 if plan.new else 0) >= config.hop_new_devices:
            plan.anomalies.append("graph:device_hopping")
        return plan

    def _match(self, entry: SubjectEntry, signals: Signals) -> str | None:
        for known in entry.devices.values():
            if known.signal_id == signals.signal_id and known.kind == signals.kind:
                return known.device_id
        candidates = (
            (k.device_id, k.features) for k in entry.devices.values() if k.kind == signals.kind
        )
        best = self._matcher.best(signals.features, candidates)
        return None if best is None else best[0]

    async def _apply(
        self, entry: SubjectEntry, subject: str, signals: Signals | None, plan: _Plan, now: float
    ) -> bool:
        """Write what `plan` needs and mirror it into `entry`; False on a lost insert race."""
        registry = self._registry
        entry.version += 1
        if plan.new:
            device = Device(
                subject=subject,
                device_id=plan.device_id,
                kind=signals.kind if signals else "unknown",
                label=signals.label if signals else "Device with a bound key",
                name="",
                state="known",
                key_bound=plan.device_id.startswith("jkt:"),
                signal_id=signals.signal_id if signals else None,
                graph_key=signals.graph_key if signals else None,
                features=dict(signals.features) if signals else {},
                first_seen=now,
                last_seen=now,
                bound_at=None,
                revoked_at=None,
                sim_changed_at=None,
            )
            if not await registry.add_device(device):
                return False
            plan.known = Known.of(device)
            plan.known.known_digest = signals.digest if signals else None
            entry.devices[device.device_id] = plan.known
        elif plan.drift and plan.known is not None and signals is not None:
            known = plan.known
            sim_at = now if plan.sim_changed else known.sim_changed_at
            await registry.update_signals(
                subject,
                known.device_id,
                features=signals.features,
                signal_id=signals.signal_id,
                graph_key=signals.graph_key,
                sim_changed_at=sim_at,
                now=now,
            )
            known.features, known.signal_id, known.graph_key = (
                dict(signals.features),
                signals.signal_id,
                signals.graph_key,
            )
            known.known_digest = signals.digest
            known.sim_changed_at, known.last_seen = sim_at, now
        elif plan.touch and plan.known is not None:
            await registry.touch(subject, plan.known.device_id, now)
            plan.known.last_seen = now
        if signals is not None and plan.known is not None:
            entry.remember(signals.signal_id, plan.known.device_id)
        return True

    # -- other processes' changes -------------------------------------------------------------

    async def sync_changes(self) -> int:
        """Drop cached subjects whose bindings another process changed; return how many."""
        now = self._clock()
        changes = await self._registry.changes_since(max(0.0, self._sync_mark - SYNC_OVERLAP))
        evicted = 0
        for audit_id, subject, at in changes:
            self._sync_mark = max(self._sync_mark, at)
            if audit_id not in self._synced:
                self._synced[audit_id] = at
                self.evict(subject)
                evicted += 1
        horizon = now - 2 * SYNC_OVERLAP
        for audit_id in [a for a, at in self._synced.items() if at < horizon]:
            del self._synced[audit_id]
        return evicted

    async def start(self) -> None:
        """Run `sync_changes` every `DeviceConfig.sync_seconds` until `close`."""
        if self._sync_task is None:
            self._sync_task = asyncio.create_task(self._sync_loop())

    async def _sync_loop(self) -> None:
        while True:
            await asyncio.sleep(self._config.sync_seconds)
            try:
                await self.sync_changes()
            except Exception as exc:  # unknown staleness: forget everything cached
                self._subjects.clear()
                log.warning("device change sync failed", extra={"error_type": type(exc).__name__})

    async def close(self) -> None:
        """Stop the sync loop and the background reloads (the registry's queued writes
        are flushed by `DeviceRegistry.close`)."""
        task, self._sync_task = self._sync_task, None
        tasks = [*self._background, *([task] if task is not None else [])]
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t
