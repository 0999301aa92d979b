"""Is this fingerprint one of the subject's known devices? Weighted evidence, in bits.

Fellegi-Sunter record linkage: every signal present on both sides adds its
*agree* weight when it agrees and its (negative) *disagree* weight when it does
not (`DeviceConfig.web` / `.mobile`); partly agreeing signals (font sets, the
language list) add the weighted mix. Signals missing on either side add
nothing. Gates (kind, browser, OS, mobile, phone model) must be equal or the
score is -inf. A device matches at `DeviceConfig.match_threshold` bits or more;
among several, the highest score wins.

A changed canvas, WebGL or audio digest counts for nothing when the browser or
OS version moved too (`RENDERING`). "Agree" is tolerant where devices drift one
way: a browser, OS or app version may move *forward* (updates) — within
`browser_version_window` majors for browsers — but a downgrade disagrees (it is
rare on a real device and common when an attacker replays old signals).
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final, TypeVar

from device_fingerprint.config import DeviceConfig

__all__ = ["Matcher"]

K = TypeVar("K")
Compare = Callable[[Any, Any], float]
"""(recorded, observed) → agreement in [0, 1]."""

RENDERING: Final = frozenset({"canvas", "webgl", "audio"})
"""Outputs of the browser's rendering and audio stacks: they change with browser and OS
updates, so a change that comes with a version change is no evidence either way."""
GATES: Final[dict[str, tuple[str, ...]]] = {
    "web": ("browser", "os", "mobile"),
    "mobile": ("os", "model"),
}
_DIGITS: Final = re.compile(r"\d+")


def _exact(a: Any, b: Any) -> float:
    return 1.0 if a == b else 0.0


def _version(text: Any) -> tuple[int, ...]:
    return tuple(int(d[:9]) for d in _DIGITS.findall(str(text))[:4])


def _forward(a: Any, b: Any) -> float:
    """Same or newer version."""
    return 1.0 if _version(b) >= _version(a) else 0.0


def _jaccard(a: Any, b: Any) -> float:
    """Font sets: installing an app adds a few fonts (J ≈ 0.9+), another machine of the
    same OS differs in its extras (J ≈ 0.7-0.8). Scaled so J ≤ 0.7 is no agreement."""
    sa, sb = set(a), set(b)
    union = len(sa | sb)
    j = len(sa & sb) / union if union else 1.0
    return min(1.0, max(0.0, (j - 0.7) / 0.3))


def _languages(a: Any, b: Any) -> float:
    if a == b:
        return 1.0
    return 0.5 if a and b and a[0] == b[0] else 0.0


def _overlap(a: Any, b: Any) -> float:
    return 1.0 if set(a) & set(b) else 0.0


class Matcher:
    """Scores fingerprints with one configuration's weights."""

    def __init__(self, config: DeviceConfig) -> None:
        window = config.browser_version_window

        def browser_version(a: Any, b: Any) -> float:
            return 1.0 if 0 <= int(b) - int(a) <= window else 0.0

        special: dict[str, Compare] = {
            "browser_version": browser_version,
            "os_version": _forward,
            "app_version": _forward,
            "fonts": _jaccard,
            "languages": _languages,
            "platform_ids": _overlap,
        }
        self.threshold = config.match_threshold
        self._tables: dict[str, tuple[tuple[str, float, float, Compare], ...]] = {}
        for kind, section in (("web", config.web), ("mobile", config.mobile)):
            rows = []
            for f in dataclasses.fields(section):
                agree, disagree = getattr(section, f.name)
                rows.append((f.name, agree, disagree, special.get(f.name, _exact)))
            self._tables[kind] = tuple(rows)

    def score(self, recorded: Mapping[str, Any], observed: Mapping[str, Any]) -> float:
        """Bits of evidence that `observed` comes from the device `recorded` describes."""
        kind = observed.get("kind")
        if kind not in GATES or recorded.get("kind") != kind:
            return -math.inf
        for gate in GATES[kind]:
            if recorded.get(gate) != observed.get(gate):
                return -math.inf
        updated = recorded.get("browser_version") != observed.get("browser_version") or (
            recorded.get("os_version") != observed.get("os_version")
        )
        total = 0.0
        for name, agree, disagree, compare in self._tables[kind]:
            a = recorded.get(name)
            b = observed.get(name)
            if a is None or b is None:
                continue
            s = compare(a, b)
            if s == 0.0 and updated and name in RENDERING:
                continue
            total += agree if s == 1.0 else disagree if s == 0.0 else agree * s + disagree * (1 - s)
        return total

    def best(
        self, observed: Mapping[str, Any], candidates: Iterable[tuple[K, Mapping[str, Any]]]
    ) -> tuple[K, float] | None:
        """The best-scoring candidate at or above the threshold, or None."""
        best: tuple[K, float] | None = None
        for key, recorded in candidates:
            s = self.score(recorded, observed)
            if s >= self.threshold and (best is None or s > best[1]):
                best = (key, s)
        return best
