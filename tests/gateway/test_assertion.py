"""Identity assertions: what the core service accepts, and every way it refuses."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crypto import jose, keys, sm3
from crypto.keyring import KeyRing
from gateway.assertion import (
    ASSERTION_TYP,
    AssertedConsent,
    AssertionKeys,
    AssertionSigner,
    InvalidAssertion,
    hmac_kid,
    verify_assertion,
)

NOW = 1_767_225_600.0
SHARED = b"\x11" * 32


def _ring(algorithm: keys.Algorithm = "sm2") -> KeyRing:
    ring = KeyRing()
    ring.generate(algorithm)
    return ring


def _sign(signer: AssertionSigner, **overrides: Any) -> str:
    args: dict[str, Any] = {
        "subject": "u-alice",
        "kind": "customer",
        "acr": "urn:ztgate:acr:mfa",
        "device": "dev-1",
        "risk": 12,
        "decision_id": "d-1",
        "route_id": "accounts.balances",
        "method": "GET",
        "path": "/accounts/1",
        "now": NOW,
    }
    args.update(overrides)
    return signer.sign(**args)


def _verify(token: str, keyset: AssertionKeys, **overrides: Any) -> Any:
    args: dict[str, Any] = {
        "expected_method": "GET",
        "expected_path": "/accounts/1",
        "keys": keyset,
        "now": NOW + 1,
    }
    args.update(overrides)
    return verify_assertion(token, **args)


def _code(token: str, keyset: AssertionKeys, **overrides: Any) -> str:
    with pytest.raises(InvalidAssertion) as info:
        _verify(token, keyset, **overrides)
    return info.value.code


def _b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _raw(header: dict[str, Any], claims: dict[str, Any], sign: Any) -> str:
    signing_input = f"{_b64u(json.dumps(header).encode())}.{_b64u(json.dumps(claims).encode())}"
    return f"{signing_input}.{_b64u(sign(signing_input.encode()))}"


@pytest.mark.parametrize("algorithm", ["sm2", "ec-p256", "ed25519"])
def test_key_ring_assertions_verify_with_the_public_jwks(algorithm: keys.Algorithm) -> None:
    ring = _ring(algorithm)
    signer = AssertionSigner(issuer="edge-1", keyring=ring)
    token = _sign(signer)
    header = json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))
    assert header == {
        "alg": keys.JWS_ALG[algorithm],
        "kid": ring.signing_key()[0],
        "typ": ASSERTION_TYP,
    }
    claims = _verify(token, AssertionKeys.from_jwks(ring.jwks()), issuer="edge-1")
    assert (claims.subject, claims.kind, claims.risk, claims.decision_id) == (
        "u-alice",
        "customer",
        12,
        "d-1",
    )
    assert (claims.issued_at, claims.expires_at) == (NOW, NOW + 30)


def test_sm2_assertion_verifies_with_openssl_semantics_via_crypto_jose() -> None:
    """The signature is an ordinary SM2SM3 JWS: crypto.jose verifies it with the key alone."""
    ring = _ring()
    token = _sign(AssertionSigner(issuer="edge-1", keyring=ring))
    public = ring.public_key(ring.signing_key()[0])
    payload = json.loads(jose.verify_jws(token, key=public, typ=ASSERTION_TYP))
    assert payload["route_id"] == "accounts.balances" and len(payload["jti"]) >= 16


def test_hmac_sm3_assertions_verify_with_the_shared_key() -> None:
    signer = AssertionSigner(issuer="edge-1", hmac_key=SHARED)
    token = _sign(signer, subject=None, kind="anonymous", acr=None, device=None)
    head, payload, mac = token.split(".")
    header = json.loads(base64.urlsafe_b64decode(head + "=="))
    assert header == {"alg": "HSM3", "kid": hmac_kid(SHARED), "typ": ASSERTION_TYP}
    assert base64.urlsafe_b64decode(mac + "=") == sm3.hmac(SHARED, f"{head}.{payload}".encode())
    claims = _verify(token, AssertionKeys.from_hmac(b"\x22" * 32, SHARED))  # rotation: two keys
    assert (claims.subject, claims.acr, claims.device) == (None, None, None)
    assert signer.verification_keys().hmac == {hmac_kid(SHARED): SHARED}


def test_each_assertion_has_its_own_jti() -> None:
    signer = AssertionSigner(issuer="edge-1", hmac_key=SHARED)
    keyset = signer.verification_keys()
    assert _verify(_sign(signer), keyset).jti != _verify(_sign(signer), keyset).jti


# -- refusals ---------------------------------------------------------------------------


@pytest.fixture
def sm2() -> tuple[AssertionSigner, AssertionKeys]:
    signer = AssertionSigner(issuer="edge-1", keyring=_ring())
    return signer, signer.verification_keys()


def test_the_request_binding_is_enforced(sm2: tuple[AssertionSigner, AssertionKeys]) -> None:
    signer, keyset = sm2
    token = _sign(signer)
    assert _code(token, keyset, expected_method="POST") == "wrong_method"
    assert _code(token, keyset, expected_path="/accounts/2") == "wrong_path"
    assert _code(token, keyset, expected_path="/accounts/1/") == "wrong_path"
    assert _verify(token, keyset, expected_path="/accounts/1?x=1").path == "/accounts/1"


def test_time_and_issuer_are_enforced(sm2: tuple[AssertionSigner, AssertionKeys]) -> None:
    signer, keyset = sm2
    token = _sign(signer)
    assert _code(token, keyset, now=NOW + 36) == "expired"
    assert _verify(token, keyset, now=NOW + 34).risk == 12  # within the 5 s leeway
    assert _code(token, keyset, now=NOW - 6) == "not_yet_valid"
    assert _code(token, keyset, issuer="edge-2") == "wrong_issuer"
    long_lived = AssertionSigner(issuer="edge-1", ttl=300, keyring=_ring())
    assert _code(_sign(long_lived), long_lived.verification_keys(), max_ttl=60) == (
        "lifetime_too_long"
    )


def test_another_edges_key_or_a_tampered_payload_fail(
    sm2: tuple[AssertionSigner, AssertionKeys],
) -> None:
    signer, keyset = sm2
    other = AssertionSigner(issuer="edge-1", keyring=_ring())
    assert _code(_sign(other), keyset) == "unknown_kid"
    token = _sign(signer)
    head, payload, sig = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    forged = _b64u(json.dumps({**claims, "sub": "u-mallory"}).encode())
    assert _code(f"{head}.{forged}.{sig}", keyset) == "invalid_signature"
    hmac_signer = AssertionSigner(issuer="edge-1", hmac_key=SHARED)
    wrong_secret = AssertionKeys(hmac={hmac_kid(SHARED): b"\x33" * 32})
    assert _code(_sign(hmac_signer), wrong_secret) == "invalid_signature"


def test_algorithm_confusion_is_refused(sm2: tuple[AssertionSigner, AssertionKeys]) -> None:
    signer, keyset = sm2
    kid = next(iter(keyset.public))
    claims = json.loads(base64.urlsafe_b64decode(_sign(signer).split(".")[1] + "=="))
    public_pem = keyset.public[kid].public_pem()
    # An HMAC keyed with the public key, under the SM2 kid (the classic confusion).
    as_hmac = _raw(
        {"alg": "HSM3", "kid": kid, "typ": ASSERTION_TYP},
        claims,
        lambda data: sm3.hmac(public_pem, data),
    )
    assert _code(as_hmac, keyset) == "alg_not_allowed"
    unsigned = _raw({"alg": "none", "kid": kid, "typ": ASSERTION_TYP}, claims, lambda _: b"")
    assert _code(unsigned + "x", keyset) == "alg_not_allowed"
    # An SM2 signature under an HMAC kid: the key fixes the algorithm.
    hmac_keys = AssertionKeys.from_hmac(SHARED)
    ring = _ring()
    sm2_under_hmac_kid = _raw(
        {"alg": "SM2SM3", "kid": hmac_kid(SHARED), "typ": ASSERTION_TYP},
        claims,
        lambda data: ring.signing_key()[1].sign(data, encoding="raw"),
    )
    assert _code(sm2_under_hmac_kid, hmac_keys) == "alg_not_allowed"


def test_type_and_header_members_are_strict(sm2: tuple[AssertionSigner, AssertionKeys]) -> None:
    signer, keyset = sm2
    kid, key = signer._ring.signing_key()  # type: ignore[union-attr]
    claims = json.loads(base64.urlsafe_b64decode(_sign(signer).split(".")[1] + "=="))

    def sm2_sig(data: bytes) -> bytes:
        return key.sign(data, encoding="raw")

    access_token = _raw({"alg": "SM2SM3", "kid": kid, "typ": "at+jwt"}, claims, sm2_sig)
    assert _code(access_token, keyset) == "invalid_typ"
    with_jwk = _raw(
        {"alg": "SM2SM3", "kid": kid, "typ": ASSERTION_TYP, "jwk": {"kty": "EC"}}, claims, sm2_sig
    )
    assert _code(with_jwk, keyset) == "malformed"
    with_crit = _raw(
        {"alg": "SM2SM3", "kid": kid, "typ": ASSERTION_TYP, "crit": ["exp"]}, claims, sm2_sig
    )
    assert _code(with_crit, keyset) == "malformed"
    for bad in ({"risk": 101}, {"risk": True}, {"sub": 7}, {"path": None}, {"iat": "now"}):
        token = _raw(
            {"alg": "SM2SM3", "kid": kid, "typ": ASSERTION_TYP}, {**claims, **bad}, sm2_sig
        )
        assert _code(token, keyset) == "invalid_claims", bad
    missing_device = {k: v for k, v in claims.items() if k != "device"}
    token = _raw({"alg": "SM2SM3", "kid": kid, "typ": ASSERTION_TYP}, missing_device, sm2_sig)
    assert _code(token, keyset) == "invalid_claims"


def test_signers_and_key_sets_refuse_weak_or_ambiguous_keys(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="at least 32 bytes"):
        AssertionSigner(issuer="e", hmac_key=b"short")
    with pytest.raises(ValueError, match="exactly one"):
        AssertionSigner(issuer="e")
    with pytest.raises(ValueError, match="at least 32 bytes"):
        AssertionKeys.from_hmac(b"short")
    ring = _ring()
    kid = ring.signing_key()[0]
    with pytest.raises(ValueError, match="not both"):
        AssertionKeys(public={kid: ring.public_key(kid)}, hmac={kid: SHARED})
    with pytest.raises(ValueError, match="assertion JWKS"):
        AssertionKeys.from_jwks({"keys": []})


@given(st.text(max_size=300) | st.binary(max_size=300).map(lambda b: b.decode("latin-1")))
def test_arbitrary_strings_are_refused_with_a_code(text: str) -> None:
    keyset = AssertionKeys.from_hmac(SHARED)
    with pytest.raises(InvalidAssertion):
        verify_assertion(
            text, expected_method="GET", expected_path="/", keys=keyset, now=time.time()
        )


@given(
    st.lists(
        st.text(
            alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", max_size=80
        ),
        min_size=3,
        max_size=3,
    )
)
def test_arbitrary_base64url_segments_are_refused_with_a_code(segments: list[str]) -> None:
    keyset = AssertionKeys.from_hmac(SHARED)
    with pytest.raises(InvalidAssertion):
        verify_assertion(
            ".".join(segments), expected_method="GET", expected_path="/", keys=keyset, now=NOW
        )


_TEXT = st.text(max_size=40)


@given(
    subject=st.none() | _TEXT,
    acr=st.none() | _TEXT,
    device=st.none() | _TEXT,
    path=_TEXT,
    risk=st.integers(0, 100),
    accounts=st.none() | st.lists(_TEXT, max_size=3),
)
def test_the_payload_is_the_claims_as_compact_ascii_json(
    subject: str | None,
    acr: str | None,
    device: str | None,
    path: str,
    risk: int,
    accounts: list[str] | None,
) -> None:
    """The signer writes the claims member by member; the bytes must be exactly what
    ``json.dumps(separators=(",", ":"), ensure_ascii=True)`` gives, whatever the text."""
    signer = AssertionSigner(issuer="edge-\u00e9", hmac_key=b"k" * 32)
    consent = None if accounts is None else AssertedConsent("c\u4e2d", '"u"', tuple(accounts))
    token = signer.sign(
        subject=subject,
        kind="customer",
        acr=acr,
        device=device,
        risk=risk,
        decision_id="d\\1",
        route_id="r",
        method="GET",
        path=path,
        now=1_000.9,
        consent=consent,
    )
    raw = base64.urlsafe_b64decode(token.split(".")[1] + "==")
    claims = json.loads(raw)
    assert raw == json.dumps(claims, separators=(",", ":"), ensure_ascii=True).encode()
    assert (claims["sub"], claims["acr"], claims["device"], claims["path"]) == (
        subject,
        acr,
        device,
        path,
    )
    assert claims["iat"] == 1_000 and claims["exp"] == 1_000 + signer.ttl
    if accounts is not None:
        assert claims["consent"] == {"id": "c\u4e2d", "customer": '"u"', "accounts": accounts}
