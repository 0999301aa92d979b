"""Tests for crypto.sm3: SM3, HMAC-SM3, the SM2 KDF and PBKDF2-HMAC-SM3."""

from __future__ import annotations

import hashlib
import hmac as std_hmac

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.x963kdf import X963KDF

from crypto import sm3
from crypto.errors import CryptoError, InvalidKey, InvalidSignature


def _raw_sm3(data: bytes) -> bytes:
    h = hashes.Hash(hashes.SM3())
    h.update(data)
    return h.finalize()


def _reference_hmac(key: bytes, data: bytes) -> bytes:
    """RFC 2104 §2 written out: H(K ^ opad, H(K ^ ipad, text)), B = 64."""
    block = 64
    if len(key) > block:
        key = _raw_sm3(key)
    key = key.ljust(block, b"\x00")
    inner = _raw_sm3(bytes(b ^ 0x36 for b in key) + data)
    return _raw_sm3(bytes(b ^ 0x5C for b in key) + inner)


def _reference_kdf(z: bytes, length: int) -> bytes:
    """GB/T 32918.4 §5.4.3 as a plain loop."""
    out = b""
    ct = 1
    while len(out) < length:
        out += _raw_sm3(z + ct.to_bytes(4, "big"))
        ct += 1
    return out[:length]


def _reference_pbkdf2(password: bytes, salt: bytes, iterations: int, length: int) -> bytes:
    """RFC 8018 §5.2 written out over the independent HMAC above."""
    out = b""
    i = 1
    while len(out) < length:
        u = _reference_hmac(password, salt + i.to_bytes(4, "big"))
        t = int.from_bytes(u, "big")
        for _ in range(iterations - 1):
            u = _reference_hmac(password, u)
            t ^= int.from_bytes(u, "big")
        out += t.to_bytes(32, "big")
        i += 1
    return out[:length]


# --- SM3 -------------------------------------------------------------------

# GB/T 32905-2016 Appendix A, examples 1 and 2.
SM3_VECTORS = [
    (b"abc", "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"),
    (b"abcd" * 16, "debe9ff92275b8a138604889c18e5a4d6fdb70e5387e5765293dcba39c0c5732"),
]


@pytest.mark.parametrize(("message", "expected"), SM3_VECTORS)
def test_digest_standard_vectors(message: bytes, expected: str) -> None:
    assert sm3.digest(message).hex() == expected
    assert len(sm3.digest(message)) == sm3.DIGEST_SIZE == 32


@pytest.mark.parametrize(("message", "expected"), SM3_VECTORS)
def test_hasher_matches_digest_byte_by_byte(message: bytes, expected: str) -> None:
    h = sm3.Hasher()
    for i in range(len(message)):
        h.update(message[i : i + 1])
    assert h.finalize().hex() == expected


def test_hasher_initial_data_and_copy() -> None:
    h = sm3.Hasher(b"ab")
    fork = h.copy()
    h.update(b"c")
    fork.update(b"x")
    assert h.finalize() == sm3.digest(b"abc")
    assert fork.finalize() == sm3.digest(b"abx")


def test_hasher_refuses_use_after_finalize() -> None:
    h = sm3.Hasher(b"abc")
    h.finalize()
    with pytest.raises(CryptoError, match="finalized"):
        h.update(b"more")
    with pytest.raises(CryptoError, match="finalized"):
        h.finalize()
    with pytest.raises(CryptoError, match="finalized"):
        h.copy()


def test_digest_of_empty_input_is_stable() -> None:
    # The empty message pads to one block; any SM3 gives this value.
    assert sm3.digest(b"") == _raw_sm3(b"") == sm3.Hasher().finalize()
    assert sm3.digest(b"") != sm3.digest(b"\x00")


# --- HMAC-SM3 --------------------------------------------------------------

# OpenSSL test/recipes/30-test_evp_data/evpmac_sm3.txt; the first is from
# GM/T 0042-2015 Appendix D.3.
HMAC_VECTORS = [
    (
        "0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20",
        b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq" * 2,
        "ca05e144ed05d1857840d1f318a4a8669e559fc8391f414485bfdf7bb408963a",
    ),
    (
        "0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f202122232425",
        bytes.fromhex("cd" * 50),
        "220bf579ded555393f0159f66c99877822a3ecf610d1552154b41d44b94db3ae",
    ),
    (
        "0b" * 32,
        b"Hi There",
        "c0ba18c68b90c88bc07de794bfc7d2c8d19ec31ed8773bc2b390c9604e0be11e",
    ),
    (
        b"Jefe Jeferson Jr".hex(),
        b"what do ya want for nothing?",
        "ce791a34c59adef472997a249600f3f244d59e875be04055ba2ae12fc845e78c",
    ),
]


@pytest.mark.parametrize(("key_hex", "message", "expected"), HMAC_VECTORS)
def test_hmac_published_vectors(key_hex: str, message: bytes, expected: str) -> None:
    key = bytes.fromhex(key_hex)
    assert sm3.hmac(key, message).hex() == expected
    assert _reference_hmac(key, message).hex() == expected
    sm3.verify_hmac(key, message, bytes.fromhex(expected))


@pytest.mark.parametrize("key_len", [1, 16, 32, 63, 64, 65, 200])
@pytest.mark.parametrize("msg_len", [0, 1, 55, 64, 1000])
def test_hmac_matches_independent_rfc2104(key_len: int, msg_len: int) -> None:
    key = bytes((i * 7 + 3) % 256 for i in range(key_len))
    message = bytes(i * 31 % 256 for i in range(msg_len))
    expected = _reference_hmac(key, message)
    assert sm3.hmac(key, message) == expected
    if "sm3" in hashlib.algorithms_available:
        assert std_hmac.new(key, message, "sm3").digest() == expected


@pytest.mark.parametrize("key_len", [1, 32, 65])
def test_hmac_key_equals_hmac_and_is_reusable(key_len: int) -> None:
    key = bytes((i * 5 + 1) % 256 for i in range(key_len))
    keyed = sm3.HmacKey(key)
    for message in (b"", b"a", b"x" * 1000, b"a"):
        assert keyed.mac(message) == sm3.hmac(key, message) == _reference_hmac(key, message)
    with pytest.raises(InvalidKey):
        sm3.HmacKey(b"")


def test_verify_hmac_rejects_every_kind_of_wrong() -> None:
    key, data = b"k" * 32, b"transfer 100 CNY"
    mac = sm3.hmac(key, data)
    sm3.verify_hmac(key, data, mac)
    for i in range(len(mac)):
        bad = bytearray(mac)
        bad[i] ^= 1 << (i % 8)
        with pytest.raises(InvalidSignature):
            sm3.verify_hmac(key, data, bytes(bad))
    for wrong in (mac[:-1], mac + b"\x00", b"", mac[:16]):
        with pytest.raises(InvalidSignature):
            sm3.verify_hmac(key, data, wrong)
    with pytest.raises(InvalidSignature):
        sm3.verify_hmac(b"K" * 32, data, mac)
    with pytest.raises(InvalidSignature):
        sm3.verify_hmac(key, data + b"0", mac)
    with pytest.raises(InvalidSignature):
        sm3.verify_hmac(key, data, mac.hex())  # type: ignore[arg-type]


def test_hmac_rejects_empty_key() -> None:
    with pytest.raises(InvalidKey):
        sm3.hmac(b"", b"data")
    with pytest.raises(InvalidKey):
        sm3.verify_hmac(b"", b"data", b"\x00" * 32)


def test_hmac_failure_message_has_no_secrets() -> None:
    key = b"secret-key-material-0123456789ab"
    with pytest.raises(InvalidSignature) as info:
        sm3.verify_hmac(key, b"plaintext-payload", b"\x00" * 32)
    text = str(info.value)
    assert "secret" not in text and "plaintext" not in text and key.hex() not in text


# --- SM2 KDF ---------------------------------------------------------------

# SM2 encryption example on the recommended curve, GM/T 0003.5-2012 /
# GB/T 32918.5 Annex C (also in OpenSSL test/sm2_internal_test.c): with
# (x2, y2) = [k]P_B, C2 = M xor KDF(x2 || y2, klen) and C3 = SM3(x2 || M || y2).
SM2_X2 = bytes.fromhex("335e18d751e51f040e27d468138b7ab1dc86ad7f981d7d416222fd6ab3ed230d")
SM2_Y2 = bytes.fromhex("ab743ebcfb22d64f7b6ab791f70658f25b48fa93e54064fdbfbed3f0bd847ac9")
SM2_M = b"encryption standard"
SM2_C2 = bytes.fromhex("21886ca989ca9c7d58087307ca93092d651efa")
SM2_C3 = bytes.fromhex("59983c18f809e262923c53aec295d30383b54e39d609d160afcb1908d0bd8766")


def test_kdf_sm2_encryption_example() -> None:
    # C3 pins x2 and y2 to the published example (it is their SM3 hash with M).
    assert sm3.digest(SM2_X2 + SM2_M + SM2_Y2) == SM2_C3
    t = sm3.kdf(SM2_X2 + SM2_Y2, len(SM2_M))
    assert t.hex() == "44e60fdbf0bae81437665374bef26749046c9e"
    assert bytes(a ^ b for a, b in zip(SM2_M, t, strict=True)) == SM2_C2


@pytest.mark.parametrize("length", [1, 16, 31, 32, 33, 64, 65, 100, 1000])
def test_kdf_matches_independent_loop_and_x963(length: int) -> None:
    z = bytes(range(64))
    out = sm3.kdf(z, length)
    assert len(out) == length
    assert out == _reference_kdf(z, length)
    # ANSI X9.63 KDF without SharedInfo is the same construction.
    assert out == X963KDF(hashes.SM3(), length, None).derive(z)


def test_kdf_outputs_are_prefixes_of_each_other() -> None:
    z = b"shared secret"
    long = sm3.kdf(z, 200)
    assert all(sm3.kdf(z, n) == long[:n] for n in (1, 32, 33, 199))
    assert sm3.kdf(z + b"!", 32) != long[:32]


def test_kdf_maximum_length_is_allowed() -> None:
    assert len(sm3.kdf(b"z", sm3.KDF_MAX_LENGTH)) == 2**20


@pytest.mark.parametrize("length", [0, -1, -32, 2**20 + 1, 2**40, True, 1.5, "32"])
def test_kdf_rejects_bad_lengths(length: object) -> None:
    with pytest.raises(CryptoError):
        sm3.kdf(b"z", length)  # type: ignore[arg-type]


# --- PBKDF2-HMAC-SM3 -------------------------------------------------------

SALT = bytes(range(16))


@pytest.mark.parametrize(
    ("iterations", "length"), [(1, 32), (2, 32), (3, 1), (5, 33), (10, 64), (1000, 32)]
)
def test_pbkdf2_matches_independent_rfc8018(iterations: int, length: int) -> None:
    password = b"correct horse battery staple"
    out = sm3.pbkdf2(password, SALT, iterations, length)
    assert len(out) == length
    assert out == _reference_pbkdf2(password, SALT, iterations, length)
    if "sm3" in hashlib.algorithms_available:
        assert out == hashlib.pbkdf2_hmac("sm3", password, SALT, iterations, length)


def test_pbkdf2_depends_on_every_input() -> None:
    base = sm3.pbkdf2(b"pw", SALT, 2)
    assert len(base) == 32
    assert sm3.pbkdf2(b"pw", SALT, 2) == base
    assert sm3.pbkdf2(b"pW", SALT, 2) != base
    assert sm3.pbkdf2(b"pw", SALT[::-1], 2) != base
    assert sm3.pbkdf2(b"pw", SALT, 3) != base


def test_pbkdf2_trailing_nul_equivalence_is_documented_hmac_behaviour() -> None:
    # HMAC zero-pads keys to the block size (RFC 2104 §2), so passwords that
    # differ only by trailing NUL bytes collide. Pinned so the password module
    # knows to reject NUL characters.
    assert sm3.pbkdf2(b"pw", SALT, 1) == sm3.pbkdf2(b"pw\x00\x00", SALT, 1)
    assert sm3.pbkdf2(b"pw", SALT, 1) != sm3.pbkdf2(b"\x00pw", SALT, 1)


@pytest.mark.parametrize(
    ("salt", "iterations", "length", "needle"),
    [
        (b"\x00" * 15, 1, 32, "salt"),
        (b"", 1, 32, "salt"),
        (SALT, 0, 32, "iterations"),
        (SALT, -5, 32, "iterations"),
        (SALT, True, 32, "iterations"),
        (SALT, 2**24 + 1, 32, "iterations"),
        (SALT, 1, 0, "length"),
        (SALT, 1, 1025, "length"),
        (SALT, 1, -1, "length"),
    ],
)
def test_pbkdf2_rejects_bad_parameters(
    salt: bytes, iterations: int, length: int, needle: str
) -> None:
    with pytest.raises(CryptoError, match=needle):
        sm3.pbkdf2(b"password", salt, iterations, length)


def test_pbkdf2_rejects_non_bytes_password() -> None:
    with pytest.raises(CryptoError, match="password"):
        sm3.pbkdf2("hunter2", SALT, 1)  # type: ignore[arg-type]
