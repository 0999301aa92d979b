"""Typing rhythm of a PIN or password against the subject's enrolled profile.

The detector is the scaled-Manhattan one from Killourhy & Maxion, "Comparing
Anomaly-Detection Algorithms for Keystroke Dynamics" (DSN 2009), the best of
their fourteen on the CMU benchmark: from the enrolment samples take each
feature's mean ``μ_i`` and mean absolute deviation ``a_i``; a new vector ``x``
scores ``Σ |x_i - μ_i| / a_i``. We divide by the number of features so that
one threshold serves PINs and passwords of any length, and floor each
``a_i`` (`KeystrokeConfig.min_deviation_ms`) so that a very regular enrolment
cannot turn one millisecond into a huge distance. One departure from the paper,
configurable: each feature's term is capped (`KeystrokeConfig.feature_cap`,
0 = uncapped as in the paper), so that one hesitation between two digits — a
flight time two or three times the usual — cannot outweigh the other ten
features; an impostor differs in many features at once, a hesitating owner in
one.

Features are hold and flight times in milliseconds, in the SDK's order; the
vector is only ever compared with vectors of the same length.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from risk.config import KeystrokeConfig

__all__ = ["KeystrokeModel", "check_sample", "scaled_manhattan"]


def check_sample(sample: object, config: KeystrokeConfig) -> str | None:
    """Why `sample` is not a well-formed timing vector, or None when it is."""
    if not isinstance(sample, tuple):
        return "must be a tuple of numbers"
    if not 1 <= len(sample) <= config.max_features:
        return f"must hold 1 to {config.max_features} timings"
    for value in sample:
        if isinstance(value, bool) or not isinstance(value, int | float):
            return "must hold numbers"
        if not (math.isfinite(value) and 0.0 <= value <= config.max_ms):
            return f"timings must be 0 to {config.max_ms:g} ms"
    return None


@dataclass(frozen=True, slots=True)
class KeystrokeModel:
    """Per-feature mean and (floored) mean absolute deviation of the enrolment."""

    means: tuple[float, ...]
    deviations: tuple[float, ...]

    @classmethod
    def fit(cls, samples: Sequence[Sequence[float]], min_deviation: float) -> KeystrokeModel:
        """Fit to samples of one length (the caller filters by length)."""
        count = len(samples)
        width = len(samples[0])
        means = tuple(sum(s[i] for s in samples) / count for i in range(width))
        deviations = tuple(
            max(min_deviation, sum(abs(s[i] - means[i]) for s in samples) / count)
            for i in range(width)
        )
        return cls(means, deviations)

    def distance(self, sample: Sequence[float], cap: float = 0.0) -> float:
        return scaled_manhattan(sample, self.means, self.deviations, cap)


def scaled_manhattan(
    sample: Sequence[float],
    means: Sequence[float],
    deviations: Sequence[float],
    cap: float = 0.0,
) -> float:
    """Mean over features of ``|x_i - μ_i| / a_i``, each term at most `cap` (0: no cap)."""
    total = 0.0
    for x, mu, a in zip(sample, means, deviations, strict=True):
        term = abs(x - mu) / a
        total += min(term, cap) if cap > 0.0 else term
    return total / len(means)
