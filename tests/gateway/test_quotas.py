"""Quotas (`gateway.quotas`): GCRA buckets in process and in the real Redis, shared by
two limiters as two edge nodes would, with a fallback when Redis is unreachable."""

from __future__ import annotations

import secrets

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.quotas import MemoryLimiter, RedisLimiter, Tier, Verdict, rate_limit_headers

REDIS = "redis://127.0.0.1:6379/0"
TIER = Tier(limit=5, window=10.0)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_burst_up_to_the_quota_then_one_per_interval() -> None:
    clock = Clock()
    limiter = MemoryLimiter(clock)
    verdicts = [limiter.take_now("partner", TIER, "c-1", "accounts") for _ in range(6)]
    assert [v.allowed for v in verdicts] == [True] * 5 + [False]
    assert [v.remaining for v in verdicts[:5]] == [4, 3, 2, 1, 0]
    assert verdicts[5].retry_after == 2.0  # window / limit
    clock.now += 2.0
    assert limiter.take_now("partner", TIER, "c-1", "accounts").allowed
    assert not limiter.take_now("partner", TIER, "c-1", "accounts").allowed
    # Other callers and other products have buckets of their own.
    assert limiter.take_now("partner", TIER, "c-2", "accounts").allowed
    assert limiter.take_now("partner", TIER, "c-1", "payments").allowed


@settings(max_examples=60)
@given(st.lists(st.floats(min_value=0, max_value=0.5), min_size=1, max_size=80))
def test_no_window_ever_admits_more_than_the_quota(gaps: list[float]) -> None:
    clock = Clock()
    limiter = MemoryLimiter(clock)
    admitted: list[float] = []
    for gap in gaps:
        clock.now += gap
        if limiter.take_now("t", TIER, "c", "p").allowed:
            admitted.append(clock.now)
    # GCRA: any span of length L admits at most limit + L / interval requests.
    for i, start in enumerate(admitted):
        inside = [t for t in admitted[i:] if t - start < TIER.window]
        assert len(inside) <= TIER.limit + (TIER.window / TIER.interval)
    for i in range(len(admitted) - TIER.limit):
        assert admitted[i + TIER.limit] - admitted[i] >= TIER.interval * 1 - 1e-9


def test_headers_follow_the_ratelimit_fields_draft() -> None:
    refused = Verdict(False, "partner-standard", 100, 60.0, 0, 59.4, 0.6)
    assert rate_limit_headers(refused) == [
        ("ratelimit-policy", '"partner-standard";q=100;w=60'),
        ("ratelimit", '"partner-standard";r=0;t=60'),
        ("retry-after", "1"),
    ]
    ok = Verdict(True, 'we"ird', 5, 10.0, 3, 4.0, 0.0)
    assert [name for name, _ in rate_limit_headers(ok)] == ["ratelimit-policy", "ratelimit"]
    assert rate_limit_headers(ok)[1][1] == '"weird";r=3;t=4'


async def test_two_nodes_share_one_bucket_in_redis() -> None:
    prefix = f"ztq-test-{secrets.token_hex(4)}:"
    node_a, node_b = RedisLimiter(REDIS, prefix=prefix), RedisLimiter(REDIS, prefix=prefix)
    try:
        tier = Tier(limit=4, window=60.0)
        seen = [await (node_a if i % 2 else node_b).take("p", tier, "c-1", "x") for i in range(6)]
        assert [v.allowed for v in seen] == [True] * 4 + [False] * 2
        assert 14 < seen[-1].retry_after <= 15.5  # one interval (15 s) minus elapsed
        assert (await node_a.take("p", tier, "c-2", "x")).allowed
    finally:
        await node_a.close()
        await node_b.close()


async def test_an_unreachable_redis_falls_back_to_per_worker_buckets() -> None:
    limiter = RedisLimiter("redis://127.0.0.1:1/0", timeout=0.2)
    try:
        seen = [await limiter.take("p", TIER, "c", "x") for _ in range(6)]
        assert [v.allowed for v in seen] == [True] * 5 + [False]
    finally:
        await limiter.close()
