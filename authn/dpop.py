"""DPoP proofs (RFC 9449): sender-constraining tokens to a client-held key.

A DPoP client signs, for every HTTP request, a short JWT (the *proof*) with
a private key whose public half travels in the proof's header; tokens issued
to it carry ``cnf.jkt``, that key's RFC 7638 thumbprint (RFC 9449 §6.1). A
stolen token is then useless without the key. `verify_proof` is the
checklist of RFC 9449 §4.3, in its order, one failure = one
``invalid_dpop_proof`` error (RFC 9449 §7.1) with a fixed, distinct
description (never an echo of attacker input, which would end up inside a
``WWW-Authenticate`` header).

Not implemented: server-provided nonces (RFC 9449 §8, §9; step 10 of §4.3).
Freshness rests on the ``iat`` window plus single use of ``jti``, recorded in
the shared store so that no edge worker accepts a proof twice (§11.1).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import math
import re
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final, NoReturn
from urllib.parse import urlsplit

from authn.errors import AuthnError
from authn.store.base import Store
from crypto import jose, keys
from crypto.errors import CryptoError

__all__ = [
    "DEFAULT_ALGS",
    "MAX_PROOF_LENGTH",
    "TYP",
    "DPoPCheck",
    "access_token_hash",
    "invalid_dpop_proof",
    "make_proof",
    "normalise_htu",
    "verify_proof",
]

TYP: Final = "dpop+jwt"
DEFAULT_ALGS: Final = ("ES256", "EdDSA", "SM2SM3")
MAX_PROOF_LENGTH: Final = 8 * 1024
"""A proof is a header with one public JWK and five short claims: < 1 KiB in practice."""
MAX_JTI: Final = 64
_SEGMENT: Final = re.compile(r"[A-Za-z0-9_-]+")
_DEFAULT_PORT: Final = {"http": 80, "https": 443}
_UNRESERVED: Final = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
_PCT: Final = re.compile(r"%([0-9A-Fa-f]{2})")


@dataclass(frozen=True)
class DPoPCheck:
    """What the HTTP layer hands over: the ``DPoP`` header and the request it came with.

    `url` is the request's absolute URI as the client addressed it (scheme,
    host, port, path; query and fragment are ignored). `access_token` is set
    at a resource server (the proof must then carry ``ath``, RFC 9449 §4.2);
    at the token endpoint it is None.
    """

    proof: str
    method: str
    url: str
    access_token: str | None = None


def invalid_dpop_proof(description: str, algs: Sequence[str] = DEFAULT_ALGS) -> AuthnError:
    """The RFC 9449 §7.1 error: 401, ``DPoP`` challenge listing the accepted ``algs``."""
    return AuthnError(
        "invalid_dpop_proof",
        description,
        401,
        {"WWW-Authenticate": f'DPoP error="invalid_dpop_proof", algs="{" ".join(algs)}"'},
    )


def _b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def access_token_hash(access_token: str) -> str:
    """``ath``: base64url(SHA-256(ASCII access token)), RFC 9449 §4.2."""
    return _b64u(hashlib.sha256(access_token.encode("ascii")).digest())


def _decode_pct(match: re.Match[str]) -> str:
    char = chr(int(match.group(1), 16))
    return char if char in _UNRESERVED else "%" + match.group(1).upper()


def _remove_dot_segments(path: str) -> str:
    """RFC 3986 §5.2.4, so that ``/a/./b/../c`` and ``/a/c`` compare equal."""
    out: list[str] = []
    for segment in path.split("/")[1:]:
        if segment == "..":
            if out:
                out.pop()
        elif segment != ".":
            out.append(segment)
    if path.endswith(("/.", "/..")):
        out.append("")
    return "/" + "/".join(out)


def normalise_htu(url: str) -> str | None:
    """``scheme://host[:port]/path`` in RFC 3986 §6.2.2-6.2.3 normal form; None if unusable.

    Scheme and host are lower-cased, default ports dropped, an empty path is
    ``/``, percent-encodings are upper-cased and unreserved ones decoded, dot
    segments removed; query and fragment are dropped (RFC 9449 §4.3 step 9).
    Only absolute http(s) URIs qualify.
    """
    if not isinstance(url, str) or len(url) > MAX_PROOF_LENGTH or not url.isascii():
        return None
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    host = parts.hostname
    if scheme not in _DEFAULT_PORT or not host or any(c in url for c in " \t\r\n\\"):
        return None
    if ":" in host:
        host = f"[{host}]"
    userinfo = parts.netloc.rpartition("@")[0]
    authority = (userinfo + "@" if "@" in parts.netloc else "") + host
    if port is not None and port != _DEFAULT_PORT[scheme]:
        authority += f":{port}"
    path = _PCT.sub(_decode_pct, parts.path) or "/"
    return f"{scheme}://{authority}{_remove_dot_segments(path)}"


def _parse_json_object(segment: str) -> dict[str, Any] | None:
    if _SEGMENT.fullmatch(segment) is None or len(segment) % 4 == 1:
        return None
    try:
        raw = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
        obj = json.loads(raw.decode("utf-8"))
    except (binascii.Error, ValueError, RecursionError):
        return None
    return obj if isinstance(obj, dict) else None


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


async def verify_proof(
    check: DPoPCheck,
    *,
    store: Store,
    now: float,
    max_age: int = 60,
    leeway: int = 10,
    allowed_algs: Sequence[str] = DEFAULT_ALGS,
) -> str:
    """Verify a DPoP proof (RFC 9449 §4.3) and return its key's thumbprint (``jkt``).

    The caller compares the result with the token's ``cnf.jkt`` (resource
    server, RFC 9449 §7.1) or binds a new token to it (token endpoint, §5).
    `now` is POSIX seconds; a proof is fresh while ``iat`` lies in
    ``[now - max_age - leeway, now + leeway]`` and its ``jti`` is remembered
    for exactly that long, per key, so it cannot be replayed meanwhile.
    """
    algs = tuple(allowed_algs)
    if not set(algs) <= jose.ALLOWED_ALGORITHMS:
        raise ValueError(f"allowed_algs must be a subset of {sorted(jose.ALLOWED_ALGORITHMS)}")

    def fail(description: str) -> NoReturn:
        raise invalid_dpop_proof(description, algs)

    # §4.3 steps 1-2: one well-formed JWT (one DPoP header: the HTTP layer
    # passes a single value; a comma-joined pair is not a JWT).
    proof = check.proof
    if not isinstance(proof, str) or not proof or len(proof) > MAX_PROOF_LENGTH:
        fail("DPoP proof is missing or too long")
    if not proof.isascii() or proof.count(".") != 2:
        fail("DPoP proof is not a single compact JWS")
    header = _parse_json_object(proof.split(".", 1)[0])
    if header is None:
        fail("DPoP proof header is not a JSON object")

    # Steps 4-5: explicit type, and an asymmetric algorithm we accept (never
    # none, never HS*: a MAC would need a secret shared with the verifier).
    typ = header.get("typ")
    if not isinstance(typ, str) or typ.lower().removeprefix("application/") != TYP:
        fail("DPoP proof typ is not dpop+jwt")
    alg = header.get("alg")
    if not isinstance(alg, str) or alg not in algs:
        fail("DPoP proof alg is not an accepted asymmetric algorithm")

    # Step 7 before 6: the key comes from the proof itself, so it must be a
    # public JWK (a private one means the client leaked it) of alg's type.
    jwk = header.get("jwk")
    if not isinstance(jwk, dict):
        fail("DPoP proof has no jwk header")
    if any(member in jwk for member in ("d", "p", "q", "dp", "dq", "qi", "k")):
        fail("DPoP proof jwk contains a private key")
    try:
        public = keys.PublicKey.from_jwk(jwk)
    except (CryptoError, ValueError, TypeError):
        fail("DPoP proof jwk is not a supported public key")
    if keys.JWS_ALG[public.algorithm] != alg:
        fail("DPoP proof alg does not match its jwk")

    # Step 6: the signature, with exactly that key (crypto.jose re-parses the
    # header strictly and refuses crit/b64).
    try:
        payload = jose.verify_jws(proof, key=public, typ=TYP, max_length=MAX_PROOF_LENGTH)
    except jose.JoseError as exc:
        if exc.code == "invalid_signature":
            fail("DPoP proof signature does not verify")
        fail("DPoP proof is not a well-formed JWS")
    try:
        claims = json.loads(payload.decode("utf-8"))
    except (ValueError, RecursionError):
        fail("DPoP proof payload is not a JSON object")
    if not isinstance(claims, dict):
        fail("DPoP proof payload is not a JSON object")

    # Step 3: required claims (RFC 9449 §4.2), with their types.
    jti, htm, htu, iat = claims.get("jti"), claims.get("htm"), claims.get("htu"), claims.get("iat")
    if not isinstance(jti, str) or not 0 < len(jti) <= MAX_JTI:
        fail("DPoP proof jti is missing or longer than 64 characters")
    if not isinstance(htm, str) or not isinstance(htu, str) or not _is_number(iat):
        fail("DPoP proof lacks htm, htu or iat")
    assert isinstance(iat, int | float)  # for mypy: _is_number checked it

    # Steps 8-9: bound to this request's method and URI.
    if htm != check.method:
        fail("DPoP proof htm does not match the request method")
    expected_htu = normalise_htu(check.url)
    if expected_htu is None or normalise_htu(htu) != expected_htu:
        fail("DPoP proof htu does not match the request URI")

    # Step 11: fresh. The jti store below remembers values for this window.
    if not now - max_age - leeway <= iat <= now + leeway:
        fail("DPoP proof iat is outside the acceptable window")

    # Step 12: at a resource server, bound to the very access token presented.
    if check.access_token is not None:
        ath = claims.get("ath")
        if not isinstance(ath, str) or not check.access_token.isascii():
            fail("DPoP proof has no ath for the access token")
        expected_ath = access_token_hash(check.access_token).encode("ascii")
        if not hmac.compare_digest(ath.encode("ascii", "replace"), expected_ath):
            fail("DPoP proof ath does not match the access token")

    # §11.1: single use, across all workers sharing the store.
    jkt = public.thumbprint()
    if not await store.use_nonce("dpop:" + jkt, jti, iat + max_age + leeway, now):
        fail("DPoP proof jti has already been used")
    return jkt


def make_proof(
    key: keys.PrivateKey,
    *,
    method: str,
    url: str,
    access_token: str | None = None,
    now: float | None = None,
    jti: str | None = None,
) -> str:
    """A DPoP proof for one request (RFC 9449 §4.2), really signed with `key`.

    For clients and tests. Query and fragment are stripped from `url` as
    §4.2 requires of ``htu``; ``ath`` is included when `access_token` is.
    """
    parts = urlsplit(url)
    claims: dict[str, Any] = {
        "jti": jti if jti is not None else secrets.token_urlsafe(16),
        "htm": method,
        "htu": parts._replace(query="", fragment="").geturl(),
        "iat": int(time.time() if now is None else now),
    }
    if access_token is not None:
        claims["ath"] = access_token_hash(access_token)
    headers = {"typ": TYP, "jwk": key.public_key().to_jwk()}
    payload = json.dumps(claims, separators=(",", ":")).encode("utf-8")
    return jose.sign_jws(payload, key, headers=headers)
