"""Open the `authn` store named by a URL: SQLite for one node, PostgreSQL for a fleet.

``sqlite:///var/lib/ztgate/authn.db`` (everything after ``sqlite://`` is the
path; ``sqlite://:memory:`` is a throwaway database) or
``postgresql://user@host:5432/db`` (any libpq-style URL asyncpg accepts;
``schema=`` puts the tables in that PostgreSQL schema, created if missing).
Opening applies pending migrations (`authn.store.schema`).

This module also holds the two tiny drivers `SqlStore` runs on. Both turn
driver constraint errors into `IntegrityViolation` so no asyncpg or sqlite3
exception type leaks into callers.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import re
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Final, Literal

import aiosqlite
import asyncpg  # type: ignore[import-untyped]

from authn.store.base import (
    Challenge,
    OAuthClient,
    RefreshRecord,
    Store,
    TotpRecord,
    User,
    WebAuthnCredential,
)
from authn.store.schema import (
    SCHEMA_NAME_RE,
    Executor,
    IntegrityViolation,
    Row,
    advisory_lock_key,
    migrate,
)
from authn.store.sql import SqlStore

__all__ = [
    "Challenge",
    "IntegrityViolation",
    "OAuthClient",
    "RefreshRecord",
    "SqlStore",
    "Store",
    "TotpRecord",
    "User",
    "WebAuthnCredential",
    "open_store",
]

SQLITE_MIN: Final = (3, 37, 0)
"""RETURNING and upsert need 3.35; STRICT tables 3.37."""
SQLITE_BUSY_TIMEOUT_MS: Final = 5000
PG_POOL_MAX: Final = 10
_SCHEME_RE: Final = re.compile(r"[A-Za-z][A-Za-z0-9+.-]{0,31}")
_PARAM: Final = re.compile(r"\$(\d+)")


async def open_store(url: str, *, schema: str | None = None) -> Store:
    """Connect, migrate, and return a ready `Store`; close it with ``await store.close()``.

    Errors never echo the URL (it may carry a password), at most its scheme.
    """
    scheme, sep, rest = url.partition("://")
    scheme = scheme.lower()
    if scheme == "sqlite" and sep:
        if schema is not None:
            raise ValueError("schema= applies to postgresql:// stores only")
        return SqlStore(await _open_sqlite(rest))
    if scheme in ("postgresql", "postgres") and sep:
        if schema is not None and not SCHEMA_NAME_RE.fullmatch(schema):
            raise ValueError("schema must be a plain identifier ([A-Za-z_][A-Za-z0-9_]*)")
        return SqlStore(await _open_postgres(url, schema))
    shown = repr(scheme) if sep and _SCHEME_RE.fullmatch(scheme) else "(none)"
    raise ValueError(f"unsupported store URL scheme {shown}: use sqlite:// or postgresql://")


async def _open_sqlite(path: str) -> SqliteDatabase:
    if sqlite3.sqlite_version_info < SQLITE_MIN:
        raise RuntimeError(f"authn needs SQLite >= 3.37, this Python has {sqlite3.sqlite_version}")
    if not path:
        raise ValueError("sqlite:// URL without a path (use sqlite://:memory: for a throwaway)")
    if path != ":memory:":
        _create_private_file(Path(path))
    conn = await aiosqlite.connect(path, isolation_level=None)
    try:
        # busy_timeout first: switching to WAL itself may wait for another process.
        await conn.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        await _enable_wal(conn)
        await conn.execute("PRAGMA foreign_keys = ON")
        # synchronous stays FULL (the default): a revocation must survive power loss.
        db = SqliteDatabase(conn)
        async with db.transaction() as tx:  # BEGIN IMMEDIATE: concurrent opens serialise
            await migrate("sqlite", tx)
    except BaseException:
        await conn.close()
        raise
    return db


async def _enable_wal(conn: aiosqlite.Connection) -> None:
    """Switch to WAL, retrying while another process is switching the same new file.

    The switch needs an exclusive lock, and SQLite answers "database is locked" at
    once instead of calling the busy handler when waiting could deadlock (this
    connection already holds a shared lock): several workers opening a new
    database together hit it. Retried until the busy timeout is spent.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + SQLITE_BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            await conn.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or loop.time() > deadline:
                raise
        await asyncio.sleep(0.01)


def _create_private_file(path: Path) -> None:
    """Create the database file 0600 before SQLite does (it would honour the umask, and
    its -wal/-shm files copy the main file's mode); tighten an existing looser file."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        if os.fstat(fd).st_mode & 0o077:
            os.fchmod(fd, 0o600)
    finally:
        os.close(fd)


async def _open_postgres(url: str, schema: str | None) -> PostgresDatabase:
    settings = {"application_name": "ztgate.authn"}
    if schema is not None:
        settings["search_path"] = f'"{schema}"'
    pool = await asyncpg.create_pool(
        url, min_size=1, max_size=PG_POOL_MAX, server_settings=settings
    )
    db = PostgresDatabase(pool)
    try:
        async with db.transaction() as tx:
            # One migrator at a time per schema, including the CREATE SCHEMA.
            await tx.execute("SELECT pg_advisory_xact_lock($1)", advisory_lock_key(schema))
            if schema is not None:
                found = await tx.fetch("SELECT 1 FROM pg_namespace WHERE nspname = $1", schema)
                if not found:  # checked first: CREATE … IF NOT EXISTS needs CREATE privilege
                    await tx.execute(f'CREATE SCHEMA "{schema}"')
            await migrate("postgresql", tx)
    except BaseException:
        await pool.close()
        raise
    return db


# --- SQLite ---------------------------------------------------------------------------


@functools.lru_cache(maxsize=256)
def _sqlite_sql(sql: str) -> str:
    return _PARAM.sub(r"?\1", sql)


class _SqliteExecutor:
    def __init__(self, conn: aiosqlite.Connection) -> None:
        self._conn = conn

    async def fetch(self, sql: str, *args: Any) -> list[Row]:
        try:
            rows = await self._conn.execute_fetchall(_sqlite_sql(sql), args)
        except sqlite3.IntegrityError as exc:
            raise _sqlite_integrity(exc) from exc
        return [tuple(r) for r in rows]

    async def execute(self, sql: str, *args: Any) -> int:
        try:
            async with self._conn.execute(_sqlite_sql(sql), args) as cursor:
                return cursor.rowcount
        except sqlite3.IntegrityError as exc:
            raise _sqlite_integrity(exc) from exc


def _sqlite_integrity(exc: sqlite3.IntegrityError) -> IntegrityViolation:
    name = getattr(exc, "sqlite_errorname", "")
    return IntegrityViolation(str(exc), foreign_key=name == "SQLITE_CONSTRAINT_FOREIGNKEY")


class SqliteDatabase:
    """One aiosqlite connection (autocommit) behind an asyncio.Lock.

    In-process tasks take turns on the connection; other processes on the same
    file are serialised by SQLite's own write lock (WAL + busy_timeout, set by
    `open_store`). Transactions use ``BEGIN IMMEDIATE`` so they take the write
    lock up front instead of failing to upgrade a read lock later.
    """

    dialect: Literal["sqlite", "postgresql"] = "sqlite"

    def __init__(self, conn: aiosqlite.Connection) -> None:
        self._conn = conn
        self._exec = _SqliteExecutor(conn)
        self._lock = asyncio.Lock()

    async def fetch(self, sql: str, *args: Any) -> list[Row]:
        async with self._lock:
            return await self._exec.fetch(sql, *args)

    async def execute(self, sql: str, *args: Any) -> int:
        async with self._lock:
            return await self._exec.execute(sql, *args)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Executor]:
        async with self._lock:
            await self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._exec
                await self._conn.execute("COMMIT")
            except BaseException:
                # Also after a failed or cancelled COMMIT (then there may be nothing
                # left to roll back): never hand the next caller an open transaction.
                with contextlib.suppress(sqlite3.OperationalError):
                    await self._conn.execute("ROLLBACK")
                raise

    async def close(self) -> None:
        async with self._lock:
            await self._conn.close()


# --- PostgreSQL -------------------------------------------------------------------------


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
