"""Device fixtures: a registry on each database (SQLite file, PostgreSQL schema)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from device_fingerprint.config import DeviceConfig
from device_fingerprint.registry import DeviceRegistry, open_registry
from tests.databases import DatabaseURL, fresh_database

__all__ = ["fresh_database", "registry"]


@pytest.fixture
async def registry(fresh_database: DatabaseURL) -> AsyncIterator[DeviceRegistry]:
    """A migrated, empty registry with the default configuration."""
    url, schema = fresh_database
    opened = await open_registry(url, DeviceConfig(), schema=schema)
    try:
        yield opened
    finally:
        await opened.close()
