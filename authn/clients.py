"""Partner (third-party) OAuth clients: registration, authentication, scopes.

Confidential clients only (FAPI 2.0 Security Profile §5.3.2.1), by one of:
``private_key_jwt`` (RFC 7523 §2.2, §3): a short-lived JWT signed with a key
of the registered JWKS (SM2SM3, ES256, EdDSA); ``tls_client_auth`` (RFC 8705
§2.1): a CA-issued certificate with the registered subject DN;
``self_signed_tls_client_auth`` (RFC 8705 §2.2): the registered certificate
itself, by SHA-256. A presented client certificate's ``x5t#S256`` is returned
whatever the method, for certificate-bound tokens (RFC 8705 §3.1).

Assertion ``aud``: RFC 7523 §3 names the token endpoint URL, FAPI 2.0 the
issuer identifier; both are accepted unless ``issuer_audience_only=True``.
Switch that on once partners comply: accepting the endpoint URL leaves the
2025 "audience injection" attack open (a malicious AS advertising our token
endpoint as its own collects assertions to replay here); the issuer
identifier cannot be claimed by another AS (RFC 8414 §3.3).

Every authentication failure is the same ``invalid_client`` (401, RFC 6749
§5.2) with one fixed description; the reason is logged (logger
``ztgate.authn.clients``, field ``reason``) for operators, never returned.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import logging
import re
import secrets
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal, NoReturn, get_args

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from authn.errors import AuthnError, invalid_client
from authn.store.base import OAuthClient, Store
from crypto import jose, keys
from crypto.errors import CryptoError

__all__ = [
    "AUTH_METHODS",
    "CLIENT_ASSERTION_TYPE",
    "AuthMethod",
    "AuthenticatedClient",
    "authenticate_client",
    "grant_scopes",
    "register_client",
]

AuthMethod = Literal["private_key_jwt", "tls_client_auth", "self_signed_tls_client_auth"]
AUTH_METHODS: Final[tuple[AuthMethod, ...]] = get_args(AuthMethod)
CLIENT_ASSERTION_TYPE: Final = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
MAX_ASSERTION_LENGTH: Final = 8 * 1024
MAX_ASSERTION_LIFETIME: Final = 300
"""Seconds an assertion may live (``exp`` after ``iat``, or after now)."""
LEEWAY: Final = 10
"""Clock skew allowed (FAPI 2.0 §5.3.2.1 suggests ≤ 10 s)."""
MAX_KEYS: Final = 10
_FAILED: Final = "client authentication failed"
_PRIVATE_MEMBERS: Final = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})
_ID_RE: Final = re.compile(r"[A-Za-z0-9._:-]{1,128}")
_SCOPE_RE: Final = re.compile(r"[A-Za-z0-9_.:-]{1,128}")
_B64U_RE: Final = re.compile(r"[A-Za-z0-9_-]*")

log = logging.getLogger("ztgate.authn.clients")


@dataclass(frozen=True)
class AuthenticatedClient:
    """The outcome of a successful client authentication."""

    client: OAuthClient
    method: AuthMethod
    cert_sha256: str | None
    """``x5t#S256`` of the TLS client certificate, if one was presented (RFC 8705 §3.1)."""


# -- registration (RFC 7591 §2 metadata, RFC 8705 §2.1.2 / §2.2) -----------------------


def _bad_metadata(field: str, why: str) -> NoReturn:
    raise AuthnError("invalid_client_metadata", f"{field}: {why}", 400)


def _b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _check_jwks(jwks: Mapping[str, Any] | str | None) -> str:
    """Normalise a JWKS (RFC 7517 §5) of public signing keys; JSON for the store."""
    if jwks is None:
        _bad_metadata("jwks", "required for private_key_jwt")
    if isinstance(jwks, str):
        try:
            jwks = json.loads(jwks)
        except (ValueError, RecursionError):
            _bad_metadata("jwks", "not JSON")
    members = jwks.get("keys") if isinstance(jwks, Mapping) else None
    if not isinstance(members, list) or not 1 <= len(members) <= MAX_KEYS:
        _bad_metadata("jwks", f"must be an object with 1 to {MAX_KEYS} keys")
    out: list[dict[str, str]] = []
    for i, jwk in enumerate(members):
        if not isinstance(jwk, dict):
            _bad_metadata("jwks", f"key {i} is not an object")
        if _PRIVATE_MEMBERS & jwk.keys():
            _bad_metadata("jwks", f"key {i} carries private key material")
        kid = jwk.get("kid")
        if not isinstance(kid, str) or not 0 < len(kid) <= 256 or not kid.isprintable():
            _bad_metadata("jwks", f"key {i} needs a kid")
        if any(kid == seen["kid"] for seen in out):
            _bad_metadata("jwks", f"key {i}: duplicate kid")
        if jwk.get("use", "sig") != "sig":  # RFC 7517 §4.2
            _bad_metadata("jwks", f"key {i} is not a signing key")
        try:
            public = keys.PublicKey.from_jwk(jwk)
        except (CryptoError, ValueError):
            _bad_metadata("jwks", f"key {i} is not an SM2, P-256 or Ed25519 public key")
        alg = keys.JWS_ALG[public.algorithm]
        if jwk.get("alg", alg) != alg:  # RFC 7517 §4.4: the key's type fixes its alg
            _bad_metadata("jwks", f"key {i}: alg must be {alg}")
        out.append({**public.to_jwk(), "kid": kid, "alg": alg, "use": "sig"})
    return json.dumps({"keys": out}, separators=(",", ":"), sort_keys=True)


def _check_subject_dn(dn: str | None) -> str:
    """RFC 8705 §2.1.2: stored in cryptography's RFC 4514 form, compared exactly."""
    if not isinstance(dn, str) or not dn.strip():
        _bad_metadata("tls_subject_dn", "required for tls_client_auth")
    try:
        name = x509.Name.from_rfc4514_string(dn)
    except ValueError:
        _bad_metadata("tls_subject_dn", "not an RFC 4514 distinguished name")
    if not len(name):
        _bad_metadata("tls_subject_dn", "empty distinguished name")
    return name.rfc4514_string()


def _check_cert_pem(pem: str | bytes | None) -> str:
    """RFC 8705 §2.2: the base64url SHA-256 of the one registered certificate."""
    if pem is None:
        _bad_metadata("tls_cert_pem", "required for self_signed_tls_client_auth")
    if not isinstance(pem, str | bytes):
        _bad_metadata("tls_cert_pem", "must be a PEM string")
    data = pem.encode("ascii", "replace") if isinstance(pem, str) else pem
    try:
        certs = x509.load_pem_x509_certificates(data)
    except ValueError:
        _bad_metadata("tls_cert_pem", "not a PEM certificate")
    if len(certs) != 1:
        _bad_metadata("tls_cert_pem", "must hold exactly one certificate")
    return _b64u(hashlib.sha256(certs[0].public_bytes(Encoding.DER)).digest())


def _check_scopes(scopes: str | Iterable[str]) -> tuple[str, ...]:
    """RFC 6749 §3.3 scope tokens, restricted to ``[A-Za-z0-9_.:-]``."""
    if isinstance(scopes, str):
        items: list[object] = list(scopes.split(" "))
    elif isinstance(scopes, list | tuple):
        items = list(scopes)
    else:
        _bad_metadata("scopes", "a space-separated string or a list of strings")
    if not items or len(items) > 64:
        _bad_metadata("scopes", "1 to 64 scopes are required")
    for item in items:
        if not isinstance(item, str) or _SCOPE_RE.fullmatch(item) is None:
            _bad_metadata("scopes", "each scope must be a token of [A-Za-z0-9_.:-]")
    return tuple(dict.fromkeys(str(item) for item in items))


async def register_client(
    store: Store,
    *,
    name: str,
    auth_method: str,
    jwks: Mapping[str, Any] | str | None = None,
    tls_subject_dn: str | None = None,
    tls_cert_pem: str | bytes | None = None,
    scopes: str | Iterable[str],
    now: float | None = None,
) -> OAuthClient:
    """Validate partner metadata (RFC 7591 §2, RFC 8705 §2) and store a new client.

    Metadata that does not belong to `auth_method` is refused rather than
    silently kept. Raises ``AuthnError("invalid_client_metadata", 400)``
    whose description starts with the offending field's name (RFC 7591 §3.2.2).
    """
    if not isinstance(name, str) or not 0 < len(name.strip()) <= 200 or not name.isprintable():
        _bad_metadata("name", "1 to 200 printable characters")
    if auth_method not in AUTH_METHODS:
        _bad_metadata("auth_method", f"must be one of {', '.join(AUTH_METHODS)}")
    method: AuthMethod = auth_method  # narrowed by the membership test
    if method != "private_key_jwt" and jwks is not None:
        _bad_metadata("jwks", "only for private_key_jwt")
    if method != "tls_client_auth" and tls_subject_dn is not None:
        _bad_metadata("tls_subject_dn", "only for tls_client_auth")
    if method != "self_signed_tls_client_auth" and tls_cert_pem is not None:
        _bad_metadata("tls_cert_pem", "only for self_signed_tls_client_auth")
    client = OAuthClient(
        client_id="c-" + base64.b32encode(secrets.token_bytes(16)).decode().rstrip("=").lower(),
        name=name,
        auth_method=method,
        jwks=_check_jwks(jwks) if method == "private_key_jwt" else '{"keys":[]}',
        tls_subject_dn=_check_subject_dn(tls_subject_dn) if method == "tls_client_auth" else None,
        tls_cert_sha256=(
            _check_cert_pem(tls_cert_pem) if method == "self_signed_tls_client_auth" else None
        ),
        scopes=_check_scopes(scopes),
        created_at=time.time() if now is None else now,
    )
    await store.put_client(client)
    return client


# -- authentication (RFC 6749 §2.3, RFC 7523 §3, RFC 8705 §2) ---------------------------


class _Reject(Exception):
    """Internal: ``(reason, client_id)`` of a failure. Logged, never shown to the client."""


def _reject(reason: str, client_id: str | None = None) -> NoReturn:
    raise _Reject(reason, client_id)


def _valid_id(value: object) -> str | None:
    """A syntactically possible client_id (keeps NULs and junk away from the store)."""
    return value if isinstance(value, str) and _ID_RE.fullmatch(value) else None


def _unverified_sub(assertion: str) -> str | None:
    """The claimed client_id, to find the key that will verify it (RFC 7523 §3 item 2)."""
    parts = assertion.split(".")
    if len(parts) != 3 or _B64U_RE.fullmatch(parts[1]) is None:
        return None
    try:
        claims = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (binascii.Error, ValueError, RecursionError):
        return None
    return _valid_id(claims.get("sub")) if isinstance(claims, dict) else None


def _resolver(client: OAuthClient) -> jose.KeyResolver:
    """Keys from the client's own JWKS only; ``kid`` may be omitted for a single key."""
    try:
        members = json.loads(client.jwks)["keys"]
        by_kid = {jwk["kid"]: keys.PublicKey.from_jwk(jwk) for jwk in members}
    except (CryptoError, ValueError, LookupError, TypeError, RecursionError):
        _reject("stored JWKS unusable", client.client_id)

    def resolve(kid: str | None, alg: str) -> keys.PublicKey:
        # crypto.jose then requires `alg` to be exactly the alg this key's type
        # mandates (RFC 8725 §3.1), whatever the header claims.
        if kid is None and len(by_kid) == 1:
            return next(iter(by_kid.values()))
        if kid is None or kid not in by_kid:
            raise jose.JoseError("unknown_kid", "no such key in the client's JWKS")
        return by_kid[kid]

    return resolve


async def _load(store: Store, client_id: str, methods: tuple[AuthMethod, ...]) -> OAuthClient:
    client = await store.get_client(client_id)
    if client is None:
        _reject("unknown client", client_id)
    if client.disabled:
        _reject("client disabled", client_id)
    if client.auth_method not in methods:
        _reject(f"client is registered for {client.auth_method}", client_id)
    return client


async def _by_assertion(
    store: Store,
    form: Mapping[str, str],
    audience: list[str],
    now: float,
    strict_aud: str | None,
) -> OAuthClient:
    """``private_key_jwt`` (RFC 7521 §4.2, RFC 7523 §2.2 and §3)."""
    if form.get("client_assertion_type") != CLIENT_ASSERTION_TYPE:
        _reject("wrong or missing client_assertion_type")
    assertion = form.get("client_assertion")
    if not isinstance(assertion, str) or len(assertion) > MAX_ASSERTION_LENGTH:
        _reject("client_assertion missing or oversized")
    client_id = _unverified_sub(assertion)
    if client_id is None:
        _reject("assertion names no usable sub")
    if "client_id" in form and form["client_id"] != client_id:
        _reject("client_id parameter differs from the assertion's sub", client_id)
    client = await _load(store, client_id, ("private_key_jwt",))
    cid = client.client_id
    try:  # signature with a key of the client's JWKS, iss, aud (RFC 7523 §3 items 1-3, 9)
        claims = jose.decode_jwt(
            assertion,
            key=_resolver(client),
            audience=audience,
            issuer=cid,
            leeway=LEEWAY,
            required=("iss", "sub", "aud", "exp", "jti"),
            max_length=MAX_ASSERTION_LENGTH,
        )
    except jose.JoseError as exc:
        _reject(f"assertion rejected: {exc.code}", cid)
    if claims["sub"] != cid:
        _reject("sub is not the client_id", cid)
    if strict_aud is not None and claims["aud"] != strict_aud:
        _reject("aud is not the issuer identifier alone", cid)
    # Numbers (crypto.jose checked); compared, never subtracted: a huge int
    # minus a float would raise OverflowError.
    exp, iat = claims["exp"], claims.get("iat")
    if exp <= now - LEEWAY:  # RFC 7523 §3 item 4
        _reject("assertion expired", cid)
    if exp > now + MAX_ASSERTION_LIFETIME + LEEWAY or (
        iat is not None and exp > iat + MAX_ASSERTION_LIFETIME
    ):
        _reject("assertion lives too long", cid)
    if iat is not None and iat > now + LEEWAY:  # RFC 7523 §3 item 6
        _reject("iat in the future", cid)
    jti = claims["jti"]
    if not isinstance(jti, str) or not 0 < len(jti) <= 256 or not jti.isprintable():
        _reject("unusable jti", cid)
    scope = "client_assertion:" + cid  # RFC 7523 §3 item 7: jti is single-use
    if not await store.use_nonce(scope, jti, float(exp) + LEEWAY, now):
        _reject("assertion replayed (jti seen before)", cid)
    return client


async def _by_certificate(
    store: Store, form: Mapping[str, str], cert_der: bytes | None, trusted: bool
) -> OAuthClient:
    """``tls_client_auth`` (RFC 8705 §2.1) or ``self_signed_tls_client_auth`` (§2.2)."""
    client_id = _valid_id(form.get("client_id"))
    if client_id is None:
        _reject("no client authentication presented")
    if not cert_der:
        _reject("no client certificate", client_id)
    client = await _load(store, client_id, ("tls_client_auth", "self_signed_tls_client_auth"))
    if client.auth_method == "tls_client_auth":
        if not trusted:
            _reject("certificate does not chain to a trusted CA", client_id)
        try:
            subject = x509.load_der_x509_certificate(cert_der).subject.rfc4514_string()
        except ValueError:
            _reject("unparsable client certificate", client_id)
        expected = client.tls_subject_dn or ""
        if not expected or not hmac.compare_digest(subject.encode(), expected.encode()):
            _reject("certificate subject DN does not match", client_id)
    else:
        thumb = _b64u(hashlib.sha256(cert_der).digest()).encode()
        if not hmac.compare_digest(thumb, (client.tls_cert_sha256 or "").encode()):
            _reject("certificate is not the registered one", client_id)
    return client


async def authenticate_client(
    store: Store,
    *,
    form: Mapping[str, str],
    token_endpoint: str,
    issuer: str,
    now: float,
    peer_cert_der: bytes | None,
    trusted_ca_verified: bool,
    issuer_audience_only: bool = False,
) -> AuthenticatedClient:
    """Authenticate the client of a token-endpoint request (RFC 6749 §2.3, §5.2).

    `form` is the request body; `peer_cert_der`/`trusted_ca_verified` come
    from the TLS layer. `now` must be the wall clock: crypto.jose checks
    ``exp``/``iat`` against it as well. A request carrying
    ``client_assertion(_type)`` is private_key_jwt, otherwise mTLS with a
    ``client_id`` (RFC 8705 §2); ``client_secret`` is never accepted (FAPI
    2.0). Any failure raises `invalid_client` (401) with a fixed description.
    """
    cert_sha256 = _b64u(hashlib.sha256(peer_cert_der).digest()) if peer_cert_der else None
    try:
        if "client_secret" in form:
            _reject("client_secret is not an accepted method", _valid_id(form.get("client_id")))
        if "client_assertion" in form or "client_assertion_type" in form:
            audience = [issuer] if issuer_audience_only else [token_endpoint, issuer]
            strict = issuer if issuer_audience_only else None
            client = await _by_assertion(store, form, audience, now, strict)
            method: AuthMethod = "private_key_jwt"
        else:
            client = await _by_certificate(store, form, peer_cert_der, trusted_ca_verified)
            method = client.auth_method
    except _Reject as exc:
        log.info(_FAILED, extra={"reason": exc.args[0], "client_id": exc.args[1]})
        raise invalid_client(_FAILED) from None
    return AuthenticatedClient(client, method, cert_sha256)


def grant_scopes(client: OAuthClient, requested: str | None) -> str:
    """The scope to grant (RFC 6749 §3.3): a subset of the client's, or all of them.

    `requested` is the space-delimited ``scope`` parameter; absent or empty
    means the client's registered scopes. Anything outside them, or malformed,
    is ``invalid_scope`` (RFC 6749 §5.2). The answer keeps registration order.
    """
    if not requested:
        return " ".join(client.scopes)
    items = requested.split(" ")
    if any(_SCOPE_RE.fullmatch(item) is None for item in items):
        raise AuthnError("invalid_scope", "scope is malformed (RFC 6749 §3.3)", 400)
    wanted = set(items)
    if not wanted <= set(client.scopes):
        raise AuthnError("invalid_scope", "scope exceeds what the client is registered for", 400)
    return " ".join(scope for scope in client.scopes if scope in wanted)
