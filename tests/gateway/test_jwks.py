"""Token keys from a JWKS file: strict parsing, and reloads that keep cached tokens valid."""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crypto.jose import JoseError
from crypto.keyring import KeyRing
from gateway.jwks import JwksError, JwksKeys, parse_jwks


def _ring() -> KeyRing:
    ring = KeyRing()
    ring.generate("sm2")
    return ring


def _write(path: Path, doc: object) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(doc))
    os.replace(tmp, path)


def test_resolve_returns_the_same_key_object_until_the_key_changes(tmp_path: Path) -> None:
    ring = _ring()
    path = tmp_path / "jwks.json"
    _write(path, ring.jwks())
    keys = JwksKeys(path)
    kid = ring.signing_key()[0]
    first = keys.resolve(kid, "SM2SM3")
    assert keys.reload() is False and keys.resolve(kid, "SM2SM3") is first

    new_kid = ring.rotate("sm2")
    _write(path, ring.jwks())
    os.utime(path, ns=(1, 1))  # a distinct stamp even within one clock tick
    assert keys.reload() is True
    assert keys.resolve(kid, "SM2SM3") is first  # unchanged key: same object
    assert keys.resolve(new_kid, "SM2SM3").to_jwk() == ring.public_key(new_kid).to_jwk()
    with pytest.raises(JoseError, match="not in the JWKS"):
        keys.resolve("unknown", "SM2SM3")
    with pytest.raises(JoseError, match="no kid"):
        keys.resolve(None, "SM2SM3")


def test_a_broken_file_keeps_the_previous_keys(tmp_path: Path) -> None:
    ring = _ring()
    path = tmp_path / "jwks.json"
    _write(path, ring.jwks())
    keys = JwksKeys(path)
    path.write_text("{half-written")
    assert keys.reload() is False
    assert set(keys.keys) == {ring.signing_key()[0]}
    path.unlink()
    assert keys.reload() is False and len(keys.keys) == 1


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({}, "holds 1 to 32 keys"),
        ({"keys": ["x"]}, "key 0 is not an object"),
        ({"keys": [{"kty": "oct", "k": "AAAA", "kid": "a"}]}, "private key material"),
        ({"keys": [{"kty": "EC", "crv": "P-256"}]}, "needs a kid"),
        ({"keys": [{"kty": "RSA", "n": "AQAB", "e": "AQAB", "kid": "r"}]}, "is not an SM2"),
    ],
)
def test_bad_key_sets_are_refused(doc: object, message: str) -> None:
    with pytest.raises(JwksError, match=message):
        parse_jwks(doc)


def test_duplicate_kids_wrong_alg_and_encryption_keys_are_refused() -> None:
    jwk = {**_ring().jwks()["keys"][0]}
    with pytest.raises(JwksError, match="duplicate kid"):
        parse_jwks({"keys": [jwk, jwk]})
    with pytest.raises(JwksError, match="alg does not match"):
        parse_jwks({"keys": [{**jwk, "alg": "ES256"}]})
    with pytest.raises(JwksError, match="no signing key"):
        parse_jwks({"keys": [{**jwk, "use": "enc"}]})


@given(
    st.recursive(
        st.none() | st.booleans() | st.text(max_size=10) | st.integers(),
        lambda inner: (
            st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=4)
        ),
        max_leaves=20,
    )
)
def test_any_json_is_a_key_set_or_a_jwks_error(doc: object) -> None:
    with contextlib.suppress(JwksError):
        parse_jwks(doc)
