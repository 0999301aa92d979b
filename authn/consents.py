"""Open-banking consents: a partner asks, the customer authorises (with a passkey
step-up), the partner's tokens act under it, and anyone entitled revokes it.

The lifecycle (issue 7, "Consent lifecycle"; states named after the Berlin Group
NextGenPSD2 consent statuses partners know)::

    awaiting_authorisation --authorise--> authorised --revoke--> revoked
            |  \\--reject--> rejected          \\--(expires_at)--> expired
            \\--revoke--> revoked

A consent names its partner (``client_id``), the permissions asked for
(`PERMISSIONS`), an absolute expiry, and — once authorised — the customer and the
accounts they chose. Only the partner that created it can obtain tokens under it
(``client_credentials`` with ``consent_id``, `authn.service.routes_oauth`); those
tokens carry the ``consent_id`` claim and scopes no wider than its permissions
(`scopes_for`). The edge looks the consent up on every partner request
(`ConsentStore.get`), so a revocation refuses the very next request on every
edge node: there is no consent cache to invalidate.

Stored in the authn database (tables ``consent_*``, versions in
``consent_schema_version``), on SQLite or PostgreSQL (`storage`).
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final, Literal, get_args

from storage import Database, Migration, Migrations, Row, open_database

__all__ = [
    "MAX_ACCOUNTS",
    "MAX_LIFETIME",
    "PERMISSIONS",
    "Consent",
    "ConsentError",
    "ConsentStore",
    "Status",
    "open_consents",
    "scopes_for",
]

Status = Literal["awaiting_authorisation", "authorised", "rejected", "revoked", "expired"]
STATUSES: Final[tuple[Status, ...]] = get_args(Status)
PERMISSIONS: Final[dict[str, tuple[str, ...]]] = {
    "accounts:read": ("ob:accounts:read",),
    "balances:read": ("ob:accounts:read",),
    "transactions:read": ("ob:transactions:read",),
    "payments:write": ("ob:payments:write", "ob:payments:read"),
}
"""Permission a partner asks for → the token scopes the edge policy checks (initiating
payments includes reading their status)."""
MAX_ACCOUNTS: Final = 50
MAX_LIFETIME: Final = 180 * 86400
"""A consent lasts at most 180 days (the re-authentication interval PSD2 RTS Art. 10
set for account access); a partner asks for less or gets refused."""
MIN_LIFETIME: Final = 60
AWAITING_TTL: Final = 3600
"""An unanswered request lapses (``expired``) an hour after it was made."""
_ACCOUNT_CHARS: Final = frozenset(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._:-"
)

MIGRATIONS: Final = Migrations(
    "consent",
    (
        Migration(
            1,
            "open-banking consents",
            (
                """CREATE TABLE consent_consents (
                    consent_id TEXT PRIMARY KEY,
                    client_id TEXT NOT NULL,
                    permissions TEXT NOT NULL,
                    status TEXT NOT NULL,
                    customer TEXT,
                    accounts TEXT NOT NULL,
                    created_at {FLOAT} NOT NULL,
                    expires_at {FLOAT} NOT NULL,
                    decided_at {FLOAT},
                    revoked_by TEXT
                ){STRICT}""",
                "CREATE INDEX consent_by_client ON consent_consents (client_id)",
                "CREATE INDEX consent_by_customer ON consent_consents (customer)",
            ),
        ),
    ),
)
_COLUMNS: Final = (
    "consent_id, client_id, permissions, status, customer, accounts, created_at, expires_at,"
    " decided_at, revoked_by"
)


class ConsentError(ValueError):
    """A request the lifecycle refuses; `code` is machine-readable (``consent:…``)."""

    def __init__(self, code: str, status: int = 400) -> None:
        super().__init__(code)
        self.code = code
        self.status = status


@dataclass(frozen=True, slots=True)
class Consent:
    consent_id: str
    client_id: str
    permissions: tuple[str, ...]
    status: Status
    """As stored; `effective_status` accounts for the clock."""
    customer: str | None
    accounts: tuple[str, ...]
    created_at: float
    expires_at: float
    decided_at: float | None
    revoked_by: str | None

    def effective_status(self, now: float) -> Status:
        if self.status == "authorised" and now >= self.expires_at:
            return "expired"
        if self.status == "awaiting_authorisation" and now >= self.created_at + AWAITING_TTL:
            return "expired"
        return self.status

    def usable(self, now: float) -> bool:
        return self.effective_status(now) == "authorised"

    def to_json(self, now: float) -> dict[str, object]:
        return {
            "consent_id": self.consent_id,
            "client_id": self.client_id,
            "permissions": list(self.permissions),
            "status": self.effective_status(now),
            "accounts": list(self.accounts),
            "created_at": int(self.created_at),
            "expires_at": int(self.expires_at),
        }

    def to_policy_input(self, now: float) -> dict[str, object]:
        """The policy input's ``identity.consent`` (policy/schema/input-v1.json)."""
        return {
            "id": self.consent_id,
            "status": "active" if self.usable(now) else self.effective_status(now),
            "resources": list(self.accounts),
            "expires_at": int(self.expires_at),
        }


def scopes_for(permissions: Iterable[str]) -> tuple[str, ...]:
    """The token scopes a consent's permissions allow, without repeats, in order."""
    return tuple(dict.fromkeys(s for p in permissions for s in PERMISSIONS.get(p, ())))


def check_permissions(value: object) -> tuple[str, ...]:
    if not isinstance(value, list) or not 1 <= len(value) <= len(PERMISSIONS):
        raise ConsentError("consent:invalid_permissions")
    if any(not isinstance(p, str) or p not in PERMISSIONS for p in value):
        raise ConsentError("consent:invalid_permissions")
    if len(set(value)) != len(value):
        raise ConsentError("consent:invalid_permissions")
    return tuple(value)


def check_accounts(value: object) -> tuple[str, ...]:
    """Account ids the customer chose: 1 to 50 distinct short identifiers. Whether they
    are the customer's is the core bank's check (it serves only their accounts)."""
    if not isinstance(value, list) or not 1 <= len(value) <= MAX_ACCOUNTS:
        raise ConsentError("consent:invalid_accounts")
    for item in value:
        if not isinstance(item, str) or not 1 <= len(item) <= 128 or set(item) - _ACCOUNT_CHARS:
            raise ConsentError("consent:invalid_accounts")
    if len(set(value)) != len(value):
        raise ConsentError("consent:invalid_accounts")
    return tuple(value)


def _consent(r: Row) -> Consent:
    return Consent(
        consent_id=r[0],
        client_id=r[1],
        permissions=tuple(json.loads(r[2])),
        status=r[3],
        customer=r[4],
        accounts=tuple(json.loads(r[5])),
        created_at=float(r[6]),
        expires_at=float(r[7]),
        decided_at=None if r[8] is None else float(r[8]),
        revoked_by=r[9],
    )


class ConsentStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def close(self) -> None:
        await self._db.close()

    async def create(
        self,
        client_id: str,
        permissions: Sequence[str],
        expires_at: float,
        *,
        now: float | None = None,
    ) -> Consent:
        at = time.time() if now is None else now
        if not at + MIN_LIFETIME <= expires_at <= at + MAX_LIFETIME:
            raise ConsentError("consent:invalid_expiry")
        consent = Consent(
            consent_id="cns_" + secrets.token_urlsafe(18),
            client_id=client_id,
            permissions=tuple(permissions),
            status="awaiting_authorisation",
            customer=None,
            accounts=(),
            created_at=at,
            expires_at=float(expires_at),
            decided_at=None,
            revoked_by=None,
        )
        await self._db.execute(
            f"INSERT INTO consent_consents ({_COLUMNS})"  # noqa: S608
            " VALUES ($1, $2, $3, $4, NULL, '[]', $5, $6, NULL, NULL)",
            consent.consent_id,
            client_id,
            json.dumps(list(permissions)),
            consent.status,
            at,
            consent.expires_at,
        )
        return consent

    async def get(self, consent_id: str) -> Consent | None:
        if not 1 <= len(consent_id) <= 64:
            return None
        rows = await self._db.fetch(
            f"SELECT {_COLUMNS} FROM consent_consents WHERE consent_id = $1",  # noqa: S608
            consent_id,
        )
        return _consent(rows[0]) if rows else None

    async def for_customer(self, customer: str) -> list[Consent]:
        rows = await self._db.fetch(
            f"SELECT {_COLUMNS} FROM consent_consents WHERE customer = $1"  # noqa: S608
            " ORDER BY created_at DESC",
            customer,
        )
        return [_consent(r) for r in rows]

    async def decide(
        self,
        consent_id: str,
        customer: str,
        *,
        authorise: bool,
        accounts: Sequence[str] = (),
        now: float | None = None,
    ) -> Consent:
        """The customer's answer to a request awaiting authorisation (once only)."""
        at = time.time() if now is None else now
        current = await self.get(consent_id)
        if current is None:
            raise ConsentError("consent:unknown", 404)
        if current.effective_status(at) != "awaiting_authorisation":
            raise ConsentError("consent:not_awaiting_authorisation", 409)
        status: Status = "authorised" if authorise else "rejected"
        changed = await self._db.execute(
            "UPDATE consent_consents SET status = $2, customer = $3, accounts = $4,"
            " decided_at = $5 WHERE consent_id = $1 AND status = 'awaiting_authorisation'",
            consent_id,
            status,
            customer,
            json.dumps(list(accounts) if authorise else []),
            at,
        )
        if not changed:  # another answer won the race
            raise ConsentError("consent:not_awaiting_authorisation", 409)
        decided = await self.get(consent_id)
        assert decided is not None
        return decided

    async def revoke(self, consent_id: str, *, by: str, now: float | None = None) -> bool:
        """Revoke (the partner, the customer or the bank: `by` is recorded); False if
        it was already ended. Effective for the edge's very next look-up."""
        at = time.time() if now is None else now
        changed = await self._db.execute(
            "UPDATE consent_consents SET status = 'revoked', revoked_by = $2, decided_at ="
            " COALESCE(decided_at, $3) WHERE consent_id = $1"
            " AND status IN ('awaiting_authorisation', 'authorised')",
            consent_id,
            by[:64],
            at,
        )
        return bool(changed)


async def open_consents(url: str, *, schema: str | None = None) -> ConsentStore:
    """Open (and migrate) the consent tables at `url` (the authn database)."""
    return ConsentStore(await open_database(url, MIGRATIONS, schema=schema))
