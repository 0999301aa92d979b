"""What `authn` persists, as one async interface with SQLite and PostgreSQL behind it.

Everything a restart must not lose lives here: users and their factors,
refresh-token families, revocations, single-use values (challenges, replay
nonces) and failure counters. Secrets are never stored in clear: TOTP seeds
arrive already sealed (`crypto.envelope`), refresh tokens as HMAC-SM3 digests,
passwords as PBKDF2-HMAC-SM3 hashes.

Every operation that must be atomic against concurrent edge workers is one
method here (``take_challenge``, ``use_nonce``, ``advance_totp_step``,
``rotate_refresh``), implemented with a single conditional SQL statement, so
two workers can never both accept the same one-time value.

Times are POSIX seconds (float). Subjects are opaque stable ids (``u-…``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final, Literal, Protocol

SUBJECT_PATTERN: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}")
"""Subjects an operator may choose: short, printable, no separators or spaces (they
travel in tokens, headers and the edge's assertions)."""


@dataclass(frozen=True)
class User:
    subject: str
    username: str
    display_name: str
    kind: Literal["customer", "staff"]
    created_at: float
    disabled: bool = False


@dataclass(frozen=True)
class TotpRecord:
    subject: str
    sealed_seed: bytes
    """Envelope-sealed seed; context ``b"totp:" + subject``."""
    algorithm: Literal["SHA1", "SHA256", "SHA512"]
    digits: int
    period: int
    confirmed: bool
    last_step: int
    """Highest time step ever accepted; codes at or below it are refused (reuse)."""


@dataclass(frozen=True)
class WebAuthnCredential:
    credential_id: bytes
    subject: str
    public_key: bytes
    """COSE public key as returned by the registration ceremony."""
    sign_count: int
    transports: tuple[str, ...]
    aaguid: str
    attestation_format: str
    backup_eligible: bool
    backed_up: bool
    created_at: float
    last_used_at: float | None
    flagged: str | None
    """Why the credential is no longer trusted (e.g. sign-count regression), or None."""
    name: str = ""


@dataclass(frozen=True)
class Challenge:
    challenge_id: str
    purpose: Literal["webauthn.register", "webauthn.authenticate"]
    challenge: bytes
    subject: str | None
    expires_at: float
    data: str = ""
    """Opaque JSON the ceremony needs back (e.g. the origin it was issued for)."""


@dataclass(frozen=True)
class RefreshRecord:
    token_digest: bytes
    family_id: str
    subject: str
    client_id: str
    claims: str
    """JSON of the claims to carry into rotated access tokens (acr, amr, auth_time, cnf…)."""
    issued_at: float
    expires_at: float
    used_at: float | None
    revoked: bool


@dataclass(frozen=True)
class OAuthClient:
    client_id: str
    name: str
    auth_method: Literal["private_key_jwt", "tls_client_auth", "self_signed_tls_client_auth"]
    jwks: str
    """JSON Web Key Set of the client's signing keys (private_key_jwt) or '{"keys": []}'."""
    tls_subject_dn: str | None
    """tls_client_auth: the certificate subject DN to match (RFC 8705 §2.1.2)."""
    tls_cert_sha256: str | None
    """self_signed_tls_client_auth: base64url SHA-256 of the registered certificate."""
    scopes: tuple[str, ...]
    created_at: float
    disabled: bool = False


class Store(Protocol):
    """Async persistence for `authn`. One instance per process, safe for concurrent tasks."""

    dialect: Literal["sqlite", "postgresql"]

    async def close(self) -> None: ...

    # users ---------------------------------------------------------------
    async def create_user(
        self,
        username: str,
        display_name: str,
        kind: Literal["customer", "staff"] = "customer",
        *,
        subject: str | None = None,
    ) -> User:
        """A new user; `subject` None generates one (``u-…``), otherwise it must match
        `SUBJECT_PATTERN` (`ValueError`), e.g. a core banking customer id ``cst_…``.
        Raises `authn.errors.AuthnError` ``username_taken`` or ``subject_taken`` (409)."""
        ...

    async def get_user(self, subject: str) -> User | None: ...
    async def get_user_by_username(self, username: str) -> User | None: ...

    # passwords -----------------------------------------------------------
    async def set_password(self, subject: str, encoded_hash: str) -> None: ...
    async def get_password(self, subject: str) -> str | None: ...

    # TOTP ----------------------------------------------------------------
    async def put_totp(self, record: TotpRecord) -> None:
        """Insert or replace the subject's (single) TOTP enrolment."""
        ...

    async def get_totp(self, subject: str) -> TotpRecord | None: ...
    async def confirm_totp(self, subject: str) -> None: ...
    async def delete_totp(self, subject: str) -> bool: ...

    async def advance_totp_step(self, subject: str, step: int) -> bool:
        """Atomically set last_step = step iff step > last_step; False means reuse."""
        ...

    # WebAuthn --------------------------------------------------------------
    async def add_credential(self, credential: WebAuthnCredential) -> None:
        """Raises `AuthnError("credential_exists", status=409)` if the id is registered."""
        ...

    async def get_credential(self, credential_id: bytes) -> WebAuthnCredential | None: ...
    async def list_credentials(self, subject: str) -> list[WebAuthnCredential]: ...

    async def update_credential_use(
        self, credential_id: bytes, sign_count: int, backed_up: bool, used_at: float
    ) -> None: ...

    async def flag_credential(self, credential_id: bytes, reason: str) -> None: ...
    async def delete_credential(self, subject: str, credential_id: bytes) -> bool: ...

    # single-use values -----------------------------------------------------
    async def put_challenge(self, challenge: Challenge) -> None: ...

    async def take_challenge(self, challenge_id: str, purpose: str, now: float) -> Challenge | None:
        """Atomically remove and return the challenge; None if absent, used or expired."""
        ...

    async def use_nonce(self, scope: str, value: str, expires_at: float, now: float) -> bool:
        """Record a one-time value (client-assertion jti, DPoP jti, signature nonce).

        True the first time; False if (scope, value) was already recorded and has
        not expired. Expired entries may be purged opportunistically.
        """
        ...

    # tokens ----------------------------------------------------------------
    async def put_refresh(self, record: RefreshRecord) -> None: ...

    async def rotate_refresh(self, token_digest: bytes, now: float) -> RefreshRecord | None:
        """Atomically mark the token used and return it as it was before.

        Returns None if unknown. A returned record with ``used_at`` already set,
        or ``revoked``, signals reuse: the caller revokes the family.
        """
        ...

    async def get_refresh(self, token_digest: bytes) -> RefreshRecord | None: ...
    async def revoke_refresh_family(self, family_id: str) -> int: ...

    async def revoke_jti(self, jti: str, expires_at: float, family_id: str | None = None) -> None:
        """Revoke one access token (kept until it would have expired anyway)."""
        ...

    async def is_jti_revoked(self, jti: str) -> bool: ...

    async def is_family_revoked(self, family_id: str) -> bool: ...

    async def revocations_since(self, since: float) -> list[tuple[str, float]]:
        """(jti or 'family:'+id, revoked_at) revoked after `since` — feeds verifier caches."""
        ...

    # partner clients -------------------------------------------------------
    async def put_client(self, client: OAuthClient) -> None: ...
    async def get_client(self, client_id: str) -> OAuthClient | None: ...

    # failure counters (password back-off) ----------------------------------
    async def record_failure(self, key: str, now: float, window: float) -> int:
        """Count a failure for `key` (e.g. 'acct:u-1', 'ip:10.0.0.1'); return the count
        within the sliding `window` seconds ending now."""
        ...

    async def failure_state(self, key: str, now: float, window: float) -> tuple[int, float]:
        """(failures within window, time of the latest failure or 0)."""
        ...

    async def clear_failures(self, key: str) -> None: ...
