"""Store fixtures: every store-backed test runs against both SQLite and PostgreSQL.

* `store` — an opened, migrated, empty `Store`.
* `store_url` — the ``(url, schema)`` behind it, for tests that reopen the
  store (restarts, a second edge worker). Already migrated, like a database a
  restarting worker finds.
* `fresh_store_url` — an ``(url, schema)`` nothing has touched yet: first boot,
  migration tests.

All three share one parametrization (ids ``sqlite`` and ``postgresql``, the
latter marked ``postgres``): a test taking `store` and `store_url` gets the
same database, not a cross product.

SQLite is a file in ``tmp_path``; PostgreSQL a uniquely named schema in
``ZTGATE_TEST_POSTGRES_URL`` (default ``postgresql://postgres@127.0.0.1:5432/test``).
An unreachable server FAILS the postgresql tests instead of skipping them: CI
has the server, and a silently skipped half of the suite is how dialect bugs ship.

Speed: creating the tables costs ~20-40 ms on SQLite and 100-200 ms on
PostgreSQL (every table, TOAST table and index is a file, fsync-ed at commit),
so migrated databases are cached per test process. SQLite: a migrated template
file, copied per test. PostgreSQL: a migrated schema is recycled after a test
only if it still has exactly the migrated tables and versions; then every
table but ``schema_version`` is emptied. Anything unexpected and the schema is
left for the session-end ``DROP SCHEMA … CASCADE`` instead of being reused.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import pytest

from authn.store import Store, open_store
from authn.store.schema import LATEST
from tests.databases import POSTGRES_URL, admin_connection, throwaway_schema

StoreURL = tuple[str, str | None]


@dataclass
class _PgSchemas:
    """Schemas this test process created; `ready` ones are migrated and empty."""

    created: set[str] = field(default_factory=set)
    ready: list[str] = field(default_factory=list)
    tables: frozenset[str] = frozenset()


async def _drop(schemas: set[str]) -> None:
    admin = await asyncpg.connect(POSTGRES_URL, timeout=5)
    try:
        for schema in schemas:
            await admin.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        await admin.close()


@pytest.fixture(scope="session")
def _pg_schemas() -> Iterator[_PgSchemas]:
    schemas = _PgSchemas()
    yield schemas
    if schemas.created:
        asyncio.run(_drop(schemas.created))


async def _reset(admin: asyncpg.Connection, schema: str, schemas: _PgSchemas) -> bool:
    """Empty a used schema for the next test; False if it is not as migrations left it."""
    sql = "SELECT tablename FROM pg_tables WHERE schemaname = $1"
    tables = frozenset(r[0] for r in await admin.fetch(sql, schema))
    if tables != schemas.tables:
        return False
    sql = f'SELECT version FROM "{schema}".schema_version ORDER BY version'
    if [r[0] for r in await admin.fetch(sql)] != list(range(1, LATEST + 1)):
        return False
    data = sorted(tables - {"schema_version"})
    await admin.execute("; ".join(f'DELETE FROM "{schema}"."{t}"' for t in data))
    return True


@pytest.fixture(
    params=[
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgres),
    ]
)
def store_backend(request: pytest.FixtureRequest) -> str:
    """'sqlite' or 'postgresql': the one parametrization all store fixtures share."""
    return str(request.param)


@pytest.fixture
async def fresh_store_url(
    store_backend: str, tmp_path: Path, _pg_schemas: _PgSchemas
) -> AsyncIterator[StoreURL]:
    """(url, schema) of a database no one has opened yet; pass both to `open_store`."""
    if store_backend == "sqlite":
        yield f"sqlite://{tmp_path / 'fresh' / 'authn.db'}", None
        return
    async with throwaway_schema() as schema:
        yield POSTGRES_URL, schema


@pytest.fixture(scope="session")
def _sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("authn-template") / "authn.db"


@pytest.fixture
async def store_url(
    store_backend: str, tmp_path: Path, _sqlite_template: Path, _pg_schemas: _PgSchemas
) -> AsyncIterator[StoreURL]:
    """(url, schema) of a migrated, empty database of this test's own."""
    if store_backend == "sqlite":
        if not _sqlite_template.exists():
            await (await open_store(f"sqlite://{_sqlite_template}")).close()
        target = tmp_path / "authn.db"
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out, _sqlite_template.open("rb") as src:
            shutil.copyfileobj(src, out)  # closed stores leave no -wal: one file is all
        yield f"sqlite://{target}", None
        return
    admin = await admin_connection()
    try:
        if _pg_schemas.ready:
            schema = _pg_schemas.ready.pop()
        else:
            schema = f"t_{uuid.uuid4().hex}"
            _pg_schemas.created.add(schema)
            await (await open_store(POSTGRES_URL, schema=schema)).close()
            if not _pg_schemas.tables:
                sql = "SELECT tablename FROM pg_tables WHERE schemaname = $1"
                _pg_schemas.tables = frozenset(r[0] for r in await admin.fetch(sql, schema))
        yield POSTGRES_URL, schema
        if await _reset(admin, schema, _pg_schemas):
            _pg_schemas.ready.append(schema)
    finally:
        await admin.close()


@pytest.fixture
async def store(store_url: StoreURL) -> AsyncIterator[Store]:
    """An opened, migrated, empty store on the parametrized database."""
    url, schema = store_url
    opened = await open_store(url, schema=schema)
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture
async def api(store_url: StoreURL, tmp_path: Path) -> AsyncIterator[Any]:
    """The real authentication service on a free port, on the parametrized database."""
    from tests.authn.service_harness import Api

    url, schema = store_url
    running = await Api(tmp_path / "state", url, schema).start()
    try:
        yield running
    finally:
        await running.close()
