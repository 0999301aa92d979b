"""Signing keys of every algorithm ztgate accepts, behind one small interface.

SM2 is the default; ECDSA P-256 (ES256) and Ed25519 (EdDSA) stand beside it
for partners who need them. Nothing else is accepted: an RSA or other-curve key
is an `InvalidKey`, so that a configuration mistake cannot silently downgrade.

Signature encodings (``encoding=``):
- sm2 and ec-p256: ``"der"`` (X9.62 / GM/T 0009 SEQUENCE{r, s}) or ``"raw"``
  (``r || s``, 64 bytes — the JWS form, RFC 7518 §3.4);
- ed25519: always the 64-byte RFC 8032 signature; both encodings mean it.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any, Literal, get_args

from cryptography.exceptions import InvalidSignature as _CryptographyInvalidSignature
from cryptography.exceptions import UnsupportedAlgorithm as _CryptographyUnsupported
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

from crypto import pem, sm2
from crypto.errors import CryptoError, InvalidKey, InvalidSignature, UnsupportedAlgorithm

Algorithm = Literal["sm2", "ec-p256", "ed25519"]
ALGORITHMS: tuple[Algorithm, ...] = get_args(Algorithm)
Encoding = Literal["der", "raw"]

JWS_ALG: dict[Algorithm, str] = {"sm2": "SM2SM3", "ec-p256": "ES256", "ed25519": "EdDSA"}
"""JWS ``alg`` per key algorithm. ``SM2SM3`` is ztgate's private name (no
registered identifier exists): SM2 signature over SM3 with the default
distinguishing ID, signature as raw ``r || s``."""

_Native = sm2.SM2PublicKey | ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey
_NativePrivate = sm2.SM2PrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey


def _b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


_B64URL = re.compile(r"[A-Za-z0-9_-]*")


def _unb64u(value: object, name: str) -> bytes:
    """Strict base64url without padding (RFC 7515 §2); anything else is refused."""
    if not isinstance(value, str) or len(value) > 1024 or not _B64URL.fullmatch(value):
        raise InvalidKey(f"JWK member {name!r} must be an unpadded base64url string")
    if len(value) % 4 == 1:
        raise InvalidKey(f"JWK member {name!r} is not base64url")
    try:
        return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except ValueError:
        raise InvalidKey(f"JWK member {name!r} is not base64url") from None


def _check_encoding(encoding: str) -> None:
    if encoding not in ("der", "raw"):
        raise UnsupportedAlgorithm(f"unknown signature encoding {encoding!r}; use 'der' or 'raw'")


@dataclass(frozen=True, eq=False)
class PublicKey:
    """A verification key. Compare keys with `thumbprint`, not identity."""

    algorithm: Algorithm
    native: _Native

    def verify(
        self,
        signature: bytes,
        data: bytes,
        *,
        encoding: Encoding = "der",
        distinguishing_id: bytes = sm2.DEFAULT_ID,
    ) -> None:
        """Raise `InvalidSignature` unless valid. The ID applies to SM2 only."""
        _check_encoding(encoding)
        key = self.native
        if isinstance(key, sm2.SM2PublicKey):
            key.verify(signature, data, encoding=encoding, distinguishing_id=distinguishing_id)
            return
        try:
            if isinstance(key, ed25519.Ed25519PublicKey):
                key.verify(signature, data)
                return
            if encoding == "raw":
                if len(signature) != 64:
                    raise InvalidSignature("raw ES256 signature must be 64 bytes")
                r, s = int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
                signature = encode_dss_signature(r, s)
            key.verify(signature, data, ec.ECDSA(hashes.SHA256()))
        except _CryptographyInvalidSignature:
            raise InvalidSignature(f"{self.algorithm} signature does not verify") from None
        except ValueError:
            raise InvalidSignature(f"malformed {self.algorithm} signature") from None

    def public_pem(self) -> bytes:
        if isinstance(self.native, sm2.SM2PublicKey):
            return self.native.public_pem()
        return self.native.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def public_der(self) -> bytes:
        return pem.decode(self.public_pem())[1]

    def to_jwk(self) -> dict[str, str]:
        """RFC 7517 public JWK (only the required members, in RFC 7638 order)."""
        key = self.native
        if isinstance(key, ed25519.Ed25519PublicKey):
            raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
            return {"crv": "Ed25519", "kty": "OKP", "x": _b64u(raw)}
        if isinstance(key, sm2.SM2PublicKey):
            point, crv = key.point, "SM2"
        else:
            point = key.public_bytes(
                serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
            )
            crv = "P-256"
        return {"crv": crv, "kty": "EC", "x": _b64u(point[1:33]), "y": _b64u(point[33:65])}

    def thumbprint(self) -> str:
        """RFC 7638 JWK thumbprint (SHA-256, base64url): a stable key identifier."""
        canonical = json.dumps(self.to_jwk(), separators=(",", ":"), sort_keys=True)
        return _b64u(hashlib.sha256(canonical.encode()).digest())

    @classmethod
    def from_jwk(cls, jwk: dict[str, Any]) -> PublicKey:
        """Import a public JWK; private members (``d``) are refused."""
        if not isinstance(jwk, dict):
            raise InvalidKey("JWK must be a JSON object")
        if "d" in jwk:
            raise InvalidKey("refusing a JWK that carries a private key")
        kty, crv = jwk.get("kty"), jwk.get("crv")
        if kty == "OKP" and crv == "Ed25519":
            raw = _unb64u(jwk.get("x"), "x")
            if len(raw) != 32:
                raise InvalidKey("Ed25519 JWK x must be 32 bytes")
            return cls("ed25519", ed25519.Ed25519PublicKey.from_public_bytes(raw))
        if kty == "EC" and crv in ("SM2", "P-256"):
            x, y = _unb64u(jwk.get("x"), "x"), _unb64u(jwk.get("y"), "y")
            if len(x) != 32 or len(y) != 32:
                raise InvalidKey("EC JWK coordinates must be 32 bytes")
            point = b"\x04" + x + y
            if crv == "SM2":
                return cls("sm2", sm2.SM2PublicKey.from_encoded_point(point))
            try:
                native = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), point)
            except ValueError:
                raise InvalidKey("P-256 JWK point is not on the curve") from None
            return cls("ec-p256", native)
        raise InvalidKey(f"unsupported JWK kty/crv: {kty!r}/{crv!r}")


@dataclass(frozen=True, eq=False, repr=False)
class PrivateKey:
    """A signing key. Its repr names the algorithm and public thumbprint only."""

    algorithm: Algorithm
    native: _NativePrivate

    def public_key(self) -> PublicKey:
        return PublicKey(self.algorithm, self.native.public_key())

    def sign(
        self,
        data: bytes,
        *,
        encoding: Encoding = "der",
        distinguishing_id: bytes = sm2.DEFAULT_ID,
    ) -> bytes:
        _check_encoding(encoding)
        key = self.native
        if isinstance(key, sm2.SM2PrivateKey):
            return key.sign(data, encoding=encoding, distinguishing_id=distinguishing_id)
        if isinstance(key, ed25519.Ed25519PrivateKey):
            return key.sign(data)
        der = key.sign(data, ec.ECDSA(hashes.SHA256()))
        if encoding == "der":
            return der
        r, s = decode_dss_signature(der)
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")

    def private_pem(self) -> bytes:
        """PKCS#8 PEM, unencrypted (the caller protects the file: mode 0600)."""
        if isinstance(self.native, sm2.SM2PrivateKey):
            return self.native.private_pem()
        return self.native.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    def __repr__(self) -> str:
        return f"PrivateKey({self.algorithm}, {self.public_key().thumbprint()})"


def generate(algorithm: Algorithm = "sm2") -> PrivateKey:
    if algorithm == "sm2":
        return PrivateKey("sm2", sm2.SM2PrivateKey.generate())
    if algorithm == "ec-p256":
        return PrivateKey("ec-p256", ec.generate_private_key(ec.SECP256R1()))
    if algorithm == "ed25519":
        return PrivateKey("ed25519", ed25519.Ed25519PrivateKey.generate())
    raise UnsupportedAlgorithm(f"unknown key algorithm {algorithm!r}; use one of {ALGORITHMS}")


def _to_der(data: bytes, labels: tuple[str, ...]) -> bytes:
    if not data:
        raise InvalidKey("empty key file")
    if not pem.is_pem(data):
        return data
    label, der = pem.decode(data)
    if label not in labels:
        raise InvalidKey(f"unexpected PEM block {label!r}; expected one of {labels}")
    return der


def load_private(data: bytes) -> PrivateKey:
    """A private key from PEM or DER (PKCS#8, or SEC1 for EC/SM2)."""
    der = _to_der(data, sm2.PRIVATE_KEY_LABELS)
    try:
        return PrivateKey("sm2", sm2.SM2PrivateKey.from_der(der))
    except CryptoError:
        pass
    try:
        native = serialization.load_der_private_key(der, password=None)
    except (ValueError, TypeError, _CryptographyUnsupported):
        raise InvalidKey("not a readable private key (PEM/DER PKCS#8 or SEC1)") from None
    return PrivateKey(_classify(native.public_key()), native)  # type: ignore[arg-type]


def load_public(data: bytes) -> PublicKey:
    """A public key from PEM or DER SubjectPublicKeyInfo."""
    der = _to_der(data, ("PUBLIC KEY",))
    try:
        return PublicKey("sm2", sm2.SM2PublicKey.from_der(der))
    except CryptoError:
        pass
    try:
        native = serialization.load_der_public_key(der)
    except (ValueError, TypeError, _CryptographyUnsupported):
        raise InvalidKey("not a readable public key (PEM/DER SubjectPublicKeyInfo)") from None
    return PublicKey(_classify(native), native)  # type: ignore[arg-type]


def _classify(public: object) -> Algorithm:
    if isinstance(public, ed25519.Ed25519PublicKey):
        return "ed25519"
    if isinstance(public, ec.EllipticCurvePublicKey) and isinstance(public.curve, ec.SECP256R1):
        return "ec-p256"
    raise InvalidKey("unsupported key type: ztgate accepts SM2, EC P-256 and Ed25519 keys")
