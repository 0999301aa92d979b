"""Tests for crypto.sm4: the SM4 block cipher, SM4-GCM, and legacy CBC/CTR."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from hypothesis import given, settings
from hypothesis import strategies as st

from crypto import sm4
from crypto.errors import CryptoError, InvalidCiphertext, InvalidKey

# GB/T 32907-2016 Appendix A: key = plaintext for both examples.
STD_KEY = bytes.fromhex("0123456789abcdeffedcba9876543210")


def _ecb(key: bytes) -> Cipher[modes.ECB]:
    # ECB stays out of crypto.sm4's API; the tests reach the raw block cipher here.
    return Cipher(algorithms.SM4(key), modes.ECB())


# --- the block cipher ------------------------------------------------------


def test_block_cipher_example_1() -> None:
    enc = _ecb(STD_KEY).encryptor()
    assert enc.update(STD_KEY).hex() == "681edf34d206965e86b3e94f536e4246"
    dec = _ecb(STD_KEY).decryptor()
    assert dec.update(bytes.fromhex("681edf34d206965e86b3e94f536e4246")) == STD_KEY


def test_block_cipher_example_2_one_million_iterations() -> None:
    update = _ecb(STD_KEY).encryptor().update
    block = STD_KEY
    for _ in range(1_000_000):
        block = update(block)
    assert block.hex() == "595298c7c6fd271f0402f804c33d3f66"


def test_ecb_is_not_part_of_the_public_api() -> None:
    assert not [name for name in dir(sm4) if "ecb" in name.lower()]


def test_generated_keys_and_nonces() -> None:
    keys = {sm4.generate_key() for _ in range(64)}
    nonces = {sm4.generate_nonce() for _ in range(64)}
    assert len(keys) == len(nonces) == 64
    assert all(len(k) == sm4.KEY_SIZE == 16 for k in keys)
    assert all(len(n) == sm4.NONCE_SIZE == 12 for n in nonces)


# --- SM4-GCM ---------------------------------------------------------------

# RFC 8998 Appendix A.1 (same values in OpenSSL's evpciph_sm4.txt).
GCM_KEY = STD_KEY
GCM_NONCE = bytes.fromhex("00001234567800000000abcd")
GCM_AAD = bytes.fromhex("feedfacedeadbeeffeedfacedeadbeefabaddad2")
GCM_PT = bytes.fromhex(
    "aaaaaaaaaaaaaaaabbbbbbbbbbbbbbbbccccccccccccccccdddddddddddddddd"
    "eeeeeeeeeeeeeeeeffffffffffffffffeeeeeeeeeeeeeeeeaaaaaaaaaaaaaaaa"
)
GCM_CT = bytes.fromhex(
    "17f399f08c67d5ee19d0dc9969c4bb7d5fd46fd3756489069157b282bb200735"
    "d82710ca5c22f0ccfa7cbf93d496ac15a56834cbcf98c397b4024a2691233b8d"
)
GCM_TAG = bytes.fromhex("83de3541e4c2b58177e065a9bf7b62ec")


def test_gcm_rfc8998_encrypt() -> None:
    assert sm4.SM4GCM(GCM_KEY).encrypt(GCM_NONCE, GCM_PT, GCM_AAD) == GCM_CT + GCM_TAG


def test_gcm_rfc8998_decrypt() -> None:
    assert sm4.SM4GCM(GCM_KEY).decrypt(GCM_NONCE, GCM_CT + GCM_TAG, GCM_AAD) == GCM_PT


def test_gcm_none_and_empty_aad_are_the_same() -> None:
    gcm = sm4.SM4GCM(GCM_KEY)
    sealed = gcm.encrypt(GCM_NONCE, b"x", None)
    assert sealed == gcm.encrypt(GCM_NONCE, b"x", b"")
    assert gcm.decrypt(GCM_NONCE, sealed, b"") == b"x"


def test_gcm_empty_plaintext_is_just_a_tag() -> None:
    gcm = sm4.SM4GCM(GCM_KEY)
    sealed = gcm.encrypt(GCM_NONCE, b"", GCM_AAD)
    assert len(sealed) == sm4.TAG_SIZE
    assert gcm.decrypt(GCM_NONCE, sealed, GCM_AAD) == b""


def _flip(data: bytes, bit: int) -> bytes:
    out = bytearray(data)
    out[bit // 8] ^= 1 << (bit % 8)
    return bytes(out)


SEALED = GCM_CT + GCM_TAG
# Every byte of the ciphertext||tag gets one bit flipped, cycling the bit
# position; nonce and AAD get a spread of positions.
SEALED_BITS = [i * 8 + i % 8 for i in range(len(SEALED))]
NONCE_BITS = [0, 7, 13, 40, 64, 95]
AAD_BITS = [0, 1, 63, 80, 127, 159]


@pytest.mark.parametrize("bit", SEALED_BITS)
def test_gcm_any_ciphertext_or_tag_bit_flip_fails(bit: int) -> None:
    with pytest.raises(InvalidCiphertext):
        sm4.SM4GCM(GCM_KEY).decrypt(GCM_NONCE, _flip(SEALED, bit), GCM_AAD)


@pytest.mark.parametrize("bit", NONCE_BITS)
def test_gcm_nonce_bit_flip_fails(bit: int) -> None:
    with pytest.raises(InvalidCiphertext):
        sm4.SM4GCM(GCM_KEY).decrypt(_flip(GCM_NONCE, bit), SEALED, GCM_AAD)


@pytest.mark.parametrize("bit", AAD_BITS)
def test_gcm_aad_bit_flip_fails(bit: int) -> None:
    with pytest.raises(InvalidCiphertext):
        sm4.SM4GCM(GCM_KEY).decrypt(GCM_NONCE, SEALED, _flip(GCM_AAD, bit))


def test_gcm_wrong_key_missing_or_extra_aad_fail() -> None:
    with pytest.raises(InvalidCiphertext):
        sm4.SM4GCM(sm4.generate_key()).decrypt(GCM_NONCE, SEALED, GCM_AAD)
    with pytest.raises(InvalidCiphertext):
        sm4.SM4GCM(GCM_KEY).decrypt(GCM_NONCE, SEALED, None)
    with pytest.raises(InvalidCiphertext):
        sm4.SM4GCM(GCM_KEY).decrypt(GCM_NONCE, SEALED, GCM_AAD + b"\x00")


@pytest.mark.parametrize("cut", [1, 15, 16, 17, len(SEALED) - 1, len(SEALED)])
def test_gcm_truncated_ciphertext_fails(cut: int) -> None:
    with pytest.raises(InvalidCiphertext):
        sm4.SM4GCM(GCM_KEY).decrypt(GCM_NONCE, SEALED[:-cut], GCM_AAD)


def test_gcm_appended_byte_fails() -> None:
    with pytest.raises(InvalidCiphertext):
        sm4.SM4GCM(GCM_KEY).decrypt(GCM_NONCE, SEALED + b"\x00", GCM_AAD)


@pytest.mark.parametrize("key", [b"", b"\x00" * 15, b"\x00" * 17, b"\x00" * 32, "0" * 16])
def test_gcm_wrong_key_length_is_invalid_key(key: object) -> None:
    with pytest.raises(InvalidKey):
        sm4.SM4GCM(key)  # type: ignore[arg-type]


@pytest.mark.parametrize("size", [0, 8, 11, 13, 16])
def test_gcm_wrong_nonce_length_is_rejected(size: int) -> None:
    gcm = sm4.SM4GCM(GCM_KEY)
    with pytest.raises(CryptoError, match="nonce"):
        gcm.encrypt(b"\x00" * size, b"data", None)
    with pytest.raises(InvalidCiphertext):
        gcm.decrypt(b"\x00" * size, SEALED, GCM_AAD)


def test_gcm_failure_messages_are_uniform_and_secret_free() -> None:
    gcm = sm4.SM4GCM(GCM_KEY)
    messages = set()
    for nonce, data, aad in [
        (GCM_NONCE, _flip(SEALED, 0), GCM_AAD),
        (GCM_NONCE, SEALED, b""),
        (b"short", SEALED, GCM_AAD),
        (GCM_NONCE, b"", GCM_AAD),
    ]:
        with pytest.raises(InvalidCiphertext) as info:
            gcm.decrypt(nonce, data, aad)
        messages.add(str(info.value))
    assert len(messages) == 1
    assert GCM_KEY.hex() not in messages.pop()


def test_gcm_repr_hides_key() -> None:
    text = repr(sm4.SM4GCM(GCM_KEY)) + str(sm4.SM4GCM(GCM_KEY))
    assert GCM_KEY.hex() not in text.lower() and "redacted" in text


@settings(max_examples=150, deadline=None)
@given(
    key=st.binary(min_size=16, max_size=16),
    nonce=st.binary(min_size=12, max_size=12),
    data=st.binary(max_size=300),
    aad=st.none() | st.binary(max_size=100),
)
def test_gcm_round_trip_property(key: bytes, nonce: bytes, data: bytes, aad: bytes | None) -> None:
    gcm = sm4.SM4GCM(key)
    sealed = gcm.encrypt(nonce, data, aad)
    assert len(sealed) == len(data) + sm4.TAG_SIZE
    assert gcm.decrypt(nonce, sealed, aad) == data


# --- CBC (legacy) ----------------------------------------------------------

# OpenSSL test/recipes/30-test_evp_data/evpciph_sm4.txt (from
# draft-ribose-cfrg-sm4), run there without padding: our PKCS#7 output must
# start with these blocks.
CBC_IV = STD_KEY
CBC_PT_2 = STD_KEY * 2
CBC_CT_2 = bytes.fromhex("2677f46b09c122cc975533105bd4a22af6125f7275ce552c3a2bbcf533de8a3b")


@pytest.mark.parametrize("blocks", [1, 2])
def test_cbc_known_answer(blocks: int) -> None:
    ct = sm4.cbc_encrypt(STD_KEY, CBC_IV, CBC_PT_2[: 16 * blocks])
    assert len(ct) == 16 * (blocks + 1)
    assert ct[: 16 * blocks] == CBC_CT_2[: 16 * blocks]
    # The trailing block is a full block of 0x10 padding, CBC-chained.
    pad_in = bytes(a ^ 0x10 for a in ct[16 * blocks - 16 : 16 * blocks])
    assert ct[-16:] == _ecb(STD_KEY).encryptor().update(pad_in)
    assert sm4.cbc_decrypt(STD_KEY, CBC_IV, ct) == CBC_PT_2[: 16 * blocks]


@pytest.mark.parametrize("length", [0, 1, 15, 16, 17, 31, 32, 33, 100])
def test_cbc_round_trip(length: int) -> None:
    key, iv = sm4.generate_key(), sm4.generate_key()
    pt = bytes(range(length))
    ct = sm4.cbc_encrypt(key, iv, pt)
    assert len(ct) == (length // 16 + 1) * 16
    assert sm4.cbc_decrypt(key, iv, ct) == pt


def _raw_cbc(key: bytes, iv: bytes, padded: bytes) -> bytes:
    enc = Cipher(algorithms.SM4(key), modes.CBC(iv)).encryptor()
    return enc.update(padded) + enc.finalize()


@pytest.mark.parametrize(
    "last_block",
    [
        b"A" * 15 + b"\x00",  # pad length zero
        b"A" * 15 + b"\x11",  # pad length > block
        b"A" * 14 + b"\x03\x02",  # inconsistent bytes
        b"A" * 13 + b"\x02\x03\x03",
        b"A" * 16,  # 0x41 = 65
        b"\x10" * 15 + b"\x0f",
    ],
)
def test_cbc_bad_padding_is_invalid_ciphertext(last_block: bytes) -> None:
    key, iv = STD_KEY, CBC_IV
    ct = _raw_cbc(key, iv, b"B" * 16 + last_block)
    with pytest.raises(InvalidCiphertext, match=r"^SM4-CBC decryption failed$"):
        sm4.cbc_decrypt(key, iv, ct)


@pytest.mark.parametrize(
    ("iv", "ciphertext"),
    [
        (CBC_IV, b""),
        (CBC_IV, CBC_CT_2[:15]),
        (CBC_IV, CBC_CT_2[:17]),
        (CBC_IV[:15], CBC_CT_2),
        (b"", CBC_CT_2),
    ],
)
def test_cbc_malformed_input_same_message(iv: bytes, ciphertext: bytes) -> None:
    with pytest.raises(InvalidCiphertext, match=r"^SM4-CBC decryption failed$"):
        sm4.cbc_decrypt(STD_KEY, iv, ciphertext)


def test_cbc_rejects_bad_key_and_iv() -> None:
    with pytest.raises(InvalidKey):
        sm4.cbc_encrypt(b"short", CBC_IV, b"x")
    with pytest.raises(InvalidKey):
        sm4.cbc_decrypt(b"\x00" * 24, CBC_IV, CBC_CT_2)
    with pytest.raises(CryptoError, match="IV"):
        sm4.cbc_encrypt(STD_KEY, b"\x00" * 12, b"x")


# --- CTR (legacy) ----------------------------------------------------------

# OpenSSL test/recipes/30-test_evp_data/evpciph_sm4.txt, SM4-CTR.
CTR_PT = bytes.fromhex(
    "aaaaaaaaaaaaaaaabbbbbbbbbbbbbbbbccccccccccccccccdddddddddddddddd"
    "eeeeeeeeeeeeeeeeffffffffffffffffeeeeeeeeeeeeeeeeaaaaaaaaaaaaaaaa"
)
CTR_CT = bytes.fromhex(
    "c2b4759e78ac3cf43d0852f4e8d5f9fd7256e8a5fcb65a350ee00630912e4449"
    "2a0b17e1b85b060d0fba612d8a95831638b361fd5ffacd942f081485a83ca35d"
)


def test_ctr_known_answer() -> None:
    assert sm4.ctr_crypt(STD_KEY, STD_KEY, CTR_PT) == CTR_CT
    assert sm4.ctr_crypt(STD_KEY, STD_KEY, CTR_CT) == CTR_PT


def test_ctr_counter_is_one_128_bit_integer() -> None:
    start = b"\xff" * 16
    keystream = sm4.ctr_crypt(STD_KEY, start, b"\x00" * 32)
    enc = _ecb(STD_KEY).encryptor()
    assert keystream == enc.update(start) + enc.update(b"\x00" * 16)


@pytest.mark.parametrize("length", [0, 1, 16, 17, 100])
def test_ctr_round_trip_and_length(length: int) -> None:
    key, block = sm4.generate_key(), sm4.generate_key()
    pt = bytes(range(length))
    ct = sm4.ctr_crypt(key, block, pt)
    assert len(ct) == length
    assert sm4.ctr_crypt(key, block, ct) == pt


def test_ctr_rejects_bad_key_and_counter_block() -> None:
    with pytest.raises(InvalidKey):
        sm4.ctr_crypt(b"\x00" * 8, STD_KEY, b"x")
    with pytest.raises(CryptoError, match="counter block"):
        sm4.ctr_crypt(STD_KEY, b"\x00" * 12, b"x")
