"""authn databases written before `storage` existed open unchanged, on both databases.

The fixtures in ``data/`` are dumps of stores the previous release wrote (schema
version 1 recorded in ``schema_version``, a user with every factor, a refresh
token, a revocation). Opening them with today's `authn.store` must neither
migrate nor rename anything, must read every row back, and must accept writes;
and a database the new code creates must look exactly like the old one, so
workers of both releases can share it during a rolling upgrade.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from authn.store import Store, open_store
from storage import Migration, Migrations, open_database
from tests.databases import POSTGRES_URL, DatabaseURL, admin_connection, throwaway_schema

DATA = Path(__file__).parent / "data"
SUBJECT_SQLITE = "u-qiqteofuiujnwkwcl5qjbg5sky"
SUBJECT_PG = "u-h3mlxqh7l4xlhjchnlzmhd4csq"
NEIGHBOUR = Migrations(
    "neighbour", (Migration(1, "n", ("CREATE TABLE neighbour (x TEXT){STRICT}",)),)
)


@pytest.fixture(
    params=[
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgres),
    ]
)
async def legacy(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[DatabaseURL]:
    """(url, schema) of a database restored from the previous release's dump."""
    if request.param == "sqlite":
        path = tmp_path / "authn.db"
        with contextlib.closing(sqlite3.connect(path)) as conn:
            conn.executescript((DATA / "authn-v1.sqlite.sql").read_text("utf-8"))
        yield f"sqlite://{path}", None
        return
    async with throwaway_schema() as schema:
        script = (DATA / "authn-v1.postgresql.sql").read_text("utf-8")
        admin = await admin_connection()
        try:
            await admin.execute(script.replace("__SCHEMA__", schema))
        finally:
            await admin.close()
        yield POSTGRES_URL, schema


async def snapshot(
    url: str, schema: str | None
) -> tuple[set[tuple[str, ...]], list[tuple[object, ...]]]:
    """(every table/index definition, the schema_version rows) read around the driver."""
    if schema is None:
        path = url.removeprefix("sqlite://")
        with contextlib.closing(sqlite3.connect(path)) as conn:
            objects = set(conn.execute("SELECT type, name, coalesce(sql, '') FROM sqlite_master"))
            rows = list(conn.execute("SELECT * FROM schema_version ORDER BY version"))
        return objects, rows
    admin = await admin_connection()
    try:
        columns = await admin.fetch(
            "SELECT table_name, column_name, data_type, is_nullable, coalesce(column_default, '')"
            " FROM information_schema.columns WHERE table_schema = $1",
            schema,
        )
        indexes = await admin.fetch(
            "SELECT indexname, replace(indexdef, $1 || '.', '') FROM pg_indexes"
            " WHERE schemaname = $1",
            schema,
        )
        rows = await admin.fetch(f'SELECT * FROM "{schema}".schema_version ORDER BY version')
    finally:
        await admin.close()
    objects = {tuple(map(str, r)) for r in columns} | {tuple(map(str, r)) for r in indexes}
    return objects, [tuple(r) for r in rows]


async def test_previous_release_database_opens_unchanged(legacy: DatabaseURL) -> None:
    url, schema = legacy
    subject = SUBJECT_SQLITE if schema is None else SUBJECT_PG
    before = await snapshot(url, schema)
    assert before[1][0][:2] == (1, "initial authn schema")

    store: Store = await open_store(url, schema=schema)
    try:
        assert await snapshot(url, schema) == before  # nothing migrated, nothing renamed
        user = await store.get_user(subject)
        assert user is not None and user.username == "legacy-alice"
        assert user.display_name == "Alice Ünicode"
        assert await store.get_password(subject) == "$pbkdf2-sm3$i=600000$c2FsdA$aGFzaA"
        totp = await store.get_totp(subject)
        assert totp is not None and (totp.last_step, totp.confirmed) == (56_666_666, True)
        assert totp.sealed_seed == b"\x00sealed\xff" * 4
        cred = await store.get_credential(b"\x01cred\x00")
        assert cred is not None and (cred.subject, cred.sign_count) == (subject, 7)
        assert cred.transports == ("internal", "hybrid")
        refresh = await store.get_refresh(b"\x00digest")
        assert refresh is not None and refresh.family_id == "fam-1"
        assert await store.is_jti_revoked("jti-legacy") is True
        other = await store.create_user("new-bob", "Bob")  # and it takes writes
        assert await store.get_user(other.subject) == other
    finally:
        await store.close()

    # Another component moving into the same database leaves authn's tables alone.
    neighbour = await open_database(url, NEIGHBOUR, schema=schema)
    await neighbour.close()
    store = await open_store(url, schema=schema)
    try:
        assert await store.is_jti_revoked("jti-legacy") is True
    finally:
        await store.close()
    objects, versions = await snapshot(url, schema)
    assert versions == before[1]
    assert before[0] <= objects


async def test_new_database_looks_like_the_previous_release(
    legacy: DatabaseURL, tmp_path: Path
) -> None:
    """A store the new code creates has exactly the old tables, indexes and version
    table: a worker still on the previous release opens it as its own."""
    url, schema = legacy
    async with contextlib.AsyncExitStack() as stack:
        if schema is None:
            fresh: DatabaseURL = (f"sqlite://{tmp_path / 'fresh.db'}", None)
        else:
            fresh = (POSTGRES_URL, await stack.enter_async_context(throwaway_schema()))
        await (await open_store(fresh[0], schema=fresh[1])).close()
        old_objects, old_versions = await snapshot(url, schema)
        new_objects, new_versions = await snapshot(*fresh)
    assert new_objects == old_objects
    assert [v[:2] for v in new_versions] == [v[:2] for v in old_versions]
