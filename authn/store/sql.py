"""`SqlStore`: the one `Store` implementation, over SQLite or PostgreSQL.

Queries are written once, in PostgreSQL's ``$1`` placeholder style; the SQLite
driver (`storage.sqlite`) rewrites ``$n`` to ``?n``, SQLite's numbered parameters,
so both databases run the very same statements.

Every one-time value is consumed by a single conditional statement, so the
database itself picks exactly one winner among concurrent edge workers:

* ``take_challenge``: ``DELETE … WHERE id AND purpose AND expires_at > now RETURNING``.
* ``use_nonce``: ``INSERT … ON CONFLICT DO UPDATE … WHERE existing has expired
  RETURNING`` — a row comes back only if this call inserted or reclaimed it.
* ``advance_totp_step``: ``UPDATE … WHERE last_step < step``.
* ``rotate_refresh``: ``UPDATE … SET used_at = COALESCE(used_at, now),
  use_count = use_count + 1 RETURNING``. The row lock serialises concurrent
  rotations; ``use_count`` tells each caller what ``used_at`` was *before* its
  own update (NULL iff it is the first use), without a second statement.

Driver exceptions never escape: constraint violations are `ValueError`
(`IntegrityViolation`); a factor for a subject that doesn't exist, `LookupError`.
"""

from __future__ import annotations

import base64
import functools
import json
import secrets
import time
from collections.abc import Awaitable
from typing import Any, Final, Literal

from authn.errors import AuthnError
from authn.store.base import (
    Challenge,
    OAuthClient,
    RefreshRecord,
    TotpRecord,
    User,
    WebAuthnCredential,
)
from storage import Database, IntegrityViolation, Row

PURGE_EVERY: Final = 100
"""Purge expired single-use rows on one write in this many (keeps tables bounded)."""
FAMILY_REVOCATION_GRACE: Final = 86400.0
"""A 'family:<id>' revocation outlives the family's last refresh token by this much,
covering access tokens minted from it just before it expired."""

_COLUMNS: Final = {
    "USER": "subject, username, display_name, kind, created_at, disabled",
    "TOTP": "subject, sealed_seed, algorithm, digits, period, confirmed, last_step",
    "CRED": (
        "credential_id, subject, public_key, sign_count, transports, aaguid, attestation_format,"
        " backup_eligible, backed_up, created_at, last_used_at, flagged, name"
    ),
    "CHALLENGE": "challenge_id, purpose, challenge, subject, expires_at, data",
    "REFRESH": (
        "token_digest, family_id, subject, client_id, claims, issued_at, expires_at,"
        " used_at, revoked"
    ),
    "CLIENT": (
        "client_id, name, auth_method, jwks, tls_subject_dn, tls_cert_sha256, scopes,"
        " created_at, disabled"
    ),
}
"""Column lists in dataclass field order; the row mappers below rely on it."""


@functools.lru_cache(maxsize=128)
def _sql(template: str) -> str:
    """Expand ``{USER}``-style column lists: constants from `_COLUMNS`, never input."""
    return template.format_map(_COLUMNS)


def _user(r: Row) -> User:
    return User(r[0], r[1], r[2], r[3], float(r[4]), bool(r[5]))


def _totp(r: Row) -> TotpRecord:
    return TotpRecord(r[0], bytes(r[1]), r[2], int(r[3]), int(r[4]), bool(r[5]), int(r[6]))


def _cred(r: Row) -> WebAuthnCredential:
    return WebAuthnCredential(
        credential_id=bytes(r[0]),
        subject=r[1],
        public_key=bytes(r[2]),
        sign_count=int(r[3]),
        transports=tuple(json.loads(r[4])),
        aaguid=r[5],
        attestation_format=r[6],
        backup_eligible=bool(r[7]),
        backed_up=bool(r[8]),
        created_at=float(r[9]),
        last_used_at=None if r[10] is None else float(r[10]),
        flagged=r[11],
        name=r[12],
    )


def _challenge(r: Row) -> Challenge:
    return Challenge(r[0], r[1], bytes(r[2]), r[3], float(r[4]), r[5])


def _refresh(r: Row) -> RefreshRecord:
    used = None if r[7] is None else float(r[7])
    return RefreshRecord(
        bytes(r[0]), r[1], r[2], r[3], r[4], float(r[5]), float(r[6]), used, bool(r[8])
    )


def _client(r: Row) -> OAuthClient:
    return OAuthClient(
        r[0], r[1], r[2], r[3], r[4], r[5], tuple(json.loads(r[6])), float(r[7]), bool(r[8])
    )


def _new_subject() -> str:
    """'u-' + 128 random bits, lowercase base32 without padding (26 chars)."""
    return "u-" + base64.b32encode(secrets.token_bytes(16)).decode().rstrip("=").lower()


class SqlStore:
    """`authn.store.base.Store` over a `Database`; safe for concurrent tasks."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self.dialect: Literal["sqlite", "postgresql"] = db.dialect
        self._writes = 0

    async def close(self) -> None:
        await self._db.close()

    async def _fetch(self, template: str, *args: Any) -> list[Row]:
        return await self._db.fetch(_sql(template), *args)

    async def _one(self, template: str, *args: Any) -> Row | None:
        rows = await self._db.fetch(_sql(template), *args)
        return rows[0] if rows else None

    async def _exec(self, template: str, *args: Any) -> int:
        return await self._db.execute(_sql(template), *args)

    async def _wrote(self, now: float) -> None:
        """Count a write that knows the caller's clock; every PURGE_EVERY-th one purges.

        Only calls given `now` trigger a purge, so a test (or a worker) on a fake
        clock never has rows purged by a different clock.
        """
        self._writes += 1
        if self._writes % PURGE_EVERY == 0:
            await self.purge_expired(now)

    async def purge_expired(self, now: float) -> None:
        """Delete challenges, nonces, revocations and failures that expired by `now`."""
        async with self._db.transaction() as tx:
            for table in ("challenges", "nonces", "revocations", "failures"):
                await tx.execute(f"DELETE FROM {table} WHERE expires_at <= $1", now)  # noqa: S608 (constant)

    # users -------------------------------------------------------------------------
    async def create_user(
        self, username: str, display_name: str, kind: Literal["customer", "staff"] = "customer"
    ) -> User:
        user = User(_new_subject(), username, display_name, kind, time.time())
        rows = await self._fetch(
            "INSERT INTO users ({USER}) VALUES ($1, $2, $3, $4, $5, 0)"
            " ON CONFLICT (username) DO NOTHING RETURNING subject",
            user.subject, username, display_name, kind, user.created_at,
        )  # fmt: skip
        if not rows:
            raise AuthnError("username_taken", "that username is already registered", 409)
        return user

    async def get_user(self, subject: str) -> User | None:
        row = await self._one("SELECT {USER} FROM users WHERE subject = $1", subject)
        return _user(row) if row else None

    async def get_user_by_username(self, username: str) -> User | None:
        row = await self._one("SELECT {USER} FROM users WHERE username = $1", username)
        return _user(row) if row else None

    # passwords ---------------------------------------------------------------------
    async def set_password(self, subject: str, encoded_hash: str) -> None:
        await _for_subject(
            subject,
            self._exec(
                "INSERT INTO passwords (subject, encoded_hash) VALUES ($1, $2)"
                " ON CONFLICT (subject) DO UPDATE SET encoded_hash = excluded.encoded_hash",
                subject, encoded_hash,
            ),
        )  # fmt: skip

    async def get_password(self, subject: str) -> str | None:
        row = await self._one("SELECT encoded_hash FROM passwords WHERE subject = $1", subject)
        return str(row[0]) if row else None

    # TOTP --------------------------------------------------------------------------
    async def put_totp(self, record: TotpRecord) -> None:
        r = record
        await _for_subject(
            r.subject,
            self._exec(
                "INSERT INTO totp ({TOTP}) VALUES ($1, $2, $3, $4, $5, $6, $7)"
                " ON CONFLICT (subject) DO UPDATE SET sealed_seed = excluded.sealed_seed,"
                " algorithm = excluded.algorithm, digits = excluded.digits,"
                " period = excluded.period, confirmed = excluded.confirmed,"
                " last_step = excluded.last_step",
                r.subject, r.sealed_seed, r.algorithm, r.digits, r.period, int(r.confirmed),
                r.last_step,
            ),
        )  # fmt: skip

    async def get_totp(self, subject: str) -> TotpRecord | None:
        row = await self._one("SELECT {TOTP} FROM totp WHERE subject = $1", subject)
        return _totp(row) if row else None

    async def confirm_totp(self, subject: str) -> None:
        await self._exec("UPDATE totp SET confirmed = 1 WHERE subject = $1", subject)

    async def delete_totp(self, subject: str) -> bool:
        return await self._exec("DELETE FROM totp WHERE subject = $1", subject) > 0

    async def advance_totp_step(self, subject: str, step: int) -> bool:
        sql = "UPDATE totp SET last_step = $2 WHERE subject = $1 AND last_step < $2"
        return await self._exec(sql, subject, step) > 0

    # WebAuthn ----------------------------------------------------------------------
    async def add_credential(self, credential: WebAuthnCredential) -> None:
        c = credential
        added = await _for_subject(
            c.subject,
            self._exec(
                "INSERT INTO credentials ({CRED}) VALUES"
                " ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
                " ON CONFLICT (credential_id) DO NOTHING",
                c.credential_id, c.subject, c.public_key, c.sign_count,
                json.dumps(list(c.transports)), c.aaguid, c.attestation_format,
                int(c.backup_eligible), int(c.backed_up), float(c.created_at),
                None if c.last_used_at is None else float(c.last_used_at), c.flagged, c.name,
            ),
        )  # fmt: skip
        if not added:
            raise AuthnError("credential_exists", "this credential is already registered", 409)

    async def get_credential(self, credential_id: bytes) -> WebAuthnCredential | None:
        sql = "SELECT {CRED} FROM credentials WHERE credential_id = $1"
        row = await self._one(sql, credential_id)
        return _cred(row) if row else None

    async def list_credentials(self, subject: str) -> list[WebAuthnCredential]:
        sql = "SELECT {CRED} FROM credentials WHERE subject = $1"
        rows = await self._fetch(sql + " ORDER BY created_at, credential_id", subject)
        return [_cred(r) for r in rows]

    async def update_credential_use(
        self, credential_id: bytes, sign_count: int, backed_up: bool, used_at: float
    ) -> None:
        await self._exec(
            "UPDATE credentials SET sign_count = $2, backed_up = $3, last_used_at = $4"
            " WHERE credential_id = $1",
            credential_id, sign_count, int(backed_up), float(used_at),
        )  # fmt: skip

    async def flag_credential(self, credential_id: bytes, reason: str) -> None:
        sql = "UPDATE credentials SET flagged = $2 WHERE credential_id = $1"
        await self._exec(sql, credential_id, reason)

    async def delete_credential(self, subject: str, credential_id: bytes) -> bool:
        sql = "DELETE FROM credentials WHERE credential_id = $1 AND subject = $2"
        return await self._exec(sql, credential_id, subject) > 0

    # single-use values -------------------------------------------------------------
    async def put_challenge(self, challenge: Challenge) -> None:
        """A duplicate challenge_id raises `IntegrityViolation` (ids must be random)."""
        c = challenge
        await self._exec(
            "INSERT INTO challenges ({CHALLENGE}) VALUES ($1, $2, $3, $4, $5, $6)",
            c.challenge_id, c.purpose, c.challenge, c.subject, float(c.expires_at), c.data,
        )  # fmt: skip

    async def take_challenge(self, challenge_id: str, purpose: str, now: float) -> Challenge | None:
        row = await self._one(
            "DELETE FROM challenges WHERE challenge_id = $1 AND purpose = $2 AND expires_at > $3"
            " RETURNING {CHALLENGE}",
            challenge_id, purpose, float(now),
        )  # fmt: skip
        await self._wrote(now)
        return _challenge(row) if row else None

    async def use_nonce(self, scope: str, value: str, expires_at: float, now: float) -> bool:
        rows = await self._fetch(
            "INSERT INTO nonces (scope, value, expires_at) VALUES ($1, $2, $3)"
            " ON CONFLICT (scope, value) DO UPDATE SET expires_at = excluded.expires_at"
            " WHERE nonces.expires_at <= $4 RETURNING 1",
            scope, value, float(expires_at), float(now),
        )  # fmt: skip
        await self._wrote(now)
        return bool(rows)

    # tokens ------------------------------------------------------------------------
    async def put_refresh(self, record: RefreshRecord) -> None:
        """A duplicate digest raises `IntegrityViolation`."""
        r = record
        await self._exec(
            "INSERT INTO refresh ({REFRESH}, use_count)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            r.token_digest, r.family_id, r.subject, r.client_id, r.claims, float(r.issued_at),
            float(r.expires_at), None if r.used_at is None else float(r.used_at),
            int(r.revoked), 0 if r.used_at is None else 1,
        )  # fmt: skip

    async def rotate_refresh(self, token_digest: bytes, now: float) -> RefreshRecord | None:
        row = await self._one(
            "UPDATE refresh SET used_at = COALESCE(used_at, $2), use_count = use_count + 1"
            " WHERE token_digest = $1 RETURNING {REFRESH}, use_count",
            token_digest, float(now),
        )  # fmt: skip
        await self._wrote(now)
        if row is None:
            return None
        # use_count == 1: this call was the first use, so used_at was NULL before it.
        # Otherwise COALESCE kept the earlier value, which is what was there before.
        return _refresh((*row[:7], row[7] if row[9] > 1 else None, row[8]))

    async def get_refresh(self, token_digest: bytes) -> RefreshRecord | None:
        sql = "SELECT {REFRESH} FROM refresh WHERE token_digest = $1"
        row = await self._one(sql, token_digest)
        return _refresh(row) if row else None

    async def revoke_refresh_family(self, family_id: str) -> int:
        """Revoke every record of the family and publish 'family:<id>'; returns how many
        records this call revoked (0 if the family was unknown or already revoked)."""
        now = time.time()
        async with self._db.transaction() as tx:
            sql = "UPDATE refresh SET revoked = 1 WHERE family_id = $1 AND revoked = 0"
            count = await tx.execute(sql, family_id)
            await tx.execute(
                "INSERT INTO revocations (jti, family_id, revoked_at, expires_at)"
                " SELECT CAST($1 AS TEXT), CAST($2 AS TEXT), CAST($3 AS DOUBLE PRECISION),"
                " COALESCE(MAX(expires_at), $3) + $4 FROM refresh WHERE family_id = $2"
                " ON CONFLICT (jti) DO NOTHING",
                "family:" + family_id, family_id, now, FAMILY_REVOCATION_GRACE,
            )  # fmt: skip
        return count

    async def revoke_jti(self, jti: str, expires_at: float, family_id: str | None = None) -> None:
        if jti.startswith("family:"):
            raise ValueError("a jti must not use the reserved 'family:' prefix")
        await self._exec(
            "INSERT INTO revocations (jti, family_id, revoked_at, expires_at)"
            " VALUES ($1, $2, $3, $4) ON CONFLICT (jti) DO UPDATE"
            " SET expires_at = excluded.expires_at"
            " WHERE excluded.expires_at > revocations.expires_at",
            jti, family_id, time.time(), float(expires_at),
        )  # fmt: skip

    async def is_jti_revoked(self, jti: str) -> bool:
        return await self._one("SELECT 1 FROM revocations WHERE jti = $1", jti) is not None

    async def is_family_revoked(self, family_id: str) -> bool:
        """Also true from the refresh rows, after the revocation entry was purged."""
        row = await self._one(
            "SELECT 1 FROM revocations WHERE jti = $1"
            " UNION ALL SELECT 1 FROM refresh WHERE family_id = $2 AND revoked = 1 LIMIT 1",
            "family:" + family_id, family_id,
        )  # fmt: skip
        return row is not None

    async def revocations_since(self, since: float) -> list[tuple[str, float]]:
        """Ordered by revoked_at. revoked_at is each writer's wall clock at insert, and
        commits can land out of that order: pollers should re-ask with some overlap."""
        rows = await self._fetch(
            "SELECT jti, revoked_at FROM revocations WHERE revoked_at > $1"
            " ORDER BY revoked_at, jti",
            float(since),
        )  # fmt: skip
        return [(str(r[0]), float(r[1])) for r in rows]

    # partner clients ---------------------------------------------------------------
    async def put_client(self, client: OAuthClient) -> None:
        c = client
        await self._exec(
            "INSERT INTO clients ({CLIENT}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
            " ON CONFLICT (client_id) DO UPDATE SET name = excluded.name,"
            " auth_method = excluded.auth_method, jwks = excluded.jwks,"
            " tls_subject_dn = excluded.tls_subject_dn,"
            " tls_cert_sha256 = excluded.tls_cert_sha256, scopes = excluded.scopes,"
            " created_at = excluded.created_at, disabled = excluded.disabled",
            c.client_id, c.name, c.auth_method, c.jwks, c.tls_subject_dn, c.tls_cert_sha256,
            json.dumps(list(c.scopes)), float(c.created_at), int(c.disabled),
        )  # fmt: skip

    async def get_client(self, client_id: str) -> OAuthClient | None:
        sql = "SELECT {CLIENT} FROM clients WHERE client_id = $1"
        row = await self._one(sql, client_id)
        return _client(row) if row else None

    # failure counters --------------------------------------------------------------
    async def record_failure(self, key: str, now: float, window: float) -> int:
        start = float(now - window)
        async with self._db.transaction() as tx:
            await tx.execute("DELETE FROM failures WHERE key = $1 AND at <= $2", key, start)
            await tx.execute(
                "INSERT INTO failures (key, at, expires_at) VALUES ($1, $2, $3)",
                key, float(now), float(now + window),
            )  # fmt: skip
            rows = await tx.fetch(
                "SELECT COUNT(*) FROM failures WHERE key = $1 AND at > $2", key, start
            )
        await self._wrote(now)
        return int(rows[0][0])

    async def failure_state(self, key: str, now: float, window: float) -> tuple[int, float]:
        row = await self._one(
            "SELECT COUNT(*), COALESCE(MAX(at), 0) FROM failures WHERE key = $1 AND at > $2",
            key, float(now - window),
        )  # fmt: skip
        assert row is not None  # an aggregate always yields one row
        return int(row[0]), float(row[1])

    async def clear_failures(self, key: str) -> None:
        await self._exec("DELETE FROM failures WHERE key = $1", key)


async def _for_subject(subject: str, write: Awaitable[int]) -> int:
    """Await a write to a factor table, turning a dangling subject into LookupError."""
    try:
        return await write
    except IntegrityViolation as exc:
        if exc.foreign_key:
            raise LookupError(f"no user with subject {subject!r}") from None
        raise
