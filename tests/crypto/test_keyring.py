"""Key ring: rotation, retirement, JWKS, and crash-safe (optionally sealed) storage."""

from __future__ import annotations

import json
import os
import stat
import threading
import time
from pathlib import Path
from typing import Any

import jwt
import pytest

from crypto import jose, keys
from crypto.envelope import KeyEncryptionKeyRing
from crypto.errors import CryptoError, InvalidKey
from crypto.jose import JoseError
from crypto.keyring import INDEX, KeyRing

AUD = "https://gw.bank.example"


def token(ring: KeyRing, **extra: Any) -> str:
    kid, key = ring.signing_key()
    now = int(time.time())
    return jose.encode_jwt({"aud": AUD, "exp": now + 60, "iat": now, **extra}, key, kid=kid)


def verify(ring: KeyRing, tok: str) -> dict[str, Any]:
    return jose.decode_jwt(tok, key=ring.resolver(), audience=AUD, issuer=None)


def code(ring: KeyRing, tok: str) -> str:
    with pytest.raises(JoseError) as info:
        verify(ring, tok)
    return info.value.code


def thumbprints(ring: KeyRing) -> dict[str, str]:
    return {e.kid: e.public.thumbprint() for e in ring.entries}


def test_first_key_is_active_and_kid_is_thumbprint() -> None:
    ring = KeyRing()
    assert ring.active is None
    with pytest.raises(InvalidKey):
        ring.signing_key()
    kid = ring.generate()
    entry = ring.active
    assert entry is not None and entry.kid == kid and entry.state == "active"
    assert kid == entry.public.thumbprint()  # RFC 7638
    assert entry.alg == "SM2SM3" and entry.key is not None
    assert ring.signing_key() == (kid, entry.key)
    assert verify(ring, token(ring))["aud"] == AUD


def test_prepublished_key_then_activate() -> None:
    ring = KeyRing()
    first = ring.generate()
    staged = ring.generate("ec-p256", kid="next-key")
    assert ring.signing_key()[0] == first
    assert [k["kid"] for k in ring.jwks()["keys"]] == [first, "next-key"]
    old = token(ring)
    ring.activate("next-key")
    assert ring.signing_key()[0] == staged
    assert jwt.get_unverified_header(token(ring))["kid"] == staged
    assert verify(ring, old)["aud"] == AUD
    demoted = {e.kid: e for e in ring.entries}[first]
    assert demoted.state == "verify_only" and demoted.key is None  # can never sign again
    with pytest.raises(InvalidKey):
        ring.activate(first)


def test_rotation_keeps_old_tokens_valid_and_retire_ends_them() -> None:
    ring = KeyRing()
    first = ring.generate()
    before = token(ring, n=1)
    second = ring.rotate("ed25519")
    after = token(ring, n=2)
    assert second != first
    assert jwt.get_unverified_header(after)["kid"] == second
    assert jwt.get_unverified_header(after)["alg"] == "EdDSA"
    assert verify(ring, before)["n"] == 1  # signed before rotation, still verifies
    assert verify(ring, after)["n"] == 2
    states = {e.kid: e.state for e in ring.entries}
    assert states == {first: "verify_only", second: "active"}

    ring.retire(first)
    assert code(ring, before) == "unknown_kid"
    with pytest.raises(JoseError) as info:
        ring.public_key(first)
    assert info.value.code == "unknown_kid"
    assert [k["kid"] for k in ring.jwks()["keys"]] == [second]
    assert verify(ring, after)["n"] == 2

    with pytest.raises(InvalidKey):
        ring.retire(second)  # the active key: rotate first
    with pytest.raises(InvalidKey):
        ring.remove(second)
    ring.remove(first)
    assert [e.kid for e in ring.entries] == [second]
    with pytest.raises(JoseError) as info:
        ring.remove(first)
    assert info.value.code == "unknown_kid"


def test_unknown_and_missing_kid() -> None:
    ring = KeyRing()
    ring.generate()
    other = KeyRing()
    other.generate()
    assert code(ring, token(other)) == "unknown_kid"
    _, key = ring.signing_key()
    now = int(time.time())
    no_kid = jose.encode_jwt({"aud": AUD, "exp": now + 60, "iat": now}, key)
    assert code(ring, no_kid) == "unknown_kid"


def test_resolver_still_checks_alg_against_the_kid() -> None:
    ring = KeyRing()
    sm2_kid = ring.generate("sm2")
    intruder = keys.generate("ec-p256")
    now = int(time.time())
    forged = jose.encode_jwt({"aud": AUD, "exp": now + 60, "iat": now}, intruder, kid=sm2_kid)
    assert code(ring, forged) == "alg_not_allowed"


def test_jwks_has_public_members_only() -> None:
    ring = KeyRing()
    for algorithm in keys.ALGORITHMS:
        ring.generate(algorithm)
    jwks = ring.jwks()
    assert len(jwks["keys"]) == 3
    for jwk in jwks["keys"]:
        assert "d" not in jwk
        assert jwk["use"] == "sig"
        assert jwk["alg"] in {"SM2SM3", "ES256", "EdDSA"}
        bare = {k: v for k, v in jwk.items() if k not in ("kid", "use", "alg")}
        assert jwk["kid"] == keys.PublicKey.from_jwk(bare).thumbprint()
    assert "PRIVATE" not in json.dumps(jwks)


def test_kid_validation() -> None:
    ring = KeyRing()
    ring.generate(kid="k-1")
    for bad in ("", "../etc/passwd", "a.b", "a/b", "x" * 65, "é"):
        with pytest.raises(InvalidKey):
            ring.generate(kid=bad)
    with pytest.raises(InvalidKey):
        ring.generate(kid="k-1")


def test_concurrent_rotation_leaves_one_active_key() -> None:
    ring = KeyRing()
    ring.generate()
    threads = [threading.Thread(target=ring.rotate, args=("ed25519",)) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    states = [e.state for e in ring.entries]
    assert len(states) == 9 and states.count("active") == 1


# -- persistence --------------------------------------------------------------------


def make_ring() -> KeyRing:
    ring = KeyRing()
    ring.generate("sm2")
    ring.rotate("ec-p256")
    ring.generate("ed25519", kid="staged")
    retired = ring.generate("sm2", kid="old")
    ring.retire(retired)
    return ring


def test_save_load_round_trip(tmp_path: Path) -> None:
    ring = make_ring()
    old = token(ring)
    ring.save(tmp_path / "ring")
    files = sorted(p.name for p in (tmp_path / "ring").iterdir())
    assert INDEX in files and len(files) == 5  # one file per key + the index
    for path in (tmp_path / "ring").iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path.name
    assert stat.S_IMODE((tmp_path / "ring").stat().st_mode) == 0o700

    loaded = KeyRing.load(tmp_path / "ring")
    assert thumbprints(loaded) == thumbprints(ring)
    assert [(e.kid, e.state, e.created_at) for e in loaded.entries] == [
        (e.kid, e.state, e.created_at) for e in ring.entries
    ]
    assert [e.key is None for e in loaded.entries] == [e.key is None for e in ring.entries]
    assert loaded.jwks() == ring.jwks()
    assert verify(loaded, old)["aud"] == AUD
    assert verify(ring, token(loaded))["aud"] == AUD


def test_save_drops_files_of_removed_keys(tmp_path: Path) -> None:
    ring = make_ring()
    ring.save(tmp_path)
    ring.remove("old")
    ring.save(tmp_path)
    assert not any(p.name.startswith("old.") for p in tmp_path.iterdir())
    assert thumbprints(KeyRing.load(tmp_path)) == thumbprints(ring)


def test_sealed_private_keys(tmp_path: Path) -> None:
    kek = KeyEncryptionKeyRing.generate()
    ring = make_ring()
    ring.save(tmp_path, envelope=kek)
    private = [p for p in tmp_path.iterdir() if ".key." in p.name]
    assert len(private) == 2
    for path in private:
        assert path.name.endswith(".key.sealed")
        assert b"-----BEGIN" not in path.read_bytes()
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    loaded = KeyRing.load(tmp_path, envelope=kek)
    assert thumbprints(loaded) == thumbprints(ring)
    assert verify(ring, token(loaded))["aud"] == AUD

    with pytest.raises(CryptoError, match="KEK ring"):
        KeyRing.load(tmp_path)  # sealed, but no KEK given
    with pytest.raises(CryptoError, match="unusable"):
        KeyRing.load(tmp_path, envelope=KeyEncryptionKeyRing.generate())  # wrong KEK
    # a sealed blob moved to another kid does not open (context binds the kid)
    a, b = sorted(private)
    a_bytes = a.read_bytes()
    a.write_bytes(b.read_bytes())
    with pytest.raises(CryptoError, match="unusable"):
        KeyRing.load(tmp_path, envelope=kek)
    a.write_bytes(a_bytes)


def test_clear_keys_refused_when_a_kek_is_given(tmp_path: Path) -> None:
    make_ring().save(tmp_path)
    with pytest.raises(CryptoError, match="refusing clear keys"):
        KeyRing.load(tmp_path, envelope=KeyEncryptionKeyRing.generate())


def _edit_index(directory: Path, change: Any) -> None:
    doc = json.loads((directory / INDEX).read_text())
    change(doc)
    (directory / INDEX).write_text(json.dumps(doc))


@pytest.mark.parametrize(
    ("corruption", "message"),
    [
        (lambda d: (d / INDEX).write_bytes(b"\x00garbage"), "not JSON"),
        (lambda d: (d / INDEX).write_bytes((d / INDEX).read_bytes()[:40]), "not JSON"),
        (lambda d: (d / INDEX).write_text("[]"), "version 1"),
        (lambda d: _edit_index(d, lambda j: j.update(version=2)), "version 1"),
        (lambda d: _edit_index(d, lambda j: j.update(keys={})), "must be a list"),
        (lambda d: _edit_index(d, lambda j: j["keys"][0].update(kid="../x")), "bad entry"),
        (lambda d: _edit_index(d, lambda j: j["keys"][0].update(state="boss")), "bad entry"),
        (lambda d: _edit_index(d, lambda j: j["keys"][0].pop("thumbprint")), "exactly"),
        (lambda d: _edit_index(d, lambda j: j["keys"][0].update(created_at="now")), "bad entry"),
        (lambda d: _edit_index(d, lambda j: j["keys"].append(j["keys"][0])), "duplicate kid"),
        (lambda d: _edit_index(d, lambda j: j["keys"][0].update(thumbprint="x")), "does not hold"),
        (
            lambda d: _edit_index(d, lambda j: [e.update(state="active") for e in j["keys"][:2]]),
            "more than one active",
        ),
        (lambda d: (d / INDEX).unlink(), "no key ring index"),
    ],
)
def test_corrupted_index_is_a_clear_crypto_error(
    tmp_path: Path, corruption: Any, message: str
) -> None:
    ring = KeyRing()
    ring.generate()
    ring.generate()
    ring.save(tmp_path)
    corruption(tmp_path)
    with pytest.raises(CryptoError, match=message):
        KeyRing.load(tmp_path)


def test_corrupted_or_missing_key_file(tmp_path: Path) -> None:
    ring = KeyRing()
    kid = ring.generate()
    ring.save(tmp_path)
    (tmp_path / f"{kid}.key.pem").write_bytes(b"-----BEGIN PRIVATE KEY-----\nAAAA\n")
    with pytest.raises(CryptoError, match="unusable"):
        KeyRing.load(tmp_path)
    (tmp_path / f"{kid}.key.pem").write_bytes(keys.generate().private_pem())  # swapped key
    with pytest.raises(CryptoError, match="does not hold"):
        KeyRing.load(tmp_path)
    (tmp_path / f"{kid}.key.pem").unlink()
    with pytest.raises(CryptoError, match="missing"):
        KeyRing.load(tmp_path)


def test_crash_while_writing_the_index_keeps_the_old_ring(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ring = KeyRing()
    ring.generate()
    ring.save(tmp_path)
    before = (tmp_path / INDEX).read_bytes()
    ring.rotate()
    real_replace = os.replace

    def crash(src: str, dst: str | os.PathLike[str]) -> None:
        if Path(dst).name == INDEX:
            raise OSError("disk full")
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="disk full"):
        ring.save(tmp_path)
    monkeypatch.undo()
    assert (tmp_path / INDEX).read_bytes() == before
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    assert len(KeyRing.load(tmp_path).entries) == 1
