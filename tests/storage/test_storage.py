"""`storage` on both databases: per-component migrations, concurrency, error mapping, URLs."""

from __future__ import annotations

import asyncio
import hashlib
import os
import sqlite3
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import pytest

from storage import (
    Database,
    IntegrityViolation,
    Migration,
    Migrations,
    bool_column,
    open_database,
)
from storage.migrations import advisory_lock_key, schema_lock_key
from tests.databases import DatabaseURL

PARCELS_V1 = Migration(
    1,
    "parcels",
    (
        f"""CREATE TABLE parcels (
            id TEXT PRIMARY KEY,
            weight {{FLOAT}} NOT NULL,
            blob {{BLOB}},
            big {{BIGINT}} NOT NULL DEFAULT 0,
            fragile {bool_column("fragile")}
        ){{STRICT}}""",
    ),
)
PARCELS_V2 = Migration(
    2,
    "labels",
    (
        """CREATE TABLE labels (
            parcel TEXT NOT NULL REFERENCES parcels (id) ON DELETE CASCADE,
            text TEXT NOT NULL
        ){STRICT}""",
    ),
)
ONE = Migrations("parcels", (PARCELS_V1,))
TWO = Migrations("parcels", (PARCELS_V1, PARCELS_V2))
OTHER = Migrations(
    "ledger", (Migration(1, "ledger", ("CREATE TABLE ledger (n {BIGINT} NOT NULL){STRICT}",)),)
)


async def versions(db: Database, table: str) -> list[int]:
    return [int(r[0]) for r in await db.fetch(f"SELECT version FROM {table} ORDER BY version")]


async def test_components_keep_their_own_versions(fresh_database: DatabaseURL) -> None:
    url, schema = fresh_database
    db = await open_database(url, ONE, schema=schema)
    await db.close()
    db = await open_database(url, TWO, schema=schema)  # upgrade: only v2 runs
    other = await open_database(url, OTHER, schema=schema)  # same database, own table
    try:
        assert await versions(db, "parcels_schema_version") == [1, 2]
        assert await versions(db, "ledger_schema_version") == [1]
        await db.execute("INSERT INTO parcels (id, weight) VALUES ($1, $2)", "p1", 1.5)
        await other.execute("INSERT INTO ledger (n) VALUES ($1)", 2**40)
        assert await other.fetch("SELECT n FROM ledger") == [(2**40,)]
    finally:
        await db.close()
        await other.close()


async def test_newer_database_is_refused(fresh_database: DatabaseURL) -> None:
    url, schema = fresh_database
    await (await open_database(url, TWO, schema=schema)).close()
    with pytest.raises(RuntimeError, match=r"parcels schema version 2 is newer .* supports \(1\)"):
        await open_database(url, ONE, schema=schema)


async def test_concurrent_first_opens_of_two_components(fresh_database: DatabaseURL) -> None:
    """Workers of two components start together on a database (and, on PostgreSQL, a
    schema) that doesn't exist yet: every migration runs exactly once."""
    url, schema = fresh_database
    opened = await asyncio.gather(
        *(open_database(url, TWO if i % 2 else OTHER, schema=schema) for i in range(6))
    )
    try:
        assert await versions(opened[0], "parcels_schema_version") == [1, 2]
        assert await versions(opened[0], "ledger_schema_version") == [1]
    finally:
        await asyncio.gather(*(db.close() for db in opened))


async def test_types_placeholders_and_integrity_errors(fresh_database: DatabaseURL) -> None:
    url, schema = fresh_database
    db = await open_database(url, TWO, schema=schema)
    try:
        weight = 1_700_000_000.123456789  # not float32-representable
        await db.execute(
            "INSERT INTO parcels (id, weight, blob, big, fragile) VALUES ($1, $2, $3, $4, $5)",
            "p1",
            weight,
            b"\x00\xff",
            2**62,
            1,
        )
        # $n may repeat and come in any order.
        rows = await db.fetch(
            "SELECT id FROM parcels WHERE id = $2 AND weight = $1 OR id = $2", weight, "p1"
        )
        assert rows == [("p1",)]
        [(got_w, got_b, got_big, got_f)] = await db.fetch(
            "SELECT weight, blob, big, fragile FROM parcels"
        )
        assert (got_w, bytes(got_b), got_big, got_f) == (weight, b"\x00\xff", 2**62, 1)
        with pytest.raises(IntegrityViolation) as info:
            await db.execute("INSERT INTO parcels (id, weight) VALUES ($1, $2)", "p1", 2.0)
        assert not info.value.foreign_key
        with pytest.raises(IntegrityViolation) as info:
            await db.execute("INSERT INTO labels (parcel, text) VALUES ($1, $2)", "nope", "x")
        assert info.value.foreign_key
        with pytest.raises(IntegrityViolation):  # the boolean CHECK
            await db.execute(
                "INSERT INTO parcels (id, weight, fragile) VALUES ($1, $2, 2)", "p2", 1.0
            )
        assert await db.execute("UPDATE parcels SET big = big + 1") == 1
    finally:
        await db.close()


async def test_transaction_rolls_back_on_error(fresh_database: DatabaseURL) -> None:
    url, schema = fresh_database
    db = await open_database(url, ONE, schema=schema)
    try:
        with pytest.raises(IntegrityViolation):
            async with db.transaction() as tx:
                await tx.execute("INSERT INTO parcels (id, weight) VALUES ($1, $2)", "a", 1.0)
                await tx.execute("INSERT INTO parcels (id, weight) VALUES ($1, $2)", "a", 1.0)
        assert await db.fetch("SELECT id FROM parcels") == []
        async with db.transaction() as tx:  # the connection is usable afterwards
            await tx.execute("INSERT INTO parcels (id, weight) VALUES ($1, $2)", "b", 1.0)
        assert await db.fetch("SELECT id FROM parcels") == [("b",)]
    finally:
        await db.close()


def test_lock_keys() -> None:
    # authn's key is the one earlier releases took: old and new workers serialise.
    old = hashlib.sha256(b"ztgate.authn.migrate:s1").digest()[:8]
    assert advisory_lock_key("authn", "s1") == int.from_bytes(old, "big", signed=True)
    keys = {advisory_lock_key(c, s) for c in ("authn", "device") for s in ("s1", "s2", None)}
    assert len(keys) == 6
    assert schema_lock_key("s1") not in keys
    assert all(-(2**63) <= k < 2**63 for k in keys)


def test_migrations_are_checked() -> None:
    with pytest.raises(ValueError, match="versions must be 1, 2, 3"):
        Migrations("parcels", (PARCELS_V2,))
    with pytest.raises(ValueError, match="versions must be 1, 2, 3"):
        Migrations("parcels", (PARCELS_V1, PARCELS_V1))
    with pytest.raises(ValueError, match="component"):
        Migrations("Parcels; DROP", (PARCELS_V1,))
    with pytest.raises(ValueError, match="version_table"):
        Migrations("parcels", (PARCELS_V1,), version_table="x y")
    assert Migrations("parcels", ()).latest == 0


async def test_bad_urls_never_leak_secrets() -> None:
    with pytest.raises(ValueError, match="'mysql'") as info:
        await open_database("mysql://admin:hunter2@db.example/x", ONE)
    assert "hunter2" not in str(info.value)
    with pytest.raises(ValueError) as info:
        await open_database("admin:hunter2@db.example", ONE)
    assert "hunter2" not in str(info.value)
    with pytest.raises(ValueError, match="postgresql"):
        await open_database("sqlite:///tmp/x.db", ONE, schema="s")
    with pytest.raises(ValueError, match="identifier"):
        await open_database("postgresql://u@h/db", ONE, schema='x"; DROP TABLE users; --')
    with pytest.raises(ValueError, match="without a path"):
        await open_database("sqlite://", ONE)


async def test_failed_migration_leaves_nothing(fresh_database: DatabaseURL) -> None:
    url, schema = fresh_database
    broken = Migrations("parcels", (PARCELS_V1, Migration(2, "broken", ("CREATE TABLE (",))))
    with pytest.raises((sqlite3.OperationalError, asyncpg.PostgresSyntaxError)):
        await open_database(url, broken, schema=schema)
    db = await open_database(url, ONE, schema=schema)  # v1 was rolled back with v2
    try:
        assert await versions(db, "parcels_schema_version") == [1]
    finally:
        await db.close()


async def test_execute_many_in_a_transaction(fresh_database: DatabaseURL) -> None:
    url, schema = fresh_database
    db = await open_database(url, ONE, schema=schema)
    try:
        async with db.transaction() as tx:
            await tx.execute_many(
                "INSERT INTO parcels (id, weight) VALUES ($1, $2)", [("a", 1.0), ("b", 2.5)]
            )
            await tx.execute_many("UPDATE parcels SET big = $2 WHERE id = $1", [("b", 7)])
        assert await db.fetch("SELECT id, weight, big FROM parcels ORDER BY id") == [
            ("a", 1.0, 0),
            ("b", 2.5, 7),
        ]
        with pytest.raises(IntegrityViolation):  # one bad row rolls the batch back
            async with db.transaction() as tx:
                await tx.execute_many(
                    "INSERT INTO parcels (id, weight) VALUES ($1, $2)", [("c", 1.0), ("a", 1.0)]
                )
        await db.execute_many("DELETE FROM parcels WHERE id = $1", [("a",)])
        assert await db.fetch("SELECT id FROM parcels ORDER BY id") == [("b",)]
    finally:
        await db.close()


def test_an_existing_database_file_is_never_opened_to_fix_its_mode(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Closing any descriptor of a database drops the process's POSIX locks on it (and
    so its other SQLite connections' locks): corruption. Only a new file is opened."""
    from storage.sqlite import create_private_file

    path = tmp_path / "db" / "x.db"
    create_private_file(path)
    assert path.stat().st_mode & 0o777 == 0o600
    path.chmod(0o644)
    real_open = os.open

    def no_reopen(file: Any, flags: int, *args: Any) -> int:
        assert flags & os.O_EXCL, "an existing database file was opened"
        return real_open(file, flags, *args)

    monkeypatch.setattr(os, "open", no_reopen)
    create_private_file(path)
    assert path.stat().st_mode & 0o777 == 0o600
