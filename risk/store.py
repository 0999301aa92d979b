"""Where the scorer keeps per-subject and per-address state: one Protocol, two stores.

`MemoryRiskStore` (the embedded default) keeps everything in-process, bounded:
least-recently-used eviction over subjects and over addresses, bounded
history inside each. `risk.redis_store.RedisRiskStore` keeps the same state
in Redis for many edge nodes. Both run the same test suite
(``tests/risk/test_store.py``).

Time is the observation's own clock (``at``), not the store's: windows and
streak lapses are computed from it, so the two stores agree and a replayed
scenario is deterministic. Request counts use a sliding window estimated from
two fixed buckets (the current and the previous one, weighted by overlap).
"""

from __future__ import annotations

import math
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from risk.config import ProfileBounds, RateConfig
from risk.profile import PendingEvent, SubjectProfile

__all__ = [
    "LastAccess",
    "MemoryRiskStore",
    "RiskStateStore",
    "StoreError",
    "Touch",
    "sliding_count",
]


class StoreError(RuntimeError):
    """The state store failed or holds malformed state; the scorer fails closed."""


@dataclass(frozen=True, slots=True)
class LastAccess:
    """The previous located access of a subject (for impossible travel)."""

    at: float
    lat: float
    lon: float


@dataclass(frozen=True, slots=True)
class Touch:
    """State read while counting one request."""

    profile: SubjectProfile | None
    previous: LastAccess | None
    subject_rate: float
    """Requests by this subject in the burst window, this one included."""
    subject_failures: int
    """Current failed-authentication streak of this subject."""
    address_rate: float
    address_failures: float
    """Failures from this address within the failure window."""


class RiskStateStore(Protocol):
    async def touch(
        self, subject: str | None, address: str, at: float, access: LastAccess | None
    ) -> Touch:
        """Count one request, swap in `access` as the last located one, read the rest."""
        ...

    async def add_pending(self, subject: str, event: PendingEvent) -> None:
        """Remember what this request would teach (bounded; oldest drop)."""
        ...

    async def take_pending(self, subject: str) -> tuple[PendingEvent, ...]:
        """Atomically read and clear the subject's pending events."""
        ...

    async def update_profile(
        self, subject: str, change: Callable[[SubjectProfile | None], SubjectProfile]
    ) -> SubjectProfile:
        """Apply `change` atomically (concurrent updates are not lost)."""
        ...

    async def record_failure(self, subject: str | None, address: str | None, at: float) -> None: ...

    async def clear_failures(self, subject: str) -> None: ...

    async def forget(self, subject: str) -> None:
        """Drop everything known about a subject (erasure requests, tests)."""
        ...

    async def close(self) -> None: ...


def sliding_count(window: float, at: float, bucket: int, current: float, previous: float) -> float:
    """Estimated events in ``(at - window, at]`` from two fixed buckets of width `window`."""
    into = at / window - bucket
    return current + previous * min(1.0, max(0.0, 1.0 - into))


class _Window:
    """Two fixed buckets of one counter."""

    __slots__ = ("bucket", "current", "previous")

    def __init__(self) -> None:
        self.bucket = -(2**62)
        self.current = 0
        self.previous = 0

    def _roll(self, bucket: int) -> None:
        if bucket > self.bucket:
            self.previous = self.current if bucket == self.bucket + 1 else 0
            self.current = 0
            self.bucket = bucket

    def hit(self, window: float, at: float) -> float:
        self._roll(math.floor(at / window))
        self.current += 1  # a late event (older bucket) still counts, in the current one
        return sliding_count(window, at, self.bucket, self.current, self.previous)

    def read(self, window: float, at: float) -> float:
        bucket = math.floor(at / window)
        if bucket > self.bucket + 1:
            return 0.0
        if bucket == self.bucket + 1:
            return sliding_count(window, at, bucket, 0, self.current)
        return sliding_count(window, at, self.bucket, self.current, self.previous)


@dataclass(slots=True)
class _Subject:
    profile: SubjectProfile | None = None
    last: LastAccess | None = None
    requests: _Window = field(default_factory=_Window)
    streak: int = 0
    streak_at: float = -math.inf
    pending: deque[PendingEvent] = field(default_factory=deque)


@dataclass(slots=True)
class _Address:
    requests: _Window = field(default_factory=_Window)
    failures: _Window = field(default_factory=_Window)


class MemoryRiskStore:
    """In-process state, bounded by LRU over subjects and addresses."""

    def __init__(
        self,
        rate: RateConfig,
        bounds: ProfileBounds,
        *,
        max_subjects: int = 100_000,
        max_addresses: int = 100_000,
    ) -> None:
        self._rate = rate
        self._bounds = bounds
        self._subjects: OrderedDict[str, _Subject] = OrderedDict()
        self._addresses: OrderedDict[str, _Address] = OrderedDict()
        self._max_subjects = max_subjects
        self._max_addresses = max_addresses

    def __len__(self) -> int:
        return len(self._subjects)

    def _subject(self, subject: str) -> _Subject:
        slot = self._subjects.get(subject)
        if slot is None:
            slot = self._subjects[subject] = _Subject(
                pending=deque(maxlen=self._bounds.max_pending)
            )
            if len(self._subjects) > self._max_subjects:
                self._subjects.popitem(last=False)
        else:
            self._subjects.move_to_end(subject)
        return slot

    def _address(self, address: str) -> _Address:
        slot = self._addresses.get(address)
        if slot is None:
            slot = self._addresses[address] = _Address()
            if len(self._addresses) > self._max_addresses:
                self._addresses.popitem(last=False)
        else:
            self._addresses.move_to_end(address)
        return slot

    def _streak(self, slot: _Subject, at: float) -> int:
        lapsed = at - slot.streak_at > self._rate.failure_window_seconds
        return 0 if lapsed else slot.streak

    async def touch(
        self, subject: str | None, address: str, at: float, access: LastAccess | None
    ) -> Touch:
        rate = self._rate
        place = self._address(address)
        address_rate = place.requests.hit(rate.window_seconds, at)
        address_failures = place.failures.read(rate.failure_window_seconds, at)
        if subject is None:
            return Touch(None, None, 0.0, 0, address_rate, address_failures)
        slot = self._subject(subject)
        previous = slot.last
        if access is not None:
            slot.last = access
        return Touch(
            profile=slot.profile,
            previous=previous,
            subject_rate=slot.requests.hit(rate.window_seconds, at),
            subject_failures=self._streak(slot, at),
            address_rate=address_rate,
            address_failures=address_failures,
        )

    async def add_pending(self, subject: str, event: PendingEvent) -> None:
        self._subject(subject).pending.append(event)

    async def take_pending(self, subject: str) -> tuple[PendingEvent, ...]:
        slot = self._subjects.get(subject)
        if slot is None:
            return ()
        events = tuple(slot.pending)
        slot.pending.clear()
        return events

    async def update_profile(
        self, subject: str, change: Callable[[SubjectProfile | None], SubjectProfile]
    ) -> SubjectProfile:
        slot = self._subject(subject)
        slot.profile = change(slot.profile)
        return slot.profile

    async def record_failure(self, subject: str | None, address: str | None, at: float) -> None:
        if address is not None:
            self._address(address).failures.hit(self._rate.failure_window_seconds, at)
        if subject is not None:
            slot = self._subject(subject)
            slot.streak = self._streak(slot, at) + 1
            slot.streak_at = max(at, slot.streak_at)

    async def clear_failures(self, subject: str) -> None:
        slot = self._subjects.get(subject)
        if slot is not None:
            slot.streak = 0

    async def forget(self, subject: str) -> None:
        self._subjects.pop(subject, None)

    async def close(self) -> None:
        self._subjects.clear()
        self._addresses.clear()
