"""The `[authn]` section of ztgate's configuration file.

Defaults are the embedded, secure ones: loopback, SQLite under the state
directory, SM2-signed tokens, five-minute access tokens, passkeys requiring
user verification. `ztgate.config` validates a file against these fields.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class AuthnConfig:
    host: str = "127.0.0.1"
    port: int = 8081
    public_url: str = "http://localhost:8081"
    """The service's public origin: token issuer, and the WebAuthn origin by default."""
    database_url: str = ""
    """``sqlite:///…`` or ``postgresql://…``; empty = SQLite file in the state directory."""
    audience: str = "ztgate"
    access_ttl: int = 300
    refresh_ttl: int = 30 * 86400
    rp_id: str = "localhost"
    """WebAuthn relying-party id (a registrable domain; never an IP address)."""
    origins: tuple[str, ...] = ()
    """Exact WebAuthn origins (scheme, host and port); empty = (public_url,)."""
    password_iterations: int = 310_000
    """PBKDF2-HMAC-SM3 cost for new password hashes."""
    max_body: int = 64 * 1024
    customer_scopes: tuple[str, ...] = (
        "accounts:read",
        "cards:read",
        "profile:read",
        "payments:read",
        "payments:write",
    )
    """Scopes of the tokens a customer gets by logging in to the first-party app
    (password, TOTP, passkey): what the bank's own app may do on their behalf. The
    edge policy still decides per route (acr, device, risk); partners get scopes
    only through their client registration."""
    staff_scopes: tuple[str, ...] = ()
    """Scopes of first-party tokens for staff users."""
    directory_jwks: Path | None = None
    """JWKS of the bank's directory: the keys whose software statements admit a
    partner to dynamic client registration (RFC 7591, ``POST /v1/register``).
    Unset: dynamic registration is off (partners are registered by the bank)."""
    directory_issuer: str = "ztgate-directory"
    """The ``iss`` a software statement must carry."""
    revocation_sync_seconds: float = 1.0
    """How often a process pulls revocations made by other processes."""
    tls_cert: Path | None = None
    """PEM certificate chain: serve HTTPS (TLS 1.2+) instead of loopback HTTP."""
    tls_key: Path | None = None
    """PEM private key of `tls_cert`."""
    tls_client_ca: Path | None = None
    """CA bundle for partner client certificates (RFC 8705 mTLS client auth). A
    presented certificate must chain to it; add a partner's self-signed certificate
    here for ``self_signed_tls_client_auth``."""

    def __post_init__(self) -> None:
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("tls_key: tls_cert and tls_key must be set together")
        if self.tls_client_ca is not None and self.tls_cert is None:
            raise ValueError("tls_client_ca: needs tls_cert and tls_key")
        if not 0 < self.access_ttl <= 3600:
            raise ValueError(
                "access_ttl: must be 1 to 3600 seconds (access tokens are short-lived)"
            )
        if self.refresh_ttl < self.access_ttl:
            raise ValueError("refresh_ttl: must not be shorter than access_ttl")
        if not 1024 <= self.max_body <= 1024 * 1024:
            raise ValueError("max_body: must be 1 KiB to 1 MiB")
        for name in ("customer_scopes", "staff_scopes"):
            for scope in getattr(self, name):
                if not scope or len(scope) > 128 or not scope.isascii() or " " in scope:
                    raise ValueError(f"{name}: {scope!r} is not a scope token (RFC 6749 §3.3)")
        if self.password_iterations < 100_000:
            raise ValueError("password_iterations: must be at least 100000")

    def webauthn_origins(self) -> tuple[str, ...]:
        return self.origins or (self.public_url.rstrip("/"),)
