"""A local certificate authority for an edge node run on one machine.

`ensure_local_pki` creates, once, under ``<state>/pki/``: a CA (``ca.crt``,
``ca.key``) and a server certificate it signs (``edge-server.crt``,
``edge-server.key``; names ``localhost``, ``127.0.0.1``, ``::1``) — the files the
embedded gateway configuration points at. The same CA is the client CA of the
default listener, so `issue_client_certificate` can make test partners.

Keys are ECDSA P-256 and signatures ECDSA-SHA256: Envoy's TLS library
(BoringSSL) has no SM2 TLS (RFC 8998), so the edge's TLS cannot use SM2
certificates; SM-series cryptography is used above TLS (tokens, signatures).
Private keys are written with mode 0600.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_DAYS: Final = 3650
LEAF_DAYS: Final = 397
"""The CA/Browser Forum ceiling for a TLS server certificate's validity."""
SERVER_NAMES: Final = ("localhost",)
SERVER_IPS: Final = ("127.0.0.1", "::1")


@dataclass(frozen=True)
class Issued:
    certificate: Path
    private_key: Path


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "ztgate local"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    tmp.replace(path)


def _write_cert(path: Path, cert: x509.Certificate) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    tmp.replace(path)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def create_ca(directory: Path, common_name: str = "ztgate local CA") -> Issued:
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    key = ec.generate_private_key(ec.SECP256R1())
    now = _now()
    public = key.public_key()
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(_name(common_name))
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )
    issued = Issued(directory / "ca.crt", directory / "ca.key")
    _write_key(issued.private_key, key)
    _write_cert(issued.certificate, cert)
    return issued


def issue(
    ca: Issued,
    directory: Path,
    name: str,
    common_name: str,
    *,
    server: bool,
    dns_names: tuple[str, ...] = (),
    ip_addresses: tuple[str, ...] = (),
    days: int = LEAF_DAYS,
) -> Issued:
    """Sign a new leaf key pair with `ca`; writes ``<name>.crt`` and ``<name>.key``."""
    ca_cert = x509.load_pem_x509_certificate(ca.certificate.read_bytes())
    ca_key = serialization.load_pem_private_key(ca.private_key.read_bytes(), password=None)
    if not isinstance(ca_key, ec.EllipticCurvePrivateKey):
        raise ValueError("the CA key must be an ECDSA key")
    key = ec.generate_private_key(ec.SECP256R1())
    now = _now()
    usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
    )
    alt: list[x509.GeneralName] = [x509.DNSName(n) for n in dns_names]
    alt += [x509.IPAddress(ipaddress.ip_address(a)) for a in ip_addresses]
    if alt:
        builder = builder.add_extension(x509.SubjectAlternativeName(alt), critical=False)
    cert = builder.sign(ca_key, hashes.SHA256())
    issued = Issued(directory / f"{name}.crt", directory / f"{name}.key")
    _write_key(issued.private_key, key)
    _write_cert(issued.certificate, cert)
    return issued


def issue_server_certificate(ca: Issued, directory: Path, name: str = "edge-server") -> Issued:
    return issue(
        ca,
        directory,
        name,
        "localhost",
        server=True,
        dns_names=SERVER_NAMES,
        ip_addresses=SERVER_IPS,
    )


def issue_client_certificate(ca: Issued, directory: Path, name: str, common_name: str) -> Issued:
    return issue(ca, directory, name, common_name, server=False)


def ensure_local_pki(state_dir: Path) -> tuple[Issued, Issued]:
    """The local CA and server certificate under ``<state_dir>/pki``, created if
    missing (an existing CA is reused, so clients that trust it keep working)."""
    directory = state_dir / "pki"
    ca = Issued(directory / "ca.crt", directory / "ca.key")
    if not (ca.certificate.exists() and ca.private_key.exists()):
        ca = create_ca(directory)
    server = Issued(directory / "edge-server.crt", directory / "edge-server.key")
    if not (server.certificate.exists() and server.private_key.exists()):
        server = issue_server_certificate(ca, directory)
    return ca, server
