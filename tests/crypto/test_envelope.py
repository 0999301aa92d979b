"""Tests for crypto.envelope: sealing secrets at rest under a rotating KEK ring."""

from __future__ import annotations

import dataclasses
import json
import os
import stat
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crypto import envelope
from crypto.envelope import KeyEncryptionKeyRing, envelope_kid
from crypto.errors import CryptoError, InvalidCiphertext, InvalidKey

KEK_A = bytes.fromhex("000102030405060708090a0b0c0d0e0f")
KEK_B = bytes.fromhex("f0e0d0c0b0a090807060504030201000")
RING = KeyEncryptionKeyRing({"k1": KEK_A}, "k1")
CTX = b"totp_seed:user:42"

# version(1) kid_len(1) kid(2) wrap_nonce(12) wrapped_dek(32) data_nonce(12) ct(1) tag(16)
SHORT_BLOB_LEN = 1 + 1 + 2 + 12 + 32 + 12 + 1 + 16


def test_round_trip_and_layout() -> None:
    blob = RING.seal(b"JBSWY3DPEHPK3PXP", context=CTX)
    assert RING.open(blob, context=CTX) == b"JBSWY3DPEHPK3PXP"
    assert blob[0] == envelope.VERSION == 1
    assert blob[1] == 2 and blob[2:4] == b"k1"
    assert len(blob) == 4 + 12 + 32 + 12 + 16 + 16
    assert envelope_kid(blob) == "k1"


def test_every_seal_is_fresh() -> None:
    a, b = RING.seal(b"same", context=CTX), RING.seal(b"same", context=CTX)
    assert a != b
    # Different wrap nonce, wrapped DEK, data nonce and ciphertext.
    assert a[4:16] != b[4:16] and a[16:48] != b[16:48] and a[48:60] != b[48:60]
    assert a[60:] != b[60:]


def test_empty_and_maximum_plaintext() -> None:
    assert RING.open(RING.seal(b"", context=CTX), context=CTX) == b""
    big = os.urandom(envelope.MAX_PLAINTEXT_SIZE)
    assert RING.open(RING.seal(big, context=CTX), context=CTX) == big


def test_seal_rejects_oversized_plaintext_and_bad_context() -> None:
    with pytest.raises(CryptoError, match="plaintext"):
        RING.seal(b"\x00" * (envelope.MAX_PLAINTEXT_SIZE + 1), context=CTX)
    for bad in (b"", b"x" * (envelope.MAX_CONTEXT_SIZE + 1), "text"):
        with pytest.raises(CryptoError, match="context"):
            RING.seal(b"secret", context=bad)  # type: ignore[arg-type]


# --- tampering and misuse --------------------------------------------------


@pytest.fixture(scope="module")
def short_blob() -> bytes:
    blob = RING.seal(b"s", context=CTX)
    assert len(blob) == SHORT_BLOB_LEN
    return blob


@pytest.mark.parametrize("pos", range(SHORT_BLOB_LEN))
@pytest.mark.parametrize("mask", [0x01, 0x80, 0xFF])
def test_tampering_any_byte_fails(short_blob: bytes, pos: int, mask: int) -> None:
    bad = bytearray(short_blob)
    bad[pos] ^= mask
    with pytest.raises(InvalidCiphertext):
        RING.open(bytes(bad), context=CTX)
    with pytest.raises(InvalidCiphertext):
        RING.rewrap(bytes(bad), context=CTX)


@pytest.mark.parametrize("cut", range(SHORT_BLOB_LEN))
def test_every_truncation_fails(short_blob: bytes, cut: int) -> None:
    with pytest.raises(InvalidCiphertext):
        RING.open(short_blob[:cut], context=CTX)


def test_swapped_context_fails(short_blob: bytes) -> None:
    for other in (b"totp_seed:user:43", b"refresh_token:user:42", CTX + b"\x00", CTX[:-1]):
        with pytest.raises(InvalidCiphertext):
            RING.open(short_blob, context=other)


def test_empty_or_oversized_context_on_open_is_invalid_ciphertext(short_blob: bytes) -> None:
    for bad in (b"", b"x" * (envelope.MAX_CONTEXT_SIZE + 1)):
        with pytest.raises(InvalidCiphertext):
            RING.open(short_blob, context=bad)


def test_unknown_kid_fails(short_blob: bytes) -> None:
    other = KeyEncryptionKeyRing({"k2": KEK_A}, "k2")
    with pytest.raises(InvalidCiphertext, match="unknown KEK id 'k1'"):
        other.open(short_blob, context=CTX)
    # Same id, different key material: authentication fails.
    impostor = KeyEncryptionKeyRing({"k1": KEK_B}, "k1")
    with pytest.raises(InvalidCiphertext):
        impostor.open(short_blob, context=CTX)


def test_relabelled_kid_fails(short_blob: bytes) -> None:
    # Same KEK registered under two ids: moving the blob to the other id must
    # not open, since the wrap binds the kid.
    ring = KeyEncryptionKeyRing({"k1": KEK_A, "k9": KEK_A}, "k1")
    relabelled = short_blob[:2] + b"k9" + short_blob[4:]
    with pytest.raises(InvalidCiphertext):
        ring.open(relabelled, context=CTX)


@pytest.mark.parametrize("version", [0, 2, 0x7F, 0xFF])
def test_wrong_version_fails(short_blob: bytes, version: int) -> None:
    with pytest.raises(InvalidCiphertext, match="version"):
        RING.open(bytes([version]) + short_blob[1:], context=CTX)


@pytest.mark.parametrize("extra", [1, 16, envelope.MAX_PLAINTEXT_SIZE + 100])
def test_appended_bytes_and_oversized_blobs_fail(short_blob: bytes, extra: int) -> None:
    with pytest.raises(InvalidCiphertext):
        RING.open(short_blob + b"\x00" * extra, context=CTX)


@pytest.mark.parametrize(
    "blob",
    [b"", b"\x01", b"\x01\x00" + b"\x00" * 100, b"\x01\x21" + b"k" * 33 + b"\x00" * 100],
)
def test_malformed_headers_fail(blob: bytes) -> None:
    with pytest.raises(InvalidCiphertext):
        RING.open(blob, context=CTX)


@pytest.mark.parametrize("blob", ["text", bytearray(b"\x01"), None, 7])
def test_non_bytes_blob_fails(blob: object) -> None:
    with pytest.raises(InvalidCiphertext):
        RING.open(blob, context=CTX)  # type: ignore[arg-type]


def test_spliced_data_from_another_blob_fails() -> None:
    a = RING.seal(b"alice", context=CTX)
    b = RING.seal(b"bobby", context=CTX)
    with pytest.raises(InvalidCiphertext):
        RING.open(a[:48] + b[48:], context=CTX)


# --- rotation --------------------------------------------------------------


def test_rotation_lifecycle() -> None:
    old_ring = KeyEncryptionKeyRing({"2024": KEK_A}, "2024")
    old_blob = old_ring.seal(b"private key", context=CTX)

    rotated = old_ring.with_key("2025", KEK_B, activate=True)
    assert rotated.active == "2025" and rotated.kids == ("2024", "2025")
    assert old_ring.active == "2024"  # the original ring is untouched
    assert rotated.open(old_blob, context=CTX) == b"private key"
    assert envelope_kid(rotated.seal(b"new", context=CTX)) == "2025"

    moved = rotated.rewrap(old_blob, context=CTX)
    assert envelope_kid(moved) == "2025"
    assert moved[-(12 + 11 + 16) :] == old_blob[-(12 + 11 + 16) :]  # data part copied
    assert rotated.open(moved, context=CTX) == b"private key"
    assert rotated.rewrap(moved, context=CTX) == moved  # already current

    retired = rotated.without_key("2024")
    assert retired.kids == ("2025",)
    assert retired.open(moved, context=CTX) == b"private key"
    with pytest.raises(InvalidCiphertext, match="unknown KEK"):
        retired.open(old_blob, context=CTX)
    with pytest.raises(InvalidCiphertext):
        old_ring.open(moved, context=CTX)


def test_rewrap_checks_context_and_data() -> None:
    ring = RING.with_key("k2", KEK_B, activate=True)
    blob = RING.seal(b"secret", context=CTX)
    with pytest.raises(InvalidCiphertext):
        ring.rewrap(blob, context=b"another:record")
    corrupt = blob[:-1] + bytes([blob[-1] ^ 1])
    with pytest.raises(InvalidCiphertext):
        ring.rewrap(corrupt, context=CTX)


def test_with_active_switches_sealing_key() -> None:
    ring = RING.with_key("k2", KEK_B)
    assert ring.active == "k1"
    assert envelope_kid(ring.with_active("k2").seal(b"x", context=CTX)) == "k2"
    with pytest.raises(InvalidKey):
        ring.with_active("nope")


# --- ring construction -----------------------------------------------------


@pytest.mark.parametrize(
    ("keys", "active"),
    [
        ({"k1": KEK_A}, "k2"),
        ({"k1": KEK_A[:15]}, "k1"),
        ({"k1": KEK_A + b"\x00"}, "k1"),
        ({"k1": KEK_A.hex()}, "k1"),
        ({"": KEK_A}, ""),
        ({"bad kid": KEK_A}, "bad kid"),
        ({"k" * 33: KEK_A}, "k" * 33),
        ({"-lead": KEK_A}, "-lead"),
        ({"ключ": KEK_A}, "ключ"),
        ({}, "k1"),
    ],
)
def test_ring_rejects_bad_construction(keys: dict[str, object], active: str) -> None:
    with pytest.raises(InvalidKey):
        KeyEncryptionKeyRing(keys, active)  # type: ignore[arg-type]


def test_ring_edit_guards() -> None:
    with pytest.raises(InvalidKey, match="already"):
        RING.with_key("k1", KEK_B)
    with pytest.raises(InvalidKey, match="active"):
        RING.without_key("k1")
    with pytest.raises(InvalidKey, match="not in the ring"):
        RING.without_key("zz")


def test_ring_is_immutable() -> None:
    source = {"k1": KEK_A}
    ring = KeyEncryptionKeyRing(source, "k1")
    source["k1"] = KEK_B
    assert ring.keys["k1"] == KEK_A
    with pytest.raises(TypeError):
        ring.keys["k2"] = KEK_B  # type: ignore[index]
    with pytest.raises(dataclasses.FrozenInstanceError):
        ring.active = "k2"  # type: ignore[misc]


def test_generate_makes_a_fresh_single_key_ring() -> None:
    a, b = KeyEncryptionKeyRing.generate(kid="boot"), KeyEncryptionKeyRing.generate(kid="boot")
    assert a.kids == ("boot",) and a.active == "boot"
    assert len(a.keys["boot"]) == 16 and a.keys["boot"] != b.keys["boot"]
    with pytest.raises(InvalidCiphertext):
        b.open(a.seal(b"x", context=CTX), context=CTX)


def test_repr_never_shows_key_material() -> None:
    ring = RING.with_key("k2", KEK_B)
    for text in (repr(ring), str(ring), f"{ring!r}", f"{ring}"):
        for key in (KEK_A, KEK_B):
            assert key.hex() not in text.lower()
            assert repr(key) not in text
        assert "k1" in text and "k2" in text


# --- key files -------------------------------------------------------------


def test_key_file_round_trip_and_mode(tmp_path: Path) -> None:
    path = tmp_path / "kek.json"
    ring = RING.with_key("k2", KEK_B, activate=True)
    old_umask = os.umask(0)  # even a permissive umask must not widen the mode
    try:
        ring.to_file(path)
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert json.loads(path.read_text()) == {
        "active": "k2",
        "keys": {"k1": KEK_A.hex(), "k2": KEK_B.hex()},
    }
    loaded = KeyEncryptionKeyRing.from_file(path)
    assert loaded.active == "k2" and dict(loaded.keys) == dict(ring.keys)
    assert loaded.open(ring.seal(b"x", context=CTX), context=CTX) == b"x"


def test_to_file_never_overwrites_or_follows_symlinks(tmp_path: Path) -> None:
    existing = tmp_path / "existing.json"
    existing.write_text("keep me")
    with pytest.raises(FileExistsError):
        RING.to_file(existing)
    assert existing.read_text() == "keep me"
    target = tmp_path / "target"
    link = tmp_path / "link.json"
    link.symlink_to(target)
    with pytest.raises(FileExistsError):
        RING.to_file(link)
    assert not target.exists()


SECRET_HEX = "00112233445566778899aabbccddeeff"


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"not json",
        b"\xff\xfe garbage",
        b"[" * 5000,
        b"[]",
        json.dumps({"active": "k1"}).encode(),
        json.dumps({"active": "k1", "keys": {}}).encode(),
        json.dumps({"active": "k1", "keys": {"k1": SECRET_HEX[:-1]}}).encode(),
        json.dumps({"active": "k1", "keys": {"k1": SECRET_HEX + "00"}}).encode(),
        json.dumps({"active": "k1", "keys": {"k1": "zz" * 16}}).encode(),
        json.dumps({"active": "k1", "keys": {"k1": 5}}).encode(),
        json.dumps({"active": "k2", "keys": {"k1": SECRET_HEX}}).encode(),
        json.dumps({"active": 1, "keys": {"k1": SECRET_HEX}}).encode(),
        json.dumps({"active": "k1", "keys": {"k1": SECRET_HEX}, "x": 1}).encode(),
        json.dumps({"active": "k1", "keys": [SECRET_HEX]}).encode(),
        json.dumps({"active": "bad kid", "keys": {"bad kid": SECRET_HEX}}).encode(),
        b" " * (envelope.MAX_KEY_FILE_SIZE + 1),
    ],
)
def test_from_file_rejects_bad_content(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "kek.json"
    path.write_bytes(content)
    with pytest.raises(InvalidKey) as info:
        KeyEncryptionKeyRing.from_file(path)
    assert SECRET_HEX[:8] not in str(info.value)


# --- properties ------------------------------------------------------------


@settings(max_examples=150, deadline=None)
@given(plaintext=st.binary(max_size=2048), context=st.binary(min_size=1, max_size=256))
def test_seal_open_round_trip_property(plaintext: bytes, context: bytes) -> None:
    blob = RING.seal(plaintext, context=context)
    assert RING.open(blob, context=context) == plaintext
    assert len(blob) == 4 + 12 + 32 + 12 + len(plaintext) + 16


VALID_BLOB = RING.seal(b"valid secret", context=CTX)


@st.composite
def mangled_blobs(draw: st.DrawFn) -> bytes:
    """Near-valid blobs: a real one with random edits, truncation or padding."""
    blob = bytearray(VALID_BLOB)
    for _ in range(draw(st.integers(0, 3))):
        blob[draw(st.integers(0, len(blob) - 1))] = draw(st.integers(0, 255))
    cut = draw(st.integers(0, len(blob)))
    return bytes(blob[:cut]) + draw(st.binary(max_size=40))


@settings(max_examples=400, deadline=None)
@given(blob=st.binary(max_size=300) | mangled_blobs(), context=st.binary(max_size=64))
def test_open_of_arbitrary_bytes_only_raises_invalid_ciphertext(
    blob: bytes, context: bytes
) -> None:
    for ctx in (context, CTX):
        try:
            result = RING.open(blob, context=ctx)
        except InvalidCiphertext:
            continue
        # Only the untouched blob with the right context may open.
        assert (blob, ctx, result) == (VALID_BLOB, CTX, b"valid secret")


def test_to_file_removes_partial_file_on_failure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken_fsync(fd: int) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    path = tmp_path / "kek.json"
    with pytest.raises(OSError, match="disk full"):
        RING.to_file(path)
    assert not path.exists()
