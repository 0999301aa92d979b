"""The PostgreSQL driver: an asyncpg pool, optionally confined to one schema."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any, Final, Literal

import asyncpg  # type: ignore[import-untyped]

from storage.base import Executor, IntegrityViolation, Row
from storage.migrations import Migrations, advisory_lock_key, migrate, schema_lock_key

PG_POOL_MAX: Final = 10


async def open_postgres(url: str, schema: str | None, migrations: Migrations) -> PostgresDatabase:
    """Connect a pool (``search_path`` = `schema` when given), create the schema if
    missing, and migrate. `schema` must already be a checked identifier."""
    settings = {"application_name": f"ztgate.{migrations.component}"}
    if schema is not None:
        settings["search_path"] = f'"{schema}"'
    pool = await asyncpg.create_pool(
        url, min_size=1, max_size=PG_POOL_MAX, server_settings=settings
    )
    db = PostgresDatabase(pool)
    try:
        async with db.transaction() as tx:
            # Two locks, always in this order: the schema's (components creating the same
            # new schema serialise), then the component's (its migrations; for authn the
            # very key earlier releases took).
            await tx.execute("SELECT pg_advisory_xact_lock($1)", schema_lock_key(schema))
            key = advisory_lock_key(migrations.component, schema)
            await tx.execute("SELECT pg_advisory_xact_lock($1)", key)
            if schema is not None:
                found = await tx.fetch("SELECT 1 FROM pg_namespace WHERE nspname = $1", schema)
                if not found:  # checked first: CREATE … IF NOT EXISTS needs CREATE privilege
                    await tx.execute(f'CREATE SCHEMA "{schema}"')
            await migrate("postgresql", tx, migrations)
    except BaseException:
        await pool.close()
        raise
    return db


class _PgExecutor:
    """Wraps an asyncpg pool or connection (same fetch/execute API)."""

    def __init__(self, target: Any) -> None:
        self._target = target

    async def fetch(self, sql: str, *args: Any) -> list[Row]:
        try:
            rows = await self._target.fetch(sql, *args)
        except asyncpg.IntegrityConstraintViolationError as exc:
            raise _pg_integrity(exc) from exc
        return [tuple(r) for r in rows]

    async def execute(self, sql: str, *args: Any) -> int:
        try:
            status: str = await self._target.execute(sql, *args)
        except asyncpg.IntegrityConstraintViolationError as exc:
            raise _pg_integrity(exc) from exc
        last = status.rsplit(" ", 1)[-1]  # "UPDATE 3", "INSERT 0 1", "CREATE TABLE"
        return int(last) if last.isdigit() else 0

    async def execute_many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        try:
            await self._target.executemany(sql, rows)
        except asyncpg.IntegrityConstraintViolationError as exc:
            raise _pg_integrity(exc) from exc


def _pg_integrity(exc: Exception) -> IntegrityViolation:
    fk = isinstance(exc, asyncpg.ForeignKeyViolationError)
    return IntegrityViolation(str(exc), foreign_key=fk)


class PostgresDatabase(_PgExecutor):
    """An asyncpg pool: single statements take any connection, transactions hold one."""

    dialect: Literal["sqlite", "postgresql"] = "postgresql"

    def __init__(self, pool: Any) -> None:
        super().__init__(pool)
        self._pool = pool

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Executor]:
        async with self._pool.acquire() as conn, conn.transaction():
            yield _PgExecutor(conn)

    async def close(self) -> None:
        await self._pool.close()
