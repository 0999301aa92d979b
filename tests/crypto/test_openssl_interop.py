"""Interop with the OpenSSL 3 CLI, both directions (keys, signatures, ciphertexts).

OpenSSL signs SM2 with an *empty* distinguishing ID unless told
``-pkeyopt distid:1234567812345678``; these tests pass it explicitly and also
pin down the empty-ID behaviour so nobody is surprised by it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from crypto import keys, sm2, sm3
from crypto.errors import InvalidSignature
from tests.conftest import Run

pytestmark = pytest.mark.interop
DISTID = "distid:1234567812345678"


@pytest.fixture
def msg(tmp_path: Path) -> Path:
    path = tmp_path / "msg.bin"
    path.write_bytes(b"interop message \x00\xff" * 7)
    return path


@pytest.fixture
def openssl_key(tmp_path: Path, ossl: Run) -> tuple[Path, Path]:
    key, pub = tmp_path / "ossl.pem", tmp_path / "ossl-pub.pem"
    ossl("genpkey", "-algorithm", "SM2", "-out", key)
    ossl("pkey", "-in", key, "-pubout", "-out", pub)
    return key, pub


@pytest.fixture
def our_key(tmp_path: Path, ztgate: Run) -> tuple[Path, Path]:
    key, pub = tmp_path / "zt.pem", tmp_path / "zt-pub.pem"
    assert ztgate("crypto", "keygen", "--out", str(key)).returncode == 0
    assert ztgate("crypto", "pubkey", "--key", str(key), "--out", str(pub)).returncode == 0
    return key, pub


def test_openssl_keys_load_in_ztgate(
    openssl_key: tuple[Path, Path], tmp_path: Path, ossl: Run
) -> None:
    key_pem, pub_pem = openssl_key
    priv = sm2.SM2PrivateKey.from_pem(key_pem.read_bytes())
    assert sm2.SM2PublicKey.from_pem(pub_pem.read_bytes()) == priv.public_key()
    der = tmp_path / "k.der"
    ossl("pkey", "-in", key_pem, "-outform", "DER", "-out", der)
    assert sm2.SM2PrivateKey.from_der(der.read_bytes()).public_key() == priv.public_key()
    sec1 = tmp_path / "sec1.pem"
    ossl("ec", "-in", key_pem, "-out", sec1)  # traditional SEC1, OpenSSL 3 labels it "SM2"
    assert b"SM2 PRIVATE KEY" in sec1.read_bytes()
    assert sm2.SM2PrivateKey.from_pem(sec1.read_bytes()).public_key() == priv.public_key()


def test_ztgate_keys_load_in_openssl(our_key: tuple[Path, Path], ossl: Run, tmp_path: Path) -> None:
    key_pem, pub_pem = our_key
    assert key_pem.stat().st_mode & 0o777 == 0o600
    text = ossl("pkey", "-in", key_pem, "-noout", "-text").stdout
    assert b"SM2" in text or b"1.2.156.10197.1.301" in text or b"Private-Key: (256 bit)" in text
    ossl("pkey", "-in", key_pem, "-check", "-noout")
    openssl_pub = ossl("pkey", "-in", key_pem, "-pubout").stdout
    assert openssl_pub == pub_pem.read_bytes()  # byte-identical SubjectPublicKeyInfo PEM


def test_ztgate_signature_verifies_in_openssl(
    our_key: tuple[Path, Path], msg: Path, ossl: Run, ztgate: Run, tmp_path: Path
) -> None:
    key_pem, pub_pem = our_key
    sig = tmp_path / "sig.der"
    assert (
        ztgate(
            "crypto", "sign", "--key", str(key_pem), "--in", str(msg), "--out", str(sig)
        ).returncode
        == 0
    )
    out = ossl(
        "pkeyutl",
        "-verify",
        "-rawin",
        "-digest",
        "sm3",
        "-pkeyopt",
        DISTID,
        "-pubin",
        "-inkey",
        pub_pem,
        "-in",
        msg,
        "-sigfile",
        sig,
    ).stdout
    assert b"Signature Verified Successfully" in out
    # dgst(1) form too, with -sigopt
    out = ossl("dgst", "-sm3", "-sigopt", DISTID, "-verify", pub_pem, "-signature", sig, msg).stdout
    assert b"Verified OK" in out


def test_ztgate_signature_with_wrong_id_fails_in_openssl(
    our_key: tuple[Path, Path], msg: Path, ossl: Run, tmp_path: Path
) -> None:
    key_pem, pub_pem = our_key
    sig = tmp_path / "sig.der"
    sig.write_bytes(keys.load_private(key_pem.read_bytes()).sign(msg.read_bytes()))
    proc = ossl(
        "pkeyutl",
        "-verify",
        "-rawin",
        "-digest",
        "sm3",
        "-pubin",
        "-inkey",
        pub_pem,
        "-in",
        msg,
        "-sigfile",
        sig,
        ok=False,
    )  # empty ID
    assert proc.returncode != 0


def test_openssl_signature_verifies_in_ztgate(
    openssl_key: tuple[Path, Path], msg: Path, ossl: Run, ztgate: Run, tmp_path: Path
) -> None:
    key_pem, pub_pem = openssl_key
    sig = tmp_path / "ossl.sig"
    ossl(
        "pkeyutl",
        "-sign",
        "-rawin",
        "-digest",
        "sm3",
        "-pkeyopt",
        DISTID,
        "-inkey",
        key_pem,
        "-in",
        msg,
        "-out",
        sig,
    )
    pub = sm2.SM2PublicKey.from_pem(pub_pem.read_bytes())
    pub.verify(sig.read_bytes(), msg.read_bytes())
    proc = ztgate("crypto", "verify", "--key", str(pub_pem), "--in", str(msg), "--sig", str(sig))
    assert proc.returncode == 0, proc.stderr
    # raw r||s form of the same signature
    raw = tmp_path / "ossl.raw"
    raw.write_bytes(sm2.signature_to_raw(sig.read_bytes()))
    proc = ztgate(
        "crypto", "verify", "--raw", "--key", str(pub_pem), "--in", str(msg), "--sig", str(raw)
    )
    assert proc.returncode == 0, proc.stderr


def test_openssl_default_empty_id_signature(
    openssl_key: tuple[Path, Path], msg: Path, ossl: Run, tmp_path: Path
) -> None:
    key_pem, pub_pem = openssl_key
    sig = tmp_path / "ossl.sig"
    ossl("pkeyutl", "-sign", "-rawin", "-digest", "sm3", "-inkey", key_pem, "-in", msg, "-out", sig)
    pub = sm2.SM2PublicKey.from_pem(pub_pem.read_bytes())
    pub.verify(sig.read_bytes(), msg.read_bytes(), distinguishing_id=b"")
    with pytest.raises(InvalidSignature):
        pub.verify(sig.read_bytes(), msg.read_bytes())


def test_ztgate_ciphertext_decrypts_in_openssl(
    our_key: tuple[Path, Path], msg: Path, ossl: Run, ztgate: Run, tmp_path: Path
) -> None:
    key_pem, pub_pem = our_key
    ct, out = tmp_path / "ct.der", tmp_path / "pt"
    assert (
        ztgate(
            "crypto", "encrypt", "--key", str(pub_pem), "--in", str(msg), "--out", str(ct)
        ).returncode
        == 0
    )
    ossl("pkeyutl", "-decrypt", "-inkey", key_pem, "-in", ct, "-out", out)
    assert out.read_bytes() == msg.read_bytes()


def test_openssl_ciphertext_decrypts_in_ztgate(
    openssl_key: tuple[Path, Path], msg: Path, ossl: Run, ztgate: Run, tmp_path: Path
) -> None:
    key_pem, pub_pem = openssl_key
    ct, out = tmp_path / "ct.der", tmp_path / "pt"
    ossl("pkeyutl", "-encrypt", "-pubin", "-inkey", pub_pem, "-in", msg, "-out", ct)
    proc = ztgate("crypto", "decrypt", "--key", str(key_pem), "--in", str(ct), "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    assert out.read_bytes() == msg.read_bytes()
    # a flipped bit in C3 must be refused by ztgate, with a one-line reason
    bad = bytearray(sm2.ciphertext_to_raw(ct.read_bytes()))
    bad[70] ^= 1
    ct.write_bytes(sm2.ciphertext_to_der(bytes(bad)))
    proc = ztgate("crypto", "decrypt", "--key", str(key_pem), "--in", str(ct), "--out", str(out))
    assert proc.returncode == 2
    assert proc.stderr.decode().count("\n") == 1 and "C3" in proc.stderr.decode()


def test_sm3_and_hmac_match_openssl(msg: Path, ossl: Run, ztgate: Run) -> None:
    ours = ztgate("crypto", "hash", "--in", str(msg)).stdout.decode().strip()
    theirs = ossl("dgst", "-sm3", "-r", msg).stdout.decode().split()[0]
    assert ours == theirs == sm3.digest(msg.read_bytes()).hex()
    key_hex = "0b" * 20
    ours = ztgate("crypto", "hmac", "--key-hex", key_hex, "--in", str(msg)).stdout.decode().strip()
    theirs = ossl(
        "mac", "-digest", "SM3", "-macopt", f"hexkey:{key_hex}", "-in", msg, "HMAC"
    ).stdout
    assert ours == theirs.decode().strip().lower()


@pytest.mark.parametrize(
    ("genpkey", "alg"),
    [
        (("-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"), "ec-p256"),
        (("-algorithm", "ED25519"), "ed25519"),
    ],
)
def test_standard_algorithms_interop(
    genpkey: tuple[str, ...], alg: str, msg: Path, ossl: Run, ztgate: Run, tmp_path: Path
) -> None:
    key_pem, pub_pem, sig = tmp_path / "k.pem", tmp_path / "p.pem", tmp_path / "sig"
    ossl("genpkey", *genpkey, "-out", key_pem)
    ossl("pkey", "-in", key_pem, "-pubout", "-out", pub_pem)
    assert keys.load_private(key_pem.read_bytes()).algorithm == alg
    assert (
        ztgate(
            "crypto", "sign", "--key", str(key_pem), "--in", str(msg), "--out", str(sig)
        ).returncode
        == 0
    )
    if alg == "ed25519":
        ossl(
            "pkeyutl", "-verify", "-rawin", "-pubin", "-inkey", pub_pem, "-in", msg, "-sigfile", sig
        )
    else:
        ossl("dgst", "-sha256", "-verify", pub_pem, "-signature", sig, msg)
