"""Hazmat: a minimal ctypes binding to OpenSSL 3's libcrypto for SM2.

Why this exists: `cryptography` has no SM2, and the pure-Python `gmssl` is slow
and unsafe (predictable nonces, no C3 check). OpenSSL 3's own SM2 is the
reference implementation that our interop peers use, draws its nonces from its
DRBG, and checks C3 on decryption. Through this binding it runs at ≈75-100% of
`openssl speed sm2` on the same machine (benchmarks/crypto.py; docs/crypto.md).
Only `crypto.sm2` may import this module: everything here deals in raw pointers
and must be wrapped.

Rules kept here:
- every pointer returned by OpenSSL is owned by exactly one Python object whose
  finaliser frees it (`PKey`), or is freed in a ``finally`` block;
- input lengths are passed explicitly; output buffers are sized by asking
  OpenSSL first;
- OpenSSL's error queue is cleared after each failure so that one failure never
  leaks into the next call's diagnosis.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from typing import Any, Final

from crypto.errors import CryptoError

_vp = ctypes.c_void_p
_cp = ctypes.c_char_p
_sz = ctypes.c_size_t
_int = ctypes.c_int


def _load() -> ctypes.CDLL:
    candidates = [ctypes.util.find_library("crypto"), "libcrypto.so.3", "libcrypto.3.dylib"]
    for name in candidates:
        if not name:
            continue
        try:
            lib = ctypes.CDLL(name)
        except OSError:
            continue
        lib.OpenSSL_version_num.restype = ctypes.c_ulong
        lib.OpenSSL_version_num.argtypes = []
        if lib.OpenSSL_version_num() >> 28 >= 3:
            return lib
    raise CryptoError("OpenSSL 3 libcrypto not found; SM2 needs it (Debian package libssl3)")


_lib: Final = _load()

_SIGNATURES: Final[dict[str, tuple[Any, list[Any]]]] = {
    "OpenSSL_version": (_cp, [_int]),
    "ERR_clear_error": (None, []),
    "EVP_PKEY_CTX_new_from_name": (_vp, [_vp, _cp, _cp]),
    "EVP_PKEY_CTX_new": (_vp, [_vp, _vp]),
    "EVP_PKEY_CTX_free": (None, [_vp]),
    "EVP_PKEY_keygen_init": (_int, [_vp]),
    "EVP_PKEY_generate": (_int, [_vp, ctypes.POINTER(_vp)]),
    "EVP_PKEY_free": (None, [_vp]),
    "EVP_PKEY_is_a": (_int, [_vp, _cp]),
    "EVP_PKEY_sign_init": (_int, [_vp]),
    "EVP_PKEY_sign": (_int, [_vp, _cp, ctypes.POINTER(_sz), _cp, _sz]),
    "EVP_PKEY_verify_init": (_int, [_vp]),
    "EVP_PKEY_verify": (_int, [_vp, _cp, _sz, _cp, _sz]),
    "EVP_PKEY_encrypt_init": (_int, [_vp]),
    "EVP_PKEY_encrypt": (_int, [_vp, _cp, ctypes.POINTER(_sz), _cp, _sz]),
    "EVP_PKEY_decrypt_init": (_int, [_vp]),
    "EVP_PKEY_decrypt": (_int, [_vp, _cp, ctypes.POINTER(_sz), _cp, _sz]),
    "EVP_PKEY_get_bn_param": (_int, [_vp, _cp, ctypes.POINTER(_vp)]),
    "BN_num_bits": (_int, [_vp]),
    "BN_bn2binpad": (_int, [_vp, _cp, _int]),
    "BN_free": (None, [_vp]),
    "d2i_AutoPrivateKey": (_vp, [_vp, ctypes.POINTER(_cp), ctypes.c_long]),
    "d2i_PUBKEY": (_vp, [_vp, ctypes.POINTER(_cp), ctypes.c_long]),
    "i2d_PUBKEY": (_int, [_vp, ctypes.POINTER(_cp)]),
    "EVP_PKEY2PKCS8": (_vp, [_vp]),
    "i2d_PKCS8_PRIV_KEY_INFO": (_int, [_vp, ctypes.POINTER(_cp)]),
    "PKCS8_PRIV_KEY_INFO_free": (None, [_vp]),
}
for _name, (_res, _args) in _SIGNATURES.items():
    _fn = getattr(_lib, _name)
    _fn.restype = _res
    _fn.argtypes = _args

VERSION: Final[str] = (_lib.OpenSSL_version(0) or b"OpenSSL ?").decode()
MAX_INPUT: Final = 16 * 1024 * 1024
"""Upper bound on any buffer handed to OpenSSL here (16 MiB)."""


def _fail(what: str) -> CryptoError:
    _lib.ERR_clear_error()
    return CryptoError(what)


class PKey:
    """Owns one `EVP_PKEY*` of type SM2. Immutable after construction.

    OpenSSL allows concurrent read-only use of an EVP_PKEY from many threads;
    every operation below makes its own short-lived EVP_PKEY_CTX.
    """

    __slots__ = ("__weakref__", "_ptr", "has_private")

    def __init__(self, ptr: int, *, has_private: bool) -> None:
        if not ptr:
            raise _fail("null key")
        self._ptr: int | None = ptr
        self.has_private = has_private
        if _lib.EVP_PKEY_is_a(ptr, b"SM2") != 1:
            self._free()
            raise _fail("key is not an SM2 key (curve 1.2.156.10197.1.301)")

    def _free(self) -> None:
        ptr, self._ptr = self._ptr, None
        if ptr:
            _lib.EVP_PKEY_free(ptr)

    def __del__(self) -> None:
        self._free()

    @property
    def ptr(self) -> int:
        if not self._ptr:
            raise CryptoError("key has been freed")
        return self._ptr

    def _ctx(self) -> int:
        ctx = _lib.EVP_PKEY_CTX_new(self.ptr, None)
        if not ctx:
            raise _fail("EVP_PKEY_CTX_new failed")
        return int(ctx)

    # -- operations ---------------------------------------------------------

    def sign_digest(self, digest: bytes) -> bytes:
        """SM2-sign a precomputed e = SM3(Z_A || M); DER SEQUENCE{r, s}."""
        ctx = self._ctx()
        try:
            if _lib.EVP_PKEY_sign_init(ctx) != 1:
                raise _fail("SM2 sign init failed")
            size = _sz(0)
            if _lib.EVP_PKEY_sign(ctx, None, ctypes.byref(size), digest, len(digest)) != 1:
                raise _fail("SM2 sign failed")
            buf = ctypes.create_string_buffer(size.value)
            if _lib.EVP_PKEY_sign(ctx, buf, ctypes.byref(size), digest, len(digest)) != 1:
                raise _fail("SM2 sign failed")
            return buf.raw[: size.value]
        finally:
            _lib.EVP_PKEY_CTX_free(ctx)

    def verify_digest(self, der_signature: bytes, digest: bytes) -> bool:
        ctx = self._ctx()
        try:
            if _lib.EVP_PKEY_verify_init(ctx) != 1:
                raise _fail("SM2 verify init failed")
            ok = _lib.EVP_PKEY_verify(ctx, der_signature, len(der_signature), digest, len(digest))
            if ok != 1:
                _lib.ERR_clear_error()
            return bool(ok == 1)
        finally:
            _lib.EVP_PKEY_CTX_free(ctx)

    def encrypt(self, plaintext: bytes) -> bytes:
        """SM2 public-key encryption with SM3; DER C1C3C2 (GM/T 0009 §7.2)."""
        return self._crypt(plaintext, encrypt=True)

    def decrypt(self, der_ciphertext: bytes) -> bytes:
        """Decrypt DER C1C3C2; OpenSSL rejects the ciphertext unless C3 matches."""
        return self._crypt(der_ciphertext, encrypt=False)

    def _crypt(self, data: bytes, *, encrypt: bool) -> bytes:
        if len(data) > MAX_INPUT:
            raise CryptoError("input too large")
        init = _lib.EVP_PKEY_encrypt_init if encrypt else _lib.EVP_PKEY_decrypt_init
        op = _lib.EVP_PKEY_encrypt if encrypt else _lib.EVP_PKEY_decrypt
        what = "SM2 encrypt" if encrypt else "SM2 decrypt"
        ctx = self._ctx()
        try:
            if init(ctx) != 1:
                raise _fail(f"{what} init failed")
            size = _sz(0)
            if op(ctx, None, ctypes.byref(size), data, len(data)) != 1:
                raise _fail(f"{what} failed")
            buf = ctypes.create_string_buffer(max(size.value, 1))
            if op(ctx, buf, ctypes.byref(size), data, len(data)) != 1:
                raise _fail(f"{what} failed")
            return buf.raw[: size.value]
        finally:
            _lib.EVP_PKEY_CTX_free(ctx)

    # -- encodings ----------------------------------------------------------

    def public_xy(self) -> tuple[int, int]:
        coords = []
        for name in (b"qx", b"qy"):
            bn = _vp()
            if _lib.EVP_PKEY_get_bn_param(self.ptr, name, ctypes.byref(bn)) != 1:
                raise _fail("cannot read the public point")
            try:
                buf = ctypes.create_string_buffer(32)
                if _lib.BN_bn2binpad(bn, buf, 32) != 32:
                    raise _fail("public coordinate out of range")
                coords.append(int.from_bytes(buf.raw, "big"))
            finally:
                _lib.BN_free(bn)
        return coords[0], coords[1]

    def public_der(self) -> bytes:
        """SubjectPublicKeyInfo DER, as `openssl pkey -pubout -outform DER`."""
        return _i2d(lambda out: _lib.i2d_PUBKEY(self.ptr, out))

    def private_pkcs8_der(self) -> bytes:
        """PKCS#8 PrivateKeyInfo DER, as `openssl genpkey -algorithm SM2` writes."""
        if not self.has_private:
            raise CryptoError("not a private key")
        p8 = _lib.EVP_PKEY2PKCS8(self.ptr)
        if not p8:
            raise _fail("PKCS#8 encoding failed")
        try:
            return _i2d(lambda out: _lib.i2d_PKCS8_PRIV_KEY_INFO(p8, out))
        finally:
            _lib.PKCS8_PRIV_KEY_INFO_free(p8)


def _i2d(call: Any) -> bytes:
    size = int(call(None))
    if size <= 0:
        raise _fail("DER encoding failed")
    buf = ctypes.create_string_buffer(size)
    cursor = _cp(ctypes.addressof(buf))  # i2d advances the cursor, not `buf`
    if int(call(ctypes.byref(cursor))) != size:
        raise _fail("DER encoding failed")
    return buf.raw


def generate() -> PKey:
    """A fresh SM2 key pair from OpenSSL's DRBG."""
    ctx = _lib.EVP_PKEY_CTX_new_from_name(None, b"SM2", None)
    if not ctx:
        raise _fail("SM2 is not available in this OpenSSL")
    try:
        out = _vp()
        if (
            _lib.EVP_PKEY_keygen_init(ctx) != 1
            or _lib.EVP_PKEY_generate(ctx, ctypes.byref(out)) != 1
        ):
            raise _fail("SM2 key generation failed")
        return PKey(int(out.value or 0), has_private=True)
    finally:
        _lib.EVP_PKEY_CTX_free(ctx)


def load_private_der(der: bytes) -> PKey:
    """PKCS#8 or SEC1 (RFC 5915) DER; OpenSSL derives a missing public point."""
    return PKey(_d2i(_lib.d2i_AutoPrivateKey, der), has_private=True)


def load_public_der(der: bytes) -> PKey:
    """SubjectPublicKeyInfo DER; OpenSSL rejects points not on the curve."""
    return PKey(_d2i(_lib.d2i_PUBKEY, der), has_private=False)


def _d2i(fn: Any, der: bytes) -> int:
    if not der or len(der) > 64 * 1024:
        raise CryptoError("key DER is empty or too large")
    buf = ctypes.create_string_buffer(der, len(der))
    start = ctypes.addressof(buf)
    cursor = _cp(start)
    ptr = fn(None, ctypes.byref(cursor), len(der))
    if not ptr:
        raise _fail("key DER could not be parsed")
    consumed = (ctypes.cast(cursor, _vp).value or 0) - start
    if consumed != len(der):
        _lib.EVP_PKEY_free(ptr)
        raise CryptoError("trailing data after the key DER")
    return int(ptr)
