"""The scenario simulator, small and seeded: the real device assessor and the real scorer.

The full-size run is ``benchmarks/risk_scenarios.py`` (figures in docs/risk.md);
this one is small enough for the suite and still holds every scenario to the
acceptance targets: >= 95 % detected at a 1 % false-positive rate, device-id
false merges <= 0.1 %, false splits <= 2 %.
"""

from __future__ import annotations

import pytest

from benchmarks.risk_scenarios import SCENARIOS, detection, simulate, threshold_at


def test_threshold_is_the_lowest_score_within_the_false_positive_budget() -> None:
    legit = [0] * 95 + [10, 20, 30, 40, 50]
    assert threshold_at(legit, 0.01) == 41  # only the 50 (1 %) is at or above it
    assert threshold_at(legit, 0.05) == 1
    assert threshold_at([100] * 10, 0.01) == 101  # nothing can be flagged: nothing is
    assert detection([40, 41, 90, 100], 41) == 0.75


async def test_every_scenario_is_detected_at_one_percent_false_positives() -> None:
    report = await simulate(seed=7, customers=150, warmup_days=40, days=14, attacks=40)
    assert report.legit_sessions > 1000
    assert report.false_positive_rate <= 0.01
    for scenario in SCENARIOS:
        assert report.attack_sessions[scenario] >= 40, scenario
        assert report.detection[scenario] >= 0.95, (scenario, report)
    assert report.false_merge <= 0.001
    assert report.false_split <= 0.02
    assert 0 < report.threshold <= 100
    assert report.requests > 10_000
    # every request of the run was scored and timed
    assert report.device_us > 0 and report.risk_us > 0


@pytest.mark.parametrize("seed", [1, 2])
async def test_same_seed_same_figures(seed: int) -> None:
    first = await simulate(seed=seed, customers=30, warmup_days=10, days=5, attacks=10)
    again = await simulate(seed=seed, customers=30, warmup_days=10, days=5, attacks=10)
    assert (first.threshold, first.detection, first.legit_sessions) == (
        again.threshold,
        again.detection,
        again.legit_sessions,
    )
