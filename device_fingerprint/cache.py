"""The assessor's per-process memory: bounded LRU maps and what they hold per subject.

Nothing here talks to the database; `device_fingerprint.assessor` fills and
invalidates it. All maps are bounded (least recently used entries go first), so
a flood of new payloads, subjects or devices costs memory proportional to the
configured sizes, not to the traffic.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from device_fingerprint.registry import Device
from device_fingerprint.signals import features_digest

__all__ = ["LRU", "GraphView", "Known", "SubjectEntry"]

K = TypeVar("K")
V = TypeVar("V")
MEMO_MAX = 64
"""Distinct fingerprints remembered per subject before the memo starts over."""


class LRU(Generic[K, V]):
    """A dict that forgets its least recently used keys beyond `capacity`."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._data: OrderedDict[K, V] = OrderedDict()

    def get(self, key: K) -> V | None:
        value = self._data.get(key)
        if value is not None:
            self._data.move_to_end(key)
        return value

    def put(self, key: K, value: V) -> None:
        self._data[key] = value
        self._data.move_to_end(key)
        while len(self._data) > self.capacity:
            self._data.popitem(last=False)

    def pop(self, key: K) -> None:
        self._data.pop(key, None)

    def clear(self) -> None:
        self._data.clear()

    def __len__(self) -> int:
        return len(self._data)


@dataclass(slots=True)
class Known:
    """One of the subject's devices as this process last read or wrote it."""

    device_id: str
    kind: str
    state: str
    key_bound: bool
    features: dict[str, Any]
    signal_id: str | None
    graph_key: str | None
    last_seen: float
    sim_changed_at: float | None
    first_seen: float
    known_digest: str | None = None
    """`digest`, once computed or known."""

    @property
    def digest(self) -> str:
        """`signals.features_digest` of `features`: drift is a different digest. Computed
        when first compared — not at load, where most of a subject's devices are unused."""
        if self.known_digest is None:
            self.known_digest = features_digest(self.features)
        return self.known_digest

    @classmethod
    def of(cls, d: Device) -> Known:
        return cls(
            d.device_id, d.kind, d.state, d.key_bound, dict(d.features), d.signal_id,
            d.graph_key, d.last_seen, d.sim_changed_at, d.first_seen,
        )  # fmt: skip


@dataclass(slots=True)
class SubjectEntry:
    devices: dict[str, Known]
    loaded_at: float
    memo: dict[str, str] = field(default_factory=dict)
    """signal id → device id: fingerprints already resolved for this subject."""
    sighted: dict[str, float] = field(default_factory=dict)
    """graph key → when this process last recorded the subject's sighting of it."""
    reloading: bool = False
    """A background reload of this subject is under way (`cache_ttl` passed)."""
    version: int = 0
    """Bumped by every change a request makes to `devices` (a reload read before it is
    dropped)."""

    def new_since(self, since: float) -> int:
        """Devices first seen at or after `since` (device hopping)."""
        return sum(1 for k in self.devices.values() if k.first_seen >= since)

    def remember(self, signal_id: str, device_id: str) -> None:
        if len(self.memo) >= MEMO_MAX:
            self.memo.clear()
        self.memo[signal_id] = device_id


@dataclass(slots=True)
class GraphView:
    """One shared-device graph key as this process knows it: who used it and when —
    the database's view as of `loaded_at`, plus this process's sightings since."""

    subjects: dict[str, float]
    """subject → last seen."""
    loaded_at: float
    """When the database's view was last merged in (-inf: never)."""
    refreshing: bool = False

    def count(self, since: float) -> int:
        return sum(1 for at in self.subjects.values() if at >= since)

    def merge(self, seen: dict[str, float], since: float) -> None:
        """Merge the database's view; forget subjects not seen since `since`."""
        for subject, at in seen.items():
            if at > self.subjects.get(subject, -math.inf):
                self.subjects[subject] = at
        for subject in [s for s, at in self.subjects.items() if at < since]:
            del self.subjects[subject]
