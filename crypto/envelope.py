"""Envelope encryption for secrets at rest (TOTP seeds, private keys, tokens).

Each secret gets its own random 16-byte data key (DEK). The secret is sealed
under the DEK with SM4-GCM (RFC 8998 §3.5.1), and the DEK is sealed under a
long-lived key-encryption key (KEK), also with SM4-GCM. Rotating a KEK then
means re-wrapping 32-byte DEKs (`rewrap`), not re-encrypting every secret, and
a database dump alone reveals nothing without the KEK file.

Both GCM operations authenticate, as associated data, a domain label, the
version byte and the caller's `context` (e.g. ``b"totp_seed:user:42"``), so a
blob copied onto another record does not open. The DEK wrap additionally
binds the KEK id. The data part deliberately does not: `rewrap` changes the
kid, and the DEK is unique to the blob, so binding the DEK binds the data.

Blob format, version 1 (all lengths in bytes)::

    1   version            0x01
    1   kid_len            1..32
    n   kid                ASCII [A-Za-z0-9._-], not starting with . or -
    12  wrap_nonce         random, SM4-GCM under the KEK
    32  wrapped_dek        SM4-GCM(KEK, DEK) = 16-byte ciphertext || 16-byte tag
    12  data_nonce         random, SM4-GCM under the DEK
    m   data_ciphertext    plaintext length + 16-byte tag, m <= 64 KiB + 16

Random 96-bit wrap nonces keep a KEK safe for 2**32 seals (SP 800-38D §8.3);
rotate long before that.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from crypto.errors import CryptoError, InvalidCiphertext, InvalidKey
from crypto.sm4 import KEY_SIZE, NONCE_SIZE, SM4GCM, TAG_SIZE, generate_key, generate_nonce

__all__ = [
    "MAX_CONTEXT_SIZE",
    "MAX_KEY_FILE_SIZE",
    "MAX_KID_SIZE",
    "MAX_PLAINTEXT_SIZE",
    "VERSION",
    "KeyEncryptionKeyRing",
    "envelope_kid",
]

VERSION = 1
MAX_PLAINTEXT_SIZE = 64 * 1024
"""Secrets at rest are small; a bound keeps a hostile blob from costing much."""
MAX_CONTEXT_SIZE = 1024
MAX_KID_SIZE = 32
MAX_KEY_FILE_SIZE = 64 * 1024

_WRAPPED_DEK_SIZE = KEY_SIZE + TAG_SIZE
_MAX_DATA_CT = MAX_PLAINTEXT_SIZE + TAG_SIZE
# Everything after the kid except the variable-length data ciphertext body.
_TAIL = NONCE_SIZE + _WRAPPED_DEK_SIZE + NONCE_SIZE + TAG_SIZE
_MIN_BLOB = 2 + 1 + _TAIL
_MAX_BLOB = 2 + MAX_KID_SIZE + _TAIL + MAX_PLAINTEXT_SIZE
_KID_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,31}")
_LABEL_DEK = b"ztgate/envelope/dek\x00"
_LABEL_DATA = b"ztgate/envelope/data\x00"
_FAILED = "envelope could not be opened"


def _valid_kid(kid: object) -> bool:
    return isinstance(kid, str) and _KID_RE.fullmatch(kid) is not None


def _aad(label: bytes, context: bytes, kid: str = "") -> bytes:
    kid_b = kid.encode("ascii")
    return b"".join(
        (label, bytes((VERSION, len(kid_b))), kid_b, len(context).to_bytes(2, "big"), context)
    )


@dataclass(frozen=True)
class _Blob:
    """A syntactically valid, not yet authenticated, version-1 envelope."""

    kid: str
    wrap_nonce: bytes
    wrapped_dek: bytes
    data_nonce: bytes
    data_ct: bytes

    def encode(self) -> bytes:
        kid_b = self.kid.encode("ascii")
        head = bytes((VERSION, len(kid_b))) + kid_b
        return b"".join((head, self.wrap_nonce, self.wrapped_dek, self.data_nonce, self.data_ct))


def _parse(blob: bytes) -> _Blob:
    """Split `blob` by the format above; any deviation is InvalidCiphertext."""
    if not isinstance(blob, bytes) or not _MIN_BLOB <= len(blob) <= _MAX_BLOB:
        raise InvalidCiphertext(f"{_FAILED}: malformed")
    if blob[0] != VERSION:
        raise InvalidCiphertext(f"{_FAILED}: unsupported version")
    kid_len = blob[1]
    pos = 2 + kid_len
    if not 1 <= kid_len <= MAX_KID_SIZE or len(blob) < pos + _TAIL:
        raise InvalidCiphertext(f"{_FAILED}: malformed")
    kid = blob[2:pos].decode("latin-1")
    if not _valid_kid(kid):
        raise InvalidCiphertext(f"{_FAILED}: malformed")
    wrap_end = pos + NONCE_SIZE + _WRAPPED_DEK_SIZE
    data_ct = blob[wrap_end + NONCE_SIZE :]
    if len(data_ct) > _MAX_DATA_CT:
        raise InvalidCiphertext(f"{_FAILED}: malformed")
    return _Blob(
        kid=kid,
        wrap_nonce=blob[pos : pos + NONCE_SIZE],
        wrapped_dek=blob[pos + NONCE_SIZE : wrap_end],
        data_nonce=blob[wrap_end : wrap_end + NONCE_SIZE],
        data_ct=data_ct,
    )


def envelope_kid(blob: bytes) -> str:
    """Return the KEK id a blob is wrapped under (unauthenticated; for rotation jobs)."""
    return _parse(blob).kid


def _check_context(context: bytes, exc: type[CryptoError]) -> None:
    # An empty context would let any blob open on any record: refuse it.
    if not isinstance(context, bytes) or not 1 <= len(context) <= MAX_CONTEXT_SIZE:
        raise exc(f"envelope context must be 1..{MAX_CONTEXT_SIZE} bytes")


@dataclass(frozen=True, eq=False, repr=False)
class KeyEncryptionKeyRing:
    """Immutable set of SM4 KEKs by id, one of them active.

    New seals use `active`; every KEK in `keys` can still open. Rotation builds
    a new ring (`with_key(..., activate=True)`), re-wraps stored blobs with
    `rewrap`, then drops the old KEK (`without_key`). Immutability lets a
    server swap rings atomically under concurrent requests. `repr` never shows
    key bytes.
    """

    keys: Mapping[str, bytes] = field(repr=False)
    active: str

    def __post_init__(self) -> None:
        keys = dict(self.keys)
        for kid, key in keys.items():
            if not _valid_kid(kid):
                raise InvalidKey("KEK id must be 1..32 chars of [A-Za-z0-9._-]")
            if not isinstance(key, bytes) or len(key) != KEY_SIZE:
                raise InvalidKey(f"KEK {kid!r} must be exactly {KEY_SIZE} bytes")
        if self.active not in keys:
            raise InvalidKey("active KEK id is not in the ring")
        object.__setattr__(self, "keys", MappingProxyType(keys))

    def __repr__(self) -> str:
        return f"KeyEncryptionKeyRing(active={self.active!r}, kids={self.kids!r})"

    @property
    def kids(self) -> tuple[str, ...]:
        """The KEK ids in the ring, sorted."""
        return tuple(sorted(self.keys))

    @classmethod
    def generate(cls, kid: str = "kek-1") -> KeyEncryptionKeyRing:
        """A ring with one fresh random KEK, active."""
        return cls({kid: generate_key()}, kid)

    def with_key(self, kid: str, key: bytes, *, activate: bool = False) -> KeyEncryptionKeyRing:
        """A copy with `kid` added (refusing to replace an existing id)."""
        if kid in self.keys:
            raise InvalidKey(f"KEK id {kid!r} already in the ring")
        return KeyEncryptionKeyRing({**self.keys, kid: key}, kid if activate else self.active)

    def with_active(self, kid: str) -> KeyEncryptionKeyRing:
        """A copy in which `kid` becomes the KEK for new seals."""
        return KeyEncryptionKeyRing(self.keys, kid)

    def without_key(self, kid: str) -> KeyEncryptionKeyRing:
        """A copy without `kid`; the active KEK cannot be removed."""
        if kid not in self.keys:
            raise InvalidKey(f"KEK id {kid!r} is not in the ring")
        if kid == self.active:
            raise InvalidKey("cannot remove the active KEK")
        return KeyEncryptionKeyRing({k: v for k, v in self.keys.items() if k != kid}, self.active)

    def seal(self, plaintext: bytes, *, context: bytes) -> bytes:
        """Encrypt `plaintext` for the record named by `context`."""
        _check_context(context, CryptoError)
        if not isinstance(plaintext, bytes) or len(plaintext) > MAX_PLAINTEXT_SIZE:
            raise CryptoError(f"envelope plaintext must be bytes of at most {MAX_PLAINTEXT_SIZE}")
        dek = generate_key()
        data_nonce = generate_nonce()
        data_ct = SM4GCM(dek).encrypt(data_nonce, plaintext, _aad(_LABEL_DATA, context))
        return self._wrap(dek, context, data_nonce, data_ct).encode()

    def open(self, blob: bytes, *, context: bytes) -> bytes:
        """Decrypt a blob from `seal`; every failure is InvalidCiphertext."""
        _check_context(context, InvalidCiphertext)
        parsed = _parse(blob)
        dek = self._unwrap(parsed, context)
        aad = _aad(_LABEL_DATA, context)
        return SM4GCM(dek).decrypt(parsed.data_nonce, parsed.data_ct, aad)

    def rewrap(self, blob: bytes, *, context: bytes) -> bytes:
        """Re-wrap the blob's DEK under the active KEK; the data part is copied.

        The data tag is still verified first, so a rotation job finds corrupt
        records while the old KEK still exists. A blob already under the active
        KEK is returned unchanged.
        """
        _check_context(context, InvalidCiphertext)
        parsed = _parse(blob)
        dek = self._unwrap(parsed, context)
        SM4GCM(dek).decrypt(parsed.data_nonce, parsed.data_ct, _aad(_LABEL_DATA, context))
        if parsed.kid == self.active:
            return blob
        return self._wrap(dek, context, parsed.data_nonce, parsed.data_ct).encode()

    def _wrap(self, dek: bytes, context: bytes, data_nonce: bytes, data_ct: bytes) -> _Blob:
        kid = self.active
        nonce = generate_nonce()
        wrapped = SM4GCM(self.keys[kid]).encrypt(nonce, dek, _aad(_LABEL_DEK, context, kid))
        return _Blob(kid, nonce, wrapped, data_nonce, data_ct)

    def _unwrap(self, parsed: _Blob, context: bytes) -> bytes:
        kek = self.keys.get(parsed.kid)
        if kek is None:
            raise InvalidCiphertext(f"{_FAILED}: unknown KEK id {parsed.kid!r}")
        aad = _aad(_LABEL_DEK, context, parsed.kid)
        return SM4GCM(kek).decrypt(parsed.wrap_nonce, parsed.wrapped_dek, aad)

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> KeyEncryptionKeyRing:
        """Load ``{"active": kid, "keys": {kid: hex}}``; bad content is InvalidKey."""
        with open(path, "rb") as fh:
            raw = fh.read(MAX_KEY_FILE_SIZE + 1)
        if len(raw) > MAX_KEY_FILE_SIZE:
            raise InvalidKey("KEK file too large")
        try:
            doc = json.loads(raw)
        except (ValueError, RecursionError):
            raise InvalidKey("KEK file is not valid JSON") from None
        if not isinstance(doc, dict) or set(doc) != {"active", "keys"}:
            raise InvalidKey('KEK file must hold exactly "active" and "keys"')
        active, hex_keys = doc["active"], doc["keys"]
        if not isinstance(active, str) or not isinstance(hex_keys, dict) or not hex_keys:
            raise InvalidKey("KEK file has the wrong shape")
        keys: dict[str, bytes] = {}
        for kid, value in hex_keys.items():
            if not isinstance(value, str) or re.fullmatch(r"[0-9a-fA-F]{32}", value) is None:
                raise InvalidKey(f"KEK {kid!r} in file must be {2 * KEY_SIZE} hex digits")
            keys[kid] = bytes.fromhex(value)
        return cls(keys, active)

    def to_file(self, path: str | os.PathLike[str]) -> None:
        """Write the ring as JSON to a new file with mode 0600.

        The file is created with O_EXCL (an existing file or symlink at `path`
        is never overwritten or followed) and chmod-ed before any key byte is
        written. For rotation, write a new file and rename it into place.
        """
        doc = {"active": self.active, "keys": {k: self.keys[k].hex() for k in self.kids}}
        data = json.dumps(doc, indent=2, sort_keys=True).encode("ascii") + b"\n"
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
        fd = os.open(path, flags, 0o600)
        try:
            os.fchmod(fd, 0o600)
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        except BaseException:
            os.close(fd)
            os.unlink(path)  # ours (O_EXCL); never leave a truncated key file
            raise
        os.close(fd)
