"""Versioned, per-component schema migrations for SQLite and PostgreSQL.

Each component (``authn``, ``device``, …) owns an ordered, append-only list of
migrations and its own version table, so components sharing one database (one
SQLite file or one PostgreSQL schema) upgrade independently: a new device
migration never renumbers authn's. Never edit a released migration; add a new
version.

DDL is written once with type tokens (``{BLOB}``, ``{FLOAT}``, ``{BIGINT}``,
``{STRICT}``) filled in per dialect, so the two databases cannot drift apart.
SQLite tables are ``STRICT``: a bank's store should refuse a text value in a
blob column rather than coerce it. Booleans are ``INTEGER`` 0/1 in both
(`bool_column`) so every query can be written once.

`migrate` runs inside one transaction that also holds a lock — ``BEGIN
IMMEDIATE`` (SQLite's write lock) or ``pg_advisory_xact_lock`` on
`advisory_lock_key` (PostgreSQL) — so edge workers starting together against
the same database serialise instead of racing on ``CREATE TABLE``.
"""

from __future__ import annotations

import hashlib
import re
import time
from dataclasses import dataclass
from typing import Final

from storage.base import SCHEMA_NAME_RE, Dialect, Executor

__all__ = [
    "Migration",
    "Migrations",
    "advisory_lock_key",
    "bool_column",
    "migrate",
    "schema_lock_key",
]

_TYPES: Final[dict[Dialect, dict[str, str]]] = {
    "sqlite": {"BLOB": "BLOB", "FLOAT": "REAL", "BIGINT": "INTEGER", "STRICT": " STRICT"},
    "postgresql": {"BLOB": "BYTEA", "FLOAT": "DOUBLE PRECISION", "BIGINT": "BIGINT", "STRICT": ""},
}
_COMPONENT_RE: Final = re.compile(r"[a-z][a-z0-9_]{0,31}")


def bool_column(col: str) -> str:
    """The column type of a boolean: ``INTEGER`` 0/1 with a CHECK, same in both dialects."""
    return f"INTEGER NOT NULL DEFAULT 0 CHECK ({col} IN (0, 1))"


@dataclass(frozen=True)
class Migration:
    version: int
    description: str
    statements: tuple[str, ...]

    def render(self, dialect: Dialect) -> list[str]:
        return [s.format(**_TYPES[dialect]) for s in self.statements]


@dataclass(frozen=True)
class Migrations:
    """One component's migrations and where it records which ones ran.

    ``version_table`` defaults to ``<component>_schema_version``. authn predates
    per-component versions and keeps its original ``schema_version`` table, so
    its existing databases open unchanged.
    """

    component: str
    steps: tuple[Migration, ...]
    version_table: str = ""

    def __post_init__(self) -> None:
        if not _COMPONENT_RE.fullmatch(self.component):
            raise ValueError(f"component: {self.component!r} is not a lower-case identifier")
        if not self.version_table:
            object.__setattr__(self, "version_table", f"{self.component}_schema_version")
        if not SCHEMA_NAME_RE.fullmatch(self.version_table):
            raise ValueError(f"version_table: {self.version_table!r} is not an identifier")
        versions = [m.version for m in self.steps]
        if versions != list(range(1, len(versions) + 1)):
            raise ValueError(f"steps: versions must be 1, 2, 3, … in order, got {versions}")

    @property
    def latest(self) -> int:
        return len(self.steps)


def advisory_lock_key(component: str, schema: str | None) -> int:
    """A stable signed 64-bit key per (component, schema): migrations of different
    components or schemas don't wait on each other, two workers migrating the same
    one do. For authn it equals the key earlier releases used, so old and new
    workers starting together during a rolling upgrade still serialise."""
    seed = f"ztgate.{component}.migrate:{schema or ''}".encode()
    return int.from_bytes(hashlib.sha256(seed).digest()[:8], "big", signed=True)


def schema_lock_key(schema: str | None) -> int:
    """The advisory lock every component takes first, whatever its name: two
    components opening the same new PostgreSQL schema don't race on ``CREATE SCHEMA``."""
    seed = f"ztgate.schema.create:{schema or ''}".encode()
    return int.from_bytes(hashlib.sha256(seed).digest()[:8], "big", signed=True)


async def migrate(dialect: Dialect, tx: Executor, migrations: Migrations) -> int:
    """Apply every missing migration of one component; return the resulting version.

    Must run inside a transaction that already holds the migration lock. Refuses
    a database newer than this code: old code on a newer schema could silently
    ignore columns that carry security state.
    """
    table = migrations.version_table  # an identifier, checked in Migrations
    await tx.execute(
        f"CREATE TABLE IF NOT EXISTS {table} ("
        " version INTEGER PRIMARY KEY, description TEXT NOT NULL,"
        " applied_at {FLOAT} NOT NULL){STRICT}".format(**_TYPES[dialect])
    )
    rows = await tx.fetch(f"SELECT COALESCE(MAX(version), 0) FROM {table}")  # noqa: S608
    current = int(rows[0][0])
    if current > migrations.latest:
        raise RuntimeError(
            f"{migrations.component} schema version {current} is newer than this ztgate "
            f"supports ({migrations.latest})"
        )
    for migration in migrations.steps[current:]:
        for statement in migration.render(dialect):
            await tx.execute(statement)
        await tx.execute(
            f"INSERT INTO {table} (version, description, applied_at) VALUES ($1, $2, $3)",  # noqa: S608
            migration.version,
            migration.description,
            time.time(),
        )
        current = migration.version
    return current
