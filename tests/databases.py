"""Test databases shared by every SQL-backed component's tests.

PostgreSQL is ``ZTGATE_TEST_POSTGRES_URL`` (default
``postgresql://postgres@127.0.0.1:5432/test``); each test gets a uniquely named
schema so parallel runs don't collide. An unreachable server FAILS the
postgresql tests instead of skipping them: a silently skipped half of the suite
is how dialect bugs ship.

`fresh_database` — ``(url, schema)`` of a database no one has opened yet, one
per backend (ids ``sqlite`` and ``postgresql``, the latter marked ``postgres``).
Import it into a ``conftest.py`` to use it. `throwaway_schema` — a unique
PostgreSQL schema name, dropped (with everything in it) afterwards.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg  # type: ignore[import-untyped]
import pytest

POSTGRES_URL = os.environ.get(
    "ZTGATE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
DatabaseURL = tuple[str, str | None]


def redacted(url: str) -> str:
    """The URL without its password, fit for a failure message."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


async def admin_connection() -> asyncpg.Connection:
    """A plain connection to the test server, or a test failure naming the URL."""
    try:
        # lock_timeout: a test that leaked an open transaction must not hang cleanup.
        return await asyncpg.connect(
            POSTGRES_URL, timeout=5, server_settings={"lock_timeout": "5000"}
        )
    except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
        pytest.fail(
            f"PostgreSQL is not reachable at {redacted(POSTGRES_URL)} "
            f"({type(exc).__name__}: {exc}). The postgresql-param tests need it: "
            "start it (trust auth, database 'test') or point ZTGATE_TEST_POSTGRES_URL at one.",
            pytrace=False,
        )


@pytest.fixture(
    params=[
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgres),
    ]
)
async def fresh_database(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[DatabaseURL]:
    """(url, schema) of an empty database; the PostgreSQL schema is dropped afterwards."""
    if request.param == "sqlite":
        yield f"sqlite://{tmp_path / 'db' / 'ztgate.db'}", None
        return
    async with throwaway_schema() as schema:
        yield POSTGRES_URL, schema


@asynccontextmanager
async def throwaway_schema() -> AsyncIterator[str]:
    """A schema name no one uses; ``DROP SCHEMA … CASCADE`` when the block ends."""
    admin = await admin_connection()
    schema = f"t_{uuid.uuid4().hex}"
    try:
        yield schema
        await admin.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        await admin.close()
