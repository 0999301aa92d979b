"""The risk state in Redis, shared by many edge nodes (`redis.asyncio`).

Same behaviour as `risk.store.MemoryRiskStore`, with these Redis specifics:

* Keys are ``<prefix>s:{<id>}:<what>`` and ``<prefix>a:{<id>}:<what>`` where
  ``<id>`` is an SM3 digest of the subject or address: no personal identifier
  appears in a key name, and the ``{…}`` hash tag keeps one subject's keys in
  one Redis Cluster slot so that a script may touch them together.
* Counting a request is one round trip: a pipeline of two Lua scripts (the
  address's counters, the subject's counters, last access and profile), each
  atomic on the server.
* Pending events are a capped list (RPUSH/LTRIM in MULTI); taking them is
  LRANGE+DEL in MULTI. Profiles change with WATCH/MULTI optimistic retries.
* Every key has a TTL, so abandoned state leaves by itself.
"""

from __future__ import annotations

import asyncio
import json
import math
import secrets
from collections.abc import Callable, Sequence
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError, WatchError

from crypto import sm3
from risk.config import KeystrokeConfig, ProfileBounds, RateConfig
from risk.profile import PendingEvent, SubjectProfile
from risk.store import LastAccess, StoreError, Touch, sliding_count

__all__ = ["RedisRiskStore"]

_LUA_WINDOW = """
local function hit(key, at, window, ttl)
  local bucket = math.floor(at / window)
  local b = tonumber(redis.call('HGET', key, 'b'))
  if b == nil then
    redis.call('HSET', key, 'b', bucket, 'c', 0, 'p', 0)
  elseif bucket > b then
    local p = 0
    if bucket == b + 1 then p = tonumber(redis.call('HGET', key, 'c')) or 0 end
    redis.call('HSET', key, 'b', bucket, 'c', 0, 'p', p)
  end
  redis.call('HINCRBY', key, 'c', 1)
  redis.call('EXPIRE', key, ttl)
  return redis.call('HMGET', key, 'b', 'c', 'p')
end
"""

_ADDRESS_TOUCH = (
    _LUA_WINDOW
    + """
-- KEYS: requests, failures; ARGV: at, window, ttl
local counted = hit(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]))
return {counted, redis.call('HMGET', KEYS[2], 'b', 'c', 'p')}
"""
)

_SUBJECT_TOUCH = (
    _LUA_WINDOW
    + """
-- KEYS: requests, streak, last, profile
-- ARGV: at, window, ttl, has_access, lat, lon, last_ttl
local counted = hit(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]))
local previous = redis.call('HMGET', KEYS[3], 'at', 'lat', 'lon')
if ARGV[4] == '1' then
  redis.call('HSET', KEYS[3], 'at', ARGV[1], 'lat', ARGV[5], 'lon', ARGV[6])
  redis.call('EXPIRE', KEYS[3], tonumber(ARGV[7]))
end
return {counted, redis.call('HMGET', KEYS[2], 'n', 'at'), previous, redis.call('GET', KEYS[4])}
"""
)

_ADDRESS_FAILURE = (
    _LUA_WINDOW
    + """
-- KEYS: failures; ARGV: at, failure_window, ttl
hit(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]))
return 1
"""
)

_SUBJECT_FAILURE = """
-- KEYS: streak; ARGV: at, failure_window, ttl
local at = tonumber(ARGV[1])
local n = tonumber(redis.call('HGET', KEYS[1], 'n')) or 0
local last = tonumber(redis.call('HGET', KEYS[1], 'at'))
if last == nil or at - last > tonumber(ARGV[2]) then n = 0 end
redis.call('HSET', KEYS[1], 'n', n + 1)
if last == nil or at > last then redis.call('HSET', KEYS[1], 'at', ARGV[1]) end
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[3]))
return n + 1
"""

_WATCH_RETRIES = 64


def _float(raw: Any) -> float | None:
    return None if raw is None else float(raw)


def _window_read(fields: Sequence[Any], window: float, at: float) -> float:
    """Same estimate as `risk.store._Window.read`, from a stored (b, c, p) triple."""
    if fields[0] is None:
        return 0.0
    stored, current, previous = int(float(fields[0])), int(fields[1]), int(fields[2])
    bucket = math.floor(at / window)
    if bucket > stored + 1:
        return 0.0
    if bucket == stored + 1:
        return sliding_count(window, at, bucket, 0, current)
    return sliding_count(window, at, stored, current, previous)


def _window_hit(fields: Sequence[Any], window: float, at: float) -> float:
    return sliding_count(window, at, int(float(fields[0])), int(fields[1]), int(fields[2]))


class RedisRiskStore:
    """Risk state in Redis; one instance per process, sharing one connection pool."""

    def __init__(
        self,
        client: Redis,
        rate: RateConfig,
        bounds: ProfileBounds,
        keys: KeystrokeConfig,
        *,
        prefix: str = "ztgate:risk:",
    ) -> None:
        self._redis = client
        self._rate = rate
        self._bounds = bounds
        self._keys = keys
        self._prefix = prefix
        self._address_touch = client.register_script(_ADDRESS_TOUCH)
        self._subject_touch = client.register_script(_SUBJECT_TOUCH)
        self._address_failure = client.register_script(_ADDRESS_FAILURE)
        self._subject_failure = client.register_script(_SUBJECT_FAILURE)
        self._window_ttl = math.ceil(2 * rate.window_seconds) + 1
        self._failure_ttl = math.ceil(2 * rate.failure_window_seconds) + 1

    @classmethod
    def from_url(
        cls,
        url: str,
        rate: RateConfig,
        bounds: ProfileBounds,
        keys: KeystrokeConfig,
        *,
        prefix: str = "ztgate:risk:",
    ) -> RedisRiskStore:
        return cls(Redis.from_url(url), rate, bounds, keys, prefix=prefix)

    def _key(self, scope: str, ident: str, what: str) -> str:
        tag = sm3.digest(ident.encode("utf-8", "surrogatepass")).hex()[:32]
        return f"{self._prefix}{scope}:{{{tag}}}:{what}"

    def _profile(self, raw: Any) -> SubjectProfile | None:
        if raw is None:
            return None
        try:
            return SubjectProfile.from_json(json.loads(raw), self._keys)
        except ValueError as exc:
            raise StoreError(f"stored profile is malformed: {exc}") from None

    async def touch(
        self, subject: str | None, address: str, at: float, access: LastAccess | None
    ) -> Touch:
        rate = self._rate
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                await self._address_touch(
                    keys=[self._key("a", address, "req"), self._key("a", address, "fail")],
                    args=[repr(at), repr(rate.window_seconds), self._window_ttl],
                    client=pipe,
                )
                if subject is not None:
                    await self._subject_touch(
                        keys=[
                            self._key("s", subject, "req"),
                            self._key("s", subject, "streak"),
                            self._key("s", subject, "last"),
                            self._key("s", subject, "profile"),
                        ],
                        args=[
                            repr(at),
                            repr(rate.window_seconds),
                            self._window_ttl,
                            "1" if access is not None else "0",
                            repr(access.lat) if access is not None else "",
                            repr(access.lon) if access is not None else "",
                            self._bounds.profile_ttl_seconds,
                        ],
                        client=pipe,
                    )
                results = await pipe.execute()
        except RedisError as exc:
            raise StoreError(f"redis: {exc}") from None
        address_counted, address_failures = results[0]
        address_rate = _window_hit(address_counted, rate.window_seconds, at)
        failures = _window_read(address_failures, rate.failure_window_seconds, at)
        if subject is None:
            return Touch(None, None, 0.0, 0, address_rate, failures)
        counted, streak, previous, profile = results[1]
        streak_at = _float(streak[1])
        lapsed = streak_at is None or at - streak_at > rate.failure_window_seconds
        last = None
        if previous[0] is not None:
            last = LastAccess(float(previous[0]), float(previous[1]), float(previous[2]))
        return Touch(
            profile=self._profile(profile),
            previous=last,
            subject_rate=_window_hit(counted, rate.window_seconds, at),
            subject_failures=0 if lapsed else int(streak[0] or 0),
            address_rate=address_rate,
            address_failures=failures,
        )

    async def add_pending(self, subject: str, event: PendingEvent) -> None:
        key = self._key("s", subject, "pending")
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.rpush(key, json.dumps(event.to_json(), separators=(",", ":")))
                pipe.ltrim(key, -self._bounds.max_pending, -1)
                pipe.expire(key, self._bounds.session_ttl_seconds)
                await pipe.execute()
        except RedisError as exc:
            raise StoreError(f"redis: {exc}") from None

    async def take_pending(self, subject: str) -> tuple[PendingEvent, ...]:
        key = self._key("s", subject, "pending")
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.lrange(key, 0, -1)
                pipe.delete(key)
                raw, _ = await pipe.execute()
            return tuple(PendingEvent.from_json(json.loads(item)) for item in raw)
        except RedisError as exc:
            raise StoreError(f"redis: {exc}") from None
        except ValueError as exc:
            raise StoreError(f"stored pending event is malformed: {exc}") from None

    async def update_profile(
        self, subject: str, change: Callable[[SubjectProfile | None], SubjectProfile]
    ) -> SubjectProfile:
        key = self._key("s", subject, "profile")
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                for _ in range(_WATCH_RETRIES):
                    try:
                        await pipe.watch(key)
                        updated = change(self._profile(await pipe.get(key)))
                        pipe.multi()  # type: ignore[no-untyped-call]
                        pipe.set(
                            key,
                            json.dumps(updated.to_json(), separators=(",", ":")),
                            ex=self._bounds.profile_ttl_seconds,
                        )
                        await pipe.execute()
                        return updated
                    except WatchError:  # another node changed it first: back off, retry
                        await asyncio.sleep(secrets.randbelow(2000) / 1_000_000)
        except RedisError as exc:
            raise StoreError(f"redis: {exc}") from None
        raise StoreError("profile update kept conflicting; gave up")

    async def record_failure(self, subject: str | None, address: str | None, at: float) -> None:
        args: list[str | int] = [
            repr(at),
            repr(self._rate.failure_window_seconds),
            self._failure_ttl,
        ]
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                if address is not None:
                    await self._address_failure(
                        keys=[self._key("a", address, "fail")], args=args, client=pipe
                    )
                if subject is not None:
                    await self._subject_failure(
                        keys=[self._key("s", subject, "streak")], args=args, client=pipe
                    )
                await pipe.execute()
        except RedisError as exc:
            raise StoreError(f"redis: {exc}") from None

    async def clear_failures(self, subject: str) -> None:
        try:
            await self._redis.delete(self._key("s", subject, "streak"))
        except RedisError as exc:
            raise StoreError(f"redis: {exc}") from None

    async def forget(self, subject: str) -> None:
        what = ("req", "streak", "last", "profile", "pending")
        try:
            await self._redis.delete(*(self._key("s", subject, w) for w in what))
        except RedisError as exc:
            raise StoreError(f"redis: {exc}") from None

    async def close(self) -> None:
        await self._redis.aclose()
