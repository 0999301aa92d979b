"""HTTP signature algorithms (RFC 9421 §3.3) over `crypto.keys`.

- ``ecdsa-p256-sha256`` (§3.3.4): ECDSA on P-256 with SHA-256; the
  signature is the 64-byte ``r || s`` (not DER).
- ``sm2-sm3``: ztgate's name for SM2 (GB/T 32918.2) over SM3 with the
  default distinguishing ID ``1234567812345678`` (GM/T 0009 §10), signature
  as the 64-byte ``r || s`` — exactly what the JOSE ``alg`` ``SM2SM3`` is in
  `crypto.jose`, applied to the signature base instead of the JWS input.
  It is *not* in the IANA "HTTP Signature Algorithms" registry (§6.2);
  RFC 9421 lets an application use algorithms agreed out of band (§3.3.7),
  so this is a private-use identifier, documented for partners in
  docs/http-signatures.md. Any SM2 implementation verifies it (tests check
  the OpenSSL CLI does).
- ``ed25519`` (§3.3.6): implemented so that the RFC's own Ed25519 vector
  (Appendix B.2.6) can be checked; not accepted from partners by default.

The algorithm always follows from the key (§3.2 step 6: the verifier
determines it from key material); an ``alg`` parameter that names another
is refused by the verifier, so a key can never be used under a foreign
algorithm. RSA and HMAC are deliberately absent: a symmetric key would have
to be shared with the gateway, and partners' keys are asymmetric JWKs.
"""

from __future__ import annotations

from typing import Final

from crypto import keys
from crypto.errors import CryptoError

__all__ = ["ALGORITHM_FOR_KEY", "DEFAULT_ALGORITHMS", "sign", "verify"]

ALGORITHM_FOR_KEY: Final[dict[keys.Algorithm, str]] = {
    "ec-p256": "ecdsa-p256-sha256",
    "sm2": "sm2-sm3",
    "ed25519": "ed25519",
}
DEFAULT_ALGORITHMS: Final = ("ecdsa-p256-sha256", "sm2-sm3")
"""What partners may sign with (issue 7: SM2 or ES256 keys)."""


def sign(key: keys.PrivateKey, base: bytes) -> bytes:
    """The raw signature of `base` under `key`'s algorithm (64 bytes for all three)."""
    return key.sign(base, encoding="raw")


def verify(key: keys.PublicKey, signature: bytes, base: bytes) -> bool:
    """True iff `signature` is a valid raw signature of `base`; never raises for bad input."""
    if len(signature) != 64:
        return False
    try:
        key.verify(signature, base, encoding="raw")
    except (CryptoError, ValueError):
        return False
    return True
