"""How good are the device ids? False merges and false splits on a synthetic population.

The simulation replays what the registry does for each subject (the real
parser, features and `Matcher`, without the database): every subject owns one
to three devices drawn from `device_fingerprint.synthetic`; month 0 records
them, then every month each device drifts (`synthetic.drift`) and is observed
again, and the subject also signs in once from a device it never used (an
*impostor*: another customer's device, drawn from the same population). A
matched record takes the observation's features as its new reference, as
`DeviceAssessor` does.

Outcome of one observation of device *D* by subject *S*:

* **false merge** — matched to a record of another physical device. Counted
  over observations where a wrong record existed to be matched (`merge_trials`);
* **false split** — *D* already has a record for *S*, but nothing matched, so *D*
  would become a "new device". Counted over observations of recorded devices.

`twins` measures the structural limit separately: a second device of exactly
the same model, OS and browser version, locale and time zone (two identical
iPhones in one family). Browser fingerprints cannot tell such devices apart —
that is what device-bound keys are for — so twins are reported, not mixed into
the population rates. Operators re-run this (``benchmarks/device_ids.py``)
after changing weights.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field, replace
from typing import Any

from device_fingerprint import synthetic
from device_fingerprint.matching import Matcher
from device_fingerprint.payload import read_payload
from device_fingerprint.signals import signals_from_payload

__all__ = ["Counts", "Report", "evaluate", "features_of", "twin"]

_AT = 1_780_000_000.0  # a fixed instant: time-zone offsets don't depend on when this runs


def features_of(device: synthetic.SyntheticDevice) -> dict[str, Any]:
    """The match features the assessor would extract from `device`'s next request."""
    obs = synthetic.observe(device, "s", now=_AT)
    assert obs.signals is not None
    return dict(
        signals_from_payload(read_payload(obs.signals, max_bytes=65536, max_depth=8)).features
    )


def twin(device: synthetic.SyntheticDevice, rng: random.Random) -> synthetic.SyntheticDevice:
    """Another unit of the same product, configured the same way (own ids and extras)."""
    other = synthetic.random_device(rng, device.profile)
    fonts = device.fonts if device.os == "ios" else other.fonts
    return replace(device, uid=other.uid, app=other.app, fonts=fonts, session=other.session)


@dataclass
class Counts:
    observations: int = 0
    recorded: int = 0
    """Observations of devices the subject already had a record of."""
    splits: int = 0
    merge_trials: int = 0
    merges: int = 0

    @property
    def split_rate(self) -> float:
        return self.splits / self.recorded if self.recorded else 0.0

    @property
    def merge_rate(self) -> float:
        return self.merges / self.merge_trials if self.merge_trials else 0.0

    def add(self, other: Counts) -> None:
        for name in ("observations", "recorded", "splits", "merge_trials", "merges"):
            setattr(self, name, getattr(self, name) + getattr(other, name))


@dataclass
class Report:
    total: Counts = field(default_factory=Counts)
    by_class: dict[str, Counts] = field(default_factory=dict)
    twins: Counts = field(default_factory=Counts)


def _observe(
    matcher: Matcher,
    records: list[tuple[str, dict[str, Any]]],
    uid: str,
    features: dict[str, Any],
    record_new: bool,
) -> Counts:
    counts = Counts(observations=1)
    owned = any(owner == uid for owner, _ in records)
    counts.recorded = int(owned)
    counts.merge_trials = int(any(owner != uid for owner, _ in records))
    best = matcher.best(features, ((i, f) for i, (_, f) in enumerate(records)))
    if best is None:
        counts.splits = int(owned)
        if record_new:
            records.append((uid, features))
    else:
        owner = records[best[0]][0]
        counts.merges = int(owner != uid)
        if record_new or owner == uid:
            records[best[0]] = (owner, features)
    return counts


def evaluate(matcher: Matcher, *, subjects: int, seed: int, months: int = 6) -> Report:
    """Run the simulation described in the module doc."""
    rng = random.Random(seed)  # noqa: S311 (a reproducible simulation)
    report = Report()
    strangers = synthetic.population(max(50, subjects // 4), seed + 1)
    for _ in range(subjects):
        devices = [
            synthetic.random_device(rng) for _ in range(rng.choices((1, 2, 3), (45, 40, 15))[0])
        ]
        records: list[tuple[str, dict[str, Any]]] = []
        for month in range(months + 1):
            if month:
                devices = [synthetic.drift(d, rng) for d in devices]
            for device in devices:
                counts = _observe(matcher, records, device.uid, features_of(device), True)
                report.total.add(counts)
                report.by_class.setdefault(device.cls, Counts()).add(counts)
            if month:
                stranger = synthetic.drift(rng.choice(strangers), rng)
                counts = _observe(matcher, records, stranger.uid, features_of(stranger), False)
                report.total.add(counts)
                report.by_class.setdefault(stranger.cls, Counts()).add(counts)
        if rng.random() < 0.2:  # a twin of one of the subject's devices signs in
            double = twin(rng.choice(devices), rng)
            report.twins.add(_observe(matcher, records, double.uid, features_of(double), False))
    return report
