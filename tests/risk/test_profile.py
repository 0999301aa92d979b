"""Profiles learn from sessions, stay bounded, and survive a JSON round trip."""

from __future__ import annotations

import contextlib
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from risk.config import KeystrokeConfig, ProfileBounds
from risk.profile import PendingEvent, SubjectProfile, learn

BOUNDS = ProfileBounds()
KEYS = KeystrokeConfig()


def session(*events: PendingEvent) -> tuple[PendingEvent, ...]:
    return events


def test_a_session_counts_once_per_hour_it_touched() -> None:
    events = [PendingEvent(at=float(i), score=0, hour=9) for i in range(5)]
    events.append(PendingEvent(at=9.0, score=0, hour=10))
    profile = learn(None, events, BOUNDS, KEYS)
    assert profile.hours[9] == 1 and profile.hours[10] == 1 and sum(profile.hours) == 2
    assert profile.sessions == 1


def test_hour_counts_halve_past_the_cap() -> None:
    bounds = ProfileBounds(hour_total_cap=10)
    profile = None
    for _ in range(11):
        profile = learn(profile, [PendingEvent(at=0.0, score=0, hour=8)], bounds, KEYS)
    assert profile is not None and profile.hours[8] == 5


def test_places_are_bounded_most_recent_last() -> None:
    bounds = ProfileBounds(max_countries=2, max_regions=3)
    profile = None
    for country, region in [("CN", "CN/BJ"), ("SG", "SG/"), ("CN", "CN/SH"), ("JP", "JP/13")]:
        event = PendingEvent(at=0.0, score=0, hour=1, country=country, region=region)
        profile = learn(profile, [event], bounds, KEYS)
    assert profile is not None
    assert profile.countries == ("CN", "JP")
    assert profile.regions == ("SG/", "CN/SH", "JP/13")


def test_amounts_are_bounded_per_operation_and_operations_are_bounded() -> None:
    bounds = ProfileBounds(max_amounts=3, max_operations=2)
    profile = None
    for i, op in enumerate(["transfer", "transfer", "fx", "transfer", "transfer", "card"]):
        event = PendingEvent(at=0.0, score=0, hour=1, operation=op, amount=float(i + 1))
        profile = learn(profile, [event], bounds, KEYS)
    assert profile is not None
    assert [s.operation for s in profile.amounts] == ["transfer", "card"]
    stats = profile.amount_stats("transfer")
    assert stats is not None and stats.amounts == (2.0, 4.0, 5.0)
    assert profile.amount_stats("fx") is None


def test_keystroke_model_appears_after_enrolment_and_resets_on_new_length() -> None:
    keys = KeystrokeConfig(enrol_samples=3)
    profile = None
    for i in range(2):
        ev = PendingEvent(at=0.0, score=0, hour=1, keystrokes=(100.0 + i, 200.0))
        profile = learn(profile, [ev], BOUNDS, keys)
    assert profile is not None and profile.keystroke_model is None
    ev = PendingEvent(at=0.0, score=0, hour=1, keystrokes=(102.0, 200.0))
    profile = learn(profile, [ev], BOUNDS, keys)
    assert profile.keystroke_model is not None
    assert profile.keystroke_model.means == pytest.approx((101.0, 200.0))
    changed = PendingEvent(at=0.0, score=0, hour=1, keystrokes=(100.0, 200.0, 150.0))
    profile = learn(profile, [changed], BOUNDS, keys)
    assert profile.keystroke_samples == ((100.0, 200.0, 150.0),)
    assert profile.keystroke_model is None


def test_keystroke_samples_are_bounded() -> None:
    bounds = ProfileBounds(max_keystroke_samples=5)
    profile = None
    for i in range(9):
        ev = PendingEvent(at=0.0, score=0, hour=1, keystrokes=(float(i),))
        profile = learn(profile, [ev], bounds, KEYS)
    assert profile is not None
    assert profile.keystroke_samples == tuple((float(i),) for i in range(4, 9))


def test_json_round_trip_rebuilds_derived_statistics() -> None:
    keys = KeystrokeConfig(enrol_samples=2)
    events = [
        PendingEvent(
            at=1.0,
            score=3,
            hour=h,
            country="CN",
            region="CN/SH",
            operation="transfer",
            amount=100.0 * (h + 1),
            keystrokes=(90.0 + h, 150.0 - h),
        )
        for h in range(4)
    ]
    profile = learn(None, events, BOUNDS, keys)
    doc = json.loads(json.dumps(profile.to_json()))
    assert SubjectProfile.from_json(doc, keys) == profile
    for event in events:
        assert PendingEvent.from_json(json.loads(json.dumps(event.to_json()))) == event


@pytest.mark.parametrize(
    "doc",
    [
        None,
        [],
        {"hours": [0] * 23, "amounts": {}, "keystrokes": []},
        {"hours": [0] * 24, "amounts": [], "keystrokes": []},
        {"hours": [0] * 24, "amounts": {}, "keystrokes": {}},
        {"hours": ["x"] * 24, "amounts": {}, "keystrokes": [], "countries": [], "regions": []},
        {"hours": [0] * 24, "amounts": {}, "keystrokes": [[1, "a"]], "countries": []},
        {"hours": [0] * 24, "amounts": {}, "keystrokes": [], "countries": [1], "regions": []},
    ],
)
def test_malformed_stored_profiles_raise_value_error(doc: object) -> None:
    with pytest.raises(ValueError):
        SubjectProfile.from_json(doc, KEYS)


json_values = st.recursive(
    st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=30,
)


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_stored_state_decoders_fail_only_with_value_error(doc: object) -> None:
    for decode in (lambda d: SubjectProfile.from_json(d, KEYS), PendingEvent.from_json):
        with contextlib.suppress(ValueError):
            decode(doc)
