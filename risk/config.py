"""The risk scorer's configuration: every weight, threshold and bound.

One frozen dataclass (`RiskConfig`) with nested sections, in the shape
`ztgate.config.from_dict` loads from the ``[risk]`` table of the gateway's file
(unknown keys rejected, types checked, errors naming the dotted key). Each
section checks its own ranges in ``__post_init__`` and raises
``ValueError("<field>: <problem>")`` so the loader can name the key.

A weight is the points (0-100) a signal adds at full strength; signals combine
as a noisy-OR (`risk.signals`), so no sum of weights can exceed 100 and every
weight keeps its meaning ("this alone puts a request at W").
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Literal

__all__ = [
    "AmountConfig",
    "AnomalyWeight",
    "DeviceWeights",
    "GeoConfig",
    "HourConfig",
    "KeystrokeConfig",
    "ProfileBounds",
    "RateConfig",
    "RiskConfig",
    "StoreConfig",
]


def _check_points(section: object, *names: str) -> None:
    """Each named field is a weight: 0..100 points."""
    for name in names:
        value = getattr(section, name)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"{name}: must be a number")
        if not 0.0 <= value <= 100.0:  # also false for NaN
            raise ValueError(f"{name}: must be 0 to 100 points")


def _positive(name: str, value: float) -> None:
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name}: must be a positive number")


@dataclass(frozen=True)
class AnomalyWeight:
    """Points for device anomalies whose name starts with `prefix` (longest prefix wins)."""

    prefix: str
    weight: float

    def __post_init__(self) -> None:
        if not self.prefix or len(self.prefix) > 64:
            raise ValueError("prefix: must be 1 to 64 characters")
        _check_points(self, "weight")


def _default_anomalies() -> tuple[AnomalyWeight, ...]:
    """Weights for `device_fingerprint`'s anomaly vocabulary (its consistency checks,
    collector tells, key and graph checks)."""
    return (
        AnomalyWeight("automation:", 90.0),
        AnomalyWeight("automation:no_plugins", 50.0),
        AnomalyWeight("automation:no_languages", 50.0),
        AnomalyWeight("integrity:", 80.0),
        AnomalyWeight("render:software", 30.0),
        AnomalyWeight("tls:", 60.0),
        AnomalyWeight("tls:scripting_client", 90.0),
        AnomalyWeight("tls:ua_mismatch", 75.0),
        AnomalyWeight("hints:", 60.0),
        AnomalyWeight("ua:", 60.0),
        AnomalyWeight("tz:", 40.0),
        AnomalyWeight("tz:region_mismatch", 25.0),
        AnomalyWeight("key:", 60.0),
        AnomalyWeight("key:proof_missing", 85.0),
        AnomalyWeight("graph:", 60.0),
        AnomalyWeight("graph:shared_device", 85.0),
        AnomalyWeight("sim:changed", 50.0),
    )


@dataclass(frozen=True)
class DeviceWeights:
    """How much the device assessment counts (`DeviceAssessment` from `device_fingerprint`)."""

    new: float = 55.0
    """Trust level ``new``: never seen for this subject."""
    suspicious: float = 60.0
    """Trust level ``suspicious``, on top of whatever its anomalies add."""
    unidentified: float = 50.0
    """No device id at all (no usable signals)."""
    unknown_anomaly: float = 40.0
    """An anomaly no `anomalies` prefix names: unknown tells still count (fail closed)."""
    anomalies: tuple[AnomalyWeight, ...] = field(default_factory=_default_anomalies)

    def __post_init__(self) -> None:
        _check_points(self, "new", "suspicious", "unidentified", "unknown_anomaly")
        if len(self.anomalies) > 64:
            raise ValueError("anomalies: at most 64 entries")

    def anomaly_weight(self, anomaly: str) -> float:
        best: AnomalyWeight | None = None
        for entry in self.anomalies:
            if anomaly.startswith(entry.prefix) and (
                best is None or len(entry.prefix) > len(best.prefix)
            ):
                best = entry
        return self.unknown_anomaly if best is None else best.weight


@dataclass(frozen=True)
class GeoConfig:
    """Where an IP address is, and what counts as travel."""

    table: Path | None = None
    """CSV or JSON table CIDR → country, region, city, lat, lon (`risk.geo`)."""
    mmdb: Path | None = None
    """A MaxMind-format database (GeoIP2/GeoLite2 City layout) instead of `table`."""
    max_speed_kmh: float = 900.0
    """Faster than an airliner between consecutive accesses is impossible travel."""
    min_distance_km: float = 150.0
    """Shorter hops are geolocation noise, never travel."""
    impossible_travel: float = 45.0
    new_country: float = 50.0
    new_region: float = 30.0
    unlocated: float = 10.0
    """A located table exists but this address is in none of its ranges."""

    def __post_init__(self) -> None:
        _check_points(self, "impossible_travel", "new_country", "new_region", "unlocated")
        if self.table is not None and self.mmdb is not None:
            raise ValueError("mmdb: set either table or mmdb, not both")
        _positive("max_speed_kmh", self.max_speed_kmh)
        if not (math.isfinite(self.min_distance_km) and self.min_distance_km >= 0):
            raise ValueError("min_distance_km: must be zero or more")


@dataclass(frozen=True)
class HourConfig:
    utc_offset_minutes: int = 480
    """Clock the hour histogram uses (the bank's customers' zone; UTC+8 by default)."""
    min_history: int = 20
    """Accesses learned before the hour signal speaks."""
    rare_share: float = 0.02
    """An hour (smoothed with its neighbours) holding less than this share is unusual."""
    unusual: float = 25.0

    def __post_init__(self) -> None:
        _check_points(self, "unusual")
        if not -840 <= self.utc_offset_minutes <= 840:
            raise ValueError("utc_offset_minutes: must be -840 to 840")
        if self.min_history < 1:
            raise ValueError("min_history: must be at least 1")
        if not 0.0 < self.rare_share < 1.0:
            raise ValueError("rare_share: must be between 0 and 1")


@dataclass(frozen=True)
class RateConfig:
    """Request bursts and failed-authentication streaks."""

    window_seconds: float = 60.0
    subject_burst: int = 40
    """Requests per window by one subject at which the burst signal starts."""
    ip_burst: int = 120
    """Requests per window from one address at which the burst signal starts."""
    burst: float = 50.0
    failure_window_seconds: float = 900.0
    """A failed-authentication streak lapses this long after its last failure."""
    subject_failures: int = 3
    """Consecutive failures for one subject at which the streak signal starts."""
    ip_failures: int = 10
    """Failures from one address within the failure window (credential stuffing)."""
    failure_streak: float = 45.0
    ip_failure_burst: float = 70.0

    def __post_init__(self) -> None:
        _check_points(self, "burst", "failure_streak", "ip_failure_burst")
        _positive("window_seconds", self.window_seconds)
        _positive("failure_window_seconds", self.failure_window_seconds)
        for name in ("subject_burst", "ip_burst", "subject_failures", "ip_failures"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}: must be at least 1")


@dataclass(frozen=True)
class AmountConfig:
    """Sensitive operations: an amount far above this subject's history."""

    min_history: int = 5
    z_threshold: float = 3.0
    """Robust z-score (log amount, median and MAD) at which the signal starts."""
    z_full: float = 6.0
    """Robust z-score at which the signal has full strength."""
    unusual: float = 50.0
    no_history_amount: float = 50_000.0
    """Without enough history, amounts at or above this are flagged (`amount:no_history`)."""
    no_history: float = 25.0

    def __post_init__(self) -> None:
        _check_points(self, "unusual", "no_history")
        if self.min_history < 2:
            raise ValueError("min_history: must be at least 2")
        _positive("z_threshold", self.z_threshold)
        if not self.z_full > self.z_threshold:
            raise ValueError("z_full: must be above z_threshold")
        _positive("no_history_amount", self.no_history_amount)


@dataclass(frozen=True)
class KeystrokeConfig:
    """Scaled-Manhattan typing-rhythm detector (Killourhy & Maxion, DSN 2009)."""

    enrol_samples: int = 10
    """Samples learned (from low-risk sessions) before the detector speaks."""
    max_features: int = 64
    max_ms: float = 10_000.0
    """Any hold or flight time outside 0..max_ms is a malformed observation."""
    min_deviation_ms: float = 5.0
    """Floor of each feature's mean absolute deviation (no division by ~0)."""
    feature_cap: float = 4.0
    """Each feature's term is capped at this many deviations (0 = uncapped, as published)."""
    threshold: float = 1.75
    """Mean per-feature scaled distance at which the signal starts."""
    full: float = 2.25
    """Mean per-feature scaled distance at which the signal has full strength."""
    mismatch: float = 80.0
    shape: float = 40.0
    """The vector's length differs from the enrolled one (PIN length changed?)."""
    missing: float = 0.0
    """Enrolled subject, sensitive operation, no rhythm sent (web clients send none)."""

    def __post_init__(self) -> None:
        _check_points(self, "mismatch", "shape", "missing")
        if self.enrol_samples < 2:
            raise ValueError("enrol_samples: must be at least 2")
        if not 1 <= self.max_features <= 256:
            raise ValueError("max_features: must be 1 to 256")
        _positive("max_ms", self.max_ms)
        _positive("min_deviation_ms", self.min_deviation_ms)
        if not (math.isfinite(self.feature_cap) and self.feature_cap >= 0):
            raise ValueError("feature_cap: must be zero (no cap) or more")
        _positive("threshold", self.threshold)
        if not self.full > self.threshold:
            raise ValueError("full: must be above threshold")


@dataclass(frozen=True)
class ProfileBounds:
    """Bounded memory per subject; profiles learn only from low-risk sessions."""

    learn_max_score: int = 30
    """A session whose highest score exceeded this teaches nothing, whatever the caller says."""
    max_pending: int = 64
    """Observations kept for an open session (older ones drop)."""
    max_regions: int = 16
    max_countries: int = 8
    max_amounts: int = 50
    max_operations: int = 8
    max_keystroke_samples: int = 40
    hour_total_cap: int = 500
    """Hour counts halve past this total, so habits can change."""
    session_ttl_seconds: int = 86_400
    profile_ttl_seconds: int = 400 * 86_400

    def __post_init__(self) -> None:
        if not 0 <= self.learn_max_score <= 100:
            raise ValueError("learn_max_score: must be 0 to 100")
        for f in fields(self):
            if f.name != "learn_max_score" and getattr(self, f.name) < 1:
                raise ValueError(f"{f.name}: must be at least 1")


@dataclass(frozen=True)
class StoreConfig:
    backend: Literal["memory", "redis"] = "memory"
    redis_url: str = "redis://127.0.0.1:6379/0"
    key_prefix: str = "ztgate:risk:"
    max_subjects: int = 100_000
    """In-process store: subjects kept (least recently used drop first)."""
    max_addresses: int = 100_000
    """In-process store: client addresses with counters kept."""

    def __post_init__(self) -> None:
        if not self.key_prefix or len(self.key_prefix) > 64:
            raise ValueError("key_prefix: must be 1 to 64 characters")
        if not self.redis_url.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("redis_url: must be a redis://, rediss:// or unix:// URL")
        for name in ("max_subjects", "max_addresses"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}: must be at least 1")


@dataclass(frozen=True)
class RiskConfig:
    """The ``[risk]`` section."""

    device: DeviceWeights = field(default_factory=DeviceWeights)
    geo: GeoConfig = field(default_factory=GeoConfig)
    hour: HourConfig = field(default_factory=HourConfig)
    rate: RateConfig = field(default_factory=RateConfig)
    amount: AmountConfig = field(default_factory=AmountConfig)
    keystrokes: KeystrokeConfig = field(default_factory=KeystrokeConfig)
    profile: ProfileBounds = field(default_factory=ProfileBounds)
    store: StoreConfig = field(default_factory=StoreConfig)
