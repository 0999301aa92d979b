"""The state-store contract, run against the in-process and the Redis store alike."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest
from redis.asyncio import Redis

from risk.config import RiskConfig
from risk.profile import PendingEvent, SubjectProfile
from risk.redis_store import RedisRiskStore
from risk.store import LastAccess, MemoryRiskStore, RiskStateStore, StoreError
from tests.risk.conftest import drop_prefix, redis_client

T0 = 1_700_000_040.0  # a multiple of 60: the start of a one-minute bucket
CONFIG = RiskConfig()
WINDOW = CONFIG.rate.window_seconds
FAILURE_WINDOW = CONFIG.rate.failure_window_seconds


async def test_counts_requests_per_subject_and_address(store: RiskStateStore) -> None:
    for i in range(3):
        touch = await store.touch("alice", "198.51.100.1", T0 + i, None)
    assert touch.subject_rate == 3
    assert touch.address_rate == 3
    other = await store.touch("bob", "198.51.100.1", T0 + 3, None)
    assert other.subject_rate == 1
    assert other.address_rate == 4
    anonymous = await store.touch(None, "198.51.100.1", T0 + 4, None)
    assert anonymous.address_rate == 5
    assert anonymous.profile is None and anonymous.subject_rate == 0


async def test_sliding_window_weights_the_previous_bucket(store: RiskStateStore) -> None:
    for i in range(4):
        await store.touch("alice", "198.51.100.2", T0 + i, None)
    half_into_next = T0 + WINDOW + WINDOW / 2
    touch = await store.touch("alice", "198.51.100.2", half_into_next, None)
    assert touch.subject_rate == pytest.approx(1 + 4 * 0.5)
    much_later = await store.touch("alice", "198.51.100.2", T0 + 10 * WINDOW, None)
    assert much_later.subject_rate == 1


async def test_last_access_is_swapped_only_when_located(store: RiskStateStore) -> None:
    first = LastAccess(T0, 31.23, 121.47)
    touch = await store.touch("alice", "198.51.100.3", T0, first)
    assert touch.previous is None
    touch = await store.touch("alice", "198.51.100.3", T0 + 5, None)
    assert touch.previous == first
    second = LastAccess(T0 + 10, 39.9, 116.4)
    touch = await store.touch("alice", "198.51.100.3", T0 + 10, second)
    assert touch.previous == first
    touch = await store.touch("alice", "198.51.100.3", T0 + 20, None)
    assert touch.previous == second


async def test_failure_streak_counts_lapses_and_clears(store: RiskStateStore) -> None:
    for i in range(3):
        await store.record_failure("alice", "198.51.100.4", T0 + i)
    touch = await store.touch("alice", "198.51.100.5", T0 + 3, None)
    assert touch.subject_failures == 3
    lapsed = await store.touch("alice", "198.51.100.5", T0 + 2 + FAILURE_WINDOW + 1, None)
    assert lapsed.subject_failures == 0
    await store.record_failure("alice", None, T0 + 2 + FAILURE_WINDOW + 2)
    touch = await store.touch("alice", "198.51.100.5", T0 + 2 + FAILURE_WINDOW + 3, None)
    assert touch.subject_failures == 1  # a new streak, not 4
    await store.clear_failures("alice")
    touch = await store.touch("alice", "198.51.100.5", T0 + 2 + FAILURE_WINDOW + 4, None)
    assert touch.subject_failures == 0


async def test_address_failures_count_across_accounts(store: RiskStateStore) -> None:
    for i in range(12):
        await store.record_failure(f"victim{i}", "198.51.100.6", T0 + i)
    await store.record_failure(None, "198.51.100.6", T0 + 12)
    touch = await store.touch("someone", "198.51.100.6", T0 + 13, None)
    assert touch.address_failures == 13
    assert touch.subject_failures == 0
    elsewhere = await store.touch("someone", "198.51.100.7", T0 + 14, None)
    assert elsewhere.address_failures == 0
    later = await store.touch("someone", "198.51.100.6", T0 + 3 * FAILURE_WINDOW, None)
    assert later.address_failures == 0


async def test_pending_events_are_bounded_and_taken_once(store: RiskStateStore) -> None:
    bound = CONFIG.profile.max_pending
    events = [PendingEvent(at=T0 + i, score=i % 100, hour=i % 24) for i in range(bound + 5)]
    events[-1] = replace(events[-1], country="CN", region="CN/SH", keystrokes=(95.0, 120.5))
    events[-2] = replace(events[-2], operation="transfer", amount=1234.5)
    for event in events:
        await store.add_pending("alice", event)
    taken = await store.take_pending("alice")
    assert taken == tuple(events[-bound:])
    assert await store.take_pending("alice") == ()
    assert await store.take_pending("nobody") == ()


async def test_concurrent_profile_updates_are_not_lost(store: RiskStateStore) -> None:
    def bump(profile: SubjectProfile | None) -> SubjectProfile:
        base = profile or SubjectProfile()
        return replace(base, sessions=base.sessions + 1)

    await asyncio.gather(*(store.update_profile("alice", bump) for _ in range(20)))
    touch = await store.touch("alice", "198.51.100.8", T0, None)
    assert touch.profile is not None and touch.profile.sessions == 20


async def test_forget_drops_a_subject(store: RiskStateStore) -> None:
    await store.update_profile("alice", lambda p: SubjectProfile(sessions=3))
    await store.add_pending("alice", PendingEvent(at=T0, score=1, hour=3))
    await store.touch("alice", "198.51.100.9", T0, LastAccess(T0, 1.0, 2.0))
    await store.forget("alice")
    touch = await store.touch("alice", "198.51.100.9", T0 + 1, None)
    assert touch.profile is None and touch.previous is None
    assert await store.take_pending("alice") == ()


async def test_memory_store_is_bounded_lru() -> None:
    store = MemoryRiskStore(CONFIG.rate, CONFIG.profile, max_subjects=3, max_addresses=2)
    for name in ("a", "b", "c"):
        await store.update_profile(name, lambda p: SubjectProfile(sessions=1))
    await store.touch("a", "198.51.100.10", T0, None)  # a is now the most recent
    await store.update_profile("d", lambda p: SubjectProfile(sessions=1))
    assert len(store) == 3
    assert (await store.touch("a", "198.51.100.10", T0, None)).profile is not None
    assert (await store.touch("b", "198.51.100.10", T0, None)).profile is None  # evicted
    for i in range(5):
        await store.touch(None, f"198.51.100.{20 + i}", T0, None)
    again = await store.touch(None, "198.51.100.20", T0 + 1, None)
    assert again.address_rate == 1  # its counter was evicted with the old addresses


async def test_redis_keys_carry_no_identifiers_and_all_expire(prefix: str) -> None:
    client = await redis_client()
    store = RedisRiskStore(client, CONFIG.rate, CONFIG.profile, CONFIG.keystrokes, prefix=prefix)
    try:
        await store.touch("alice@example.com", "198.51.100.11", T0, LastAccess(T0, 1.0, 2.0))
        await store.record_failure("alice@example.com", "198.51.100.11", T0)
        await store.add_pending("alice@example.com", PendingEvent(at=T0, score=1, hour=3))
        await store.update_profile("alice@example.com", lambda p: SubjectProfile(sessions=1))
        keys = [k.decode() async for k in client.scan_iter(match=f"{prefix}*")]
        assert len(keys) == 7  # address: req, fail; subject: req, streak, last, profile, pending
        for key in keys:
            assert "alice" not in key and "198.51" not in key
            assert await client.ttl(key) > 0, key
    finally:
        await drop_prefix(client, prefix)
        await client.aclose()


async def test_redis_malformed_profile_is_a_store_error(prefix: str) -> None:
    client = await redis_client()
    store = RedisRiskStore(client, CONFIG.rate, CONFIG.profile, CONFIG.keystrokes, prefix=prefix)
    try:
        await store.update_profile("alice", lambda p: SubjectProfile(sessions=1))
        [key] = [k async for k in client.scan_iter(match=f"{prefix}*:profile")]
        await client.set(key, b'{"hours": "not a list"}')
        with pytest.raises(StoreError, match="malformed"):
            await store.touch("alice", "198.51.100.12", T0, None)
    finally:
        await drop_prefix(client, prefix)
        await client.aclose()


async def test_unreachable_redis_is_a_store_error() -> None:
    client = Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=1)
    store = RedisRiskStore(client, CONFIG.rate, CONFIG.profile, CONFIG.keystrokes)
    try:
        with pytest.raises(StoreError):
            await store.touch("alice", "198.51.100.13", T0, None)
        with pytest.raises(StoreError):
            await store.record_failure("alice", "198.51.100.13", T0)
        with pytest.raises(StoreError):
            await store.take_pending("alice")
    finally:
        await store.close()
