"""The scorer end to end on the real stores: each signal, learning, failing closed."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from redis.asyncio import Redis

from device_fingerprint.assessment import DeviceAssessment, TrustLevel
from risk.assessment import RiskAssessment, RiskObservation
from risk.config import GeoConfig, RiskConfig
from risk.geo import GeoTable
from risk.redis_store import RedisRiskStore
from risk.scorer import INVALID, UNAVAILABLE, RiskScorer
from risk.store import MemoryRiskStore, RiskStateStore
from tests.risk.conftest import device, observation

GEO = GeoTable.from_csv(
    """network,country,region,city,lat,lon
203.0.113.0/24,CN,SH,Shanghai,31.2304,121.4737
198.51.100.0/24,CN,BJ,Beijing,39.9042,116.4074
192.0.2.0/24,SG,,Singapore,1.3521,103.8198
"""
)
SHANGHAI, BEIJING, SINGAPORE, NOWHERE = "203.0.113.10", "198.51.100.10", "192.0.2.10", "8.8.8.8"
DAY = 86_400.0
T0 = 1_700_000_000.0 - (1_700_000_000.0 + 8 * 3600) % DAY  # local (UTC+8) midnight
CONFIG = RiskConfig()


@pytest.fixture
async def scorer(store: RiskStateStore) -> AsyncIterator[RiskScorer]:
    yield RiskScorer(CONFIG, store, GEO)


async def live_sessions(
    scorer: RiskScorer, count: int, *, hour: int = 10, ip: str = SHANGHAI, **kw: object
) -> None:
    """`count` ordinary low-risk sessions, one a day at `hour` local time."""
    for day in range(count):
        at = T0 + day * DAY + hour * 3600
        result = await scorer.score(observation(ip=ip, at=at, **kw))  # type: ignore[arg-type]
        assert result.score <= CONFIG.profile.learn_max_score, result
        assert await scorer.end_session("alice", low_risk=True)


async def test_ordinary_request_scores_zero(scorer: RiskScorer) -> None:
    result = await scorer.score(observation(at=T0 + 10 * 3600))
    assert result.score == 0 and result.reasons == ()


async def test_device_verdicts(scorer: RiskScorer) -> None:
    new = await scorer.score(observation(dev=device(TrustLevel.NEW)))
    assert (new.score, new.reasons) == (CONFIG.device.new, ("device:new",))
    anonymous = await scorer.score(observation(subject=None, dev=device(TrustLevel.NEW)))
    assert anonymous.score == 0  # a device cannot be new to nobody
    bot = await scorer.score(
        observation(dev=device(TrustLevel.SUSPICIOUS, ("automation:webdriver", "tls:ua_mismatch")))
    )
    assert bot.reasons == (
        "device:automation:webdriver",
        "device:tls:ua_mismatch",
        "device:suspicious",
    )
    assert bot.score == round(100 * (1 - 0.10 * 0.25 * 0.40))
    blank = await scorer.score(observation(dev=device(TrustLevel.NEW, device_id=None)))
    assert blank.reasons == ("device:new", "device:unidentified")  # strongest first
    odd = await scorer.score(observation(dev=device(TrustLevel.KNOWN, ("brand:new_tell",))))
    assert odd.reasons == ("device:brand:new_tell",) and odd.score == 40


async def test_new_country_new_region_and_unlocated(scorer: RiskScorer) -> None:
    await live_sessions(scorer, 3)
    later = T0 + 30 * DAY + 10 * 3600
    abroad = await scorer.score(observation(ip=SINGAPORE, at=later))
    assert "geo:new_country" in abroad.reasons
    await scorer.end_session("alice", low_risk=False)
    elsewhere = await scorer.score(observation(ip=BEIJING, at=later + DAY))
    assert elsewhere.reasons == ("geo:new_region",)
    await scorer.end_session("alice", low_risk=False)
    lost = await scorer.score(observation(ip=NOWHERE, at=later + 2 * DAY))
    assert lost.reasons == ("geo:unlocated",)


async def test_impossible_travel_between_consecutive_accesses(scorer: RiskScorer) -> None:
    at = T0 + 10 * 3600
    await scorer.score(observation(subject="bob", ip=SHANGHAI, at=at))
    jump = await scorer.score(observation(subject="bob", ip=SINGAPORE, at=at + 600))
    assert "travel:impossible" in jump.reasons  # ~3,800 km in ten minutes
    flight = await scorer.score(observation(subject="bob", ip=SHANGHAI, at=at + 600 + 6 * 3600))
    assert "travel:impossible" not in flight.reasons  # ~640 km/h: a plane
    near = await scorer.score(observation(subject="bob", ip=SHANGHAI, at=at + 600 + 6 * 3600 + 1))
    assert "travel:impossible" not in near.reasons


async def test_unusual_hour_once_the_habit_is_learned(scorer: RiskScorer) -> None:
    await live_sessions(scorer, CONFIG.hour.min_history - 1, hour=10)
    early = await scorer.score(observation(at=T0 + 40 * DAY + 3 * 3600))
    assert "hour:unusual" not in early.reasons  # not enough history yet
    await scorer.end_session("alice", low_risk=False)
    await live_sessions(scorer, 1, hour=11)
    night = await scorer.score(observation(at=T0 + 41 * DAY + 3 * 3600))
    assert night.reasons == ("hour:unusual",) and night.score == CONFIG.hour.unusual
    await scorer.end_session("alice", low_risk=False)
    usual = await scorer.score(observation(at=T0 + 42 * DAY + 9 * 3600))
    assert "hour:unusual" not in usual.reasons  # next to a habitual hour


async def test_request_bursts_per_subject_and_per_address(scorer: RiskScorer) -> None:
    at = T0 + 10 * 3600
    for i in range(CONFIG.rate.subject_burst - 1):
        result = await scorer.score(observation(at=at + i * 0.5))
    assert "rate:subject_burst" not in result.reasons
    result = await scorer.score(observation(at=at + 30))
    assert "rate:subject_burst" in result.reasons
    for i in range(CONFIG.rate.ip_burst):
        result = await scorer.score(observation(subject=f"u{i}", ip=BEIJING, at=at + i * 0.2))
    assert "rate:address_burst" in result.reasons


async def test_failure_streak_and_credential_stuffing(scorer: RiskScorer) -> None:
    at = T0 + 10 * 3600
    for i in range(CONFIG.rate.subject_failures):
        assert await scorer.record_auth_failure("alice", SHANGHAI, at + i)
    streak = await scorer.score(observation(at=at + 10))
    assert streak.reasons == ("auth:failure_streak",)
    assert streak.score == round(CONFIG.rate.failure_streak / 2)
    for i in range(CONFIG.rate.ip_failures):
        await scorer.record_auth_failure(f"victim{i}", BEIJING, at + i)
    stuffed = await scorer.score(observation(subject="victim99", ip=BEIJING, at=at + 20))
    assert "auth:address_failures" in stuffed.reasons
    unknown = await scorer.record_auth_failure(None, BEIJING, at + 21)
    assert unknown  # failures against accounts nobody has still count per address


async def test_low_risk_session_end_clears_the_streak(scorer: RiskScorer) -> None:
    at = T0 + 10 * 3600
    await scorer.record_auth_failure("carol", SHANGHAI, at)
    result = await scorer.score(observation(subject="carol", at=at + 1))
    assert result.score == 0  # one failure is below the streak threshold
    assert await scorer.end_session("carol", low_risk=True)
    for i in range(CONFIG.rate.subject_failures - 1):
        await scorer.record_auth_failure("carol", SHANGHAI, at + 2 + i)
    result = await scorer.score(observation(subject="carol", at=at + 10))
    assert "auth:failure_streak" not in result.reasons


async def test_amount_far_above_history(scorer: RiskScorer) -> None:
    rng = random.Random(7)
    for day in range(8):
        amount = Decimal(str(round(rng.uniform(100, 400), 2)))
        at = T0 + day * DAY + 10 * 3600
        await scorer.score(observation(at=at, operation="transfer", amount=amount))
        assert await scorer.end_session("alice", low_risk=True)
    at = T0 + 20 * DAY + 10 * 3600
    usual = await scorer.score(observation(at=at, operation="transfer", amount=Decimal(350)))
    assert usual.score == 0
    await scorer.end_session("alice", low_risk=False)
    huge = await scorer.score(observation(at=at + 60, operation="transfer", amount=Decimal(80_000)))
    assert huge.reasons == ("amount:unusual",) and huge.score == CONFIG.amount.unusual
    fresh = await scorer.score(
        observation(subject="dave", at=at, operation="transfer", amount=Decimal(60_000))
    )
    assert fresh.reasons == ("amount:no_history",)


def typist(rng: random.Random, means: list[float], spread: float) -> tuple[float, ...]:
    return tuple(max(0.0, rng.gauss(m, spread)) for m in means)


async def test_keystroke_rhythm_against_the_enrolled_profile(scorer: RiskScorer) -> None:
    rng = random.Random(11)
    owner = [95.0, 140.0, 88.0, 210.0, 101.0, 160.0, 92.0, 180.0, 99.0, 150.0, 90.0]
    for day in range(CONFIG.keystrokes.enrol_samples):
        at = T0 + day * DAY + 10 * 3600
        await scorer.score(observation(at=at, keystrokes=typist(rng, owner, 8.0)))
        assert await scorer.end_session("alice", low_risk=True)
    at = T0 + 30 * DAY + 10 * 3600
    genuine = await scorer.score(observation(at=at, keystrokes=typist(rng, owner, 8.0)))
    assert "keystrokes:mismatch" not in genuine.reasons
    await scorer.end_session("alice", low_risk=False)
    stranger = [140.0, 260.0, 130.0, 120.0, 150.0, 300.0, 135.0, 110.0, 145.0, 280.0, 128.0]
    impostor = await scorer.score(observation(at=at + 60, keystrokes=typist(rng, stranger, 8.0)))
    assert impostor.reasons == ("keystrokes:mismatch",)
    assert impostor.score == CONFIG.keystrokes.mismatch
    await scorer.end_session("alice", low_risk=False)
    short = await scorer.score(observation(at=at + 120, keystrokes=(90.0, 100.0, 95.0)))
    assert short.reasons == ("keystrokes:shape",)


async def test_an_attacker_cannot_train_the_profile(scorer: RiskScorer) -> None:
    await live_sessions(scorer, 3)
    attacker = device(TrustLevel.NEW, device_id="attacker-phone")
    for day in range(30):
        at = T0 + (10 + day) * DAY + 3 * 3600
        result = await scorer.score(observation(ip=SINGAPORE, at=at, dev=attacker))
        assert result.score > CONFIG.profile.learn_max_score
        # even a caller that wrongly calls the session low risk teaches nothing
        assert not await scorer.end_session("alice", low_risk=True)
    result = await scorer.score(observation(ip=SINGAPORE, at=T0 + 60 * DAY, dev=attacker))
    assert "geo:new_country" in result.reasons


async def test_high_risk_session_end_discards_its_events(scorer: RiskScorer) -> None:
    at = T0 - 5 * DAY
    await scorer.score(observation(ip=SINGAPORE, at=at))
    assert not await scorer.end_session("alice", low_risk=False)
    await live_sessions(scorer, 1)
    result = await scorer.score(observation(ip=SINGAPORE, at=at + 40 * DAY))
    assert "geo:new_country" in result.reasons  # Singapore was never learned
    assert not await scorer.end_session("nobody-here", low_risk=True)  # nothing pending
    assert not await scorer.end_session("", low_risk=True)


async def test_record_auth_failure_rejects_malformed_events(scorer: RiskScorer) -> None:
    assert not await scorer.record_auth_failure("alice", "not-an-ip", T0)
    assert not await scorer.record_auth_failure("alice", SHANGHAI, float("nan"))
    assert not await scorer.record_auth_failure("x" * 300, SHANGHAI, T0)
    assert not await scorer.record_auth_failure("alice", SHANGHAI, True)  # type: ignore[arg-type]


async def test_unreachable_state_store_fails_closed() -> None:
    client = Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=1)
    store = RedisRiskStore(client, CONFIG.rate, CONFIG.profile, CONFIG.keystrokes)
    scorer = RiskScorer(CONFIG, store, GEO)
    try:
        result = await scorer.score(observation())
        assert (result.score, result.reasons) == (100, (UNAVAILABLE,))
        assert not await scorer.record_auth_failure("alice", SHANGHAI, T0)
        assert not await scorer.end_session("alice", low_risk=True)
    finally:
        await scorer.close()


async def test_from_config_builds_the_configured_store(tmp_path: object) -> None:
    memory = RiskScorer.from_config(RiskConfig())
    try:
        assert (await memory.score(observation())).score == 0
    finally:
        await memory.close()
    from risk.config import StoreConfig

    redis = RiskScorer.from_config(
        RiskConfig(store=StoreConfig(backend="redis", key_prefix="test:risk:from_config:"))
    )
    try:
        assert (await redis.score(observation(subject="from-config"))).score == 0
        await redis.forget("from-config")
    finally:
        await redis.close()
    assert RiskConfig(geo=GeoConfig()).geo.table is None


async def test_bad_observations_score_maximal_risk(scorer: RiskScorer) -> None:
    cases = {
        "type": None,
        "subject": observation(subject=""),
        "client_ip": observation(ip="999.1.1.1"),
        "at": observation(at=float("inf")),
        "amount": observation(operation="transfer", amount=Decimal("NaN")),
        "keystrokes": observation(keystrokes=(100.0, -5.0)),
    }
    for field, obs in cases.items():
        result = await scorer.score(obs)  # type: ignore[arg-type]
        assert (result.score, result.reasons) == (100, (INVALID, f"observation:{field}"))


garbage = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=80)
    | st.binary(max_size=16)
    | st.decimals()
    | st.lists(st.floats(), max_size=4)
    | st.tuples(st.floats(), st.floats())
    | st.tuples(st.text(max_size=4))
    | st.builds(object)
)
devices = st.one_of(
    garbage,
    st.builds(
        DeviceAssessment,
        device_id=st.one_of(st.none(), st.text(max_size=600)),
        known=st.booleans(),
        bound_to_subject=st.booleans(),
        trust=st.one_of(st.sampled_from(TrustLevel), garbage),
        anomalies=st.one_of(
            st.tuples(), st.lists(st.text(max_size=70), max_size=40).map(tuple), garbage
        ),
    ),
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    subject=st.one_of(st.just("alice"), garbage),
    client_ip=st.one_of(st.just(SHANGHAI), st.just("::ffff:203.0.113.9"), garbage),
    at=st.one_of(st.just(T0), garbage),
    dev=st.one_of(st.just(device()), devices),
    route_id=st.one_of(st.just("accounts"), garbage),
    operation=st.one_of(st.none(), st.just("transfer"), garbage),
    amount=st.one_of(st.none(), st.decimals(), garbage),
    keystrokes=st.one_of(st.none(), st.tuples(st.floats(), st.floats()), garbage),
)
def test_no_observation_makes_the_scorer_raise(
    subject: object,
    client_ip: object,
    at: object,
    dev: object,
    route_id: object,
    operation: object,
    amount: object,
    keystrokes: object,
) -> None:
    obs = RiskObservation(
        subject=subject,  # type: ignore[arg-type]
        client_ip=client_ip,  # type: ignore[arg-type]
        at=at,  # type: ignore[arg-type]
        device=dev,  # type: ignore[arg-type]
        route_id=route_id,  # type: ignore[arg-type]
        sensitive_operation=operation,  # type: ignore[arg-type]
        amount=amount,  # type: ignore[arg-type]
        keystrokes=keystrokes,  # type: ignore[arg-type]
    )
    scorer = RiskScorer(CONFIG, MemoryRiskStore(CONFIG.rate, CONFIG.profile), GEO)
    result = asyncio.run(scorer.score(obs))
    assert isinstance(result, RiskAssessment) and 0 <= result.score <= 100
    assert UNAVAILABLE not in result.reasons  # malformed input is named, not an internal error
    if INVALID in result.reasons:
        assert result.score == 100 and result.reasons[1].startswith("observation:")


async def test_reasons_fit_the_policy_input(scorer: RiskScorer) -> None:
    anomalies = tuple(f"odd:tell{i:02d}" for i in range(32))
    result = await scorer.score(
        observation(dev=device(TrustLevel.SUSPICIOUS, anomalies, device_id=None))
    )
    assert result.score == 100
    assert len(result.reasons) == 32  # the policy schema's bound; strongest kept
    assert result.reasons[:2] == ("device:suspicious", "device:unidentified")
    assert all(len(r) <= 128 for r in result.reasons)


async def test_locate_serves_the_device_step(scorer: RiskScorer) -> None:
    located = scorer.locate("::ffff:192.0.2.77")
    assert located is not None and located.country == "SG"
    assert scorer.locate(NOWHERE) is None
    assert scorer.locate("not an address") is None
    assert RiskScorer(CONFIG, MemoryRiskStore(CONFIG.rate, CONFIG.profile)).locate(SHANGHAI) is None


async def test_events_of_an_abandoned_session_are_not_learned_later(scorer: RiskScorer) -> None:
    await scorer.score(observation(ip=SINGAPORE, at=T0 - 10 * DAY))  # never ended
    await live_sessions(scorer, 3)  # the first end takes the stale event too, and drops it
    result = await scorer.score(observation(ip=SINGAPORE, at=T0 + 40 * DAY))
    assert "geo:new_country" in result.reasons
