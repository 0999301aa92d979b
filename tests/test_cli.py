"""The `ztgate` CLI as an operator uses it: help, exit codes, one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from crypto import keys
from tests.conftest import Run

CRYPTO_COMMANDS = [
    "keygen",
    "pubkey",
    "sign",
    "verify",
    "encrypt",
    "decrypt",
    "hash",
    "hmac",
    "jwks",
    "selftest",
]


def test_top_level_help_lists_subcommands(ztgate: Run) -> None:
    proc = ztgate("--help")
    assert proc.returncode == 0
    for name in ("up", "crypto", "authn", "config", "version"):
        assert name in proc.stdout.decode()


@pytest.mark.parametrize("command", CRYPTO_COMMANDS)
def test_every_crypto_subcommand_has_help(ztgate: Run, command: str) -> None:
    proc = ztgate("crypto", command, "--help")
    assert proc.returncode == 0
    assert f"ztgate crypto {command}" in proc.stdout.decode()


def test_selftest_passes(ztgate: Run) -> None:
    proc = ztgate("crypto", "selftest", "--json")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert len(doc["checks"]) >= 4 and all(c["ok"] for c in doc["checks"])


@pytest.mark.parametrize("alg", ["sm2", "ec-p256", "ed25519"])
def test_keygen_sign_verify_every_algorithm(ztgate: Run, tmp_path: Path, alg: str) -> None:
    key, pub, msg, sig = (tmp_path / n for n in ("k.pem", "p.pem", "m", "s"))
    msg.write_bytes(b"hello")
    assert ztgate("crypto", "keygen", "--alg", alg, "--out", str(key)).returncode == 0
    assert keys.load_private(key.read_bytes()).algorithm == alg
    assert ztgate("crypto", "pubkey", "--key", str(key), "--out", str(pub)).returncode == 0
    for flag in ([], ["--raw"]):
        assert (
            ztgate(
                "crypto", "sign", *flag, "--key", str(key), "--in", str(msg), "--out", str(sig)
            ).returncode
            == 0
        )
        assert (
            ztgate(
                "crypto", "verify", *flag, "--key", str(pub), "--in", str(msg), "--sig", str(sig)
            ).returncode
            == 0
        )


def test_stdin_and_stdout(ztgate: Run, tmp_path: Path) -> None:
    key = tmp_path / "k.pem"
    ztgate("crypto", "keygen", "--out", str(key))
    sig = ztgate(
        "crypto", "sign", "--key", str(key), "--in", "-", "--out", "-", stdin=b"data"
    ).stdout
    assert keys.load_private(key.read_bytes()).public_key().verify(sig, b"data") is None
    digest = ztgate("crypto", "hash", "--in", "-", stdin=b"abc").stdout.decode().strip()
    assert digest == "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"


def test_keygen_refuses_to_overwrite(ztgate: Run, tmp_path: Path) -> None:
    key = tmp_path / "k.pem"
    assert ztgate("crypto", "keygen", "--out", str(key)).returncode == 0
    before = key.read_bytes()
    proc = ztgate("crypto", "keygen", "--out", str(key))
    assert proc.returncode == 2 and "exists" in proc.stderr.decode()
    assert key.read_bytes() == before


def _one_line_error(proc: object) -> str:
    stderr = proc.stderr.decode()  # type: ignore[attr-defined]
    assert proc.returncode == 2, stderr  # type: ignore[attr-defined]
    assert stderr.startswith("ztgate: ") and stderr.count("\n") == 1
    assert "Traceback" not in stderr
    return stderr


def test_invalid_signature_exits_1(ztgate: Run, tmp_path: Path) -> None:
    key, msg, sig = tmp_path / "k.pem", tmp_path / "m", tmp_path / "s"
    msg.write_bytes(b"m")
    ztgate("crypto", "keygen", "--out", str(key))
    ztgate("crypto", "sign", "--key", str(key), "--in", str(msg), "--out", str(sig))
    msg.write_bytes(b"M")
    proc = ztgate("crypto", "verify", "--key", str(key), "--in", str(msg), "--sig", str(sig))
    assert proc.returncode == 1


def test_tampered_key_file_is_a_clear_error(ztgate: Run, tmp_path: Path) -> None:
    key, msg = tmp_path / "k.pem", tmp_path / "m"
    msg.write_bytes(b"m")
    ztgate("crypto", "keygen", "--out", str(key))
    lines = key.read_bytes().splitlines()
    body = bytearray(lines[1])
    body[10] = ord("A") if body[10] != ord("A") else ord("B")
    key.write_bytes(b"\n".join([lines[0], bytes(body), *lines[2:]]) + b"\n")
    err = _one_line_error(
        ztgate("crypto", "sign", "--key", str(key), "--in", str(msg), "--out", "-")
    )
    assert "key" in err


@pytest.mark.parametrize(
    "args",
    [
        ("crypto", "sign", "--key", "/nonexistent.pem", "--in", "-", "--out", "-"),
        ("crypto", "hmac", "--key-hex", "zz", "--in", "-"),
        ("crypto", "encrypt", "--key", "{ed}", "--in", "-", "--out", "-"),
        ("crypto", "decrypt", "--key", "{sm2}", "--in", "{garbage}", "--out", "-"),
    ],
)
def test_failures_are_one_line(ztgate: Run, tmp_path: Path, args: tuple[str, ...]) -> None:
    ed, sm, garbage = tmp_path / "ed.pem", tmp_path / "sm.pem", tmp_path / "g"
    ztgate("crypto", "keygen", "--alg", "ed25519", "--out", str(ed))
    ztgate("crypto", "keygen", "--out", str(sm))
    garbage.write_bytes(b"\x30\x03\x02\x01\x01")
    subst = {"{ed}": str(ed), "{sm2}": str(sm), "{garbage}": str(garbage)}
    _one_line_error(ztgate(*(subst.get(a, a) for a in args), stdin=b"x"))


def test_jwks(ztgate: Run, tmp_path: Path) -> None:
    key = tmp_path / "k.pem"
    ztgate("crypto", "keygen", "--out", str(key))
    doc = json.loads(ztgate("crypto", "jwks", "--key", str(key), "--kid", "k1").stdout)
    (jwk,) = doc["keys"]
    assert jwk["kid"] == "k1" and jwk["crv"] == "SM2" and jwk["alg"] == "SM2SM3"
    assert "d" not in jwk
    assert (
        keys.PublicKey.from_jwk(jwk).thumbprint()
        == keys.load_private(key.read_bytes()).public_key().thumbprint()
    )


def test_config_check_names_the_offending_key(ztgate: Run, tmp_path: Path) -> None:
    cfg = tmp_path / "ztgate.toml"
    cfg.write_text('[crypto]\nsigning_algorithm = "rsa"\n')
    err = _one_line_error(ztgate("config", "check", str(cfg)))
    assert "crypto.signing_algorithm" in err
    cfg.write_text('[crypto]\nsigning_algorithm = "ec-p256"\n')
    assert ztgate("config", "check", str(cfg)).returncode == 0


def test_config_schema_is_json_schema(ztgate: Run) -> None:
    schema = json.loads(ztgate("config", "schema").stdout)
    assert schema["properties"]["crypto"]["properties"]["signing_algorithm"]["enum"] == [
        "sm2",
        "ec-p256",
        "ed25519",
    ]


def test_authn_serve_serves_until_sigterm(tmp_path: Path) -> None:
    """`ztgate authn serve` as an operator runs it: self-test, serve, stop cleanly on
    SIGTERM, and keep its state (the admin token and signing keys survive a restart).
    The whole stack (`ztgate up`) has its own test, tests/test_up.py."""
    import os
    import signal
    import subprocess
    import sys
    import time
    import urllib.request

    from authn.service.runner import free_port

    port = free_port()
    config = tmp_path / "ztgate.toml"
    config.write_text(
        f'[state]\ndir = "{tmp_path / "state"}"\n'
        f'[authn]\nport = {port}\npublic_url = "http://localhost:{port}"\n'
    )

    def run_once() -> tuple[dict[str, object], str]:
        proc = subprocess.Popen(
            [sys.executable, "-m", "ztgate", "--config", str(config), "authn", "serve"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    with urllib.request.urlopen(
                        f"http://127.0.0.1:{port}/.well-known/jwks.json"
                    ) as r:
                        jwks: dict[str, object] = json.load(r)
                    break
                except OSError:
                    assert proc.poll() is None, proc.communicate()
                    assert time.monotonic() < deadline, "ztgate authn serve did not start"
                    time.sleep(0.1)
        finally:
            proc.send_signal(signal.SIGTERM)
            out, err = proc.communicate(timeout=30)
        assert proc.returncode == 0, err
        assert f"on http://localhost:{port}".encode() in out
        for line in err.decode().splitlines():  # logs are JSON lines
            json.loads(line)
        return jwks, (tmp_path / "state" / "admin-token").read_text()

    first = run_once()
    assert oct(os.stat(tmp_path / "state").st_mode & 0o777) == "0o700"
    assert run_once() == first
