"""The `authn` tables for SQLite and PostgreSQL, and the migrations that build them.

Written with `storage.migrations`' dialect tokens (``{BLOB}``, ``{FLOAT}``,
``{BIGINT}``, ``{STRICT}``) so both databases get the same schema; booleans are
``INTEGER`` 0/1 (`storage.bool_column`) so every query in `authn.store.sql` is
written once. Append-only: never edit a released migration, add a version.

authn records its versions in the table ``schema_version`` — the name it had
before components got their own version tables — so databases written by
earlier releases open unchanged.
"""

from __future__ import annotations

from typing import Final

from storage import Migration, Migrations, bool_column

__all__ = ["LATEST", "MIGRATIONS"]

_STEPS: Final[tuple[Migration, ...]] = (
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
                disabled {bool_column("disabled")}
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
                confirmed {bool_column("confirmed")},
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
                backup_eligible {bool_column("backup_eligible")},
                backed_up {bool_column("backed_up")},
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
                revoked {bool_column("revoked")},
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
                disabled {bool_column("disabled")}
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
MIGRATIONS: Final = Migrations("authn", _STEPS, version_table="schema_version")
LATEST: Final = MIGRATIONS.latest
