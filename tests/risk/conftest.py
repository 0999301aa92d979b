"""Fixtures for the risk tests: both state stores, devices, observations.

The Redis store talks to the real server at 127.0.0.1:6379 under a key prefix
unique to the test; a test needing Redis fails (never skips) when it is down.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from decimal import Decimal

import pytest
from redis.asyncio import Redis

from device_fingerprint.assessment import DeviceAssessment, TrustLevel
from risk.assessment import RiskObservation
from risk.config import RiskConfig
from risk.redis_store import RedisRiskStore
from risk.store import MemoryRiskStore, RiskStateStore

REDIS_URL = "redis://127.0.0.1:6379/0"

KNOWN = DeviceAssessment("dev-1", known=True, bound_to_subject=True, trust=TrustLevel.BOUND)


def device(
    trust: TrustLevel = TrustLevel.BOUND,
    anomalies: tuple[str, ...] = (),
    device_id: str | None = "dev-1",
) -> DeviceAssessment:
    known = trust.rank >= TrustLevel.KNOWN.rank
    return DeviceAssessment(
        device_id, known=known, bound_to_subject=trust.rank >= 3, trust=trust, anomalies=anomalies
    )


def observation(
    subject: str | None = "alice",
    ip: str = "203.0.113.10",
    at: float = 1_700_000_000.0,
    dev: DeviceAssessment = KNOWN,
    operation: str | None = None,
    amount: Decimal | None = None,
    keystrokes: tuple[float, ...] | None = None,
) -> RiskObservation:
    return RiskObservation(
        subject=subject,
        client_ip=ip,
        at=at,
        device=dev,
        route_id="accounts",
        sensitive_operation=operation,
        amount=amount,
        keystrokes=keystrokes,
    )


async def redis_client() -> Redis:
    client = Redis.from_url(REDIS_URL)
    await client.ping()  # unreachable Redis fails the test here
    return client


async def drop_prefix(client: Redis, prefix: str) -> None:
    keys = [key async for key in client.scan_iter(match=f"{prefix}*", count=500)]
    if keys:
        await client.delete(*keys)


@pytest.fixture
def prefix() -> str:
    return f"test:risk:{uuid.uuid4().hex}:"


@pytest.fixture(params=["memory", "redis"])
async def store(request: pytest.FixtureRequest, prefix: str) -> AsyncIterator[RiskStateStore]:
    """Each store test runs against both implementations."""
    config = RiskConfig()
    if request.param == "memory":
        yield MemoryRiskStore(config.rate, config.profile)
        return
    client = await redis_client()
    redis_store = RedisRiskStore(
        client, config.rate, config.profile, config.keystrokes, prefix=prefix
    )
    try:
        yield redis_store
    finally:
        await drop_prefix(client, prefix)
        await client.aclose()
