"""Signed identity assertions: what the edge tells core services, and how they check it.

On every allowed request the edge agent adds ``x-ztgate-assertion``: a compact
JWS (RFC 7515 §7.1) with header ``{"alg", "kid", "typ": "ztgate-assertion+jwt"}``
(explicit type, RFC 8725 §3.11, so no other JWT signed with the same key passes
as one) over the claims::

    iss          the edge node (AgentConfig.node_id)
    sub, kind    the subject (null when anonymous) and its kind
    acr          authentication context class (null when anonymous)
    device       device id (null when none)
    risk         risk score 0-100
    decision_id  the policy decision (also in the decision log)
    route_id     the gateway route
    method, path the request it authorises (path without query)
    iat, exp     issued at, expiry (iat + 30 s by default)
    jti          unique id (a core service may refuse repeats)
    consent      partners only, when their token acts under an authorised consent:
                 ``{"id", "customer", "accounts": [...]}`` — whose accounts the
                 partner may touch (`authn.consents`); absent otherwise

Two ways to sign:

- ``SM2SM3`` (default): the edge key ring's active key (`crypto.keyring`,
  `crypto.jose`'s private alg: SM2 over SM3 with the default distinguishing
  ID, raw ``r||s``). Core services verify with the edge's public JWKS; they
  hold no secret. P-256/Ed25519 rings give ES256/EdDSA the same way.
- ``HSM3`` (ztgate's private alg name; no JOSE identifier is registered):
  HMAC-SM3 (GB/T 32905, RFC 2104) over the JWS signing input with a key
  shared by the edge and the core service, ``kid`` = ``hsm3-`` + 16 hex digits
  of SM3 over a label and the key. Cheaper, but whoever can verify can forge.

`verify_assertion` is the core service's side. The kid selects the key and the
key fixes the algorithm: an HSM3 header on an SM2 kid, an SM2SM3 header on an
HMAC kid, ``none`` and every other alg are refused (algorithm confusion, RFC
8725 §2.1). Then: signature, type, claim types, issuer (when given), time
(``iat`` not in the future, ``exp`` not passed, lifetime at most `max_ttl`,
with `leeway`), and the request binding (method and path must be the request
the service is handling). Each failure is `InvalidAssertion` with a fixed code.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from crypto import jose, keys, sm3
from crypto.errors import CryptoError
from crypto.keyring import KeyRing
from gateway import ids
from gateway.jwks import JwksError, parse_jwks

_json_string: Final = json.encoder.encode_basestring_ascii

__all__ = [
    "ASSERTION_TYP",
    "HMAC_ALG",
    "AssertedConsent",
    "Assertion",
    "AssertionKeys",
    "AssertionSigner",
    "InvalidAssertion",
    "hmac_kid",
    "verify_assertion",
]

ASSERTION_TYP: Final = "ztgate-assertion+jwt"
HMAC_ALG: Final = "HSM3"
MAX_LENGTH: Final = 8 * 1024
MIN_HMAC_KEY: Final = 32
_SEGMENT: Final = re.compile(r"[A-Za-z0-9_-]+")
_HEADER_MEMBERS: Final = frozenset({"alg", "kid", "typ"})
_KID_LABEL: Final = b"ztgate:assertion-kid:"
_NULLABLE_STR: Final = ("sub", "acr", "device")
_STR: Final = ("iss", "kind", "decision_id", "route_id", "method", "path", "jti")


class InvalidAssertion(ValueError):
    """An assertion that must not be trusted; `code` says why (fixed strings)."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


@dataclass(frozen=True, slots=True)
class AssertedConsent:
    """The consent a partner's request acts under, as the edge checked it."""

    consent_id: str
    customer: str
    accounts: tuple[str, ...]


MAX_CONSENT_ACCOUNTS: Final = 50


def _consent_claim(value: object) -> AssertedConsent | None:
    if value is None:
        return None
    if not isinstance(value, dict) or value.keys() != {"id", "customer", "accounts"}:
        raise InvalidAssertion("invalid_claims")
    accounts = value["accounts"]
    if not (
        isinstance(value["id"], str)
        and isinstance(value["customer"], str)
        and isinstance(accounts, list)
        and len(accounts) <= MAX_CONSENT_ACCOUNTS
        and all(isinstance(a, str) for a in accounts)
    ):
        raise InvalidAssertion("invalid_claims")
    return AssertedConsent(value["id"], value["customer"], tuple(accounts))


@dataclass(frozen=True, slots=True)
class Assertion:
    """A verified assertion's claims."""

    issuer: str
    subject: str | None
    kind: str
    acr: str | None
    device: str | None
    risk: int
    decision_id: str
    route_id: str
    method: str
    path: str
    issued_at: float
    expires_at: float
    jti: str
    consent: AssertedConsent | None = None


def _str(value: str | None) -> str:
    """A claim's JSON text (ASCII-escaped, as ``json.dumps(ensure_ascii=True)``)."""
    return "null" if value is None else _json_string(value)


def _b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64u(segment: str) -> bytes:
    if _SEGMENT.fullmatch(segment) is None or len(segment) % 4 == 1:
        raise InvalidAssertion("malformed")
    try:
        return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    except (binascii.Error, ValueError):
        raise InvalidAssertion("malformed") from None


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise ValueError("duplicate member")
    return obj


def _json_object(raw: bytes) -> dict[str, Any]:
    try:
        obj = json.loads(raw.decode("utf-8"), object_pairs_hook=_no_duplicates)
    except (ValueError, RecursionError):
        raise InvalidAssertion("malformed") from None
    if not isinstance(obj, dict):
        raise InvalidAssertion("malformed")
    return obj


def hmac_kid(key: bytes) -> str:
    """The kid naming an HMAC-SM3 key: not the key, and stable across nodes."""
    return "hsm3-" + sm3.digest(_KID_LABEL + key)[:8].hex()


class AssertionKeys:
    """What a verifier trusts: kid → SM2/P-256/Ed25519 public key or HMAC-SM3 key."""

    def __init__(
        self,
        public: Mapping[str, keys.PublicKey] | None = None,
        hmac: Mapping[str, bytes] | None = None,
    ) -> None:
        self.public = dict(public or {})
        self.hmac = dict(hmac or {})
        if self.public.keys() & self.hmac.keys():
            raise ValueError("a kid names either a public key or an HMAC key, not both")
        for key in self.hmac.values():
            if not isinstance(key, bytes) or len(key) < MIN_HMAC_KEY:
                raise ValueError(f"HMAC-SM3 keys must be at least {MIN_HMAC_KEY} bytes")

    @classmethod
    def from_jwks(cls, jwks: Mapping[str, Any]) -> AssertionKeys:
        """Trust the public keys of the edge's JWKS (`KeyRing.jwks`)."""
        try:
            return cls(public=parse_jwks(dict(jwks)))
        except JwksError as exc:
            raise ValueError(f"assertion JWKS: {exc}") from None

    @classmethod
    def from_hmac(cls, *shared: bytes) -> AssertionKeys:
        """Trust these shared HMAC-SM3 keys (several during a rotation)."""
        return cls(hmac={hmac_kid(key): key for key in shared})


class AssertionSigner:
    """Signs assertions with a key ring's active key, or with a shared HMAC-SM3 key."""

    def __init__(
        self,
        *,
        issuer: str,
        ttl: int = 30,
        keyring: KeyRing | None = None,
        hmac_key: bytes | None = None,
    ) -> None:
        if (keyring is None) == (hmac_key is None):
            raise ValueError("give exactly one of keyring and hmac_key")
        if hmac_key is not None and len(hmac_key) < MIN_HMAC_KEY:
            raise ValueError(f"hmac_key must be at least {MIN_HMAC_KEY} bytes")
        if keyring is not None:
            keyring.signing_key()  # fails now, not on the first request, without one
        self.issuer = issuer
        self.ttl = ttl
        self._ring = keyring
        self._hmac = hmac_key
        self._mac: sm3.HmacKey | None = None
        self._hmac_header = ""
        self._ring_headers: dict[str, str] = {}
        if hmac_key is not None:
            self._mac = sm3.HmacKey(hmac_key)
            self._hmac_header = _header(HMAC_ALG, hmac_kid(hmac_key))

    def verification_keys(self) -> AssertionKeys:
        """What a core service needs to verify this signer's assertions."""
        if self._hmac is not None:
            return AssertionKeys.from_hmac(self._hmac)
        assert self._ring is not None
        return AssertionKeys.from_jwks(self._ring.jwks())

    def sign(
        self,
        *,
        subject: str | None,
        kind: str,
        acr: str | None,
        device: str | None,
        risk: int,
        decision_id: str,
        route_id: str,
        method: str,
        path: str,
        now: float | None = None,
        consent: AssertedConsent | None = None,
    ) -> str:
        iat = int(time.time() if now is None else now)
        # The claims as `json.dumps(..., separators=(",", ":"), ensure_ascii=True)` writes
        # them, member by member (one per check; a third of dumps' cost).
        parts = [
            '{"iss":',
            _str(self.issuer),
            ',"sub":',
            _str(subject),
            ',"kind":',
            _str(kind),
            ',"acr":',
            _str(acr),
            ',"device":',
            _str(device),
            f',"risk":{int(risk)},"decision_id":',
            _str(decision_id),
            ',"route_id":',
            _str(route_id),
            ',"method":',
            _str(method),
            ',"path":',
            _str(path),
            f',"iat":{iat},"exp":{iat + self.ttl},"jti":"{ids.token(16)}"',
        ]
        if consent is not None:
            accounts = ",".join(_str(account) for account in consent.accounts)
            parts += [
                ',"consent":{"id":',
                _str(consent.consent_id),
                ',"customer":',
                _str(consent.customer),
                f',"accounts":[{accounts}]}}',
            ]
        parts.append("}")
        payload = _b64u("".join(parts).encode("ascii"))
        if self._mac is not None:
            signing_input = f"{self._hmac_header}.{payload}"
            return f"{signing_input}.{_b64u(self._mac.mac(signing_input.encode('ascii')))}"
        assert self._ring is not None
        kid, key = self._ring.signing_key()
        header = self._ring_headers.get(kid)
        if header is None:
            header = self._ring_headers[kid] = _header(keys.JWS_ALG[key.algorithm], kid)
        signing_input = f"{header}.{payload}"
        signature = key.sign(signing_input.encode("ascii"), encoding="raw")
        return f"{signing_input}.{_b64u(signature)}"


def _header(alg: str, kid: str) -> str:
    """The protected header's base64url segment, encoded once per key (RFC 7515 §4.1)."""
    header = {"alg": alg, "kid": kid, "typ": ASSERTION_TYP}
    return _b64u(json.dumps(header, separators=(",", ":"), sort_keys=True).encode())


def _verified_payload(token: str, keys_: AssertionKeys) -> bytes:
    if not isinstance(token, str) or len(token) > MAX_LENGTH or not token.isascii():
        raise InvalidAssertion("malformed")
    parts = token.split(".")
    if len(parts) != 3:
        raise InvalidAssertion("malformed")
    header = _json_object(_unb64u(parts[0]))
    if not header.keys() <= _HEADER_MEMBERS:
        raise InvalidAssertion("malformed")  # crit, jwk, jku, x5u...: never honoured
    typ, kid, alg = header.get("typ"), header.get("kid"), header.get("alg")
    if not isinstance(typ, str) or typ.lower().removeprefix("application/") != ASSERTION_TYP:
        raise InvalidAssertion("invalid_typ")
    if not isinstance(kid, str) or not isinstance(alg, str):
        raise InvalidAssertion("malformed")
    shared = keys_.hmac.get(kid)
    if shared is not None:
        if alg != HMAC_ALG:
            raise InvalidAssertion("alg_not_allowed")
        try:
            sm3.verify_hmac(shared, f"{parts[0]}.{parts[1]}".encode("ascii"), _unb64u(parts[2]))
        except CryptoError:
            raise InvalidAssertion("invalid_signature") from None
        return _unb64u(parts[1])
    public = keys_.public.get(kid)
    if public is None:
        raise InvalidAssertion("unknown_kid")
    try:
        return jose.verify_jws(token, key=public, typ=ASSERTION_TYP, max_length=MAX_LENGTH)
    except jose.JoseError as exc:
        code = exc.code if exc.code in ("alg_not_allowed", "invalid_signature") else "malformed"
        raise InvalidAssertion(code) from None


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value == value


def verify_assertion(
    token: str,
    *,
    expected_method: str,
    expected_path: str,
    keys: AssertionKeys,
    now: float | None = None,
    issuer: str | None = None,
    leeway: float = 5.0,
    max_ttl: int = 300,
) -> Assertion:
    """Verify an ``x-ztgate-assertion`` for the request being served (see the module doc).

    `expected_path` is the request's path as the core service received it; a
    query string is ignored. `issuer`, when given, must be the ``iss`` (the edge
    node); leave it None to accept every edge node holding a trusted key.
    """
    claims = _json_object(_verified_payload(token, keys))
    if not (
        all(isinstance(claims.get(name), str) for name in _STR)
        and all(name in claims for name in _NULLABLE_STR)
        and all(claims[name] is None or isinstance(claims[name], str) for name in _NULLABLE_STR)
        and isinstance(claims.get("risk"), int)
        and not isinstance(claims.get("risk"), bool)
        and 0 <= claims["risk"] <= 100
        and _number(claims.get("iat"))
        and _number(claims.get("exp"))
    ):
        raise InvalidAssertion("invalid_claims")
    if issuer is not None and claims["iss"] != issuer:
        raise InvalidAssertion("wrong_issuer")
    moment = time.time() if now is None else now
    iat, exp = float(claims["iat"]), float(claims["exp"])
    if iat > moment + leeway:
        raise InvalidAssertion("not_yet_valid")
    if exp <= moment - leeway:
        raise InvalidAssertion("expired")
    if not 0 < exp - iat <= max_ttl:
        raise InvalidAssertion("lifetime_too_long")
    if claims["method"] != expected_method:
        raise InvalidAssertion("wrong_method")
    if claims["path"] != expected_path.partition("?")[0]:
        raise InvalidAssertion("wrong_path")
    return Assertion(
        issuer=claims["iss"],
        subject=claims["sub"],
        kind=claims["kind"],
        acr=claims["acr"],
        device=claims["device"],
        risk=claims["risk"],
        decision_id=claims["decision_id"],
        route_id=claims["route_id"],
        method=claims["method"],
        path=claims["path"],
        issued_at=iat,
        expires_at=exp,
        jti=claims["jti"],
        consent=_consent_claim(claims.get("consent")),
    )
