"""Algorithm-agnostic keys: loading, JWK import/export, strictness."""

from __future__ import annotations

import pytest

from crypto import keys
from crypto.errors import CryptoError, InvalidKey


@pytest.mark.parametrize("alg", keys.ALGORITHMS)
def test_jwk_round_trip_and_thumbprint(alg: keys.Algorithm) -> None:
    pub = keys.generate(alg).public_key()
    again = keys.PublicKey.from_jwk(pub.to_jwk())
    assert again.algorithm == alg and again.thumbprint() == pub.thumbprint()
    assert keys.load_public(pub.public_pem()).thumbprint() == pub.thumbprint()


@pytest.mark.parametrize("junk", ["!!*", "====", "abc=", "a+b/"])
def test_jwk_members_must_be_strict_base64url(junk: str) -> None:
    jwk = keys.generate("sm2").public_key().to_jwk()
    with pytest.raises(InvalidKey):
        keys.PublicKey.from_jwk({**jwk, "x": jwk["x"] + junk})


def test_padded_base64_refused() -> None:
    jwk = keys.generate("ec-p256").public_key().to_jwk()
    with pytest.raises(InvalidKey):
        keys.PublicKey.from_jwk({**jwk, "x": jwk["x"] + "="})


def test_private_jwk_and_unknown_types_refused() -> None:
    jwk = keys.generate("sm2").public_key().to_jwk()
    with pytest.raises(InvalidKey):
        keys.PublicKey.from_jwk({**jwk, "d": jwk["x"]})
    with pytest.raises(InvalidKey):
        keys.PublicKey.from_jwk({**jwk, "crv": "P-384"})
    with pytest.raises(InvalidKey):
        keys.PublicKey.from_jwk({"kty": "RSA", "n": "AQAB", "e": "AQAB"})


@pytest.mark.parametrize("alg", keys.ALGORITHMS)
def test_unknown_encoding_refused(alg: keys.Algorithm) -> None:
    key = keys.generate(alg)
    with pytest.raises(CryptoError):
        key.sign(b"m", encoding="RAW")  # type: ignore[arg-type]


def test_rsa_keys_refused() -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    pem = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    with pytest.raises(InvalidKey):
        keys.load_private(pem)


def test_encrypted_pem_refused_with_a_clear_message() -> None:
    pem = b"-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n"
    with pytest.raises(InvalidKey, match="encrypted"):
        keys.load_private(pem)
