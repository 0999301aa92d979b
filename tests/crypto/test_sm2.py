"""SM2: standard vectors, encodings, and an attacker's view of every input."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crypto import sm2
from crypto.errors import CryptoError, InvalidCiphertext, InvalidKey, InvalidSignature

# GM/T 0003.5-2012 / GB/T 32918.5-2016 Annex A and C, recommended curve.
ANNEX_D = 0x3945208F7B2144B13F36E38AC6D39F95889393692860B51A42FB81EF4DF7C5B8
ANNEX_PUB = bytes.fromhex(
    "0409F9DF311E5421A150DD7D161E4BC5C672179FAD1833FC076BB08FF356F35020"
    "CCEA490CE26775A52DC6EA718CC1AA600AED05FBF35E084A6632F6072DA9AD13"
)
ANNEX_A_SIG = bytes.fromhex(
    "F5A03B0648D2C4630EEAC513E1BB81A15944DA3827D5B74143AC7EACEEE720B3"
    "B1B6AA29DF212FD8763182BC0D421CA1BB9038FD1F7F42D4840B69C485BBC1AA"
)
ANNEX_C_CT = bytes.fromhex(
    "307C"
    "022004EBFC718E8D1798620432268E77FEB6415E2EDE0E073C0F4F640ECD2E149A73"
    "02210"
    "0E858F9D81E5430A57B36DAAB8F950A3C64E6EE6A63094D99283AFF767E124DF0"
    "042059983C18F809E262923C53AEC295D30383B54E39D609D160AFCB1908D0BD8766"
    "041321886CA989CA9C7D58087307CA93092D651EFA"
)


@pytest.fixture(scope="module")
def annex_key() -> sm2.SM2PrivateKey:
    return sm2.SM2PrivateKey.from_private_value(ANNEX_D)


@pytest.fixture(scope="module")
def key() -> sm2.SM2PrivateKey:
    return sm2.SM2PrivateKey.generate()


def test_annex_public_key_derivation(annex_key: sm2.SM2PrivateKey) -> None:
    assert annex_key.public_key().point == ANNEX_PUB


def test_annex_a_signature_verifies() -> None:
    pub = sm2.SM2PublicKey.from_encoded_point(ANNEX_PUB)
    pub.verify(ANNEX_A_SIG, b"message digest", encoding="raw")
    pub.verify(sm2.signature_to_der(ANNEX_A_SIG), b"message digest")


def test_annex_a_needs_the_right_distinguishing_id() -> None:
    pub = sm2.SM2PublicKey.from_encoded_point(ANNEX_PUB)
    with pytest.raises(InvalidSignature):
        pub.verify(ANNEX_A_SIG, b"message digest", encoding="raw", distinguishing_id=b"")


def test_annex_c_ciphertext_decrypts(annex_key: sm2.SM2PrivateKey) -> None:
    assert annex_key.decrypt(ANNEX_C_CT) == b"encryption standard"
    raw = sm2.ciphertext_to_raw(ANNEX_C_CT)
    assert annex_key.decrypt(raw, encoding="raw") == b"encryption standard"
    assert sm2.ciphertext_to_der(raw) == ANNEX_C_CT


@pytest.mark.parametrize("encoding", ["der", "raw"])
def test_sign_verify_round_trip(key: sm2.SM2PrivateKey, encoding: sm2.Encoding) -> None:
    sig = key.sign(b"transfer 100 CNY", encoding=encoding)
    key.public_key().verify(sig, b"transfer 100 CNY", encoding=encoding)
    if encoding == "raw":
        assert len(sig) == 64


def test_custom_distinguishing_id(key: sm2.SM2PrivateKey) -> None:
    sig = key.sign(b"m", distinguishing_id=b"ALICE123@YAHOO.COM")
    key.public_key().verify(sig, b"m", distinguishing_id=b"ALICE123@YAHOO.COM")
    with pytest.raises(InvalidSignature):
        key.public_key().verify(sig, b"m")


def test_two_signatures_of_one_message_differ(key: sm2.SM2PrivateKey) -> None:
    sigs = {key.sign(b"same message") for _ in range(20)}
    assert len(sigs) == 20


def test_signature_bit_flips_rejected(key: sm2.SM2PrivateKey) -> None:
    sig = key.sign(b"m", encoding="raw")
    for i in range(0, 64 * 8, 7):
        bad = bytearray(sig)
        bad[i // 8] ^= 1 << (i % 8)
        with pytest.raises(InvalidSignature):
            key.public_key().verify(bytes(bad), b"m", encoding="raw")


def test_der_signature_bit_flips_rejected(key: sm2.SM2PrivateKey) -> None:
    sig = key.sign(b"m")
    for i in range(len(sig) * 8):
        bad = bytearray(sig)
        bad[i // 8] ^= 1 << (i % 8)
        with pytest.raises(InvalidSignature):
            key.public_key().verify(bytes(bad), b"m")


def test_message_tamper_and_wrong_key_rejected(key: sm2.SM2PrivateKey) -> None:
    sig = key.sign(b"pay 1")
    with pytest.raises(InvalidSignature):
        key.public_key().verify(sig, b"pay 2")
    other = sm2.SM2PrivateKey.generate().public_key()
    with pytest.raises(InvalidSignature):
        other.verify(sig, b"pay 1")


@pytest.mark.parametrize(
    "der",
    [
        b"",
        b"\x30\x00",
        bytes.fromhex("3006020100020101"),  # r = 0
        bytes.fromhex("30070202000102010101"),  # non-minimal INTEGER
        bytes.fromhex("3081060201010201010000"),  # non-minimal length
    ],
)
def test_malformed_der_signatures_rejected(key: sm2.SM2PrivateKey, der: bytes) -> None:
    with pytest.raises(InvalidSignature):
        key.public_key().verify(der, b"m")


def test_signature_with_trailing_bytes_rejected(key: sm2.SM2PrivateKey) -> None:
    sig = key.sign(b"m")
    with pytest.raises(InvalidSignature):
        key.public_key().verify(sig + b"\x00", b"m")


def test_signature_s_out_of_range_rejected(key: sm2.SM2PrivateKey) -> None:
    raw = key.sign(b"m", encoding="raw")
    with pytest.raises(InvalidSignature):
        key.public_key().verify(raw[:32] + sm2.N.to_bytes(32, "big"), b"m", encoding="raw")


@pytest.mark.parametrize("encoding", ["der", "raw"])
def test_encrypt_decrypt_round_trip(key: sm2.SM2PrivateKey, encoding: sm2.Encoding) -> None:
    ct = key.public_key().encrypt(b"TOTP seed 1234", encoding=encoding)
    assert key.decrypt(ct, encoding=encoding) == b"TOTP seed 1234"


def test_ciphertext_tampering_in_c1_c3_c2_rejected(key: sm2.SM2PrivateKey) -> None:
    raw = key.public_key().encrypt(b"secret payload", encoding="raw")
    # C1 = raw[1:65], C3 = raw[65:97], C2 = raw[97:]
    for pos in (1, 20, 40, 64, 65, 80, 96, 97, len(raw) - 1):
        bad = bytearray(raw)
        bad[pos] ^= 0x01
        with pytest.raises(InvalidCiphertext):
            key.decrypt(bytes(bad), encoding="raw")


def test_ciphertext_for_another_key_rejected(key: sm2.SM2PrivateKey) -> None:
    ct = sm2.SM2PrivateKey.generate().public_key().encrypt(b"x")
    with pytest.raises(InvalidCiphertext):
        key.decrypt(ct)


def test_empty_and_oversized_plaintext_refused(key: sm2.SM2PrivateKey) -> None:
    with pytest.raises(CryptoError):
        key.public_key().encrypt(b"")
    with pytest.raises(CryptoError):
        key.public_key().encrypt(b"x" * (sm2.MAX_PLAINTEXT + 1))


def test_key_round_trips(key: sm2.SM2PrivateKey) -> None:
    again = sm2.SM2PrivateKey.from_pem(key.private_pem())
    assert again.public_key() == key.public_key()
    assert sm2.SM2PrivateKey.from_der(key.private_der()).public_key() == key.public_key()
    pub = sm2.SM2PublicKey.from_pem(key.public_key().public_pem())
    assert pub == key.public_key()
    assert sm2.SM2PublicKey.from_encoded_point(pub.point[1:]) == pub


def test_repr_never_shows_private_material(key: sm2.SM2PrivateKey) -> None:
    d_hex = key.private_der().hex()
    assert "PRIVATE" not in repr(key)
    assert d_hex[-64:] not in repr(key)


def test_point_not_on_curve_rejected() -> None:
    bad = bytearray(ANNEX_PUB)
    bad[-1] ^= 1
    with pytest.raises(InvalidKey):
        sm2.SM2PublicKey.from_encoded_point(bytes(bad))


def test_key_file_bit_flips_rejected_or_change_the_key(key: sm2.SM2PrivateKey) -> None:
    der = key.public_key().public_der()
    for i in range(len(der)):
        bad = bytearray(der)
        bad[i] ^= 0x04
        try:
            other = sm2.SM2PublicKey.from_der(bytes(bad))
        except InvalidKey:
            continue
        assert other != key.public_key()  # never silently the same key


def test_wrong_curve_key_rejected() -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    p256 = ec.generate_private_key(ec.SECP256R1())
    der = p256.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    with pytest.raises(InvalidKey):
        sm2.SM2PrivateKey.from_der(der)


def test_private_value_range_checked() -> None:
    for d in (0, sm2.N - 1, sm2.N, -1):
        with pytest.raises(InvalidKey):
            sm2.SM2PrivateKey.from_private_value(d)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_signature_parser_never_crashes(data: bytes) -> None:
    try:
        raw = sm2.signature_to_raw(data)
    except InvalidSignature:
        return
    assert sm2.signature_to_raw(sm2.signature_to_der(raw)) == raw
    assert sm2.signature_to_der(raw) == data  # only canonical DER is accepted


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_decrypt_of_arbitrary_bytes_only_raises_invalid_ciphertext(data: bytes) -> None:
    key = sm2.SM2PrivateKey.from_private_value(ANNEX_D)
    for encoding in ("der", "raw"):
        with pytest.raises(InvalidCiphertext):
            key.decrypt(data, encoding=encoding)  # type: ignore[arg-type]


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_key_loaders_only_raise_invalid_key(data: bytes) -> None:
    for loader in (sm2.SM2PrivateKey.from_der, sm2.SM2PublicKey.from_der):
        with contextlib.suppress(InvalidKey):
            loader(data)


@pytest.mark.parametrize("encoding", ["DER", "RAW", "pem", ""])
def test_unknown_encoding_refused(key: sm2.SM2PrivateKey, encoding: str) -> None:
    sig = key.sign(b"m")
    with pytest.raises(CryptoError):
        key.sign(b"m", encoding=encoding)  # type: ignore[arg-type]
    with pytest.raises(CryptoError):
        key.public_key().verify(sig, b"m", encoding=encoding)  # type: ignore[arg-type]
    with pytest.raises(CryptoError):
        key.public_key().encrypt(b"m", encoding=encoding)  # type: ignore[arg-type]
