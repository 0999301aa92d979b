"""The `authn` tables for SQLite and PostgreSQL, and the migrations that build them.

DDL is written once with three type tokens (``{BLOB}``, ``{FLOAT}``,
``{BIGINT}``) filled in per dialect, so the two databases cannot drift apart.
Booleans are ``INTEGER`` 0/1 in both (with a CHECK) so every query in
`authn.store.sql` can be written once. SQLite tables are ``STRICT``: a bank's
auth store should refuse a text value in a blob column rather than coerce it.

Migrations are an ordered, append-only list: never edit a released one, add a
new version. `migrate` applies the missing ones inside one transaction that
also holds a lock — ``BEGIN IMMEDIATE`` (SQLite's write lock) or
``pg_advisory_xact_lock`` (PostgreSQL) — so edge workers starting together
against the same database serialise instead of racing on ``CREATE TABLE``.
"""

from __future__ import annotations

import hashlib
import re
import time
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any, Final, Literal, Protocol

Dialect = Literal["sqlite", "postgresql"]
Row = tuple[Any, ...]


class IntegrityViolation(ValueError):
    """A write broke a key, CHECK or reference constraint (driver-neutral)."""

    def __init__(self, message: str, *, foreign_key: bool = False) -> None:
        super().__init__(message)
        self.foreign_key = foreign_key


class Executor(Protocol):
    """What the store and the migrations need of a connection; SQL uses ``$n`` params."""

    async def fetch(self, sql: str, *args: Any) -> list[Row]: ...

    async def execute(self, sql: str, *args: Any) -> int:
        """Run one statement; return the number of rows it changed."""
        ...


class Database(Executor, Protocol):
    """A driver (see `authn.store`): autocommit statements plus explicit transactions."""

    dialect: Dialect

    def transaction(self) -> AbstractAsyncContextManager[Executor]: ...

    async def close(self) -> None: ...


SCHEMA_NAME_RE: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")
"""PostgreSQL schema names we accept: a plain identifier, so quoting is trivial."""

_TYPES: Final[dict[Dialect, dict[str, str]]] = {
    "sqlite": {"BLOB": "BLOB", "FLOAT": "REAL", "BIGINT": "INTEGER", "STRICT": " STRICT"},
    "postgresql": {"BLOB": "BYTEA", "FLOAT": "DOUBLE PRECISION", "BIGINT": "BIGINT", "STRICT": ""},
}


@dataclass(frozen=True)
class Migration:
    version: int
    description: str
    statements: tuple[str, ...]

    def render(self, dialect: Dialect) -> list[str]:
        return [s.format(**_TYPES[dialect]) for s in self.statements]


def _bool(col: str) -> str:
    return f"INTEGER NOT NULL DEFAULT 0 CHECK ({col} IN (0, 1))"


MIGRATIONS: Final[tuple[Migration, ...]] = (
    Migration(
        1,
        "initial authn schema",
        (
            f"""CREATE TABLE users (
                subject TEXT PRIMARY KEY,
                username TEXT NOT NULL,
                display_name TEXT NOT NULL,
                kind TEXT NOT NULL CHECK (kind IN ('customer', 'staff')),
                created_at {{FLOAT}} NOT NULL,
                disabled {_bool("disabled")}
            ){{STRICT}}""",
            "CREATE UNIQUE INDEX users_username ON users (username)",
            """CREATE TABLE passwords (
                subject TEXT PRIMARY KEY REFERENCES users (subject) ON DELETE CASCADE,
                encoded_hash TEXT NOT NULL
            ){STRICT}""",
            f"""CREATE TABLE totp (
                subject TEXT PRIMARY KEY REFERENCES users (subject) ON DELETE CASCADE,
                sealed_seed {{BLOB}} NOT NULL,
                algorithm TEXT NOT NULL CHECK (algorithm IN ('SHA1', 'SHA256', 'SHA512')),
                digits INTEGER NOT NULL,
                period INTEGER NOT NULL,
                confirmed {_bool("confirmed")},
                last_step {{BIGINT}} NOT NULL
            ){{STRICT}}""",
            f"""CREATE TABLE credentials (
                credential_id {{BLOB}} PRIMARY KEY,
                subject TEXT NOT NULL REFERENCES users (subject) ON DELETE CASCADE,
                public_key {{BLOB}} NOT NULL,
                sign_count {{BIGINT}} NOT NULL,
                transports TEXT NOT NULL,
                aaguid TEXT NOT NULL,
                attestation_format TEXT NOT NULL,
                backup_eligible {_bool("backup_eligible")},
                backed_up {_bool("backed_up")},
                created_at {{FLOAT}} NOT NULL,
                last_used_at {{FLOAT}},
                flagged TEXT,
                name TEXT NOT NULL
            ){{STRICT}}""",
            "CREATE INDEX credentials_subject ON credentials (subject)",
            """CREATE TABLE challenges (
                challenge_id TEXT PRIMARY KEY,
                purpose TEXT NOT NULL,
                challenge {BLOB} NOT NULL,
                subject TEXT,
                expires_at {FLOAT} NOT NULL,
                data TEXT NOT NULL
            ){STRICT}""",
            "CREATE INDEX challenges_expires_at ON challenges (expires_at)",
            """CREATE TABLE nonces (
                scope TEXT NOT NULL,
                value TEXT NOT NULL,
                expires_at {FLOAT} NOT NULL,
                PRIMARY KEY (scope, value)
            ){STRICT}""",
            "CREATE INDEX nonces_expires_at ON nonces (expires_at)",
            f"""CREATE TABLE refresh (
                token_digest {{BLOB}} PRIMARY KEY,
                family_id TEXT NOT NULL,
                subject TEXT NOT NULL,
                client_id TEXT NOT NULL,
                claims TEXT NOT NULL,
                issued_at {{FLOAT}} NOT NULL,
                expires_at {{FLOAT}} NOT NULL,
                used_at {{FLOAT}},
                revoked {_bool("revoked")},
                use_count {{BIGINT}} NOT NULL DEFAULT 0
            ){{STRICT}}""",
            "CREATE INDEX refresh_family ON refresh (family_id)",
            """CREATE TABLE revocations (
                jti TEXT PRIMARY KEY,
                family_id TEXT,
                revoked_at {FLOAT} NOT NULL,
                expires_at {FLOAT} NOT NULL
            ){STRICT}""",
            "CREATE INDEX revocations_revoked_at ON revocations (revoked_at)",
            "CREATE INDEX revocations_expires_at ON revocations (expires_at)",
            f"""CREATE TABLE clients (
                client_id TEXT PRIMARY KEY,
                name TEXT NOT NULL,
                auth_method TEXT NOT NULL CHECK (auth_method IN
                    ('private_key_jwt', 'tls_client_auth', 'self_signed_tls_client_auth')),
                jwks TEXT NOT NULL,
                tls_subject_dn TEXT,
                tls_cert_sha256 TEXT,
                scopes TEXT NOT NULL,
                created_at {{FLOAT}} NOT NULL,
                disabled {_bool("disabled")}
            ){{STRICT}}""",
            """CREATE TABLE failures (
                key TEXT NOT NULL,
                at {FLOAT} NOT NULL,
                expires_at {FLOAT} NOT NULL
            ){STRICT}""",
            "CREATE INDEX failures_key_at ON failures (key, at)",
            "CREATE INDEX failures_expires_at ON failures (expires_at)",
        ),
    ),
)
LATEST: Final = MIGRATIONS[-1].version

_VERSION_TABLE: Final = (
    "CREATE TABLE IF NOT EXISTS schema_version ("
    " version INTEGER PRIMARY KEY, description TEXT NOT NULL, applied_at {FLOAT} NOT NULL"
    "){STRICT}"
)


def advisory_lock_key(schema: str | None) -> int:
    """A stable signed 64-bit key per schema: migrations of different schemas don't wait
    on each other, two workers migrating the same one do."""
    digest = hashlib.sha256(b"ztgate.authn.migrate:" + (schema or "").encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


async def migrate(dialect: Dialect, tx: Executor) -> int:
    """Apply every missing migration; return the resulting version.

    Must run inside a transaction that already holds the migration lock. Refuses
    a database newer than this code: old code on a newer schema could silently
    ignore columns that carry security state.
    """
    await tx.execute(_VERSION_TABLE.format(**_TYPES[dialect]))
    rows = await tx.fetch("SELECT COALESCE(MAX(version), 0) FROM schema_version")
    current = int(rows[0][0])
    if current > LATEST:
        raise RuntimeError(
            f"authn store schema version {current} is newer than this ztgate supports ({LATEST})"
        )
    for migration in MIGRATIONS:
        if migration.version <= current:
            continue
        for statement in migration.render(dialect):
            await tx.execute(statement)
        await tx.execute(
            "INSERT INTO schema_version (version, description, applied_at) VALUES ($1, $2, $3)",
            migration.version,
            migration.description,
            time.time(),
        )
        current = migration.version
    return current
