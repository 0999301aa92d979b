"""SM-series (and standard) cryptography for ztgate: the bottom layer.

A small, safe API in the manner of pyca/cryptography. Import the module for the
job, not the backend:

- `crypto.sm2` — SM2 keys: sign/verify (with distinguishing ID), encrypt/decrypt
  (C1C3C2), PEM/DER that OpenSSL 3 reads and writes;
- `crypto.sm3` — hash, HMAC-SM3, the SM2 KDF and PBKDF2-HMAC-SM3;
- `crypto.sm4` — SM4-GCM (default AEAD), CBC and CTR for legacy interop;
- `crypto.keys` — algorithm-agnostic key loading, signing and JWK (sm2, ec-p256,
  ed25519);
- `crypto.jose` — JWS/JWT with SM2 beside ES256 and EdDSA;
- `crypto.keyring` — signing keys with `kid`, rotation and JWKS;
- `crypto.envelope` — envelope encryption of secrets at rest.

Every failure is a `crypto.errors.CryptoError`. Modules whose names start with
an underscore are hazmat (raw pointers, raw DER) and are used only from here.
"""

from crypto.errors import (
    CryptoError,
    InvalidCiphertext,
    InvalidKey,
    InvalidSignature,
    UnsupportedAlgorithm,
)

__all__ = [
    "CryptoError",
    "InvalidCiphertext",
    "InvalidKey",
    "InvalidSignature",
    "UnsupportedAlgorithm",
]
