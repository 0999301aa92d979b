"""OAuth 2.0 Dynamic Client Registration (RFC 7591) for open-banking partners, gated
by a software statement the bank's directory signed.

A partner registers itself (``POST /v1/register``) with client metadata (§2) and a
``software_statement`` (§2.3): a JWS, signed by a key in the directory's JWKS
(`Directory`), that vouches for the software — its id, name, the scopes it may hold
and its redirect URIs. Without a valid statement nothing is registered: the statement
is the bank's approval, so there is no open registration.

The checklist, in order (each failure is an `AuthnError` with RFC 7591 §3.2.2's
codes, the description naming the field):

1. the statement verifies with a directory key (the kid selects the key, the key
   fixes the algorithm: SM2SM3, ES256 or EdDSA; `crypto.jose` refuses ``none`` and
   algorithm confusion), has ``typ`` absent or ``JWT``, ``iss`` = the directory,
   ``iat`` not in the future, ``exp`` (if present) not passed, a ``jti`` never seen
   before (replay, recorded single-use in the store's nonce table), a
   ``software_id`` and a ``scope``, and — optional — ``allowed_networks`` (CIDRs the
   partner calls from, which the edge policy enforces), ``rate_limit_tier`` and
   ``environment`` (``production``, the default, or ``sandbox``: which routes,
   and so which data, the edge lets the client reach) → ``invalid_software_statement``;
2. §2.3: values in the statement take precedence over the same plain metadata;
   plain ``scope`` and ``redirect_uris`` may only narrow the statement's, a plain
   ``environment`` must equal it → ``invalid_client_metadata`` /
   ``invalid_redirect_uri``;
3. redirect URIs: absolute ``https`` URIs without fragment or user info, at most
   `MAX_REDIRECT_URIS` (RFC 6749 §3.1.2, RFC 9700 §2.1: exact matching later) →
   ``invalid_redirect_uri``;
4. ``grant_types`` ⊆ {``client_credentials``}, no ``response_types`` (the only grant
   partners use here), ``token_endpoint_auth_method`` and its key material as
   `authn.clients.register_client` demands (private_key_jwt with a JWKS of SM2 /
   P-256 / Ed25519 public keys, or RFC 8705 mTLS) → ``invalid_client_metadata``.
"""

from __future__ import annotations

import ipaddress
import json
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

from authn.clients import AUTH_METHODS, register_client
from authn.errors import AuthnError
from authn.store.base import Store
from crypto import jose, keys
from crypto.errors import CryptoError
from storage import Database, Migration, Migrations, open_database

__all__ = [
    "ENVIRONMENTS",
    "Directory",
    "Registration",
    "RegistrationStore",
    "open_registrations",
    "register",
]

MAX_REDIRECT_URIS: Final = 10
MAX_STATEMENT: Final = 16 * 1024
STATEMENT_LEEWAY: Final = 30
STATEMENT_MAX_AGE: Final = 365 * 86400
"""A statement without ``exp`` is refused once it is a year old (the directory re-signs)."""
GRANT_TYPES: Final = frozenset({"client_credentials"})
MAX_NETWORKS: Final = 32
_TIER: Final = re.compile(r"[A-Za-z0-9._-]{1,64}")
ENVIRONMENTS: Final = ("production", "sandbox")
"""A statement's ``environment``: production (absent = production, as every statement
signed before the claim existed) or sandbox (the edge's sandbox routes only)."""

MIGRATIONS: Final = Migrations(
    "registration",
    (
        Migration(
            1,
            "dynamic client registrations (RFC 7591)",
            (
                """CREATE TABLE registration_clients (
                    client_id TEXT PRIMARY KEY,
                    software_id TEXT NOT NULL,
                    org_id TEXT,
                    redirect_uris TEXT NOT NULL,
                    allowed_networks TEXT NOT NULL,
                    rate_limit_tier TEXT,
                    statement_jti TEXT NOT NULL,
                    registered_at {FLOAT} NOT NULL
                ){STRICT}""",
                "CREATE INDEX registration_by_software ON registration_clients (software_id)",
            ),
        ),
        Migration(
            2,
            "the environment a registration is for (production or sandbox)",
            (
                "ALTER TABLE registration_clients"
                " ADD COLUMN environment TEXT NOT NULL DEFAULT 'production'"
                " CHECK (environment IN ('production', 'sandbox'))",
            ),
        ),
    ),
)


def _invalid(code: str, description: str) -> AuthnError:
    return AuthnError(code, description, 400)


@dataclass(frozen=True)
class Directory:
    """Who may approve software: the directory's issuer name and signing keys."""

    issuer: str
    signing_keys: Mapping[str, keys.PublicKey]

    @classmethod
    def from_jwks_file(cls, path: Path, issuer: str) -> Directory:
        doc = json.loads(path.read_text())
        found: dict[str, keys.PublicKey] = {}
        for jwk in doc.get("keys", []) if isinstance(doc, dict) else []:
            kid = jwk.get("kid") if isinstance(jwk, dict) else None
            if isinstance(kid, str) and kid:
                found[kid] = keys.PublicKey.from_jwk(jwk)
        if not found:
            raise ValueError(f"{path}: no keys with a kid")
        return cls(issuer, found)

    def resolve(self, kid: str | None, alg: str) -> keys.PublicKey:
        return self.signing_keys[kid or ""]  # a KeyError is jose's unknown_kid


@dataclass(frozen=True, slots=True)
class Registration:
    client_id: str
    software_id: str
    org_id: str | None
    redirect_uris: tuple[str, ...]
    registered_at: float
    allowed_networks: tuple[str, ...] = ()
    """Where the partner calls from (CIDRs the directory approved); the edge policy
    refuses other source addresses."""
    rate_limit_tier: str | None = None
    """The quota tier the directory assigned; None = the policy's default."""
    environment: str = "production"
    """``production`` or ``sandbox``: the edge policy lets the client reach only the
    routes of its environment (``partner:wrong_environment``)."""


class RegistrationStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def close(self) -> None:
        await self._db.close()

    async def add(self, registration: Registration, statement_jti: str) -> None:
        await self._db.execute(
            "INSERT INTO registration_clients (client_id, software_id, org_id, redirect_uris,"
            " allowed_networks, rate_limit_tier, statement_jti, registered_at, environment)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            registration.client_id,
            registration.software_id,
            registration.org_id,
            json.dumps(list(registration.redirect_uris)),
            json.dumps(list(registration.allowed_networks)),
            registration.rate_limit_tier,
            statement_jti,
            registration.registered_at,
            registration.environment,
        )

    async def get(self, client_id: str) -> Registration | None:
        rows = await self._db.fetch(
            "SELECT client_id, software_id, org_id, redirect_uris, registered_at,"
            " allowed_networks, rate_limit_tier, environment"
            " FROM registration_clients WHERE client_id = $1",
            client_id,
        )
        if not rows:
            return None
        r = rows[0]
        return Registration(
            r[0],
            r[1],
            r[2],
            tuple(json.loads(r[3])),
            float(r[4]),
            tuple(json.loads(r[5])),
            r[6],
            r[7],
        )


async def open_registrations(url: str, *, schema: str | None = None) -> RegistrationStore:
    return RegistrationStore(await open_database(url, MIGRATIONS, schema=schema))


# -- the checklist -------------------------------------------------------------------


def _string(doc: Mapping[str, Any], name: str, code: str, *, limit: int = 256) -> str:
    value = doc.get(name)
    if not isinstance(value, str) or not 0 < len(value) <= limit or not value.isprintable():
        raise _invalid(code, f"{name}: a string of 1 to {limit} printable characters")
    return value


def _statement(token: object, directory: Directory, now: float) -> dict[str, Any]:
    """Step 1: the statement's claims, verified."""
    code = "invalid_software_statement"
    if not isinstance(token, str) or not 0 < len(token) <= MAX_STATEMENT:
        raise _invalid(code, "software_statement: a compact JWS is required")
    try:
        payload = jose.verify_jws(token, key=directory.resolve, max_length=MAX_STATEMENT)
        claims = json.loads(payload)
    except jose.JoseError as exc:
        raise _invalid(code, f"software_statement: {exc.code}") from None
    except (ValueError, RecursionError):
        raise _invalid(code, "software_statement: payload is not JSON") from None
    if not isinstance(claims, dict):
        raise _invalid(code, "software_statement: payload is not an object")
    if claims.get("iss") != directory.issuer:
        raise _invalid(code, "software_statement: iss is not the bank's directory")
    iat, exp = claims.get("iat"), claims.get("exp")
    if isinstance(iat, bool) or not isinstance(iat, int) or iat > now + STATEMENT_LEEWAY:
        raise _invalid(code, "software_statement: iat missing or in the future")
    if exp is not None and (isinstance(exp, bool) or not isinstance(exp, int) or exp <= now):
        raise _invalid(code, "software_statement: expired")
    if exp is None and now - iat > STATEMENT_MAX_AGE:
        raise _invalid(code, "software_statement: older than a year without exp")
    for name in ("jti", "software_id", "scope"):
        _string(claims, name, code, limit=1024 if name == "scope" else 256)
    return claims


def _redirect_uris(value: object, *, allowed: tuple[str, ...] | None) -> tuple[str, ...]:
    """Step 3 (and the narrowing of step 2)."""
    code = "invalid_redirect_uri"
    if value is None:
        return allowed or ()
    if not isinstance(value, list) or len(value) > MAX_REDIRECT_URIS:
        raise _invalid(code, f"redirect_uris: a list of at most {MAX_REDIRECT_URIS} URIs")
    for uri in value:
        if not isinstance(uri, str) or len(uri) > 2048 or not uri.isprintable():
            raise _invalid(code, "redirect_uris: each must be a URI string")
        try:
            parts = urlsplit(uri)
        except ValueError:
            raise _invalid(code, f"redirect_uris: {uri[:80]!r} is not a URI") from None
        if parts.scheme != "https" or not parts.hostname or parts.fragment or "@" in parts.netloc:
            raise _invalid(code, "redirect_uris: absolute https URIs, no fragment or user info")
        if allowed is not None and uri not in allowed:
            raise _invalid(code, "redirect_uris: not approved by the software statement")
    if len(set(value)) != len(value):
        raise _invalid(code, "redirect_uris: duplicates")
    return tuple(value)


async def register(
    store: Store,
    registrations: RegistrationStore,
    metadata: Mapping[str, Any],
    *,
    directory: Directory,
    now: float | None = None,
) -> dict[str, Any]:
    """Run the checklist and register the client; the RFC 7591 §3.2.1 response body."""
    at = time.time() if now is None else now
    statement = metadata.get("software_statement")
    claims = _statement(statement, directory, at)
    if not await store.use_nonce("ssa", claims["jti"], float(claims.get("exp") or at + 86400), at):
        raise _invalid("invalid_software_statement", "software_statement: already used (jti)")
    # Step 2: the statement supersedes; plain metadata may only narrow it.
    approved_scopes = claims["scope"].split(" ")
    asked = metadata.get("scope")
    if asked is not None and (not isinstance(asked, str) or not asked.strip()):
        raise _invalid("invalid_client_metadata", "scope: a space-separated string")
    scopes = asked.split(" ") if isinstance(asked, str) else approved_scopes
    if not set(scopes) <= set(approved_scopes):
        raise _invalid("invalid_client_metadata", "scope: beyond the software statement's")
    approved_uris = claims.get("redirect_uris")
    approved = _redirect_uris(approved_uris, allowed=None) if approved_uris is not None else ()
    redirect_uris = _redirect_uris(metadata.get("redirect_uris"), allowed=approved)
    grant_types = metadata.get("grant_types", ["client_credentials"])
    if not isinstance(grant_types, list) or not set(grant_types) <= GRANT_TYPES or not grant_types:
        raise _invalid("invalid_client_metadata", "grant_types: only client_credentials")
    if metadata.get("response_types") not in (None, []):
        raise _invalid("invalid_client_metadata", "response_types: none are supported")
    method = metadata.get("token_endpoint_auth_method")
    if method not in AUTH_METHODS:
        raise _invalid(
            "invalid_client_metadata",
            f"token_endpoint_auth_method: one of {', '.join(AUTH_METHODS)}",
        )
    name = claims.get("software_client_name") or metadata.get("client_name")
    if not isinstance(name, str):
        raise _invalid("invalid_client_metadata", "client_name: required")
    org_id = claims.get("org_id")
    if org_id is not None and not isinstance(org_id, str):
        raise _invalid("invalid_software_statement", "org_id: must be a string")
    networks = _networks(claims.get("allowed_networks"))
    tier = claims.get("rate_limit_tier")
    if tier is not None and (not isinstance(tier, str) or _TIER.fullmatch(tier) is None):
        raise _invalid("invalid_software_statement", "rate_limit_tier: a tier name")
    environment = _environment(claims, metadata)
    try:
        client = await register_client(
            store,
            name=name,
            auth_method=str(method),
            jwks=metadata.get("jwks"),
            tls_subject_dn=metadata.get("tls_client_auth_subject_dn"),
            tls_cert_pem=metadata.get("tls_client_certificate"),
            scopes=scopes,
            now=at,
        )
    except AuthnError as exc:  # same code; RFC 7591 metadata names in the description
        described = exc.description.replace("tls_subject_dn", "tls_client_auth_subject_dn")
        raise _invalid(
            exc.code, described.replace("tls_cert_pem", "tls_client_certificate")
        ) from None
    except (CryptoError, ValueError):
        raise _invalid("invalid_client_metadata", "jwks: not usable") from None
    registration = Registration(
        client.client_id,
        claims["software_id"],
        org_id,
        redirect_uris,
        at,
        networks,
        tier,
        environment,
    )
    await registrations.add(registration, claims["jti"])
    body: dict[str, Any] = {
        "client_id": client.client_id,
        "client_id_issued_at": int(at),
        "client_name": client.name,
        "token_endpoint_auth_method": client.auth_method,
        "grant_types": sorted(set(grant_types)),
        "redirect_uris": list(redirect_uris),
        "scope": " ".join(client.scopes),
        "software_id": claims["software_id"],
        "software_statement": statement,
        "environment": environment,
    }
    if client.auth_method == "private_key_jwt":
        body["jwks"] = json.loads(client.jwks)
    if org_id is not None:
        body["org_id"] = org_id
    if networks:
        body["allowed_networks"] = list(networks)
    return body


def _environment(claims: Mapping[str, Any], metadata: Mapping[str, Any]) -> str:
    """The statement's ``environment`` (absent: production). Only the directory says it:
    plain metadata may repeat it, never change it (§2.3)."""
    value = claims.get("environment", "production")
    if value not in ENVIRONMENTS:
        raise _invalid(
            "invalid_software_statement", "environment: production or sandbox, if present"
        )
    asked = metadata.get("environment", value)
    if asked != value:
        raise _invalid("invalid_client_metadata", "environment: not the software statement's")
    return str(value)


def _networks(value: object) -> tuple[str, ...]:
    """The statement's ``allowed_networks``: 1-32 CIDRs, canonical (``10.1.2.0/24``)."""
    code = "invalid_software_statement"
    if value is None:
        return ()
    if not isinstance(value, list) or not 1 <= len(value) <= MAX_NETWORKS:
        raise _invalid(code, f"allowed_networks: a list of 1 to {MAX_NETWORKS} CIDRs")
    out: list[str] = []
    for item in value:
        if not isinstance(item, str) or len(item) > 64:
            raise _invalid(code, "allowed_networks: each must be a CIDR string")
        try:
            out.append(str(ipaddress.ip_network(item, strict=True)))
        except ValueError:
            raise _invalid(code, f"allowed_networks: {item[:64]!r} is not a network") from None
    return tuple(dict.fromkeys(out))
