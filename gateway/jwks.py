"""Public keys from a JWKS file (RFC 7517 §5), reloaded when the file changes.

The edge holds no private key of the token issuer: it verifies with the JWKS
the authentication service publishes (``/v1/jwks``, `crypto.keyring.KeyRing.jwks`),
written to a file by whoever provisions the node. Key rotation adds the next
key to the JWKS before it signs (`crypto.keyring`), so a reload every few
seconds is early enough. A file that becomes unreadable or invalid keeps the
last good key set (logged), so a half-written file never empties it.

`JwksKeys.resolve` returns the *same* `PublicKey` object for a kid until the
key itself changes: `authn.tokens.TokenVerifier` checks identity to tell a
rotated-out key from a current one for its cached tokens.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final

from crypto.errors import CryptoError
from crypto.jose import JoseError
from crypto.keys import JWS_ALG, PublicKey

__all__ = ["JwksError", "JwksKeys", "parse_jwks"]

log = logging.getLogger("ztgate.gateway.jwks")

MAX_FILE: Final = 256 * 1024
MAX_KEYS: Final = 32
_PRIVATE: Final = frozenset({"d", "p", "q", "dp", "dq", "qi", "k"})


class JwksError(ValueError):
    """A JWKS that cannot be used; the message says which key and why."""


def parse_jwks(doc: object) -> dict[str, PublicKey]:
    """kid → public key for every signing key of a JWK Set; anything odd is `JwksError`."""
    members = doc.get("keys") if isinstance(doc, dict) else None
    if not isinstance(members, list) or not 1 <= len(members) <= MAX_KEYS:
        raise JwksError(f"a JWKS is an object whose 'keys' holds 1 to {MAX_KEYS} keys")
    out: dict[str, PublicKey] = {}
    for i, jwk in enumerate(members):
        if not isinstance(jwk, dict):
            raise JwksError(f"key {i} is not an object")
        if _PRIVATE & jwk.keys():
            raise JwksError(f"key {i} carries private key material")
        kid = jwk.get("kid")
        if not isinstance(kid, str) or not 0 < len(kid) <= 256 or not kid.isprintable():
            raise JwksError(f"key {i} needs a kid")
        if kid in out:
            raise JwksError(f"key {i}: duplicate kid")
        if jwk.get("use", "sig") != "sig":  # RFC 7517 §4.2
            continue
        try:
            public = PublicKey.from_jwk(jwk)
        except (CryptoError, ValueError, TypeError):
            raise JwksError(f"key {i} is not an SM2, P-256 or Ed25519 public key") from None
        if jwk.get("alg", JWS_ALG[public.algorithm]) != JWS_ALG[public.algorithm]:
            raise JwksError(f"key {i}: alg does not match the key type")  # RFC 7517 §4.4
        out[kid] = public
    if not out:
        raise JwksError("the JWKS has no signing key")
    return out


def _read(path: Path) -> dict[str, PublicKey]:
    with path.open("rb") as fh:
        raw = fh.read(MAX_FILE + 1)
    if len(raw) > MAX_FILE:
        raise JwksError(f"{path} is larger than {MAX_FILE} bytes")
    try:
        doc: Any = json.loads(raw)
    except (ValueError, RecursionError):
        raise JwksError(f"{path} is not JSON") from None
    return parse_jwks(doc)


class JwksKeys:
    """The keys of one JWKS file; `resolve` is a `crypto.jose.KeyResolver`."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._stamp = self._stat()
        self._keys: Mapping[str, PublicKey] = MappingProxyType(_read(self.path))

    def _stat(self) -> tuple[int, int, int]:
        st = self.path.stat()
        return st.st_mtime_ns, st.st_size, st.st_ino

    @property
    def keys(self) -> Mapping[str, PublicKey]:
        return self._keys

    def resolve(self, kid: str | None, alg: str) -> PublicKey:
        """The key named by the token's kid (a kid is required, RFC 7515 §4.1.4)."""
        if kid is None:
            raise JoseError("unknown_kid", "token has no kid")
        key = self._keys.get(kid)
        if key is None:
            raise JoseError("unknown_kid", "kid is not in the JWKS")
        return key

    def reload(self) -> bool:
        """Re-read the file if it changed; True when the key set changed."""
        try:
            stamp = self._stat()
            if stamp == self._stamp:
                return False
            fresh = _read(self.path)
        except (OSError, JwksError) as exc:
            log.warning(
                "JWKS reload failed; keeping the previous keys",
                extra={
                    "event": "gateway.jwks_reload_failed",
                    "path": str(self.path),
                    "error": str(exc)[:200],
                },
            )
            return False
        self._stamp = stamp
        old = self._keys
        # Keep the very same object for an unchanged key (see the module docstring).
        merged = {
            kid: old[kid] if kid in old and old[kid].to_jwk() == key.to_jwk() else key
            for kid, key in fresh.items()
        }
        changed = merged.keys() != old.keys() or any(merged[k] is not old[k] for k in merged)
        self._keys = MappingProxyType(merged)
        if changed:
            log.info(
                "JWKS reloaded",
                extra={
                    "event": "gateway.jwks_reloaded",
                    "path": str(self.path),
                    "kids": sorted(merged),
                },
            )
        return changed
