"""JWS and JWT (RFC 7515, RFC 7519) with SM2 beside ES256 and EdDSA, on pyjwt.

Algorithms (RFC 7518 §3.1 names where registered):

- ``SM2SM3`` — ztgate's private ``alg`` (no IANA-registered identifier exists
  for SM2): an SM2 signature (GB/T 32918.2) over SM3 with the default
  distinguishing ID ``1234567812345678`` (GM/T 0009 §10), serialised as the
  64-byte ``r || s`` exactly as ES256 is in RFC 7518 §3.4. That makes it
  verifiable by any SM2 implementation (OpenSSL, GmSSL, BouncyCastle) from the
  JWS Signing Input alone; JWK form ``{"kty": "EC", "crv": "SM2", "x", "y"}``.
- ``ES256`` (RFC 7518 §3.4) and ``EdDSA`` with Ed25519 (RFC 8037 §3.1) for
  partners who cannot do SM2.

Defences (RFC 8725, JWT BCP):

- A dedicated `jwt.PyJWS` whose registry holds only the three algorithms
  above, each accepting only `crypto.keys` objects of its own key algorithm:
  no ``none``, no HS*/RS*, and never a PEM/bytes key an HMAC could misuse
  (RFC 8725 §2.1, §3.1). pyjwt's global registry is left untouched.
- The ``alg`` a token is checked with is the one implied by the *resolved
  key*, and the header must name exactly that (RFC 8725 §3.1); ``encode_jwt``
  derives ``alg`` from the signing key, never from the caller.
- Size is bounded before any parsing; the header is parsed strictly (one
  base64url alphabet, UTF-8, JSON object, no duplicate members — RFC 7515 §5.2
  allows rejecting them); ``crit`` is refused since no extension is understood
  (RFC 7515 §4.1.11), which also shuts out RFC 7797 ``b64``.
- Keys are never taken from the token (``jwk``, ``jku``, ``x5u``, ``x5c`` are
  ignored, RFC 8725 §3.10); the caller supplies a key or a resolver.
- ``exp``, ``nbf``, ``iat`` (RFC 7519 §4.1.4-6) are checked with a leeway,
  10 s by default (FAPI's clock-skew allowance); ``exp`` and ``iat`` are
  required by default; NumericDate values must be JSON numbers.
- ``aud`` (RFC 7519 §4.1.3): ``audience`` is a required keyword. With
  ``audience=None`` a token that *carries* ``aud`` is rejected (pyjwt
  semantics, kept on purpose): a token addressed to some audience must not be
  accepted by a service that cannot say it is that audience (RFC 8725 §3.9).
- Optional explicit typing (RFC 8725 §3.11): pass ``typ=`` to reject a JWS
  minted for another purpose with the same key.

ES256 signatures are malleable (``(r, n - s)`` verifies too), so never key a
replay cache on signature bytes: use ``jti``.

Every failure is one exception type, `JoseError`, whose ``code`` is machine
readable; pyjwt exceptions never escape.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar, Final, Literal, NoReturn, overload

import jwt
from jwt.algorithms import Algorithm

from crypto import keys
from crypto.errors import CryptoError

__all__ = [
    "ALLOWED_ALGORITHMS",
    "ES256Algorithm",
    "EdDSAAlgorithm",
    "ErrorCode",
    "JoseError",
    "KeyResolver",
    "SM2SM3Algorithm",
    "decode_jwt",
    "encode_jwt",
    "sign_jws",
    "verify_jws",
]

ErrorCode = Literal[
    "malformed",  # not a well-formed compact JWS/JWT, oversized, non-ASCII, bad claim types
    "alg_not_allowed",  # alg outside the allow-list, "none", or not the resolved key's alg
    "unsupported_crit",  # a "crit" header (RFC 7515 §4.1.11): we understand no extension
    "unknown_kid",  # the resolver has no usable key for this kid
    "invalid_key",  # a key of the wrong type or algorithm was supplied
    "invalid_signature",
    "expired",
    "not_yet_valid",  # nbf, or iat, in the future beyond the leeway
    "invalid_audience",
    "invalid_issuer",
    "missing_claim",
    "invalid_typ",
    "invalid_token",  # any other validation failure
]

KeyResolver = Callable[[str | None, str], keys.PublicKey]
"""Called with the header's (kid, alg); returns the key or raises JoseError."""

ALLOWED_ALGORITHMS: Final = frozenset(keys.JWS_ALG.values())
_KEY_ALGORITHM: Final[dict[str, keys.Algorithm]] = {v: k for k, v in keys.JWS_ALG.items()}
_SEGMENT: Final = re.compile(r"[A-Za-z0-9_-]*")
_MAX_KID: Final = 256
_RESERVED_HEADERS: Final = frozenset({"alg", "crit", "b64", "kid"})


class JoseError(CryptoError):
    """Any JWS/JWT failure; ``code`` says which (see `ErrorCode`)."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code: ErrorCode = code

    def __repr__(self) -> str:
        return f"JoseError({self.code!r}, {str(self)!r})"


# -- pyjwt algorithms -----------------------------------------------------------


class _KeysAlgorithm(Algorithm):
    """A pyjwt algorithm over `crypto.keys` objects of exactly one key algorithm.

    ``prepare_key`` refuses str/bytes/PEM and foreign key objects, so that the
    classic confusion (a public key's PEM used as an HMAC secret) cannot be
    expressed, and a key of one algorithm is never used under another's name.
    """

    key_algorithm: ClassVar[keys.Algorithm]

    def prepare_key(self, key: Any) -> keys.PrivateKey | keys.PublicKey:
        if not isinstance(key, keys.PrivateKey | keys.PublicKey):
            raise jwt.InvalidKeyError(
                f"{keys.JWS_ALG[self.key_algorithm]} needs a crypto.keys key object, "
                f"not {type(key).__name__}"
            )
        if key.algorithm != self.key_algorithm:
            raise jwt.InvalidKeyError(
                f"a {key.algorithm} key cannot be used with {keys.JWS_ALG[self.key_algorithm]}"
            )
        return key

    def sign(self, msg: bytes, key: keys.PrivateKey | keys.PublicKey) -> bytes:
        """Raw signature: ``r || s`` for SM2SM3/ES256 (RFC 7518 §3.4), RFC 8032 for EdDSA."""
        if not isinstance(key, keys.PrivateKey) or key.algorithm != self.key_algorithm:
            raise jwt.InvalidKeyError("signing needs a private key of this algorithm")
        return key.sign(msg, encoding="raw")

    def verify(self, msg: bytes, key: keys.PrivateKey | keys.PublicKey, sig: bytes) -> bool:
        """True iff valid; never raises for a bad or malformed signature."""
        public = key.public_key() if isinstance(key, keys.PrivateKey) else key
        if not isinstance(public, keys.PublicKey) or public.algorithm != self.key_algorithm:
            return False
        try:
            public.verify(sig, msg, encoding="raw")
        except (CryptoError, ValueError):
            return False
        return True

    @overload
    @classmethod
    def to_jwk(cls, key_obj: Any, as_dict: Literal[True]) -> dict[str, Any]: ...

    @overload
    @classmethod
    def to_jwk(cls, key_obj: Any, as_dict: Literal[False] = False) -> str: ...

    @classmethod
    def to_jwk(cls, key_obj: Any, as_dict: bool = False) -> dict[str, Any] | str:
        """The *public* JWK (RFC 7517 §4), even for a private key: ``d`` never leaves."""
        if isinstance(key_obj, keys.PrivateKey):
            key_obj = key_obj.public_key()
        if not isinstance(key_obj, keys.PublicKey) or key_obj.algorithm != cls.key_algorithm:
            raise jwt.InvalidKeyError(f"not a {cls.key_algorithm} key")
        jwk: dict[str, Any] = dict(key_obj.to_jwk())
        return jwk if as_dict else json.dumps(jwk)

    @classmethod
    def from_jwk(cls, jwk: str | dict[str, Any]) -> keys.PublicKey:
        """A public key from its JWK; private JWKs and other algorithms are refused."""
        try:
            obj = json.loads(jwk) if isinstance(jwk, str) else jwk
            key = keys.PublicKey.from_jwk(obj)
        except (ValueError, RecursionError, CryptoError) as exc:
            raise jwt.InvalidKeyError(f"unusable JWK: {exc}") from None
        if key.algorithm != cls.key_algorithm:
            raise jwt.InvalidKeyError(f"JWK is not a {cls.key_algorithm} key")
        return key


class SM2SM3Algorithm(_KeysAlgorithm):
    """``SM2SM3``: SM2 over SM3, default distinguishing ID, raw ``r || s``."""

    key_algorithm = "sm2"


class ES256Algorithm(_KeysAlgorithm):
    """``ES256`` (RFC 7518 §3.4) restricted to `crypto.keys` P-256 keys."""

    key_algorithm = "ec-p256"


class EdDSAAlgorithm(_KeysAlgorithm):
    """``EdDSA`` with Ed25519 only (RFC 8037 §3.1), on `crypto.keys` keys."""

    key_algorithm = "ed25519"


class _StrictJWS(jwt.PyJWS):
    # typ is set explicitly by encode_jwt; a plain JWS carries none unless asked.
    header_typ = ""
    # Belt and braces: _parse_header already refuses every crit, b64 included.
    _supported_crit: set[str] = set()  # noqa: RUF012


class _StrictJWT(jwt.PyJWT):
    def _decode_payload(self, decoded: dict[str, Any]) -> dict[str, Any]:
        # pyjwt's documented hook, run after the signature check and before the
        # time checks, which would otherwise take int("123") or True as a date.
        payload = super()._decode_payload(decoded)
        _check_numeric_dates(payload)
        return payload


def _build() -> tuple[jwt.PyJWS, jwt.PyJWT]:
    jws = _StrictJWS(algorithms=[])  # an empty allow-list drops none, HS*, RS*, ...
    for cls in (SM2SM3Algorithm, ES256Algorithm, EdDSAAlgorithm):
        jws.register_algorithm(keys.JWS_ALG[cls.key_algorithm], cls())
    if set(jws.get_algorithms()) != ALLOWED_ALGORITHMS:  # pragma: no cover - import guard
        raise RuntimeError("crypto.jose: unexpected pyjwt algorithm registry")
    jwt_ = _StrictJWT(options={"verify_signature": True, "strict_aud": False})
    jwt_._jws = jws  # as pyjwt does for its own global object; never the global registry
    return jws, jwt_


_JWS, _JWT = _build()


# -- helpers ----------------------------------------------------------------------


def _fail(code: ErrorCode, message: str) -> NoReturn:
    raise JoseError(code, message)


def _b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64u(segment: str) -> bytes:
    """Strict base64url without padding (RFC 7515 §2): canonical form only."""
    if _SEGMENT.fullmatch(segment) is None or len(segment) % 4 == 1:
        _fail("malformed", "segment is not base64url")
    try:
        data = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    except (binascii.Error, ValueError):
        _fail("malformed", "segment is not base64url")
    if _b64u(data) != segment:
        _fail("malformed", "segment is not canonical base64url")
    return data


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise ValueError("duplicate member in JOSE header")
    return obj


def _parse_header(token: object, max_length: int) -> tuple[dict[str, Any], list[str]]:
    """Bounds, shape and header checks that happen before any key is touched."""
    if not isinstance(token, str):
        _fail("malformed", "token must be a str")
    if len(token) > max_length:
        _fail("malformed", f"token longer than {max_length} characters")
    if not token.isascii():
        _fail("malformed", "token is not ASCII")
    parts = token.split(".")
    if len(parts) != 3 or not parts[0]:
        _fail("malformed", "not a compact JWS (header.payload.signature)")
    for part in parts:
        if _SEGMENT.fullmatch(part) is None:
            _fail("malformed", "segment is not base64url")
    try:
        header = json.loads(_unb64u(parts[0]).decode("utf-8"), object_pairs_hook=_no_duplicates)
    except (ValueError, RecursionError):
        _fail("malformed", "JOSE header is not a JSON object")
    if not isinstance(header, dict):
        _fail("malformed", "JOSE header is not a JSON object")
    alg = header.get("alg")
    if not isinstance(alg, str) or alg not in ALLOWED_ALGORITHMS:
        _fail("alg_not_allowed", f"alg {alg!r} is not allowed")
    if "crit" in header:
        _fail("unsupported_crit", "crit header: no extension is understood (RFC 7515 §4.1.11)")
    if "b64" in header:
        _fail("malformed", "b64 header (RFC 7797) is not supported")
    kid = header.get("kid")
    if kid is not None and (not isinstance(kid, str) or not 0 < len(kid) <= _MAX_KID):
        _fail("malformed", "kid must be a non-empty string")
    if not parts[2]:  # after the alg check, so that alg "none" is reported as such
        _fail("malformed", "empty signature")
    return header, parts


def _normalise_typ(value: str) -> str:
    value = value.lower()  # RFC 7515 §4.1.9: compared case-insensitively, prefix optional
    return value.removeprefix("application/")


def _check_typ(header: Mapping[str, Any], typ: str | None) -> None:
    if typ is None:
        return
    got = header.get("typ")
    if not isinstance(got, str) or _normalise_typ(got) != _normalise_typ(typ):
        _fail("invalid_typ", f"typ {got!r} is not {typ!r}")


def _resolve(key: keys.PublicKey | KeyResolver, header: Mapping[str, Any]) -> keys.PublicKey:
    """The verification key, and proof that the header's alg is the key's alg."""
    alg: str = header["alg"]
    if isinstance(key, keys.PublicKey):
        public = key
    else:
        try:
            public = key(header.get("kid"), alg)
        except JoseError:
            raise
        except (CryptoError, LookupError):
            _fail("unknown_kid", "no key for this kid")
    if not isinstance(public, keys.PublicKey):
        raise TypeError("decode key/resolver must give a crypto.keys.PublicKey")
    if keys.JWS_ALG[public.algorithm] != alg:
        _fail("alg_not_allowed", f"alg {alg!r} does not match the {public.algorithm} key")
    return public


def _translate(exc: Exception) -> JoseError:
    """Map pyjwt exceptions (most specific first) onto one error code each."""
    if isinstance(exc, jwt.MissingRequiredClaimError):
        if exc.claim == "aud":
            return JoseError("invalid_audience", "token has no aud claim")
        if exc.claim == "iss":
            return JoseError("invalid_issuer", "token has no iss claim")
        return JoseError("missing_claim", str(exc))
    table: tuple[tuple[type[Exception], ErrorCode], ...] = (
        (jwt.InvalidSignatureError, "invalid_signature"),
        (jwt.ExpiredSignatureError, "expired"),
        (jwt.ImmatureSignatureError, "not_yet_valid"),
        (jwt.InvalidAudienceError, "invalid_audience"),
        (jwt.InvalidIssuerError, "invalid_issuer"),
        (jwt.InvalidAlgorithmError, "alg_not_allowed"),
        (jwt.InvalidKeyError, "invalid_key"),
        (jwt.DecodeError, "malformed"),
    )
    for kind, mapped in table:
        if isinstance(exc, kind):
            return JoseError(mapped, str(exc) or kind.__name__)
    if isinstance(exc, jwt.PyJWTError):
        return JoseError("invalid_token", str(exc) or type(exc).__name__)
    return JoseError("malformed", f"undecodable token ({type(exc).__name__})")


def _check_numeric_dates(claims: Mapping[str, Any]) -> None:
    for name in ("exp", "nbf", "iat"):  # RFC 7519 §2 NumericDate: a JSON number
        value = claims.get(name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise jwt.DecodeError(f"{name} must be a NumericDate (RFC 7519 §2)")
        if isinstance(value, float) and not math.isfinite(value):
            raise jwt.DecodeError(f"{name} must be finite")


def _signing_headers(
    key: object, kid: str | None, headers: Mapping[str, Any] | None, typ: str | None
) -> tuple[str, dict[str, Any]]:
    if not isinstance(key, keys.PrivateKey):
        _fail("invalid_key", "signing needs a crypto.keys.PrivateKey")
    extra = dict(headers or {})
    clash = _RESERVED_HEADERS & extra.keys()
    if clash:
        _fail("malformed", f"headers may not set {sorted(clash)}: alg follows the key")
    out: dict[str, Any] = {} if typ is None else {"typ": typ}
    out.update(extra)
    if kid is not None:
        if not isinstance(kid, str) or not 0 < len(kid) <= _MAX_KID:
            _fail("malformed", "kid must be a non-empty string")
        out["kid"] = kid
    return keys.JWS_ALG[key.algorithm], out


# -- public API ---------------------------------------------------------------------


def encode_jwt(
    claims: Mapping[str, Any],
    key: keys.PrivateKey,
    *,
    kid: str | None = None,
    headers: Mapping[str, Any] | None = None,
) -> str:
    """Sign `claims` as a compact JWT (RFC 7519 §7.1) with ``alg`` from `key`.

    ``typ`` is ``JWT`` (RFC 7519 §5.1) unless `headers` sets another (e.g.
    ``at+jwt``, RFC 9068). `headers` may not set ``alg``, ``kid``, ``crit``
    or ``b64``. ``datetime`` values of exp/nbf/iat become NumericDates.
    """
    alg, hdr = _signing_headers(key, kid, headers, "JWT")
    try:
        return _JWT.encode(dict(claims), key, algorithm=alg, headers=hdr)  # type: ignore[arg-type]
    except jwt.PyJWTError as exc:
        raise _translate(exc) from None
    except (TypeError, ValueError) as exc:
        raise JoseError("malformed", f"claims or headers are not JSON: {exc}") from None


def decode_jwt(
    token: str,
    *,
    key: keys.PublicKey | KeyResolver,
    audience: str | Sequence[str] | None,
    issuer: str | None,
    leeway: int = 10,
    required: Sequence[str] = ("exp", "iat"),
    max_length: int = 16 * 1024,
    typ: str | None = None,
) -> dict[str, Any]:
    """Verify a compact JWT and return its claims; anything else is `JoseError`.

    `key` is the verification key or a resolver called with the header's
    ``(kid, alg)``; the header's ``alg`` must be the resolved key's. `audience`
    is required: ``None`` means "this service has no audience", under which a
    token carrying ``aud`` is rejected (fail closed, RFC 8725 §3.9); a
    sequence accepts a token naming any of them. `issuer`, when given, must
    equal ``iss`` (RFC 7519 §4.1.1). `required` claims must be present.
    """
    if leeway < 0 or max_length <= 0:
        raise ValueError("leeway must be >= 0 and max_length > 0")
    header, _ = _parse_header(token, max_length)
    _check_typ(header, typ)
    public = _resolve(key, header)
    aud = audience if audience is None or isinstance(audience, str) else list(audience)
    try:
        claims: dict[str, Any] = _JWT.decode(
            token,
            key=public,  # type: ignore[arg-type]  # our Algorithm takes crypto.keys
            algorithms=[keys.JWS_ALG[public.algorithm]],
            options={"require": list(required)},
            audience=aud,
            issuer=issuer,
            leeway=leeway,
        )
    except jwt.PyJWTError as exc:
        raise _translate(exc) from None
    except (ValueError, RecursionError, OverflowError) as exc:
        raise _translate(exc) from None
    return claims


def sign_jws(
    payload: bytes,
    key: keys.PrivateKey,
    *,
    kid: str | None = None,
    headers: Mapping[str, Any] | None = None,
    detached: bool = False,
) -> str:
    """Compact JWS (RFC 7515 §7.1) over arbitrary bytes; no ``typ`` unless given.

    ``detached=True`` omits the payload segment (RFC 7515 Appendix F): the
    payload is still base64url-encoded into the signing input (no RFC 7797),
    and the verifier passes it back as ``verify_jws(detached_payload=...)``.
    Set an explicit ``typ`` in `headers` and check it on verification so a
    JWS for one purpose cannot be replayed as another (RFC 8725 §3.11).
    """
    if not isinstance(payload, bytes):
        raise TypeError("payload must be bytes")
    alg, hdr = _signing_headers(key, kid, headers, None)
    try:
        token = _JWS.encode(payload, key, algorithm=alg, headers=hdr)  # type: ignore[arg-type]
    except jwt.PyJWTError as exc:
        raise _translate(exc) from None
    except (TypeError, ValueError) as exc:
        raise JoseError("malformed", f"headers are not JSON: {exc}") from None
    if detached:
        head, _, sig = token.split(".")
        return f"{head}..{sig}"
    return token


def verify_jws(
    token: str,
    *,
    key: keys.PublicKey | KeyResolver,
    detached_payload: bytes | None = None,
    typ: str | None = None,
    max_length: int = 1024 * 1024,
) -> bytes:
    """Verify a compact JWS and return its payload (or `detached_payload`)."""
    header, parts = _parse_header(token, max_length)
    if detached_payload is not None:
        if parts[1]:
            _fail("malformed", "detached JWS must have an empty payload segment")
        parts[1] = _b64u(detached_payload)
    _check_typ(header, typ)
    public = _resolve(key, header)
    try:
        payload = _JWS.decode(
            ".".join(parts),
            key=public,  # type: ignore[arg-type]  # our Algorithm takes crypto.keys
            algorithms=[keys.JWS_ALG[public.algorithm]],
        )
    except jwt.PyJWTError as exc:
        raise _translate(exc) from None
    except (ValueError, RecursionError) as exc:
        raise _translate(exc) from None
    return payload if isinstance(payload, bytes) else bytes(payload)
