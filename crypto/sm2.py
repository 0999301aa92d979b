"""SM2 public-key cryptography (GB/T 32918), on OpenSSL 3's implementation.

The safe surface: key objects that can only sign, verify, encrypt, decrypt and
serialise. Nonces come from OpenSSL's DRBG (never from Python's `random`);
decryption fails unless C3 matches (GB/T 32918.4 §7.2 step B6); public points
are checked to lie on the curve when loaded.

Signatures hash ``Z_A || M`` with SM3 (GB/T 32918.2 §6.1), where Z_A binds the
signer's distinguishing ID and public key (§5.5). The default ID is
``1234567812345678`` (GM/T 0009 §10). OpenSSL's CLI uses an *empty* ID unless
given ``-pkeyopt distid:1234567812345678`` — pass the ID when interoperating.

Encodings, explicit everywhere (``encoding="der"`` or ``"raw"``):
- signature: DER ``SEQUENCE{r, s}`` (OpenSSL, GmSSL) or raw ``r || s`` (64 bytes);
- ciphertext: DER ``SEQUENCE{x, y, C3, C2}`` (GM/T 0009 §7.2, C1C3C2 order) or
  raw ``04 || x || y || C3 || C2`` (GB/T 32918.4 §6.1 byte string).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Final, Literal

from crypto import _der, _openssl, pem, sm3
from crypto.errors import CryptoError, InvalidCiphertext, InvalidKey, InvalidSignature

Encoding = Literal["der", "raw"]

DEFAULT_ID: Final = b"1234567812345678"
CURVE_OID: Final = "1.2.156.10197.1.301"

# Recommended curve parameters, GB/T 32918.5 §3.
P: Final = 0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00000000FFFFFFFFFFFFFFFF
A: Final = 0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00000000FFFFFFFFFFFFFFFC
B: Final = 0x28E9FA9E9D9F5E344D5A9E4BCF6509A7F39789F515AB8F92DDBCBD414D940E93
GX: Final = 0x32C4AE2C1F1981195F9904466A39C9948FE30BBFF2660BE1715A4589334C74C7
GY: Final = 0xBC3736A2F4F6779C59BDCEE36B692153D0A9877CC62A474002DF32E52139F0A0
N: Final = 0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFF7203DF6B21C6052B53BBF40939D54123

PRIVATE_KEY_LABELS: Final = ("PRIVATE KEY", "EC PRIVATE KEY", "SM2 PRIVATE KEY")
"""PKCS#8, and SEC1 as labelled by OpenSSL 1.x (`EC`) and 3.x (`SM2`)."""
MAX_ID_BYTES: Final = 8191  # ENTL is a 16-bit count of *bits*
MAX_PLAINTEXT: Final = 1024 * 1024
_SPKI_PREFIX: Final = bytes.fromhex("3059301306072a8648ce3d020106082a811ccf5501822d034200")
_CURVE_BYTES: Final = b"".join(v.to_bytes(32, "big") for v in (A, B, GX, GY))


def _check_encoding(encoding: str) -> None:
    if encoding not in ("der", "raw"):
        raise CryptoError(f"unknown encoding {encoding!r}; use 'der' or 'raw'")


def _b32(v: int) -> bytes:
    return v.to_bytes(32, "big")


@lru_cache(maxsize=4096)
def _z_a(point: bytes, distinguishing_id: bytes) -> bytes:
    if len(distinguishing_id) > MAX_ID_BYTES:
        raise CryptoError("distinguishing ID too long")
    entl = (len(distinguishing_id) * 8).to_bytes(2, "big")
    return sm3.digest(entl + distinguishing_id + _CURVE_BYTES + point[1:])


# -- signature and ciphertext encodings ---------------------------------------


def signature_to_raw(der: bytes) -> bytes:
    """DER ``SEQUENCE{r, s}`` → 64-byte ``r || s``; strict, with 1 ≤ r, s < n."""
    try:
        r_b, s_b = _der.read_sequence(der, (_der.INTEGER, _der.INTEGER))
        r, s = _der.read_integer(r_b), _der.read_integer(s_b)
    except CryptoError as exc:
        raise InvalidSignature(f"malformed SM2 signature: {exc}") from None
    if not (0 < r < N and 0 < s < N):
        raise InvalidSignature("SM2 signature value out of range")
    return _b32(r) + _b32(s)


def signature_to_der(raw: bytes) -> bytes:
    """64-byte ``r || s`` → DER ``SEQUENCE{r, s}``."""
    if len(raw) != 64:
        raise InvalidSignature("raw SM2 signature must be 64 bytes")
    r, s = int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big")
    if not (0 < r < N and 0 < s < N):
        raise InvalidSignature("SM2 signature value out of range")
    return _der.sequence(_der.integer(r), _der.integer(s))


def ciphertext_to_raw(der: bytes) -> bytes:
    """DER C1C3C2 → ``04 || x || y || C3 || C2``."""
    try:
        x_b, y_b, c3, c2 = _der.read_sequence(
            der, (_der.INTEGER, _der.INTEGER, _der.OCTET_STRING, _der.OCTET_STRING)
        )
        x, y = _der.read_integer(x_b), _der.read_integer(y_b)
    except CryptoError as exc:
        raise InvalidCiphertext(f"malformed SM2 ciphertext: {exc}") from None
    if x >= P or y >= P or len(c3) != 32 or not c2:
        raise InvalidCiphertext("malformed SM2 ciphertext")
    return b"\x04" + _b32(x) + _b32(y) + c3 + c2


def ciphertext_to_der(raw: bytes) -> bytes:
    """``04 || x || y || C3 || C2`` → DER C1C3C2."""
    if len(raw) < 98 or raw[0] != 0x04:
        raise InvalidCiphertext("raw SM2 ciphertext must be 04 || x || y || C3 || C2")
    x, y = int.from_bytes(raw[1:33], "big"), int.from_bytes(raw[33:65], "big")
    if x >= P or y >= P:
        raise InvalidCiphertext("malformed SM2 ciphertext")
    return _der.sequence(
        _der.integer(x),
        _der.integer(y),
        _der.tlv(_der.OCTET_STRING, raw[65:97]),
        _der.tlv(_der.OCTET_STRING, raw[97:]),
    )


# -- keys -----------------------------------------------------------------------


class SM2PublicKey:
    """An SM2 public key: verify signatures, encrypt to its holder."""

    __slots__ = ("_key", "_point")

    def __init__(self, key: _openssl.PKey) -> None:
        self._key = key
        x, y = key.public_xy()
        self._point = b"\x04" + _b32(x) + _b32(y)

    @classmethod
    def from_encoded_point(cls, point: bytes) -> SM2PublicKey:
        """From ``04 || x || y`` (65 bytes) or ``x || y`` (64 bytes, common in JS)."""
        if len(point) == 64:
            point = b"\x04" + point
        if len(point) != 65 or point[0] != 0x04:
            raise InvalidKey("SM2 point must be 04 || x || y")
        return cls.from_der(_SPKI_PREFIX + point)

    @classmethod
    def from_der(cls, der: bytes) -> SM2PublicKey:
        try:
            return cls(_openssl.load_public_der(der))
        except InvalidKey:
            raise
        except CryptoError as exc:
            raise InvalidKey(f"not an SM2 public key: {exc}") from None

    @classmethod
    def from_pem(cls, data: bytes) -> SM2PublicKey:
        label, der = pem.decode(data)
        if label != "PUBLIC KEY":
            raise InvalidKey(f"expected a PUBLIC KEY PEM block, got {label!r}")
        return cls.from_der(der)

    @property
    def point(self) -> bytes:
        """Uncompressed point ``04 || x || y``."""
        return self._point

    @property
    def xy(self) -> tuple[int, int]:
        return int.from_bytes(self._point[1:33], "big"), int.from_bytes(self._point[33:], "big")

    def public_der(self) -> bytes:
        return self._key.public_der()

    def public_pem(self) -> bytes:
        return pem.encode("PUBLIC KEY", self.public_der())

    def z_a(self, distinguishing_id: bytes = DEFAULT_ID) -> bytes:
        """Z_A of GB/T 32918.2 §5.5 for this key and ID."""
        return _z_a(self._point, distinguishing_id)

    def digest(self, data: bytes, distinguishing_id: bytes = DEFAULT_ID) -> bytes:
        """e = SM3(Z_A || M), the value SM2 actually signs (GB/T 32918.2 §6.1 A2)."""
        return sm3.digest(self.z_a(distinguishing_id) + data)

    def verify(
        self,
        signature: bytes,
        data: bytes,
        *,
        distinguishing_id: bytes = DEFAULT_ID,
        encoding: Encoding = "der",
    ) -> None:
        """Raise `InvalidSignature` unless `signature` is valid for `data`."""
        _check_encoding(encoding)
        der = signature_to_der(signature) if encoding == "raw" else signature
        if encoding == "der":
            signature_to_raw(der)  # strict DER and range check before OpenSSL sees it
        if not self._key.verify_digest(der, self.digest(data, distinguishing_id)):
            raise InvalidSignature("SM2 signature does not verify")

    def encrypt(self, plaintext: bytes, *, encoding: Encoding = "der") -> bytes:
        """SM2 encryption (GB/T 32918.4 §6.1) with SM3; C1C3C2."""
        _check_encoding(encoding)
        if not plaintext:
            raise CryptoError("SM2 cannot encrypt an empty message")
        if len(plaintext) > MAX_PLAINTEXT:
            raise CryptoError("plaintext too large for SM2 (use envelope encryption)")
        der = self._key.encrypt(plaintext)
        return ciphertext_to_raw(der) if encoding == "raw" else der

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SM2PublicKey) and other._point == self._point

    def __hash__(self) -> int:
        return hash(self._point)

    def __repr__(self) -> str:
        return f"SM2PublicKey({self._point[1:9].hex()}…)"


class SM2PrivateKey:
    """An SM2 private key: sign, decrypt, serialise. Never printed."""

    __slots__ = ("_key", "_public")

    def __init__(self, key: _openssl.PKey) -> None:
        if not key.has_private:
            raise InvalidKey("not a private key")
        self._key = key
        self._public = SM2PublicKey(key)

    @classmethod
    def generate(cls) -> SM2PrivateKey:
        return cls(_openssl.generate())

    @classmethod
    def from_der(cls, der: bytes) -> SM2PrivateKey:
        """PKCS#8 or SEC1 (RFC 5915) DER on the SM2 curve."""
        try:
            return cls(_openssl.load_private_der(der))
        except InvalidKey:
            raise
        except CryptoError as exc:
            raise InvalidKey(f"not an SM2 private key: {exc}") from None

    @classmethod
    def from_pem(cls, data: bytes) -> SM2PrivateKey:
        label, der = pem.decode(data)
        if label not in PRIVATE_KEY_LABELS:
            raise InvalidKey(f"expected a PRIVATE KEY PEM block, got {label!r}")
        return cls.from_der(der)

    @classmethod
    def from_private_value(cls, d: int) -> SM2PrivateKey:
        """From the scalar d (1 ≤ d ≤ n-2, GB/T 32918.1 §6.1); for test vectors and HSM export."""
        if not 1 <= d <= N - 2:
            raise InvalidKey("SM2 private value out of range")
        sec1 = _der.sequence(
            _der.integer(1),
            _der.tlv(_der.OCTET_STRING, _b32(d)),
            _der.tlv(0xA0, _der.tlv(0x06, bytes.fromhex("2a811ccf5501822d"))),
        )
        return cls.from_der(sec1)

    def public_key(self) -> SM2PublicKey:
        return self._public

    def private_der(self) -> bytes:
        """PKCS#8 DER, as `openssl genpkey -algorithm SM2 -outform DER`."""
        return self._key.private_pkcs8_der()

    def private_pem(self) -> bytes:
        return pem.encode("PRIVATE KEY", self.private_der())

    def sign(
        self,
        data: bytes,
        *,
        distinguishing_id: bytes = DEFAULT_ID,
        encoding: Encoding = "der",
    ) -> bytes:
        """SM2 signature of `data` (GB/T 32918.2 §6.1) with a fresh DRBG nonce."""
        _check_encoding(encoding)
        der = self._key.sign_digest(self._public.digest(data, distinguishing_id))
        return signature_to_raw(der) if encoding == "raw" else der

    def decrypt(self, ciphertext: bytes, *, encoding: Encoding = "der") -> bytes:
        """Decrypt C1C3C2; raise `InvalidCiphertext` on any tampering (C3 mismatch)."""
        _check_encoding(encoding)
        if len(ciphertext) > MAX_PLAINTEXT + 256:
            raise InvalidCiphertext("ciphertext too large")
        der = ciphertext_to_der(ciphertext) if encoding == "raw" else ciphertext
        if encoding == "der":
            ciphertext_to_raw(der)  # strict parse first: OpenSSL's is more lenient
        try:
            return self._key.decrypt(der)
        except CryptoError:
            raise InvalidCiphertext("SM2 ciphertext failed to decrypt (C1 or C3 check)") from None

    def __repr__(self) -> str:
        return f"SM2PrivateKey(public={self._public!r})"
