"""A subject's learned habits, and how a low-risk session teaches them.

Everything is bounded (`ProfileBounds`): 24 hour counts that halve past a cap,
the most recent countries and regions, the last amounts of a few operation
kinds, the last typing samples. Derived statistics (amount median/MAD, the
fitted keystroke model) are computed when the profile learns, not on every
request. `learn` is the only way a profile changes, and the scorer calls it only
for sessions that ended low risk (`RiskScorer.end_session`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from statistics import median
from typing import Any

from risk.config import KeystrokeConfig, ProfileBounds
from risk.keystrokes import KeystrokeModel

__all__ = ["AmountStats", "PendingEvent", "SubjectProfile", "learn"]

HOURS = 24


@dataclass(frozen=True, slots=True)
class PendingEvent:
    """What one scored request would teach the profile if its session ends low risk."""

    at: float
    score: int
    hour: int
    country: str | None = None
    region: str | None = None
    operation: str | None = None
    amount: float | None = None
    keystrokes: tuple[float, ...] | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "at": self.at,
            "score": self.score,
            "hour": self.hour,
            "country": self.country,
            "region": self.region,
            "operation": self.operation,
            "amount": self.amount,
            "keystrokes": list(self.keystrokes) if self.keystrokes is not None else None,
        }

    @classmethod
    def from_json(cls, doc: Any) -> PendingEvent:
        if not isinstance(doc, dict):
            raise ValueError("pending event: not an object")
        keys = doc.get("keystrokes")
        return cls(
            at=_number(doc.get("at"), "at"),
            score=int(_number(doc.get("score"), "score")),
            hour=int(_number(doc.get("hour"), "hour")) % HOURS,
            country=_optional_text(doc.get("country"), "country"),
            region=_optional_text(doc.get("region"), "region"),
            operation=_optional_text(doc.get("operation"), "operation"),
            amount=None if doc.get("amount") is None else _number(doc["amount"], "amount"),
            keystrokes=None if keys is None else _vector(keys, "keystrokes"),
        )


@dataclass(frozen=True, slots=True)
class AmountStats:
    """One operation kind's recent amounts and their robust statistics (natural log)."""

    operation: str
    amounts: tuple[float, ...]
    log_median: float
    log_mad: float

    @classmethod
    def of(cls, operation: str, amounts: tuple[float, ...]) -> AmountStats:
        logs = [math.log1p(a) for a in amounts]
        mid = median(logs)
        return cls(operation, amounts, mid, median(abs(x - mid) for x in logs))


@dataclass(frozen=True, slots=True)
class SubjectProfile:
    hours: tuple[int, ...] = (0,) * HOURS
    countries: tuple[str, ...] = ()
    """Most recently seen last."""
    regions: tuple[str, ...] = ()
    """``country/region`` keys, most recently seen last."""
    amounts: tuple[AmountStats, ...] = ()
    """Most recently used operation kind last."""
    keystroke_samples: tuple[tuple[float, ...], ...] = ()
    keystroke_model: KeystrokeModel | None = None
    sessions: int = 0
    """Low-risk sessions learned."""

    def amount_stats(self, operation: str) -> AmountStats | None:
        for stats in self.amounts:
            if stats.operation == operation:
                return stats
        return None

    def to_json(self) -> dict[str, Any]:
        return {
            "hours": list(self.hours),
            "countries": list(self.countries),
            "regions": list(self.regions),
            "amounts": {s.operation: list(s.amounts) for s in self.amounts},
            "keystrokes": [list(s) for s in self.keystroke_samples],
            "sessions": self.sessions,
        }

    @classmethod
    def from_json(cls, doc: Any, keys: KeystrokeConfig) -> SubjectProfile:
        """Rebuild (and re-derive) a stored profile; ValueError when it is malformed."""
        if not isinstance(doc, dict):
            raise ValueError("profile: not an object")
        hours = doc.get("hours")
        if not isinstance(hours, list) or len(hours) != HOURS:
            raise ValueError("profile: hours must be 24 counts")
        amounts = doc.get("amounts")
        if not isinstance(amounts, dict):
            raise ValueError("profile: amounts must be an object")
        samples = doc.get("keystrokes")
        if not isinstance(samples, list):
            raise ValueError("profile: keystrokes must be a list")
        vectors = tuple(_vector(s, "keystrokes") for s in samples)
        return cls(
            hours=tuple(int(_number(h, "hours")) for h in hours),
            countries=_texts(doc.get("countries"), "countries"),
            regions=_texts(doc.get("regions"), "regions"),
            amounts=tuple(
                AmountStats.of(_text(op, "amounts"), _vector(values, "amounts"))
                for op, values in amounts.items()
                if values
            ),
            keystroke_samples=vectors,
            keystroke_model=_fit(vectors, keys),
            sessions=int(_number(doc.get("sessions"), "sessions")),
        )


def _number(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{name}: not a finite number")
    return float(value)


def _text(value: Any, name: str) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{name}: not text")
    return value


def _optional_text(value: Any, name: str) -> str | None:
    return None if value is None else _text(value, name)


def _texts(value: Any, name: str) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise ValueError(f"{name}: not a list")
    return tuple(_text(v, name) for v in value)


def _vector(value: Any, name: str) -> tuple[float, ...]:
    if not isinstance(value, list):
        raise ValueError(f"{name}: not a list of numbers")
    return tuple(_number(v, name) for v in value)


def _recent(seen: tuple[str, ...], new: Iterable[str], bound: int) -> tuple[str, ...]:
    """Move `new` items to the recent end; keep the last `bound`."""
    items = list(seen)
    for item in new:
        if item in items:
            items.remove(item)
        items.append(item)
    return tuple(items[-bound:])


def _fit(samples: Sequence[tuple[float, ...]], keys: KeystrokeConfig) -> KeystrokeModel | None:
    if len(samples) < keys.enrol_samples:
        return None
    return KeystrokeModel.fit(samples, keys.min_deviation_ms)


def _learn_hours(
    hours: tuple[int, ...], events: Sequence[PendingEvent], cap: int
) -> tuple[int, ...]:
    counts = list(hours)
    for hour in {e.hour for e in events}:  # a session counts once per hour it touched
        counts[hour] += 1
    if sum(counts) > cap:
        counts = [c // 2 for c in counts]
    return tuple(counts)


def _learn_amounts(
    current: tuple[AmountStats, ...], events: Sequence[PendingEvent], bounds: ProfileBounds
) -> tuple[AmountStats, ...]:
    by_op = {s.operation: s.amounts for s in current}
    for event in events:
        if event.operation is None or event.amount is None:
            continue
        values = by_op.pop(event.operation, ())  # re-insert: most recently used last
        by_op[event.operation] = (*values, event.amount)[-bounds.max_amounts :]
    kept = list(by_op.items())[-bounds.max_operations :]
    unchanged = {s.operation: s for s in current}
    return tuple(
        unchanged[op]
        if op in unchanged and unchanged[op].amounts == values
        else AmountStats.of(op, values)
        for op, values in kept
    )


def _learn_keystrokes(
    samples: tuple[tuple[float, ...], ...],
    events: Sequence[PendingEvent],
    bounds: ProfileBounds,
) -> tuple[tuple[float, ...], ...]:
    learned = list(samples)
    for event in events:
        if event.keystrokes is None:
            continue
        if learned and len(learned[-1]) != len(event.keystrokes):
            learned = []  # the secret changed length: the old rhythm no longer applies
        learned.append(event.keystrokes)
    return tuple(learned[-bounds.max_keystroke_samples :])


def learn(
    profile: SubjectProfile | None,
    events: Sequence[PendingEvent],
    bounds: ProfileBounds,
    keys: KeystrokeConfig,
) -> SubjectProfile:
    """The profile after one low-risk session made of `events` (in arrival order)."""
    base = profile or SubjectProfile()
    samples = _learn_keystrokes(base.keystroke_samples, events, bounds)
    model = base.keystroke_model if samples == base.keystroke_samples else _fit(samples, keys)
    return replace(
        base,
        hours=_learn_hours(base.hours, events, bounds.hour_total_cap),
        countries=_recent(
            base.countries, (e.country for e in events if e.country), bounds.max_countries
        ),
        regions=_recent(base.regions, (e.region for e in events if e.region), bounds.max_regions),
        amounts=_learn_amounts(base.amounts, events, bounds),
        keystroke_samples=samples,
        keystroke_model=model,
        sessions=base.sessions + 1,
    )
