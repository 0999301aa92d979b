"""Certificate-bound access tokens: the ``x5t#S256`` confirmation of RFC 8705.

A token issued to a client that authenticated with mutual TLS carries
``cnf: {"x5t#S256": <base64url SHA-256 of the DER certificate>}`` (RFC 8705
§3.1). A resource server accepts it only over a TLS connection whose client
certificate hashes to that value (RFC 8705 §3.2), so a stolen token is useless
without the client's private key. The hash is over the whole DER certificate,
not the public key: a re-issued certificate (same key) needs a new token.

SHA-256 here is not a choice: RFC 8705 §3.1 fixes the confirmation method's
hash, and partners' libraries compute exactly this value.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Mapping
from typing import Any, Final

from authn.errors import invalid_token

__all__ = [
    "X5T_S256",
    "check_certificate_binding",
    "cnf_for_certificate",
    "x5t_s256",
    "x5t_s256_from_hex",
]

X5T_S256: Final = "x5t#S256"
"""The confirmation member name (RFC 8705 §3.1)."""

_THUMBPRINT: Final = re.compile(r"[A-Za-z0-9_-]{43}")  # 32 bytes, base64url, no padding
_HEX_SHA256: Final = re.compile(r"[0-9A-Fa-f]{64}")


def _b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def x5t_s256(cert_der: bytes) -> str:
    """base64url(SHA-256(DER certificate)), the ``x5t#S256`` value (RFC 8705 §3.1)."""
    if not isinstance(cert_der, bytes | bytearray | memoryview) or not cert_der:
        raise ValueError("x5t#S256 needs the DER-encoded certificate")
    return _b64u(hashlib.sha256(cert_der).digest())


def x5t_s256_from_hex(sha256_hex: str) -> str:
    """Convert a hex SHA-256 of the certificate (Envoy's XFCC ``Hash=``) to x5t#S256."""
    if not isinstance(sha256_hex, str) or _HEX_SHA256.fullmatch(sha256_hex) is None:
        raise ValueError("expected 64 hex digits (SHA-256 of the DER certificate)")
    return _b64u(bytes.fromhex(sha256_hex))


def cnf_for_certificate(cert_der: bytes) -> dict[str, str]:
    """The ``cnf`` claim binding a token to this client certificate (RFC 8705 §3.1)."""
    return {X5T_S256: x5t_s256(cert_der)}


def check_certificate_binding(claims: Mapping[str, Any], cert: bytes | str | None) -> None:
    """Raise `AuthnError` (``invalid_token``, 401) unless `cert` matches ``cnf.x5t#S256``.

    `cert` is the client certificate of the TLS connection, as DER bytes, or
    already as its ``x5t#S256`` string; None means no certificate was
    presented. A token without ``x5t#S256`` is not certificate-bound: nothing
    to check (RFC 8705 §3.2 applies to bound tokens only). The comparison is
    constant-time (`hmac.compare_digest`) so a prober learns nothing about how
    much of the thumbprint it got right.
    """
    cnf = claims.get("cnf")
    if not isinstance(cnf, Mapping) or X5T_S256 not in cnf:
        return
    expected = cnf[X5T_S256]
    if not isinstance(expected, str) or _THUMBPRINT.fullmatch(expected) is None:
        raise invalid_token("malformed x5t#S256 confirmation")
    if cert is None:
        raise invalid_token("certificate-bound token presented without a client certificate")
    presented = cert if isinstance(cert, str) else x5t_s256(cert)
    if not hmac.compare_digest(presented.encode("ascii", "replace"), expected.encode("ascii")):
        raise invalid_token("client certificate does not match the token binding")
