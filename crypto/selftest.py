"""Known-answer self-test, run before any ztgate service starts.

Why: a bank's crypto module must prove at power-on that its algorithms still
compute the standard answers (the FIPS 140 / GM/T 0028 "power-up self-test"
practice) — a broken OpenSSL build, a mis-linked library or a patched backend
then stops the process instead of signing garbage. Each check uses a vector
from the standard that defines the algorithm, plus a pairwise-consistency test
of a freshly generated SM2 key.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from crypto import _openssl, sm2, sm3, sm4
from crypto.errors import CryptoError, InvalidCiphertext, InvalidSignature


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    seconds: float


def _sm3() -> None:
    expect = "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"
    if sm3.digest(b"abc").hex() != expect:  # GB/T 32905 Appendix A.1
        raise CryptoError("SM3('abc') mismatch")
    expect = "debe9ff92275b8a138604889c18e5a4d6fdb70e5387e5765293dcba39c0c5732"
    if sm3.digest(b"abcd" * 16).hex() != expect:  # Appendix A.2
        raise CryptoError("SM3('abcd'*16) mismatch")


def _sm4_gcm() -> None:
    # RFC 8998 Appendix A.1
    key = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")
    iv = bytes.fromhex("00001234567800000000ABCD")
    aad = bytes.fromhex("FEEDFACEDEADBEEFFEEDFACEDEADBEEFABADDAD2")
    pt = bytes.fromhex(
        "AAAAAAAAAAAAAAAABBBBBBBBBBBBBBBBCCCCCCCCCCCCCCCCDDDDDDDDDDDDDDDD"
        "EEEEEEEEEEEEEEEEFFFFFFFFFFFFFFFFEEEEEEEEEEEEEEEEAAAAAAAAAAAAAAAA"
    )
    ct = bytes.fromhex(
        "17F399F08C67D5EE19D0DC9969C4BB7D5FD46FD3756489069157B282BB200735"
        "D82710CA5C22F0CCFA7CBF93D496AC15A56834CBCF98C397B4024A2691233B8D"
        "83DE3541E4C2B58177E065A9BF7B62EC"
    )
    aead = sm4.SM4GCM(key)
    if aead.encrypt(iv, pt, aad) != ct:
        raise CryptoError("SM4-GCM RFC 8998 vector mismatch")
    if aead.decrypt(iv, ct, aad) != pt:
        raise CryptoError("SM4-GCM RFC 8998 decrypt mismatch")
    try:
        aead.decrypt(iv, ct[:-1] + bytes([ct[-1] ^ 1]), aad)
    except InvalidCiphertext:
        return
    raise CryptoError("SM4-GCM accepted a tampered tag")


def _sm2_vectors() -> None:
    # GB/T 32918.5-2016 Annex A (signature) and Annex C (encryption)
    d = 0x3945208F7B2144B13F36E38AC6D39F95889393692860B51A42FB81EF4DF7C5B8
    key = sm2.SM2PrivateKey.from_private_value(d)
    sig = bytes.fromhex(
        "F5A03B0648D2C4630EEAC513E1BB81A15944DA3827D5B74143AC7EACEEE720B3"
        "B1B6AA29DF212FD8763182BC0D421CA1BB9038FD1F7F42D4840B69C485BBC1AA"
    )
    key.public_key().verify(sig, b"message digest", encoding="raw")
    ct = bytes.fromhex(
        "04EBFC718E8D1798620432268E77FEB6415E2EDE0E073C0F4F640ECD2E149A73"
        "E858F9D81E5430A57B36DAAB8F950A3C64E6EE6A63094D99283AFF767E124DF0"
        "59983C18F809E262923C53AEC295D30383B54E39D609D160AFCB1908D0BD8766"
        "21886CA989CA9C7D58087307CA93092D651EFA"
    )
    if key.decrypt(b"\x04" + ct, encoding="raw") != b"encryption standard":
        raise CryptoError("SM2 Annex C decryption mismatch")


def _sm2_pairwise() -> None:
    key = sm2.SM2PrivateKey.generate()
    sig = key.sign(b"pairwise consistency")
    key.public_key().verify(sig, b"pairwise consistency")
    try:
        key.public_key().verify(sig, b"pairwise consistencY")
    except InvalidSignature:
        pass
    else:
        raise CryptoError("SM2 verified a signature over the wrong message")
    if key.decrypt(key.public_key().encrypt(b"pairwise")) != b"pairwise":
        raise CryptoError("SM2 encrypt/decrypt round trip failed")


CHECKS: tuple[tuple[str, Callable[[], None]], ...] = (
    ("SM3 (GB/T 32905 A.1, A.2)", _sm3),
    ("SM4-GCM (RFC 8998 A.1)", _sm4_gcm),
    ("SM2 signature and decryption (GB/T 32918.5 Annex A, C)", _sm2_vectors),
    ("SM2 pairwise consistency (fresh key)", _sm2_pairwise),
)


def run() -> list[Check]:
    """Run every check; never raises — failures are reported in the results."""
    results = []
    for name, fn in CHECKS:
        start = time.perf_counter()
        try:
            fn()
        except CryptoError as exc:
            results.append(Check(name, False, str(exc), time.perf_counter() - start))
        else:
            results.append(Check(name, True, "ok", time.perf_counter() - start))
    return results


def backend() -> str:
    return f"SM2 via {_openssl.VERSION} libcrypto; SM3/SM4 via `cryptography`"
