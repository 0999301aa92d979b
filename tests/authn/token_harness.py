"""Shared set-up for the token tests (test_tokens.py, test_refresh.py).

Everything is real: the store is the parametrized SQLite/PostgreSQL one, keys
are generated, tokens are signed. Only time is injected (`Clock`), so expiry
and skew are tested without sleeping. The clock starts at the wall clock's
current second because the store stamps revocations with `time.time()` and
the verifier prunes them against its own clock.

`sign_raw` builds a compact JWS from exactly the bytes given, so tests can
forge what `crypto.jose` would never produce (``alg: none``, HMAC signatures,
duplicate members) while still holding a real signature where one is wanted.
"""

from __future__ import annotations

import base64
import datetime
import json
import time
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from authn.errors import AuthnError
from authn.store import Store, open_store
from authn.tokens import ACCESS_TOKEN_TYP, TokenConfig, TokenIssuer, TokenResponse, TokenVerifier
from crypto import keys
from crypto.keyring import KeyRing

PEPPER = b"\x07" * 32
CLIENT = "mobile-app"
SUBJECT = "u-alice"
BEARER_HEADER = 'Bearer error="invalid_token", error_description="{}"'
DPOP_TOKEN_HEADER = 'DPoP error="invalid_token", error_description="{}", algs="ES256 EdDSA SM2SM3"'
DPOP_PROOF_HEADER = 'DPoP error="invalid_dpop_proof", algs="ES256 EdDSA SM2SM3"'


class Clock:
    """An injectable clock (``clock=``) that only moves when told to."""

    def __init__(self) -> None:
        self.now = float(int(time.time()))

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Env:
    """One authorization server process: store, key ring, issuer and its own verifier."""

    store: Store
    ring: KeyRing
    config: TokenConfig
    clock: Clock
    verifier: TokenVerifier
    issuer: TokenIssuer

    async def mint(self, **overrides: Any) -> TokenResponse:
        """`TokenIssuer.issue` with a plausible login's values unless overridden."""
        args: dict[str, Any] = {
            "subject": SUBJECT,
            "client_id": CLIENT,
            "acr": "urn:ztgate:acr:mfa",
            "amr": ["pwd", "otp"],
            "auth_time": int(self.clock()) - 5,
            "scope": "accounts:read payments:write",
        }
        args.update(overrides)
        return await self.issuer.issue(**args)

    async def token(self, **overrides: Any) -> str:
        return (await self.mint(with_refresh=False, **overrides)).access_token

    def other_verifier(self, store: Store) -> TokenVerifier:
        """A verifier in another process: same keys and config, its own store connection."""
        return TokenVerifier(self.ring, store, self.config, clock=self.clock)

    def other_issuer(self, store: Store) -> TokenIssuer:
        return TokenIssuer(
            store,
            self.ring,
            self.config,
            refresh_pepper=PEPPER,
            clock=self.clock,
            verifier=self.other_verifier(store),
        )

    def claims(self, **overrides: Any) -> dict[str, Any]:
        """A complete, valid access-token claim set (for forging with `forge`)."""
        now = int(self.clock())
        claims: dict[str, Any] = {
            "iss": self.config.issuer,
            "sub": SUBJECT,
            "aud": self.config.audience,
            "exp": now + self.config.access_ttl,
            "iat": now,
            "jti": f"forged-{time.monotonic_ns()}",
            "client_id": CLIENT,
            "scope": "accounts:read",
        }
        claims.update(overrides)
        return {k: v for k, v in claims.items() if v is not None}

    def forge(
        self,
        claims: Mapping[str, Any] | bytes | None = None,
        *,
        header: Mapping[str, Any] | bytes | None = None,
        key: keys.PrivateKey | None = None,
    ) -> str:
        """A token signed by the ring's active key (or `key`) over exactly these parts."""
        kid, active = self.ring.signing_key()
        signer = key or active
        if header is None:
            header = {"alg": keys.JWS_ALG[signer.algorithm], "typ": ACCESS_TOKEN_TYP, "kid": kid}
        return sign_raw(header, self.claims() if claims is None else claims, signer)


async def reopen(store_url: tuple[str, str | None]) -> Store:
    """Another connection to the same database: another process, or this one restarted."""
    url, schema = store_url
    return await open_store(url, schema=schema)


def make_env(store: Store, algorithm: keys.Algorithm = "sm2", **config: Any) -> Env:
    ring = KeyRing()
    ring.generate(algorithm)
    cfg = TokenConfig(**config)
    clock = Clock()
    verifier = TokenVerifier(ring, store, cfg, clock=clock)
    issuer = TokenIssuer(store, ring, cfg, refresh_pepper=PEPPER, clock=clock, verifier=verifier)
    return Env(store, ring, cfg, clock, verifier, issuer)


# -- raw JOSE ------------------------------------------------------------------------


def b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def unb64u(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def _json(part: Mapping[str, Any] | bytes) -> bytes:
    return part if isinstance(part, bytes) else json.dumps(dict(part)).encode()


def sign_raw(
    header: Mapping[str, Any] | bytes,
    payload: Mapping[str, Any] | bytes,
    key: keys.PrivateKey | None,
) -> str:
    """``b64u(header).b64u(payload).b64u(sig)`` with `key`'s JWS signature (or none)."""
    signing_input = f"{b64u(_json(header))}.{b64u(_json(payload))}"
    sig = key.sign(signing_input.encode(), encoding="raw") if key else b""
    return f"{signing_input}.{b64u(sig)}"


def parts(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(header, claims) of a compact JWS, unverified."""
    head, payload, _ = token.split(".")
    return json.loads(unb64u(head)), json.loads(unb64u(payload))


# -- assertions ----------------------------------------------------------------------


async def refused(
    attempt: Awaitable[object], code: str = "invalid_token", *, scheme: str = "Bearer"
) -> str:
    """Await `attempt`, which must fail with `code` and its standard status and header.

    ``invalid_token``: 401 with the RFC 6750 §3 challenge (``Bearer``), or the
    RFC 9449 §7.1 one (``DPoP``) when DPoP is in play. ``invalid_dpop_proof``:
    401, DPoP challenge. ``invalid_grant``: 400 (RFC 6749 §5.2), no header.
    Returns the description, for tests that pin the reason.
    """
    with pytest.raises(AuthnError) as info:
        await attempt
    err = info.value
    assert err.code == code, err
    if code == "invalid_token":
        assert err.status == 401
        template = BEARER_HEADER if scheme == "Bearer" else DPOP_TOKEN_HEADER
        assert err.headers == {"WWW-Authenticate": template.format(err.description)}
    elif code == "invalid_dpop_proof":
        assert err.status == 401
        assert err.headers == {"WWW-Authenticate": DPOP_PROOF_HEADER}
    elif code == "invalid_grant":
        assert err.status == 400
        assert err.headers == {}
    assert err.description
    return err.description


# -- client certificates (RFC 8705) ----------------------------------------------------


def make_cert(cn: str) -> bytes:
    """A real self-signed client certificate, DER."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.DER)
