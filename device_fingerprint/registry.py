"""Devices per subject: binding, listing, renaming, revoking, with an audit trail.

SQL on `storage` (SQLite by default, PostgreSQL for a fleet); tables in
`device_fingerprint.registry_schema`. Two audiences:

* the customer and the bank (`bind`, `list_devices`, `rename`, `revoke`,
  `audit`) — every change is written with its audit row in one transaction;
* `DeviceAssessor`, which keeps what it reads in a per-process cache and writes
  only on first sightings, drift, hourly ``last_seen`` touches and shared-device
  sightings — *write-behind*: those calls only queue the write (coalesced per row)
  and return, and a background task writes the queue in one transaction every
  `DeviceConfig.write_behind_seconds`, or at once when `write_behind_max` are
  queued, and on `close` (issue 5, check 3: no database write on the request path).

Read-your-writes in this process: every read and every binding change first
flushes what concerns it (`subject_devices` the subject's queued writes, the
customer's and bank's operations everything), and `subjects_of` counts queued
sightings too. A crash loses at most the last interval's queued writes — first
sightings, drift, ``last_seen`` and sightings, never a binding or a revocation
(docs/device.md, "Write-behind"). A first sighting another process recorded
first wins (``ON CONFLICT DO NOTHING``); this process's cache keeps its own
copy until it reloads the subject.

Binding rules: only the customer binds, from the device being bound (the
`DeviceAssessment` of the current request names it), after an authentication of
at least `DeviceConfig.bind_min_acr`, never a ``suspicious`` device, and at most
`DeviceConfig.max_bound_devices` per subject — enforced under a per-subject lock
so concurrent binds cannot overshoot. Staff can rename and revoke, not bind.
Refusals raise `RegistryError` with a machine-readable ``code``.

Changes reach other processes' caches through `changes_since` (the audit table);
`on_change` callbacks reach this process's at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import secrets
import time
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from device_fingerprint.assessment import DeviceAssessment, TrustLevel
from device_fingerprint.config import DeviceConfig
from device_fingerprint.registry_schema import MIGRATIONS
from storage import Database, IntegrityViolation, Row, open_database

__all__ = [
    "Actor",
    "AuditEntry",
    "Device",
    "DeviceRegistry",
    "RegistryError",
    "open_registry",
]

log = logging.getLogger("ztgate.device.registry")
State = Literal["known", "bound", "revoked"]
MAX_NAME: Final = 64
MAX_REASON: Final = 200
PURGE_EVERY: Final = 200
_DEVICE_COLUMNS: Final = (
    "subject, device_id, kind, label, name, state, key_bound, signal_id, graph_key, features,"
    " first_seen, last_seen, bound_at, revoked_at, sim_changed_at"
)


class RegistryError(ValueError):
    """A refused registry operation; ``code`` is machine-readable (e.g. ``acr:insufficient``)."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


@dataclass(frozen=True, slots=True)
class Actor:
    """Who changes a binding: the customer (``id`` = their subject) or bank staff."""

    kind: Literal["customer", "staff"]
    id: str


@dataclass(frozen=True, slots=True)
class Device:
    subject: str
    device_id: str
    kind: str
    label: str
    name: str
    state: State
    key_bound: bool
    """The device id is a key thumbprint (``jkt:…``): possession is proven per request."""
    signal_id: str | None
    graph_key: str | None
    features: Mapping[str, Any]
    first_seen: float
    last_seen: float
    bound_at: float | None
    revoked_at: float | None
    sim_changed_at: float | None


@dataclass(frozen=True, slots=True)
class AuditEntry:
    audit_id: str
    at: float
    subject: str
    device_id: str
    action: Literal["bind", "rename", "revoke"]
    actor: Actor
    acr: str | None
    detail: Mapping[str, Any]


def _device(r: Row) -> Device:
    return Device(
        r[0], r[1], r[2], r[3], r[4], r[5], bool(r[6]), r[7], r[8], json.loads(r[9]),
        float(r[10]), float(r[11]), _opt(r[12]), _opt(r[13]), _opt(r[14]),
    )  # fmt: skip


def _columns(d: Device) -> tuple[Any, ...]:
    """`d` as the parameters of an insert of `_DEVICE_COLUMNS`."""
    return (
        d.subject, d.device_id, d.kind, d.label, d.name, d.state, int(d.key_bound),
        d.signal_id, d.graph_key, json.dumps(d.features, sort_keys=True), d.first_seen,
        d.last_seen, d.bound_at, d.revoked_at, d.sim_changed_at,
    )  # fmt: skip


def _opt(value: Any) -> float | None:
    return None if value is None else float(value)


def _clean_text(value: str, limit: int, code: str) -> str:
    """Printable text only (no control or format characters), 1..limit code points."""
    text = unicodedata.normalize("NFC", value).strip()
    if not 0 < len(text) <= limit or any(unicodedata.category(c)[0] == "C" for c in text):
        raise RegistryError(code)
    return text


@dataclass(slots=True)
class _Queue:
    """Writes not yet in the database, coalesced per row (the latest wins)."""

    inserts: dict[tuple[str, str], Device] = field(default_factory=dict)
    """(subject, device id) → a first sighting (later drift and touches folded in)."""
    updates: dict[tuple[str, str], tuple[str, str | None, str | None, float | None, float]] = field(
        default_factory=dict
    )
    """(subject, device id) → (features JSON, signal id, graph key, SIM changed, last seen)."""
    touches: dict[tuple[str, str], float] = field(default_factory=dict)
    """(subject, device id) → last seen."""
    sightings: dict[str, dict[str, tuple[float, float]]] = field(default_factory=dict)
    """graph key → subject → (first seen, last seen)."""
    subjects: set[str] = field(default_factory=set)
    """Subjects with queued device rows (reads of them flush first)."""
    size: int = 0

    def merge_older(self, older: _Queue) -> None:
        """Put back a batch that failed to write, under the writes queued since."""
        for key, device in older.inserts.items():
            self.inserts.setdefault(key, device)
        for key, update in older.updates.items():
            self.updates.setdefault(key, update)
        for key, at in older.touches.items():
            self.touches[key] = max(at, self.touches.get(key, at))
        for graph_key, seen in older.sightings.items():
            mine = self.sightings.setdefault(graph_key, {})
            for subject, (first, last) in seen.items():
                f, la = mine.get(subject, (first, last))
                mine[subject] = (min(first, f), max(last, la))
        self.subjects |= older.subjects
        self.size += older.size


class DeviceRegistry:
    def __init__(self, db: Database, config: DeviceConfig) -> None:
        self._db = db
        self._config = config
        self._listeners: list[Callable[[str], None]] = []
        self._writes = 0
        self.dialect = db.dialect
        self._queue = _Queue()
        self._inflight: _Queue | None = None
        self._flush_lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._writer: asyncio.Task[None] | None = None
        self._closed = False

    async def close(self) -> None:
        """Write what is queued, then close the database (once; later calls do nothing)."""
        if self._closed:
            return
        self._closed = True
        task, self._writer = self._writer, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        try:
            await self.flush()
        finally:
            await self._db.close()

    # -- write-behind ------------------------------------------------------------------------

    @property
    def queued(self) -> int:
        """Writes waiting for the next flush (coalesced rows)."""
        return self._queue.size

    async def flush(self) -> None:
        """Write everything queued so far in one transaction. On failure the batch is
        queued again (under newer writes) and the error raised — except a constraint
        violation, which no retry can cure: that batch is dropped (logged), so one bad
        row cannot block every later write."""
        async with self._flush_lock:
            batch = self._queue
            if not batch.size:
                return
            self._queue, self._inflight = _Queue(), batch
            try:
                await self._write(batch)
            except IntegrityViolation:
                log.error("device registry batch refused, dropped", extra={"rows": batch.size})
            except BaseException:
                self._queue.merge_older(batch)
                raise
            finally:
                self._inflight = None

    async def _write(self, batch: _Queue) -> None:
        sightings = [
            (graph_key, subject, first, last)
            for graph_key, seen in batch.sightings.items()
            for subject, (first, last) in seen.items()
        ]
        async with self._db.transaction() as tx:
            if batch.inserts:
                await tx.execute_many(
                    f"INSERT INTO device_devices ({_DEVICE_COLUMNS}) VALUES"  # noqa: S608
                    " ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)"
                    " ON CONFLICT (subject, device_id) DO NOTHING",
                    [_columns(d) for d in batch.inserts.values()],
                )
                await tx.execute_many(
                    "DELETE FROM device_devices WHERE subject = $1 AND state = 'known'"
                    " AND device_id NOT IN (SELECT device_id FROM device_devices"
                    " WHERE subject = $1 AND state = 'known' ORDER BY last_seen DESC LIMIT $2)",
                    [
                        (subject, self._config.max_known_devices)
                        for subject in {subject for subject, _ in batch.inserts}
                    ],
                )
            if batch.updates:
                await tx.execute_many(
                    "UPDATE device_devices SET features = $3, signal_id = $4, graph_key = $5,"
                    " sim_changed_at = $6, last_seen = $7 WHERE subject = $1 AND device_id = $2",
                    [(s, d, *update) for (s, d), update in batch.updates.items()],
                )
            if batch.touches:
                await tx.execute_many(
                    "UPDATE device_devices SET last_seen = $3 WHERE subject = $1"
                    " AND device_id = $2 AND last_seen < $3",
                    [(s, d, at) for (s, d), at in batch.touches.items()],
                )
            if sightings:
                await tx.execute_many(
                    "INSERT INTO device_sightings (graph_key, subject, first_seen, last_seen)"
                    " VALUES ($1, $2, $3, $4) ON CONFLICT (graph_key, subject)"
                    " DO UPDATE SET last_seen = excluded.last_seen"
                    " WHERE device_sightings.last_seen < excluded.last_seen",
                    sightings,
                )
                before, self._writes = self._writes, self._writes + len(sightings)
                if before // PURGE_EVERY != self._writes // PURGE_EVERY:
                    newest = max(last for *_, last in sightings)
                    await tx.execute(
                        "DELETE FROM device_sightings WHERE last_seen < $1",
                        newest - self._config.farm_window,
                    )

    async def _queued(self, subject: str | None = None) -> None:
        """After queueing: wake the writer when the queue is full (and wait for it when
        it is twice full: the database is not keeping up). After `close` nothing can
        be written any more: refused, so the assessor fails closed."""
        if self._closed:
            raise RuntimeError("device registry is closed")
        queue = self._queue
        queue.size += 1
        if subject is not None:
            queue.subjects.add(subject)
        if self._writer is None:
            self._writer = asyncio.create_task(self._write_loop())
        if queue.size >= self._config.write_behind_max:
            self._wake.set()
            if queue.size >= 2 * self._config.write_behind_max:
                await self.flush()

    async def _write_loop(self) -> None:
        interval = self._config.write_behind_seconds
        while True:
            with contextlib.suppress(TimeoutError):  # not wait_for: it can hold up cancel
                async with asyncio.timeout(interval):
                    await self._wake.wait()
            self._wake.clear()
            try:
                await self.flush()
            except Exception as exc:  # kept queued: the next pass retries
                log.warning(
                    "device registry flush failed", extra={"error_type": type(exc).__name__}
                )

    def _pending(self, subject: str) -> bool:
        inflight = self._inflight
        return subject in self._queue.subjects or (
            inflight is not None and subject in inflight.subjects
        )

    def on_change(self, callback: Callable[[str], None]) -> None:
        """Call `callback(subject)` after every binding change this process makes."""
        self._listeners.append(callback)

    def _changed(self, subject: str) -> None:
        for callback in self._listeners:
            callback(subject)

    # -- the customer's and the bank's operations ------------------------------------

    async def bind(
        self,
        subject: str,
        assessment: DeviceAssessment,
        *,
        actor: Actor,
        acr: str | None,
        amr: Sequence[str] = (),
        name: str,
        now: float | None = None,
    ) -> Device:
        """Bind the device that made the current request (`assessment`) to `subject`."""
        if actor.kind != "customer":
            raise RegistryError("actor:not_allowed")
        if actor.id != subject:
            raise RegistryError("actor:not_subject")
        if self._config.acr_rank(acr) < self._config.acr_rank(self._config.bind_min_acr):
            raise RegistryError("acr:insufficient")
        if assessment.device_id is None:
            raise RegistryError("device:unknown")
        if assessment.trust is TrustLevel.SUSPICIOUS:
            raise RegistryError("device:suspicious")
        label = _clean_text(name, MAX_NAME, "name:invalid")
        at = time.time() if now is None else now
        device_id = assessment.device_id
        await self.flush()  # the device's first sighting may still be queued
        async with self._db.transaction() as tx:
            if self.dialect == "postgresql":  # serialise binds of one subject (the limit)
                await tx.execute(
                    "SELECT 1 FROM device_devices WHERE subject = $1 FOR UPDATE", subject
                )
            rows = await tx.fetch(
                "SELECT state, (SELECT COUNT(*) FROM device_devices"
                " WHERE subject = $1 AND state = 'bound') FROM device_devices"
                " WHERE subject = $1 AND device_id = $2",
                subject,
                device_id,
            )
            if not rows:
                raise RegistryError("device:unknown")
            state, bound = rows[0]
            if state == "bound":
                raise RegistryError("device:already_bound")
            if int(bound) >= self._config.max_bound_devices:
                raise RegistryError("limit:bound_devices")
            await tx.execute(
                "UPDATE device_devices SET state = 'bound', name = $3, bound_at = $4,"
                " revoked_at = NULL WHERE subject = $1 AND device_id = $2",
                subject,
                device_id,
                label,
                at,
            )
            await self._audit(
                tx, at, subject, device_id, "bind", actor, acr, {"name": label, "amr": sorted(amr)}
            )
            [row] = await tx.fetch(
                f"SELECT {_DEVICE_COLUMNS} FROM device_devices"  # noqa: S608
                " WHERE subject = $1 AND device_id = $2",
                subject,
                device_id,
            )
        self._changed(subject)
        return _device(row)

    async def rename(
        self, subject: str, device_id: str, name: str, *, actor: Actor, now: float | None = None
    ) -> None:
        self._may_manage(subject, actor)
        label = _clean_text(name, MAX_NAME, "name:invalid")
        at = time.time() if now is None else now
        await self.flush()
        async with self._db.transaction() as tx:
            changed = await tx.execute(
                "UPDATE device_devices SET name = $3 WHERE subject = $1 AND device_id = $2",
                subject,
                device_id,
                label,
            )
            if not changed:
                raise RegistryError("device:unknown")
            await self._audit(tx, at, subject, device_id, "rename", actor, None, {"name": label})
        self._changed(subject)

    async def revoke(
        self,
        subject: str,
        device_id: str,
        *,
        actor: Actor,
        reason: str = "",
        now: float | None = None,
    ) -> bool:
        """Revoke a binding (or disown a known device); False if it was already revoked.
        Effective in this process for the very next request."""
        self._may_manage(subject, actor)
        why = _clean_text(reason, MAX_REASON, "reason:invalid") if reason.strip() else ""
        at = time.time() if now is None else now
        await self.flush()
        async with self._db.transaction() as tx:
            changed = await tx.execute(
                "UPDATE device_devices SET state = 'revoked', revoked_at = $3"
                " WHERE subject = $1 AND device_id = $2 AND state <> 'revoked'",
                subject,
                device_id,
                at,
            )
            if not changed:
                found = await tx.fetch(
                    "SELECT 1 FROM device_devices WHERE subject = $1 AND device_id = $2",
                    subject,
                    device_id,
                )
                if not found:
                    raise RegistryError("device:unknown")
                return False
            await self._audit(tx, at, subject, device_id, "revoke", actor, None, {"reason": why})
        self._changed(subject)
        return True

    async def list_devices(self, subject: str) -> list[Device]:
        await self.flush()
        rows = await self._db.fetch(
            f"SELECT {_DEVICE_COLUMNS} FROM device_devices WHERE subject = $1"  # noqa: S608
            " ORDER BY last_seen DESC, device_id",
            subject,
        )
        return [_device(r) for r in rows]

    async def audit(self, subject: str) -> list[AuditEntry]:
        rows = await self._db.fetch(
            "SELECT audit_id, at, subject, device_id, action, actor_kind, actor_id, acr, detail"
            " FROM device_audit WHERE subject = $1 ORDER BY at, audit_id",
            subject,
        )
        return [
            AuditEntry(
                r[0], float(r[1]), r[2], r[3], r[4], Actor(r[5], r[6]), r[7], json.loads(r[8])
            )
            for r in rows
        ]

    @staticmethod
    def _may_manage(subject: str, actor: Actor) -> None:
        if actor.kind == "customer" and actor.id != subject:
            raise RegistryError("actor:not_subject")
        if not actor.id:
            raise RegistryError("actor:invalid")

    @staticmethod
    async def _audit(
        tx: Any,
        at: float,
        subject: str,
        device_id: str,
        action: str,
        actor: Actor,
        acr: str | None,
        detail: Mapping[str, Any],
    ) -> None:
        await tx.execute(
            "INSERT INTO device_audit (audit_id, at, subject, device_id, action, actor_kind,"
            " actor_id, acr, detail) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            secrets.token_hex(16),
            at,
            subject,
            device_id,
            action,
            actor.kind,
            actor.id,
            acr,
            json.dumps(detail, ensure_ascii=False, sort_keys=True),
        )

    # -- what the assessor reads and writes ------------------------------------------

    async def subject_devices(self, subject: str, now: float) -> tuple[list[Device], int]:
        """The subject's devices (`add_device` keeps at most `max_known_devices` unbound
        ones), and how many it first used within `DeviceConfig.hop_window`. Writes queued
        for the subject are flushed first."""
        if self._pending(subject):
            await self.flush()
        rows = await self._db.fetch(
            f"SELECT {_DEVICE_COLUMNS} FROM device_devices WHERE subject = $1",  # noqa: S608
            subject,
        )
        devices = [_device(r) for r in rows]
        since = now - self._config.hop_window
        return devices, sum(1 for d in devices if d.first_seen >= since)

    async def add_device(self, device: Device) -> bool:
        """Queue a first sighting (write-behind); False if this process has one queued for
        the same row already. Forgets the subject's least recently seen known devices
        beyond `max_known_devices` when written."""
        key = (device.subject, device.device_id)
        if key in self._queue.inserts:
            return False
        self._queue.inserts[key] = device
        await self._queued(device.subject)
        return True

    async def update_signals(
        self,
        subject: str,
        device_id: str,
        *,
        features: Mapping[str, Any],
        signal_id: str | None,
        graph_key: str | None,
        sim_changed_at: float | None,
        now: float,
    ) -> None:
        """Drift: the device's latest features become its reference (write-behind)."""
        key = (subject, device_id)
        queue = self._queue
        queue.touches.pop(key, None)
        added = queue.inserts.get(key)
        if added is not None:
            queue.inserts[key] = dataclasses.replace(
                added,
                features=dict(features),
                signal_id=signal_id,
                graph_key=graph_key,
                sim_changed_at=sim_changed_at,
                last_seen=now,
            )
            return
        text = json.dumps(features, sort_keys=True)
        fresh = key not in queue.updates
        queue.updates[key] = (text, signal_id, graph_key, sim_changed_at, now)
        if fresh:
            await self._queued(subject)

    async def touch(self, subject: str, device_id: str, now: float) -> None:
        """``last_seen`` (write-behind; never moves back)."""
        key = (subject, device_id)
        queue = self._queue
        added = queue.inserts.get(key)
        if added is not None:
            if now > added.last_seen:
                queue.inserts[key] = dataclasses.replace(added, last_seen=now)
            return
        update = queue.updates.get(key)
        if update is not None:
            if now > update[4]:
                queue.updates[key] = (*update[:4], now)
            return
        before = queue.touches.get(key)
        queue.touches[key] = now if before is None else max(before, now)
        if before is None:
            await self._queued(subject)

    async def sight(self, graph_key: str, subject: str, now: float) -> int:
        """Record that `subject` used the device `graph_key` (write-behind); return how
        many distinct subjects used it within `DeviceConfig.farm_window`, this one and
        the queued sightings included."""
        await self.record_sighting(graph_key, subject, now)
        return await self.subjects_of(graph_key, now)

    async def record_sighting(self, graph_key: str, subject: str, now: float) -> None:
        """Queue the sighting (write-behind); no database call unless the queue is full."""
        seen = self._queue.sightings.setdefault(graph_key, {})
        before = seen.get(subject)
        seen[subject] = (now, now) if before is None else (before[0], max(before[1], now))
        if before is None:
            await self._queued()

    def queued_sightings(self, graph_key: str) -> dict[str, float]:
        """subject → last seen, of the sightings of `graph_key` not yet written."""
        out: dict[str, float] = {}
        for queue in (self._inflight, self._queue):
            if queue is not None:
                for subject, (_, last) in queue.sightings.get(graph_key, {}).items():
                    out[subject] = max(last, out.get(subject, last))
        return out

    async def subjects_seen(self, graph_key: str, now: float) -> dict[str, float]:
        """subject → last seen, of the subjects that used `graph_key` within
        `DeviceConfig.farm_window` (queued sightings included)."""
        since = now - self._config.farm_window
        rows = await self._db.fetch(
            "SELECT subject, last_seen FROM device_sightings"
            " WHERE graph_key = $1 AND last_seen >= $2",
            graph_key,
            since,
        )
        seen = {r[0]: float(r[1]) for r in rows}
        for subject, last in self.queued_sightings(graph_key).items():
            if last >= since and last > seen.get(subject, -1.0):
                seen[subject] = last
        return seen

    async def subjects_of(self, graph_key: str, now: float) -> int:
        return len(await self.subjects_seen(graph_key, now))

    async def changes_since(self, since: float) -> list[tuple[str, str, float]]:
        """(audit_id, subject, at) of binding changes at or after `since`."""
        rows = await self._db.fetch(
            "SELECT audit_id, subject, at FROM device_audit WHERE at >= $1 ORDER BY at",
            since,
        )
        return [(r[0], r[1], float(r[2])) for r in rows]


async def open_registry(
    url: str, config: DeviceConfig, *, schema: str | None = None
) -> DeviceRegistry:
    """Open (and migrate) the registry at `url`: ``sqlite://…`` or ``postgresql://…``."""
    return DeviceRegistry(await open_database(url, MIGRATIONS, schema=schema), config)
