"""SM3 hashing and the constructions built on it (GB/T 32905-2016).

* `digest` / `Hasher`: the SM3 hash itself, 32-byte output (GB/T 32905 §5).
* `hmac` / `verify_hmac`: HMAC-SM3 (RFC 2104, as profiled by GM/T 0042);
  `HmacKey` for many MACs under one key (the keyed state computed once).
* `kdf`: the SM2 key-derivation function, GB/T 32918.4-2016 §5.4.3. SM2 encryption
  and SM2 key agreement derive their symmetric keys with it, so it must match the
  standard bit for bit rather than be "any good KDF".
* `pbkdf2`: PBKDF2-HMAC-SM3 (RFC 8018 §5.2). Password hashing builds on it.

Everything goes through the `cryptography` package (OpenSSL underneath); this
module only adds input checks and maps backend errors onto `crypto.errors`.
"""

from __future__ import annotations

from cryptography import exceptions as _cx
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import hmac as _hmac
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC

from crypto.errors import CryptoError, InvalidKey, InvalidSignature

__all__ = [
    "DIGEST_SIZE",
    "KDF_MAX_LENGTH",
    "PBKDF2_MAX_ITERATIONS",
    "PBKDF2_MAX_LENGTH",
    "PBKDF2_MIN_SALT_SIZE",
    "Hasher",
    "HmacKey",
    "digest",
    "hmac",
    "kdf",
    "pbkdf2",
    "verify_hmac",
]

DIGEST_SIZE = 32
"""SM3 output length in bytes (256 bits, GB/T 32905 §5)."""

KDF_MAX_LENGTH = 2**20
"""Upper bound on `kdf` output: far above any SM2 use, low enough to stop abuse."""

PBKDF2_MIN_SALT_SIZE = 16
"""128-bit salts at least, as NIST SP 800-132 §5.1 recommends for RFC 8018."""

PBKDF2_MAX_ITERATIONS = 2**24
"""Cap so that a corrupt or hostile stored hash cannot pin a CPU for minutes."""

PBKDF2_MAX_LENGTH = 1024
"""Derived keys longer than this serve no purpose and cost 1 PRF chain per 32 bytes."""


def digest(data: bytes) -> bytes:
    """Return SM3(data), 32 bytes (GB/T 32905 §5)."""
    h = hashes.Hash(hashes.SM3())
    h.update(data)
    return h.finalize()


class Hasher:
    """Incremental SM3, for inputs that arrive in pieces (GB/T 32905 §5).

    `finalize` may be called once; afterwards the object refuses further use
    with `CryptoError` instead of the backend's `AlreadyFinalized`.
    """

    __slots__ = ("_ctx",)

    def __init__(self, data: bytes = b"") -> None:
        self._ctx: hashes.Hash | None = hashes.Hash(hashes.SM3())
        if data:
            self._ctx.update(data)

    def _live(self) -> hashes.Hash:
        if self._ctx is None:
            raise CryptoError("SM3 hasher already finalized")
        return self._ctx

    def update(self, data: bytes) -> None:
        """Absorb more input."""
        self._live().update(data)

    def copy(self) -> Hasher:
        """Fork the state, e.g. to hash a common prefix once."""
        clone = Hasher.__new__(Hasher)
        clone._ctx = self._live().copy()
        return clone

    def finalize(self) -> bytes:
        """Return the 32-byte digest and retire the hasher."""
        ctx = self._live()
        self._ctx = None
        return ctx.finalize()


def _check_mac_key(key: bytes) -> None:
    # RFC 2104 §3 allows any length, but an empty key is always a caller bug.
    if not isinstance(key, bytes) or not key:
        raise InvalidKey("HMAC-SM3 key must be non-empty bytes")


def hmac(key: bytes, data: bytes) -> bytes:
    """Return HMAC-SM3(key, data), 32 bytes (RFC 2104 §2 with H = SM3)."""
    _check_mac_key(key)
    mac = _hmac.HMAC(key, hashes.SM3())
    mac.update(data)
    return mac.finalize()


class HmacKey:
    """HMAC-SM3 under one key, its keyed state (RFC 2104's padded key absorbed into
    the inner and outer hashes) computed once: each `mac` copies that state instead
    of deriving it again, about a third of `hmac`'s cost on short messages. For
    hot paths that MAC every request under a long-lived key (edge identity
    assertions, decision-log pseudonyms). Not shared between threads."""

    __slots__ = ("_keyed",)

    def __init__(self, key: bytes) -> None:
        _check_mac_key(key)
        self._keyed = _hmac.HMAC(key, hashes.SM3())

    def mac(self, data: bytes) -> bytes:
        """HMAC-SM3(key, data), equal to ``hmac(key, data)``."""
        ctx = self._keyed.copy()
        ctx.update(data)
        return ctx.finalize()


def verify_hmac(key: bytes, data: bytes, mac: bytes) -> None:
    """Raise `InvalidSignature` unless `mac` is HMAC-SM3(key, data).

    The comparison is constant-time (OpenSSL's `CRYPTO_memcmp` via
    `cryptography`), so a forger learns nothing from timing about how many
    leading bytes were right.
    """
    _check_mac_key(key)
    if not isinstance(mac, bytes):
        raise InvalidSignature("HMAC-SM3 verification failed")
    ctx = _hmac.HMAC(key, hashes.SM3())
    ctx.update(data)
    try:
        ctx.verify(mac)
    except _cx.InvalidSignature:
        raise InvalidSignature("HMAC-SM3 verification failed") from None


def kdf(z: bytes, length: int) -> bytes:
    """SM2 key-derivation function KDF(Z, klen), GB/T 32918.4-2016 §5.4.3.

    Ha_i = SM3(Z || ct) for ct = 1, 2, ... as a 32-bit big-endian counter; the
    output is Ha_1 || Ha_2 || ... truncated to `length` bytes. (The standard
    counts klen in bits; every SM2 use is byte-aligned, so bytes here.) Callers
    doing SM2 decryption must still reject an all-zero result themselves
    (GB/T 32918.4 §6.1 A5 / §7.1 B4).
    """
    if isinstance(length, bool) or not isinstance(length, int):
        raise CryptoError("SM2 KDF length must be an int")
    if not 0 < length <= KDF_MAX_LENGTH:
        raise CryptoError(f"SM2 KDF length must be in 1..{KDF_MAX_LENGTH} bytes")
    base = hashes.Hash(hashes.SM3())
    base.update(z)
    blocks = []
    for ct in range(1, -(-length // DIGEST_SIZE) + 1):
        h = base.copy()
        h.update(ct.to_bytes(4, "big"))
        blocks.append(h.finalize())
    return b"".join(blocks)[:length]


def pbkdf2(password: bytes, salt: bytes, iterations: int, length: int = 32) -> bytes:
    """PBKDF2 with PRF = HMAC-SM3 (RFC 8018 §5.2), the password-hashing base.

    Enforces a salt of at least 16 bytes and bounded iteration count and
    output length; the caller chooses the work factor. As with any HMAC
    PBKDF2, passwords differing only in trailing NUL bytes derive the same key
    (RFC 2104 §2 zero-pads the key), so password input should exclude NUL.
    """
    if isinstance(iterations, bool) or not isinstance(iterations, int):
        raise CryptoError("PBKDF2 iterations must be an int")
    if not 1 <= iterations <= PBKDF2_MAX_ITERATIONS:
        raise CryptoError(f"PBKDF2 iterations must be in 1..{PBKDF2_MAX_ITERATIONS}")
    if isinstance(length, bool) or not isinstance(length, int):
        raise CryptoError("PBKDF2 length must be an int")
    if not 1 <= length <= PBKDF2_MAX_LENGTH:
        raise CryptoError(f"PBKDF2 length must be in 1..{PBKDF2_MAX_LENGTH} bytes")
    if not isinstance(salt, bytes) or len(salt) < PBKDF2_MIN_SALT_SIZE:
        raise CryptoError(f"PBKDF2 salt must be at least {PBKDF2_MIN_SALT_SIZE} bytes")
    if not isinstance(password, bytes):
        raise CryptoError("PBKDF2 password must be bytes")
    return PBKDF2HMAC(hashes.SM3(), length, salt, iterations).derive(password)
