"""Refresh tokens: opaque, stored as a keyed digest, rotated on use, revoked by family.

Why each choice:

- *Opaque and random* (256 bits, `secrets`): a refresh token is only ever
  read by the authorization server that issued it, so it needs no structure;
  nothing in it can be forged or parsed.
- *Stored as HMAC-SM3(pepper, token)* (`crypto.sm3.hmac`): a leaked database
  yields no usable token, and without the pepper (kept outside the database)
  not even a way to confirm a guess. Lookup is by digest, so no comparison of
  secrets happens in Python at all.
- *Rotation on every use with reuse detection* (RFC 9700 §4.14.2, OAuth 2.1
  §4.3.1): each use returns a new token of the same *family* and marks the
  old one used. If a used token comes back, either the client or a thief
  replays it; the server cannot tell which, so the whole family is revoked —
  the thief's copy and the client's newer one alike, and (through ``sid``)
  every access token minted from it.
- *Absolute family lifetime*: a rotated token keeps the family's original
  expiry, so a session cannot be kept alive forever by refreshing; after
  ``refresh_ttl`` the user authenticates again.
- *Sender constraint carried over* (RFC 9449 §5, RFC 8705 §3): a family whose
  tokens were bound to a DPoP key or client certificate only refreshes for
  the same key or certificate.

A failed client or key check does not consume the token: the legitimate
holder keeps its session, and the failing party learns nothing but
``invalid_grant``.
"""

from __future__ import annotations

import hmac
import json
import math
import re
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from authn.cnf import X5T_S256
from authn.errors import AuthnError, invalid_grant
from authn.store.base import RefreshRecord, Store
from crypto import sm3

__all__ = [
    "REFRESH_TOKEN_BYTES",
    "RefreshGrant",
    "RefreshTokens",
    "new_family_id",
    "new_refresh_token",
]

REFRESH_TOKEN_BYTES: Final = 32
MIN_PEPPER_BYTES: Final = 32
_TOKEN_FORMAT: Final = re.compile(r"[A-Za-z0-9_-]{43}")  # token_urlsafe(32)
REUSE_DETECTED: Final = "refresh token reuse detected"


def new_refresh_token() -> str:
    """256 random bits, base64url (43 characters)."""
    return secrets.token_urlsafe(REFRESH_TOKEN_BYTES)


def new_family_id() -> str:
    """128 random bits, base64url: the family id, also the access tokens' ``sid``."""
    return secrets.token_urlsafe(16)


@dataclass(frozen=True)
class RefreshGrant:
    """What a refresh token stands for: the authentication event it continues.

    Rotation copies it unchanged into the next access token, so refreshing
    neither raises ``acr`` nor renews ``auth_time`` (only a new
    authentication does, RFC 9470 §4).
    """

    subject: str
    client_id: str
    family_id: str
    acr: str
    amr: tuple[str, ...]
    auth_time: int
    scope: str = ""
    audience: str = ""
    cnf: Mapping[str, str] | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        """The record's ``claims`` column."""
        doc = {
            "acr": self.acr,
            "amr": list(self.amr),
            "auth_time": self.auth_time,
            "scope": self.scope,
            "aud": self.audience,
            "cnf": dict(self.cnf) if self.cnf else None,
            "client_id": self.client_id,
            "extra": dict(self.extra),
        }
        return json.dumps(doc, separators=(",", ":"), sort_keys=True)

    @classmethod
    def from_record(cls, record: RefreshRecord) -> RefreshGrant:
        """Parse a stored record; a corrupt one is `invalid_grant`, never a crash."""
        try:
            doc = json.loads(record.claims)
            amr = doc["amr"]
            cnf = doc["cnf"]
            extra = doc["extra"]
            auth_time = doc["auth_time"]
            ok = (
                isinstance(amr, list)
                and all(isinstance(m, str) for m in amr)
                and (cnf is None or isinstance(cnf, dict))
                and isinstance(extra, dict)
                and isinstance(auth_time, int | float)
                and not isinstance(auth_time, bool)
                and math.isfinite(auth_time)
            )
            if not ok:
                raise ValueError("bad member types")
            return cls(
                subject=record.subject,
                client_id=record.client_id,
                family_id=record.family_id,
                acr=str(doc["acr"]),
                amr=tuple(amr),
                auth_time=int(auth_time),
                scope=str(doc["scope"]),
                audience=str(doc["aud"]),
                cnf={str(k): str(v) for k, v in cnf.items()} if cnf else None,
                extra=extra,
            )
        except (ValueError, KeyError, TypeError, RecursionError):
            raise invalid_grant("unusable refresh token") from None


class RefreshTokens:
    """Refresh-token families over the `Store`; see the module docstring for the rules."""

    def __init__(
        self,
        store: Store,
        pepper: bytes,
        *,
        on_family_revoked: Callable[[str], None] | None = None,
    ) -> None:
        if not isinstance(pepper, bytes) or len(pepper) < MIN_PEPPER_BYTES:
            raise ValueError(f"refresh_pepper must be at least {MIN_PEPPER_BYTES} random bytes")
        self._store = store
        self._pepper = pepper
        self._on_family_revoked = on_family_revoked

    def digest(self, token: object) -> bytes | None:
        """HMAC-SM3(pepper, token), or None for anything that is not one of our tokens."""
        if not isinstance(token, str) or _TOKEN_FORMAT.fullmatch(token) is None:
            return None
        return sm3.hmac(self._pepper, token.encode("ascii"))

    async def create(self, grant: RefreshGrant, *, now: float, expires_at: float) -> str:
        """Store a new token of `grant`'s family and return it (the only clear copy)."""
        token = new_refresh_token()
        digest = self.digest(token)
        if digest is None:  # pragma: no cover - new_refresh_token() always matches
            raise RuntimeError("refresh token format")
        record = RefreshRecord(
            token_digest=digest,
            family_id=grant.family_id,
            subject=grant.subject,
            client_id=grant.client_id,
            claims=grant.to_json(),
            issued_at=now,
            expires_at=expires_at,
            used_at=None,
            revoked=False,
        )
        await self._store.put_refresh(record)
        return token

    async def redeem(
        self,
        token: str,
        *,
        client_id: str,
        now: float,
        dpop_jkt: str | None = None,
        client_cert_sha256: str | None = None,
    ) -> tuple[RefreshGrant, float]:
        """Consume `token` (rotation) and return its grant and the family's expiry.

        Raises `invalid_grant` for unknown, expired, foreign-client or
        wrong-key tokens; on reuse (or a revoked family) the family is revoked
        first (RFC 9700 §4.14.2).
        """
        digest = self.digest(token)
        record = None if digest is None else await self._store.get_refresh(digest)
        if digest is None or record is None:
            raise invalid_grant("unknown refresh token")
        if record.used_at is not None or record.revoked:
            raise await self._reuse(record.family_id)
        grant = RefreshGrant.from_record(record)
        if record.client_id != client_id:  # RFC 6749 §6: issued to the authenticated client
            raise invalid_grant("refresh token was issued to another client")
        _check_binding(grant.cnf, dpop_jkt, client_cert_sha256)
        if record.expires_at <= now:
            raise invalid_grant("refresh token expired")
        prior = await self._store.rotate_refresh(digest, now)
        if prior is None:
            raise invalid_grant("unknown refresh token")
        if (
            prior.used_at is not None  # a concurrent redemption won the race
            or prior.revoked
            or await self._store.is_family_revoked(record.family_id)
        ):
            raise await self._reuse(record.family_id)
        return grant, record.expires_at

    async def _reuse(self, family_id: str) -> AuthnError:
        await self.revoke_family(family_id)
        return invalid_grant(REUSE_DETECTED)

    async def revoke_family(self, family_id: str) -> None:
        await self._store.revoke_refresh_family(family_id)
        if self._on_family_revoked is not None:
            self._on_family_revoked(family_id)

    async def revoke(self, token: str, *, client_id: str | None = None) -> bool:
        """Revoke `token`'s family (RFC 7009 §2.1); False if it is not a known token.

        A token of another client (when `client_id` is given) is left alone
        but reported as handled, so the caller answers 200 as for any token.
        """
        digest = self.digest(token)
        record = None if digest is None else await self._store.get_refresh(digest)
        if record is None:
            return False
        if client_id is None or record.client_id == client_id:
            await self.revoke_family(record.family_id)
        return True

    async def introspect(self, token: str, *, now: float, issuer: str) -> dict[str, Any] | None:
        """RFC 7662 §2.2 members of an active refresh token; None if not active."""
        digest = self.digest(token)
        record = None if digest is None else await self._store.get_refresh(digest)
        if (
            record is None
            or record.used_at is not None
            or record.revoked
            or record.expires_at <= now
            or await self._store.is_family_revoked(record.family_id)
        ):
            return None
        try:
            grant = RefreshGrant.from_record(record)
        except AuthnError:
            return None
        return {
            "active": True,
            "token_type": "refresh_token",
            "iss": issuer,
            "sub": record.subject,
            "client_id": record.client_id,
            "scope": grant.scope,
            "iat": int(record.issued_at),
            "exp": int(record.expires_at),
        }


def _check_binding(
    cnf: Mapping[str, str] | None, dpop_jkt: str | None, cert_sha256: str | None
) -> None:
    """Same DPoP key (RFC 9449 §5) / same certificate (RFC 8705 §3) as at issue."""
    if not cnf:
        return
    for member, presented, name in (
        ("jkt", dpop_jkt, "DPoP key"),
        (X5T_S256, cert_sha256, "client certificate"),
    ):
        expected = cnf.get(member)
        if expected is None:
            continue
        if presented is None:
            raise invalid_grant(f"refresh token is bound to a {name}: none was presented")
        if not hmac.compare_digest(
            presented.encode("ascii", "replace"), expected.encode("ascii", "replace")
        ):
            raise invalid_grant(f"refresh token is bound to another {name}")
