"""SM4 block cipher (GB/T 32907-2016) in the modes the gateway needs.

`SM4GCM` (AEAD_SM4_GCM, RFC 8998 §3.5.1: NIST SP 800-38D GCM over SM4) is the
default for anything new: it authenticates, so tampering is detected. CBC and
CTR exist only to talk to legacy systems; neither authenticates, so callers
must MAC the ciphertext (encrypt-then-MAC) and verify the MAC before
decrypting. ECB is deliberately not exported.

The block cipher itself is OpenSSL's, reached through `cryptography`; this
module validates sizes up front and turns every backend failure into a
`crypto.errors` exception whose message carries neither key nor plaintext.
"""

from __future__ import annotations

import secrets

from cryptography import exceptions as _cx
from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from crypto.errors import CryptoError, InvalidCiphertext, InvalidKey

__all__ = [
    "BLOCK_SIZE",
    "KEY_SIZE",
    "MAX_GCM_DATA_SIZE",
    "NONCE_SIZE",
    "SM4GCM",
    "TAG_SIZE",
    "cbc_decrypt",
    "cbc_encrypt",
    "ctr_crypt",
    "generate_key",
    "generate_nonce",
]

KEY_SIZE = 16
"""SM4 key length in bytes (128 bits, GB/T 32907 §4)."""

BLOCK_SIZE = 16
"""SM4 block length in bytes (128 bits, GB/T 32907 §4)."""

NONCE_SIZE = 12
"""GCM nonce length: 12 octets, as RFC 8998 §3.5.1 fixes it."""

TAG_SIZE = 16
"""Full 16-octet GCM tag (RFC 8998 §3.5.1); truncated tags are not offered."""

MAX_GCM_DATA_SIZE = 2**31 - 1
"""Same per-call ceiling as `cryptography`'s AESGCM; below RFC 8998's 2**36 - 31."""

_CBC_FAILED = "SM4-CBC decryption failed"
_GCM_FAILED = "SM4-GCM decryption failed"


def generate_key() -> bytes:
    """Return a fresh random 16-byte SM4 key from the OS CSPRNG."""
    return secrets.token_bytes(KEY_SIZE)


def generate_nonce() -> bytes:
    """Return 12 random bytes for `SM4GCM`.

    Random 96-bit nonces are safe for up to 2**32 messages per key
    (SP 800-38D §8.3); rotate keys well before that.
    """
    return secrets.token_bytes(NONCE_SIZE)


def _check_key(key: bytes) -> None:
    if not isinstance(key, bytes) or len(key) != KEY_SIZE:
        raise InvalidKey(f"SM4 key must be exactly {KEY_SIZE} bytes")


class SM4GCM:
    """SM4 in Galois/Counter Mode, shaped like `cryptography`'s `AESGCM`.

    Output is ciphertext || 16-byte tag (RFC 8998 §3.5.1, as RFC 5116 lays it out).
    The caller supplies the nonce and MUST never reuse one under the same key:
    a repeated nonce reveals the XOR of the two plaintexts and lets an attacker
    forge tags. Use `generate_nonce()` or a strictly increasing counter.
    """

    __slots__ = ("_key",)

    def __init__(self, key: bytes) -> None:
        _check_key(key)
        self._key = key

    def __repr__(self) -> str:
        return "SM4GCM(key=<redacted>)"

    def encrypt(self, nonce: bytes, data: bytes, associated_data: bytes | None) -> bytes:
        """Encrypt and authenticate `data`; also authenticate `associated_data`."""
        if not isinstance(nonce, bytes) or len(nonce) != NONCE_SIZE:
            raise CryptoError(f"SM4-GCM nonce must be exactly {NONCE_SIZE} bytes")
        if len(data) > MAX_GCM_DATA_SIZE or len(associated_data or b"") > MAX_GCM_DATA_SIZE:
            raise CryptoError("SM4-GCM input too large")
        enc = Cipher(algorithms.SM4(self._key), modes.GCM(nonce)).encryptor()
        if associated_data:
            enc.authenticate_additional_data(associated_data)
        out = enc.update(data) + enc.finalize()
        return out + enc.tag

    def decrypt(self, nonce: bytes, data: bytes, associated_data: bytes | None) -> bytes:
        """Return the plaintext, or raise `InvalidCiphertext`.

        Every failure (wrong key, nonce, AAD, any flipped bit, bad lengths)
        raises the same exception and message, and no plaintext is released
        before the tag has verified.
        """
        if (
            not isinstance(nonce, bytes)
            or len(nonce) != NONCE_SIZE
            or not isinstance(data, bytes)
            or not TAG_SIZE <= len(data) <= MAX_GCM_DATA_SIZE + TAG_SIZE
            or len(associated_data or b"") > MAX_GCM_DATA_SIZE
        ):
            raise InvalidCiphertext(_GCM_FAILED)
        body, tag = data[:-TAG_SIZE], data[-TAG_SIZE:]
        dec = Cipher(algorithms.SM4(self._key), modes.GCM(nonce, tag)).decryptor()
        if associated_data:
            dec.authenticate_additional_data(associated_data)
        plaintext = dec.update(body)
        try:
            return plaintext + dec.finalize()
        except _cx.InvalidTag:
            raise InvalidCiphertext(_GCM_FAILED) from None


def cbc_encrypt(key: bytes, iv: bytes, plaintext: bytes) -> bytes:
    """SM4-CBC (GB/T 17964, SP 800-38A §6.2) with PKCS#7 padding (RFC 5652 §6.3).

    Legacy interop only. The IV must be unpredictable (random) per message;
    the output is NOT authenticated.
    """
    _check_key(key)
    if not isinstance(iv, bytes) or len(iv) != BLOCK_SIZE:
        raise CryptoError(f"SM4-CBC IV must be exactly {BLOCK_SIZE} bytes")
    padder = padding.PKCS7(BLOCK_SIZE * 8).padder()
    padded = padder.update(plaintext) + padder.finalize()
    enc = Cipher(algorithms.SM4(key), modes.CBC(iv)).encryptor()
    return enc.update(padded) + enc.finalize()


def cbc_decrypt(key: bytes, iv: bytes, ciphertext: bytes) -> bytes:
    """Invert `cbc_encrypt`; any malformed input or bad padding → InvalidCiphertext.

    All failures share one message so the error text is no padding oracle.
    The timing and the mere fact of failure still are one unless a MAC over
    iv || ciphertext was verified first, which is the caller's job.
    """
    _check_key(key)
    if (
        not isinstance(iv, bytes)
        or len(iv) != BLOCK_SIZE
        or not isinstance(ciphertext, bytes)
        or not ciphertext
        or len(ciphertext) % BLOCK_SIZE
    ):
        raise InvalidCiphertext(_CBC_FAILED)
    dec = Cipher(algorithms.SM4(key), modes.CBC(iv)).decryptor()
    padded = dec.update(ciphertext) + dec.finalize()
    unpadder = padding.PKCS7(BLOCK_SIZE * 8).unpadder()
    try:
        return unpadder.update(padded) + unpadder.finalize()
    except ValueError:
        raise InvalidCiphertext(_CBC_FAILED) from None


def ctr_crypt(key: bytes, nonce_counter_block: bytes, data: bytes) -> bytes:
    """SM4-CTR (GB/T 17964, SP 800-38A §6.5); encrypts and decrypts alike.

    `nonce_counter_block` is the full 16-byte initial counter block; it is
    incremented as one 128-bit big-endian integer per block (OpenSSL's
    convention, matching its SM4-CTR test vectors). Counter ranges must never
    overlap under one key, and the output is NOT authenticated.
    """
    _check_key(key)
    if not isinstance(nonce_counter_block, bytes) or len(nonce_counter_block) != BLOCK_SIZE:
        raise CryptoError(f"SM4-CTR counter block must be exactly {BLOCK_SIZE} bytes")
    ctx = Cipher(algorithms.SM4(key), modes.CTR(nonce_counter_block)).encryptor()
    return ctx.update(data) + ctx.finalize()
