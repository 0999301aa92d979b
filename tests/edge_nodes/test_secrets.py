"""edge_nodes.secrets: PEM files that Envoy would reject never leave the control
plane, and the refusal names the key; key material never shows in a repr."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from edge_nodes import pki
from edge_nodes.secrets import fingerprint, read_secrets
from gateway.config import CertificateSecret, GatewayConfig, GatewayConfigError, TrustedCa

WHERE = "secrets.certificates.edge-server"


def _cfg(cert: Path, key: Path, ca: Path) -> GatewayConfig:
    return GatewayConfig(
        (),
        {},
        (),
        certificates={"edge-server": CertificateSecret(cert, key)},
        trusted_cas={"client-ca": TrustedCa(ca)},
    )


@pytest.fixture
def files(tmp_path: Path) -> tuple[pki.Issued, pki.Issued]:
    return pki.ensure_local_pki(tmp_path)


def test_good_files_are_read(files: tuple[pki.Issued, pki.Issued]) -> None:
    ca, server = files
    material = read_secrets(_cfg(server.certificate, server.private_key, ca.certificate))
    assert material["edge-server"].private_key == server.private_key.read_bytes()
    assert material["client-ca"].trusted_ca == ca.certificate.read_bytes()
    assert "PRIVATE" not in repr(material) and "BEGIN" not in repr(material)


def _pem(key: object) -> bytes:
    return key.private_bytes(  # type: ignore[attr-defined, no-any-return]
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


@pytest.mark.parametrize(
    ("break_it", "key", "problem"),
    [
        (lambda s, d: s.certificate.unlink(), "certificate_chain", "cannot read"),
        (
            lambda s, d: s.certificate.write_text("hello"),
            "certificate_chain",
            "is not a PEM certificate",
        ),
        (lambda s, d: s.private_key.write_text("hello"), "private_key", "is not a PEM private key"),
        (
            lambda s, d: s.private_key.write_bytes(b"-" * (1024 * 1024 + 1)),
            "private_key",
            "larger than",
        ),
        (
            lambda s, d: s.private_key.write_bytes(_pem(ec.generate_private_key(ec.SECP256R1()))),
            "private_key",
            "does not match the certificate_chain's first certificate",
        ),
        (
            lambda s, d: s.private_key.write_bytes(
                ec.generate_private_key(ec.SECP256R1()).private_bytes(
                    serialization.Encoding.PEM,
                    serialization.PrivateFormat.PKCS8,
                    serialization.BestAvailableEncryption(b"pass"),
                )
            ),
            "private_key",
            "is encrypted",
        ),
        (
            lambda s, d: s.private_key.write_bytes(_pem(ec.generate_private_key(ec.SECP521R1()))),
            "private_key",
            "must be an ECDSA P-256/P-384 or RSA >= 2048-bit key",
        ),
        (
            lambda s, d: s.private_key.write_bytes(
                _pem(rsa.generate_private_key(public_exponent=65537, key_size=1024))
            ),
            "private_key",
            "must be an ECDSA P-256/P-384 or RSA >= 2048-bit key",
        ),
    ],
)
def test_bad_files_are_refused_naming_the_key(
    files: tuple[pki.Issued, pki.Issued],
    tmp_path: Path,
    break_it: Callable[[pki.Issued, Path], object],
    key: str,
    problem: str,
) -> None:
    ca, server = files
    break_it(server, tmp_path)
    with pytest.raises(GatewayConfigError) as info:
        read_secrets(_cfg(server.certificate, server.private_key, ca.certificate))
    assert info.value.key == f"{WHERE}.{key}"
    assert problem in info.value.problem


def test_sm2_certificates_are_refused_with_the_reason(tmp_path: Path, ossl, files) -> None:  # type: ignore[no-untyped-def]
    """Envoy's BoringSSL has no SM2 TLS: an SM2 certificate cannot be served."""
    ca, _ = files
    key, cert = tmp_path / "sm2.key", tmp_path / "sm2.crt"
    ossl("genpkey", "-algorithm", "SM2", "-out", key)
    ossl(
        "req", "-x509", "-new", "-key", key, "-out", cert, "-subj", "/CN=sm2", "-sm3", "-days", "1"
    )
    with pytest.raises(GatewayConfigError) as info:
        read_secrets(_cfg(cert, key, ca.certificate))
    assert info.value.key == f"{WHERE}.private_key"
    assert "no SM2 TLS" in info.value.problem


def test_fingerprint_follows_content(files: tuple[pki.Issued, pki.Issued], tmp_path: Path) -> None:
    ca, server = files
    cfg = _cfg(server.certificate, server.private_key, ca.certificate)
    before = fingerprint(read_secrets(cfg))
    assert fingerprint(read_secrets(cfg)) == before
    pki.issue_server_certificate(ca, tmp_path / "pki")
    assert fingerprint(read_secrets(cfg)) != before
