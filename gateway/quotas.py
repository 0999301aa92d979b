"""Quotas per partner (or customer) and API product, shared by every edge node.

The policy decision names a ``rate_limit_tier`` (docs/policy.md); a tier is a quota
of `Tier.limit` requests per `Tier.window` seconds. Each (tier, caller, API product)
has one bucket, metered by the generic cell rate algorithm (GCRA: one timestamp per
bucket, "theoretical arrival time"), so a partner may burst up to the whole quota and
then gets one request every window/limit seconds. With Redis (`RedisLimiter`, one Lua
script, atomic, Redis's own clock so nodes' clocks do not matter) the bucket is shared
by every worker on every edge node; in-process (`MemoryLimiter`) it is per worker,
for the single-node embedded mode.

An over-quota request is ``429`` with ``Retry-After`` (RFC 9110 §10.2.3) and the
``RateLimit-Policy`` / ``RateLimit`` fields of draft-ietf-httpapi-ratelimit-headers
(``"<tier>";q=<limit>;w=<window>`` and ``"<tier>";r=<remaining>;t=<reset seconds>``);
allowed requests get the same two fields so partners can pace themselves.

Availability, not authorisation: if Redis cannot be reached the limiter falls back to
its in-process buckets (each worker then admits up to the whole quota) and logs it,
rather than refusing every partner call while Redis is down. Keys are SM3 digests of
the caller id: no client or customer identifier appears in Redis.
"""

from __future__ import annotations

import functools
import logging
import math
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Final, Protocol

from redis.asyncio import Redis
from redis.exceptions import RedisError

from crypto import sm3

__all__ = [
    "DEFAULT_TIERS",
    "Limiter",
    "MemoryLimiter",
    "QuotaConfig",
    "QuotaTier",
    "Quotas",
    "RedisLimiter",
    "Tier",
    "Verdict",
    "rate_limit_headers",
]

log = logging.getLogger("ztgate.gateway.quotas")

MAX_BUCKETS: Final = 100_000


@dataclass(frozen=True, slots=True)
class Tier:
    limit: int
    """Requests per window."""
    window: float
    """Seconds."""

    def __post_init__(self) -> None:
        if not 1 <= self.limit <= 1_000_000:
            raise ValueError("limit: must be 1 to 1000000 requests")
        if not 1.0 <= self.window <= 86400.0:
            raise ValueError("window: must be 1 to 86400 seconds")

    @property
    def interval(self) -> float:
        """Seconds between requests at the sustained rate (GCRA's emission interval)."""
        return self.window / self.limit


@dataclass(frozen=True)
class QuotaTier:
    """One ``[[agent.quota_tiers]]`` table: a tier the policy may name."""

    name: str
    limit: int
    window: float = 60.0

    def __post_init__(self) -> None:
        if not 1 <= len(self.name) <= 64 or not self.name.isascii() or '"' in self.name:
            raise ValueError("name: 1 to 64 ASCII characters, no quotes")
        Tier(self.limit, self.window)  # the same bounds


DEFAULT_TIERS: Final = (
    QuotaTier("default", 300),
    QuotaTier("public", 600),
    QuotaTier("customer", 300),
    QuotaTier("customer-payments", 30),
    QuotaTier("staff", 600),
    QuotaTier("partner", 120),
    QuotaTier("partner-standard", 120),
    QuotaTier("partner-gold", 600),
    QuotaTier("partner-trial", 20),
)
"""Requests per minute per caller and API product for the default bundle's tiers."""


@dataclass(frozen=True)
class QuotaConfig:
    tiers: Mapping[str, Tier]
    redis_url: str | None = None
    """Shared buckets across nodes; None = per worker, in process."""
    key_prefix: str = "ztq:"


@dataclass(frozen=True, slots=True)
class Verdict:
    allowed: bool
    tier: str
    limit: int
    window: float
    remaining: int
    reset: float
    """Seconds until the bucket is full again."""
    retry_after: float
    """Seconds until one more request is admitted (0 when allowed)."""


class Limiter(Protocol):
    async def take(self, tier_name: str, tier: Tier, caller: str, product: str) -> Verdict: ...

    async def close(self) -> None: ...


def _verdict(name: str, tier: Tier, tat: float, now: float, allowed: bool) -> Verdict:
    """From the bucket's theoretical arrival time after the decision."""
    backlog = max(0.0, tat - now)
    remaining = max(0, min(tier.limit, math.floor((tier.window - backlog) / tier.interval)))
    retry = 0.0 if allowed else max(0.0, backlog + tier.interval - tier.window)
    return Verdict(allowed, name, tier.limit, tier.window, remaining, backlog, retry)


@functools.lru_cache(maxsize=65_536)
def _bucket(tier_name: str, caller: str, product: str) -> str:
    digest = sm3.digest(f"{tier_name}\x00{caller}\x00{product}".encode()).hex()[:32]
    return f"{tier_name}:{digest}"


class MemoryLimiter:
    """Per-process GCRA buckets (LRU-bounded)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._tat: OrderedDict[str, float] = OrderedDict()
        self._clock = clock

    def take_now(self, tier_name: str, tier: Tier, caller: str, product: str) -> Verdict:
        now = self._clock()
        key = _bucket(tier_name, caller, product)
        tat = max(self._tat.get(key, now), now)
        if tat + tier.interval - now > tier.window:
            return _verdict(tier_name, tier, tat, now, allowed=False)
        self._tat[key] = tat + tier.interval
        self._tat.move_to_end(key)
        if len(self._tat) > MAX_BUCKETS:
            self._tat.popitem(last=False)
        return _verdict(tier_name, tier, tat + tier.interval, now, allowed=True)

    async def take(self, tier_name: str, tier: Tier, caller: str, product: str) -> Verdict:
        return self.take_now(tier_name, tier, caller, product)

    async def close(self) -> None:
        self._tat.clear()


_GCRA = """
-- KEYS[1]: bucket; ARGV: interval, window (seconds)
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local interval, window = tonumber(ARGV[1]), tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1])) or now
if tat < now then tat = now end
if tat + interval - now > window then
  return {0, tostring(tat), tostring(now)}
end
tat = tat + interval
redis.call('SET', KEYS[1], tostring(tat), 'PX', math.ceil((tat - now) * 1000) + 1000)
return {1, tostring(tat), tostring(now)}
"""


class RedisLimiter:
    """GCRA buckets in Redis, shared by every edge node (falls back to memory)."""

    def __init__(self, url: str, *, prefix: str = "ztq:", timeout: float = 0.05) -> None:
        self._redis: Redis = Redis.from_url(
            url, socket_timeout=timeout, socket_connect_timeout=timeout
        )
        self._script = self._redis.register_script(_GCRA)
        self._prefix = prefix
        self._fallback = MemoryLimiter()
        self._degraded = False

    async def take(self, tier_name: str, tier: Tier, caller: str, product: str) -> Verdict:
        key = self._prefix + _bucket(tier_name, caller, product)
        try:
            ok, tat, now = await self._script(keys=[key], args=[tier.interval, tier.window])
        except (RedisError, OSError) as exc:
            if not self._degraded:
                log.error("quota store unavailable, per-worker limits", extra={"error": str(exc)})
                self._degraded = True
            return self._fallback.take_now(tier_name, tier, caller, product)
        if self._degraded:
            log.warning("quota store back")
            self._degraded = False
        return _verdict(tier_name, tier, float(tat), float(now), allowed=bool(ok))

    async def close(self) -> None:
        await self._redis.aclose()


class Quotas:
    """The tiers and a limiter: what the pipeline asks after an allow."""

    def __init__(self, tiers: tuple[QuotaTier, ...], limiter: Limiter) -> None:
        self._tiers = {t.name: Tier(t.limit, t.window) for t in tiers}
        self._limiter = limiter

    @classmethod
    def open(cls, tiers: tuple[QuotaTier, ...], redis_url: str = "") -> Quotas:
        limiter: Limiter = RedisLimiter(redis_url) if redis_url else MemoryLimiter()
        return cls(tiers, limiter)

    async def take(self, tier_name: str, caller: str, product: str) -> Verdict | None:
        """The verdict; None when the policy named a tier nobody configured (the
        pipeline refuses: an unmetered tier would be an unlimited one)."""
        tier = self._tiers.get(tier_name)
        if tier is None:
            return None
        return await self._limiter.take(tier_name, tier, caller, product)

    async def close(self) -> None:
        await self._limiter.close()


def rate_limit_headers(verdict: Verdict) -> list[tuple[str, str]]:
    """``RateLimit-Policy`` and ``RateLimit`` (and ``Retry-After`` when refused)."""
    name = verdict.tier.replace("\\", "").replace('"', "")
    headers = [
        ("ratelimit-policy", f'"{name}";q={verdict.limit};w={math.ceil(verdict.window)}'),
        ("ratelimit", f'"{name}";r={verdict.remaining};t={math.ceil(verdict.reset)}'),
    ]
    if not verdict.allowed:
        headers.append(("retry-after", str(max(1, math.ceil(verdict.retry_after)))))
    return headers
