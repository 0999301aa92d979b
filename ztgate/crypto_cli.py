"""`ztgate crypto …`: operator tooling in the formats OpenSSL uses.

PEM keys (PKCS#8 / SubjectPublicKeyInfo), DER signatures (``--raw`` for
``r || s``), DER C1C3C2 ciphertexts (``--raw`` for ``04||x||y||C3||C2``) and
lowercase hex digests, so keys and data move freely between ztgate and
OpenSSL/GmSSL. ``-`` means stdin/stdout. Exit 0 on success; ``verify`` exits 1
for an invalid signature; any other failure exits 2 with a one-line reason.
"""

from __future__ import annotations

import argparse
import binascii
import json
import os
import sys

from crypto import keys, selftest, sm2, sm3
from crypto.errors import CryptoError, InvalidSignature

MAX_INPUT = 64 * 1024 * 1024


class CliError(Exception):
    """A one-line reason for the operator; exit status 2."""


def _read(name: str) -> bytes:
    if name == "-":
        data = sys.stdin.buffer.read(MAX_INPUT + 1)
    else:
        try:
            with open(name, "rb") as fh:
                data = fh.read(MAX_INPUT + 1)
        except OSError as exc:
            raise CliError(f"cannot read {name}: {exc.strerror}") from None
    if len(data) > MAX_INPUT:
        raise CliError(f"{name}: input larger than {MAX_INPUT} bytes")
    return data


def _write(name: str, data: bytes, *, secret: bool = False, force: bool = True) -> None:
    if name == "-":
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
        return
    flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if force else os.O_EXCL)
    try:
        fd = os.open(name, flags, 0o600 if secret else 0o644)
    except FileExistsError:
        raise CliError(f"{name} exists; refusing to overwrite a key (use --force)") from None
    except OSError as exc:
        raise CliError(f"cannot write {name}: {exc.strerror}") from None
    with os.fdopen(fd, "wb") as fh:
        if secret:
            os.fchmod(fh.fileno(), 0o600)
        fh.write(data)


def _dist_id(args: argparse.Namespace) -> bytes:
    value: str = args.id
    return value.encode("utf-8")


def _private(path: str) -> keys.PrivateKey:
    return keys.load_private(_read(path))


def _public(path: str) -> keys.PublicKey:
    """A public key, or the public half of a private key file."""
    data = _read(path)
    try:
        return keys.load_public(data)
    except CryptoError:
        return keys.load_private(data).public_key()


def _sm2_only(key: keys.PublicKey | keys.PrivateKey, what: str) -> None:
    if key.algorithm != "sm2":
        raise CliError(f"{what} needs an SM2 key, got {key.algorithm}")


def cmd_keygen(args: argparse.Namespace) -> int:
    key = keys.generate(args.alg)
    _write(args.out, key.private_pem(), secret=True, force=args.force)
    return 0


def cmd_pubkey(args: argparse.Namespace) -> int:
    _write(args.out, _private(args.key).public_key().public_pem())
    return 0


def cmd_sign(args: argparse.Namespace) -> int:
    key = _private(args.key)
    enc: keys.Encoding = "raw" if args.raw else "der"
    _write(args.out, key.sign(_read(args.infile), encoding=enc, distinguishing_id=_dist_id(args)))
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    key = _public(args.key)
    enc: keys.Encoding = "raw" if args.raw else "der"
    try:
        key.verify(
            _read(args.sig), _read(args.infile), encoding=enc, distinguishing_id=_dist_id(args)
        )
    except InvalidSignature as exc:
        print(f"ztgate: verification failed: {exc}", file=sys.stderr)
        return 1
    print("Signature Verified Successfully", file=sys.stderr)
    return 0


def cmd_encrypt(args: argparse.Namespace) -> int:
    key = _public(args.key)
    _sm2_only(key, "encrypt")
    assert isinstance(key.native, sm2.SM2PublicKey)
    _write(args.out, key.native.encrypt(_read(args.infile), encoding="raw" if args.raw else "der"))
    return 0


def cmd_decrypt(args: argparse.Namespace) -> int:
    key = _private(args.key)
    _sm2_only(key, "decrypt")
    assert isinstance(key.native, sm2.SM2PrivateKey)
    _write(args.out, key.native.decrypt(_read(args.infile), encoding="raw" if args.raw else "der"))
    return 0


def cmd_hash(args: argparse.Namespace) -> int:
    print(sm3.digest(_read(args.infile)).hex())
    return 0


def cmd_hmac(args: argparse.Namespace) -> int:
    try:
        mac_key = binascii.unhexlify(args.key_hex)
    except (binascii.Error, ValueError):
        raise CliError("--key-hex is not valid hex") from None
    print(sm3.hmac(mac_key, _read(args.infile)).hex())
    return 0


def cmd_jwks(args: argparse.Namespace) -> int:
    key = _public(args.key)
    jwk: dict[str, str] = dict(key.to_jwk())
    jwk.update(kid=args.kid or key.thumbprint(), use="sig", alg=keys.JWS_ALG[key.algorithm])
    print(json.dumps({"keys": [jwk]}, indent=2))
    return 0


def cmd_selftest(args: argparse.Namespace) -> int:
    results = selftest.run()
    if args.json:
        print(json.dumps({"backend": selftest.backend(), "checks": [r.__dict__ for r in results]}))
    else:
        print(f"backend: {selftest.backend()}")
        for r in results:
            mark = "PASS" if r.ok else "FAIL"
            print(f"{mark}  {r.name}  ({r.seconds * 1000:.1f} ms){'' if r.ok else ': ' + r.detail}")
    failed = [r for r in results if not r.ok]
    if failed:
        raise CliError(f"{len(failed)} self-test check(s) failed")
    if not args.json:
        print(f"all {len(results)} checks passed")
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "crypto",
        help="SM2/SM3/SM4 and JOSE key tooling (OpenSSL-compatible formats)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    cmds = parser.add_subparsers(dest="crypto_command", required=True, metavar="COMMAND")

    def add(name: str, fn: object, help_: str) -> argparse.ArgumentParser:
        p = cmds.add_parser(name, help=help_, description=help_)
        p.set_defaults(func=fn)
        return p

    def with_id(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--id",
            default=sm2.DEFAULT_ID.decode(),
            help="SM2 distinguishing ID (default %(default)s; ignored for other algorithms)",
        )

    p = add("keygen", cmd_keygen, "generate a private key (PKCS#8 PEM, file mode 0600)")
    p.add_argument("--alg", choices=keys.ALGORITHMS, default="sm2")
    p.add_argument("--out", required=True, metavar="KEY.pem")
    p.add_argument("--force", action="store_true", help="overwrite an existing file")

    p = add("pubkey", cmd_pubkey, "write the public key of a private key (PEM)")
    p.add_argument("--key", required=True, metavar="KEY.pem")
    p.add_argument("--out", required=True, metavar="PUB.pem")

    p = add("sign", cmd_sign, "sign a file (DER signature; --raw for r||s)")
    p.add_argument("--key", required=True, metavar="KEY.pem")
    p.add_argument("--in", dest="infile", required=True, metavar="FILE")
    p.add_argument("--out", required=True, metavar="SIG")
    p.add_argument("--raw", action="store_true", help="write r||s instead of DER")
    with_id(p)

    p = add("verify", cmd_verify, "verify a signature (exit 0 valid, 1 invalid, 2 error)")
    p.add_argument("--key", required=True, metavar="PUB.pem")
    p.add_argument("--in", dest="infile", required=True, metavar="FILE")
    p.add_argument("--sig", required=True, metavar="SIG")
    p.add_argument("--raw", action="store_true", help="the signature is r||s, not DER")
    with_id(p)

    p = add("encrypt", cmd_encrypt, "SM2-encrypt a file to a public key (DER C1C3C2)")
    p.add_argument("--key", required=True, metavar="PUB.pem")
    p.add_argument("--in", dest="infile", required=True, metavar="FILE")
    p.add_argument("--out", required=True, metavar="CT")
    p.add_argument("--raw", action="store_true", help="write 04||x||y||C3||C2 instead of DER")

    p = add("decrypt", cmd_decrypt, "SM2-decrypt (fails on any tampering)")
    p.add_argument("--key", required=True, metavar="KEY.pem")
    p.add_argument("--in", dest="infile", required=True, metavar="CT")
    p.add_argument("--out", required=True, metavar="FILE")
    p.add_argument("--raw", action="store_true", help="the input is 04||x||y||C3||C2")

    p = add("hash", cmd_hash, "SM3 digest of a file, lowercase hex")
    p.add_argument("--alg", choices=["sm3"], default="sm3")
    p.add_argument("--in", dest="infile", required=True, metavar="FILE")

    p = add("hmac", cmd_hmac, "HMAC-SM3 of a file, lowercase hex")
    p.add_argument("--alg", choices=["sm3"], default="sm3")
    p.add_argument("--key-hex", required=True, metavar="HEX")
    p.add_argument("--in", dest="infile", required=True, metavar="FILE")

    p = add("jwks", cmd_jwks, "print the JWKS of a public key")
    p.add_argument("--key", required=True, metavar="PUB.pem")
    p.add_argument("--kid", help="key id (default: RFC 7638 thumbprint)")

    p = add("selftest", cmd_selftest, "run the known-answer self-test (standard vectors)")
    p.add_argument("--json", action="store_true", help="print results as JSON")
