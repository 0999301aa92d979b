"""Each risk signal as a pure function: facts in, ``(reason, points)`` out.

Points are a configured weight times a strength in 0..1; `combine` turns them
into one 0-100 score with a noisy-OR, ``100 * (1 - prod(1 - p_i / 100))``: independent
evidence accumulates, no signal can push the score past 100, and one signal
at weight W alone gives exactly W. Reasons come out strongest first.
"""

from __future__ import annotations

import math

from device_fingerprint.assessment import DeviceAssessment, TrustLevel
from risk.assessment import RiskAssessment
from risk.config import (
    AmountConfig,
    DeviceWeights,
    GeoConfig,
    HourConfig,
    KeystrokeConfig,
    RateConfig,
)
from risk.geo import GeoLocation, haversine_km
from risk.profile import HOURS, SubjectProfile
from risk.store import LastAccess, Touch

__all__ = [
    "MAX_REASONS",
    "Signals",
    "amount_signal",
    "band",
    "combine",
    "device_signals",
    "geo_signals",
    "hour_of",
    "hour_signal",
    "keystroke_signal",
    "ramp",
    "rate_signals",
]

Signals = list[tuple[str, float]]

MAX_REASONS = 32
"""The policy input carries at most 32 risk reasons (``policy/schema/input-v1.json``)."""

_LN_MAD_TO_SIGMA = 1.4826
"""MAD * 1.4826 estimates the standard deviation of a normal distribution (robust z-score)."""
_MIN_LOG_SPREAD = 0.25
"""Floor of the amount spread in natural-log units (±28 %), for very regular payers."""


def ramp(value: float, start: float) -> float:
    """0 below `start`, ½ at it, full at twice it."""
    return 0.0 if value < start else min(1.0, value / (2.0 * start))


def band(value: float, start: float, full: float) -> float:
    """0 below `start`, ½ at it, full at `full`."""
    if value < start:
        return 0.0
    return min(1.0, 0.5 + 0.5 * (value - start) / (full - start))


def _add(out: Signals, reason: str, weight: float, strength: float = 1.0) -> None:
    points = weight * strength
    if points > 0.0:
        out.append((reason, points))


def device_signals(
    device: DeviceAssessment, has_subject: bool, weights: DeviceWeights, out: Signals
) -> None:
    """Score the device verdict as given; device facts are `device_fingerprint`'s job."""
    if device.device_id is None:
        _add(out, "device:unidentified", weights.unidentified)
    if device.trust is TrustLevel.SUSPICIOUS:
        _add(out, "device:suspicious", weights.suspicious)
    elif device.trust is TrustLevel.NEW and has_subject:
        _add(out, "device:new", weights.new)
    for anomaly in dict.fromkeys(device.anomalies):
        _add(out, f"device:{anomaly}", weights.anomaly_weight(anomaly))


def rate_signals(touch: Touch, has_subject: bool, rate: RateConfig, out: Signals) -> None:
    if has_subject:
        _add(out, "rate:subject_burst", rate.burst, ramp(touch.subject_rate, rate.subject_burst))
        _add(
            out,
            "auth:failure_streak",
            rate.failure_streak,
            ramp(touch.subject_failures, rate.subject_failures),
        )
    _add(out, "rate:address_burst", rate.burst, ramp(touch.address_rate, rate.ip_burst))
    _add(
        out,
        "auth:address_failures",
        rate.ip_failure_burst,
        ramp(touch.address_failures, rate.ip_failures),
    )


def geo_signals(
    location: GeoLocation | None,
    previous: LastAccess | None,
    at: float,
    profile: SubjectProfile | None,
    geo: GeoConfig,
    out: Signals,
) -> None:
    """New country/region against learned places; travel against the previous access."""
    if location is None:
        _add(out, "geo:unlocated", geo.unlocated)
        return
    if profile is not None and profile.countries:
        if location.country not in profile.countries:
            _add(out, "geo:new_country", geo.new_country)
        elif location.region_key not in profile.regions:
            _add(out, "geo:new_region", geo.new_region)
    if previous is None or location.lat is None or location.lon is None:
        return
    distance = haversine_km(previous.lat, previous.lon, location.lat, location.lon)
    if distance < max(geo.min_distance_km, 1e-9):
        return
    hours = abs(at - previous.at) / 3600.0
    if hours == 0.0 or distance / hours > geo.max_speed_kmh:
        _add(out, "travel:impossible", geo.impossible_travel)


def hour_of(at: float, hour: HourConfig) -> int:
    return int(((at + hour.utc_offset_minutes * 60) % 86_400) // 3600) % HOURS


def hour_signal(
    local_hour: int, profile: SubjectProfile | None, hour: HourConfig, out: Signals
) -> None:
    """An hour (with its two neighbours) rarely seen in this subject's learned sessions:
    half strength just under `rare_share`, full strength for a never-seen hour."""
    if profile is None:
        return
    counts = profile.hours
    total = sum(counts)
    if total < hour.min_history:
        return
    near = counts[local_hour - 1] + counts[local_hour] + counts[(local_hour + 1) % HOURS]
    share = near / total
    if share < hour.rare_share:
        _add(out, "hour:unusual", hour.unusual, 1.0 - 0.5 * share / hour.rare_share)


def amount_signal(
    operation: str | None,
    amount: float | None,
    profile: SubjectProfile | None,
    cfg: AmountConfig,
    out: Signals,
) -> None:
    """Robust z-score of log(1 + amount) against the subject's amounts for this operation."""
    if operation is None or amount is None:
        return
    stats = profile.amount_stats(operation) if profile is not None else None
    if stats is None or len(stats.amounts) < cfg.min_history:
        if amount >= cfg.no_history_amount:
            _add(out, "amount:no_history", cfg.no_history)
        return
    spread = max(_LN_MAD_TO_SIGMA * stats.log_mad, _MIN_LOG_SPREAD)
    z = (math.log1p(amount) - stats.log_median) / spread
    _add(out, "amount:unusual", cfg.unusual, band(z, cfg.z_threshold, cfg.z_full))


def keystroke_signal(
    sample: tuple[float, ...] | None,
    operation: str | None,
    profile: SubjectProfile | None,
    cfg: KeystrokeConfig,
    out: Signals,
) -> float | None:
    """Scaled-Manhattan distance to the enrolled rhythm; returns it (None if not compared)."""
    model = profile.keystroke_model if profile is not None else None
    if model is None:
        return None
    if sample is None:
        if operation is not None:
            _add(out, "keystrokes:missing", cfg.missing)
        return None
    if len(sample) != len(model.means):
        _add(out, "keystrokes:shape", cfg.shape)
        return None
    distance = model.distance(sample, cfg.feature_cap)
    _add(out, "keystrokes:mismatch", cfg.mismatch, band(distance, cfg.threshold, cfg.full))
    return distance


def combine(signals: Signals) -> RiskAssessment:
    keep = 1.0
    for _, points in signals:
        keep *= 1.0 - min(points, 100.0) / 100.0
    score = max(0, min(100, math.floor(100.0 * (1.0 - keep) + 0.5)))  # half rounds up
    ordered = sorted(signals, key=lambda s: (-s[1], s[0]))
    reasons = tuple(dict.fromkeys(reason for reason, _ in ordered))[:MAX_REASONS]
    return RiskAssessment(score, reasons)
