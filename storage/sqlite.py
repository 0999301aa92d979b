"""The SQLite driver: one aiosqlite connection per process, WAL, busy timeout, 0600 files.

Statements are written in PostgreSQL's ``$1`` style; `_sqlite_sql` rewrites
``$n`` to ``?n``, SQLite's numbered parameters, so both databases run the very
same text.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import re
import sqlite3
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Final, Literal

import aiosqlite

from storage.base import Executor, IntegrityViolation, Row
from storage.migrations import Migrations, migrate

SQLITE_MIN: Final = (3, 37, 0)
"""RETURNING and upsert need 3.35; STRICT tables 3.37."""
SQLITE_BUSY_TIMEOUT_MS: Final = 5000
_PARAM: Final = re.compile(r"\$(\d+)")


async def open_sqlite(path: str, migrations: Migrations) -> SqliteDatabase:
    """Open (creating 0600) the file at `path` — or ``:memory:`` — and migrate it."""
    if sqlite3.sqlite_version_info < SQLITE_MIN:
        raise RuntimeError(f"ztgate needs SQLite >= 3.37, this Python has {sqlite3.sqlite_version}")
    if not path:
        raise ValueError("sqlite:// URL without a path (use sqlite://:memory: for a throwaway)")
    if path != ":memory:":
        create_private_file(Path(path))
    conn = await aiosqlite.connect(path, isolation_level=None)
    try:
        # busy_timeout first: switching to WAL itself may wait for another process.
        await conn.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        await enable_wal(conn)
        await conn.execute("PRAGMA foreign_keys = ON")
        # synchronous stays FULL (the default): a revocation must survive power loss.
        db = SqliteDatabase(conn)
        async with db.transaction() as tx:  # BEGIN IMMEDIATE: concurrent opens serialise
            await migrate("sqlite", tx, migrations)
    except BaseException:
        await conn.close()
        raise
    return db


async def enable_wal(conn: aiosqlite.Connection) -> None:
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


def create_private_file(path: Path) -> None:
    """Create the database file 0600 before SQLite does (it would honour the umask, and
    its -wal/-shm files copy the main file's mode); tighten an existing looser file.

    An existing database is never opened here: closing *any* descriptor of a file
    drops every POSIX advisory lock the process holds on it, those of its open SQLite
    connections included, and another process may then write under them — SQLite's
    "How To Corrupt An SQLite Database File", §2.2. (One process opens the same
    database several times: authn's store, the device registry, consents.)
    """
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        if os.stat(path).st_mode & 0o077:
            os.chmod(path, 0o600)
        return
    os.close(fd)


@functools.lru_cache(maxsize=512)
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

    async def execute_many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        try:
            await self._conn.executemany(_sqlite_sql(sql), rows)
        except sqlite3.IntegrityError as exc:
            raise _sqlite_integrity(exc) from exc


def _sqlite_integrity(exc: sqlite3.IntegrityError) -> IntegrityViolation:
    name = getattr(exc, "sqlite_errorname", "")
    return IntegrityViolation(str(exc), foreign_key=name == "SQLITE_CONSTRAINT_FOREIGNKEY")


class SqliteDatabase:
    """One aiosqlite connection (autocommit) behind an asyncio.Lock.

    In-process tasks take turns on the connection; other processes on the same
    file are serialised by SQLite's own write lock (WAL + busy_timeout, set by
    `open_sqlite`). Transactions use ``BEGIN IMMEDIATE`` so they take the write
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

    async def execute_many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        async with self._lock:
            await self._exec.execute_many(sql, rows)

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
