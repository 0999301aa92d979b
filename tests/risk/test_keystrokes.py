"""Scaled-Manhattan keystroke detector (Killourhy & Maxion 2009) and sample checks."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from risk.config import KeystrokeConfig
from risk.keystrokes import KeystrokeModel, check_sample, scaled_manhattan

CONFIG = KeystrokeConfig()


def test_fit_computes_mean_and_mean_absolute_deviation() -> None:
    samples = [(100.0, 200.0), (120.0, 260.0), (110.0, 230.0)]
    model = KeystrokeModel.fit(samples, min_deviation=1.0)
    assert model.means == pytest.approx((110.0, 230.0))
    # mean absolute deviation: (10 + 10 + 0) / 3 and (30 + 30 + 0) / 3
    assert model.deviations == pytest.approx((20 / 3, 20.0))


def test_distance_is_the_scaled_manhattan_mean() -> None:
    model = KeystrokeModel(means=(110.0, 230.0), deviations=(10.0, 20.0))
    assert model.distance((110.0, 230.0)) == 0
    # (|130 - 110| / 10 + |190 - 230| / 20) / 2 = (2 + 2) / 2
    assert model.distance((130.0, 190.0)) == pytest.approx(2.0)


def test_deviation_floor_keeps_regular_typists_comparable() -> None:
    model = KeystrokeModel.fit([(100.0,), (100.0,), (100.0,)], min_deviation=5.0)
    assert model.deviations == (5.0,)
    assert model.distance((101.0,)) == pytest.approx(0.2)


def test_length_mismatch_is_refused() -> None:
    with pytest.raises(ValueError):
        scaled_manhattan((1.0, 2.0), (1.0,), (1.0,))


@pytest.mark.parametrize(
    "sample",
    [
        [100.0, 120.0],  # a list, not the documented tuple
        (),
        tuple([100.0] * 65),
        (100.0, math.nan),
        (100.0, math.inf),
        (100.0, -1.0),
        (100.0, 10_001.0),
        (100.0, True),
        (100.0, "120"),
        (100.0, None),
    ],
)
def test_malformed_samples_are_named(sample: object) -> None:
    assert check_sample(sample, CONFIG) is not None


def test_well_formed_samples_pass() -> None:
    assert check_sample((0.0, 95.5, 10_000.0, 120), CONFIG) is None
    assert check_sample(tuple([80.0] * 64), CONFIG) is None


timings = st.floats(0.0, 2000.0, allow_nan=False)


@settings(max_examples=200, deadline=None)
@given(
    st.integers(1, 12).flatmap(
        lambda n: st.tuples(
            st.lists(st.tuples(*[timings] * n), min_size=2, max_size=15),
            st.tuples(*[timings] * n),
        )
    )
)
def test_distance_properties(data: tuple[list[tuple[float, ...]], tuple[float, ...]]) -> None:
    samples, probe = data
    model = KeystrokeModel.fit(samples, min_deviation=CONFIG.min_deviation_ms)
    assert all(a >= CONFIG.min_deviation_ms for a in model.deviations)
    assert model.distance(probe) >= 0
    assert model.distance(model.means) == pytest.approx(0.0, abs=1e-9)
    # moving one feature further from its mean never lowers the distance
    farther = (probe[0] + 500.0 if probe[0] >= model.means[0] else probe[0] - 500.0, *probe[1:])
    assert model.distance(farther) >= model.distance(probe)


def test_feature_cap_bounds_one_hesitation() -> None:
    model = KeystrokeModel(means=(100.0,) * 10, deviations=(10.0,) * 10)
    hesitation = (100.0,) * 9 + (400.0,)  # one gap thirty deviations long
    assert model.distance(hesitation) == pytest.approx(3.0)  # as published: flagged
    assert model.distance(hesitation, cap=4.0) == pytest.approx(0.4)  # capped: not
    stranger = (130.0,) * 10  # three deviations off everywhere
    assert model.distance(stranger, cap=4.0) == pytest.approx(3.0)
