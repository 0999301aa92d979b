"""TLS secrets served over SDS: read and checked from the files the configuration
names, re-read when they change (rotation), never logged.

A file is refused — naming its key, e.g.
``secrets.certificates.edge-server.private_key: does not match the certificate`` —
when it is unreadable, larger than 1 MiB, not PEM, an encrypted key, or a key
that does not belong to the leaf certificate: Envoy would reject such a secret
and the listener would never warm, so it must not leave the control plane.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from edge_nodes.resources import SecretMaterial
from gateway.config import GatewayConfig, GatewayConfigError

MAX_PEM: Final = 1024 * 1024
_KEY_TYPES: Final = (
    "must be an ECDSA P-256/P-384 or RSA >= 2048-bit key (Envoy's BoringSSL has no SM2 TLS)"
)


def read_secrets(cfg: GatewayConfig) -> dict[str, SecretMaterial]:
    """Every secret the configuration declares, checked."""
    out: dict[str, SecretMaterial] = {}
    for name, cert in cfg.certificates.items():
        where = f"secrets.certificates.{name}"
        chain = _read(f"{where}.certificate_chain", cert.certificate_chain)
        key = _read(f"{where}.private_key", cert.private_key)
        _check_pair(where, chain, key)
        out[name] = SecretMaterial(name, certificate_chain=chain, private_key=key)
    for name, ca in cfg.trusted_cas.items():
        where = f"secrets.trusted_cas.{name}.file"
        pem = _read(where, ca.file)
        _certificates(where, pem)
        out[name] = SecretMaterial(name, trusted_ca=pem)
    return out


def fingerprint(secrets: Mapping[str, SecretMaterial]) -> str:
    """A digest that changes when any secret's content changes (rotation check)."""
    h = hashlib.sha256()
    for name in sorted(secrets):
        s = secrets[name]
        for part in (name.encode(), s.certificate_chain, s.private_key, s.trusted_ca):
            h.update(len(part).to_bytes(8, "big") + part)
    return h.hexdigest()


def build_secret(material: SecretMaterial) -> dict[str, Any]:
    """The SDS ``Secret`` resource (JSON form: bytes as base64)."""

    def inline(data: bytes) -> dict[str, str]:
        return {"inline_bytes": base64.b64encode(data).decode("ascii")}

    if material.trusted_ca:
        return {
            "name": material.name,
            "validation_context": {"trusted_ca": inline(material.trusted_ca)},
        }
    return {
        "name": material.name,
        "tls_certificate": {
            "certificate_chain": inline(material.certificate_chain),
            "private_key": inline(material.private_key),
        },
    }


def _read(where: str, path: Path) -> bytes:
    try:
        with path.open("rb") as f:
            data = f.read(MAX_PEM + 1)
    except OSError as exc:
        raise GatewayConfigError(where, f"cannot read {path}: {exc.strerror}") from None
    if len(data) > MAX_PEM:
        raise GatewayConfigError(where, f"{path} is larger than {MAX_PEM} bytes")
    return data


def _certificates(where: str, pem: bytes) -> list[x509.Certificate]:
    try:
        certs = x509.load_pem_x509_certificates(pem)
    except ValueError:
        raise GatewayConfigError(where, "is not a PEM certificate (chain)") from None
    return certs


def _check_pair(where: str, chain: bytes, key_pem: bytes) -> None:
    leaf = _certificates(f"{where}.certificate_chain", chain)[0]
    try:
        key = serialization.load_pem_private_key(key_pem, password=None)
    except TypeError:
        raise GatewayConfigError(
            f"{where}.private_key", "is encrypted; Envoy needs it in clear"
        ) from None
    except UnsupportedAlgorithm:
        raise GatewayConfigError(f"{where}.private_key", _KEY_TYPES) from None
    except ValueError:
        raise GatewayConfigError(f"{where}.private_key", "is not a PEM private key") from None
    if not _servable(key):
        raise GatewayConfigError(f"{where}.private_key", _KEY_TYPES)
    try:
        leaf_key = leaf.public_key()
    except UnsupportedAlgorithm:
        raise GatewayConfigError(f"{where}.certificate_chain", _KEY_TYPES) from None
    raw = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    if key.public_key().public_bytes(*raw) != leaf_key.public_bytes(*raw):
        raise GatewayConfigError(
            f"{where}.private_key", "does not match the certificate_chain's first certificate"
        )


def _servable(key: object) -> bool:
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return isinstance(key.curve, ec.SECP256R1 | ec.SECP384R1)
    return isinstance(key, rsa.RSAPrivateKey) and key.key_size >= 2048
