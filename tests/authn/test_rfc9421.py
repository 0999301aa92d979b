"""HTTP Message Signatures (RFC 9421): the RFC's vectors, SM2 interop, and attacks.

Published vectors used (RFC 9421, February 2024; keys from Appendix B.1):

- B.2.1, B.2.2, B.2.3 (test-request; RSA-PSS, which ztgate does not accept):
  the signature bases are rebuilt byte for byte;
- B.2.5 (``hmac-sha256``, not accepted either): the base byte for byte, proven
  by recomputing the RFC's deterministic HMAC value over it;
- B.2.4 (test-response, ``ecdsa-p256-sha256``, key B.1.3): base byte for
  byte, *and the RFC's own signature verifies* through `verify_response`;
- B.2.6 (test-request, ``ed25519``, key B.1.4): base byte for byte and the
  RFC's signature verifies;
- §2.4 (a response bound to its request with ``"signature";req;key="sig1"``,
  ``ecdsa-p256-sha256``): base byte for byte and the RFC's signature verifies.

ECDSA is randomised, so our own ES256/SM2 signatures are checked by
verification (ours and OpenSSL's), never against fixed bytes.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from authn import rfc9530
from authn.rfc8941 import (
    InnerList,
    Item,
    StructuredFieldError,
    Token,
    parse_dictionary,
    serialize_dictionary,
)
from authn.rfc9421 import (
    AuthnStoreReplay,
    HTTPRequest,
    HTTPResponse,
    SignatureError,
    sign_request,
    sign_response,
    verify_request,
    verify_response,
)
from authn.rfc9421 import algorithms as algs
from authn.rfc9421.components import Component, signature_base
from authn.rfc9421.signatures import MAX_SIGNATURE_FIELD
from authn.store import Store
from crypto import keys, sm2
from tests.conftest import Run

# -- RFC 9421 Appendix B.1 keys ----------------------------------------------------------

B13_P256_PRIVATE = b"""-----BEGIN EC PRIVATE KEY-----
MHcCAQEEIFKbhfNZfpDsW43+0+JjUr9K+bTeuxopu653+hBaXGA7oAoGCCqGSM49
AwEHoUQDQgAEqIVYZVLCrPZHGHjP17CTW0/+D9Lfw0EkjqF7xB4FivAxzic30tMM
4GF+hR6Dxh71Z50VGGdldkkDXZCnTNnoXQ==
-----END EC PRIVATE KEY-----
"""
B13_P256_PUBLIC = b"""-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEqIVYZVLCrPZHGHjP17CTW0/+D9Lf
w0EkjqF7xB4FivAxzic30tMM4GF+hR6Dxh71Z50VGGdldkkDXZCnTNnoXQ==
-----END PUBLIC KEY-----
"""
B14_ED25519_PRIVATE = b"""-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEIJ+DYvh6SEqVTm50DFtMDoQikTmiCqirVv9mWG9qfSnF
-----END PRIVATE KEY-----
"""

# -- RFC 9421 Appendix B.2 messages ------------------------------------------------------

TEST_REQUEST = HTTPRequest(
    "POST",
    "https://example.com/foo?param=Value&Pet=dog",
    (
        ("Host", "example.com"),
        ("Date", "Tue, 20 Apr 2021 02:07:55 GMT"),
        ("Content-Type", "application/json"),
        (
            "Content-Digest",
            "sha-512=:WZDPaVn/7XgHaAy8pmojAkGWoRx2UFChF41A2svX+TaPm+AbwAgBWnrIiYllu7BNNyealdVLvRwEmTHWXvJwew==:",
        ),
        ("Content-Length", "18"),
    ),
    b'{"hello": "world"}',
)
TEST_RESPONSE = HTTPResponse(
    200,
    (
        ("Date", "Tue, 20 Apr 2021 02:07:56 GMT"),
        ("Content-Type", "application/json"),
        (
            "Content-Digest",
            "sha-512=:mEWXIS7MaLRuGgxOBdODa3xqM1XdEvxoYhvlCFJ41QJgJc4GTsPp29l5oGX69wWdXymyU0rjJuahq4l5aGgfLQ==:",
        ),
        ("Content-Length", "23"),
    ),
    b'{"message": "good dog"}',
)
CREATED = 1618884473


def _base_for(message: HTTPRequest | HTTPResponse, signature_input: str, **kw: object) -> str:
    label, inner = parse_dictionary(signature_input)[0]
    assert isinstance(inner, InnerList), label
    comps = [Component(str(i.value), i.params) for i in inner.items]
    return signature_base(message, comps, inner, **kw).decode("ascii")  # type: ignore[arg-type]


def _jwks(public: keys.PublicKey, kid: str, **extra: str) -> dict[str, object]:
    return {"keys": [{**public.to_jwk(), "kid": kid, **extra}]}


def test_b21_minimal_signature_base() -> None:
    si = 'sig-b21=();created=1618884473;keyid="test-key-rsa-pss";nonce="b3k2pp5k7z-50gnwp.yemd"'
    assert _base_for(TEST_REQUEST, si) == (
        '"@signature-params": ();created=1618884473;keyid="test-key-rsa-pss"'
        ';nonce="b3k2pp5k7z-50gnwp.yemd"'
    )


def test_b22_selective_components_base() -> None:
    si = (
        'sig-b22=("@authority" "content-digest" "@query-param";name="Pet")'
        ';created=1618884473;keyid="test-key-rsa-pss";tag="header-example"'
    )
    assert _base_for(TEST_REQUEST, si) == (
        '"@authority": example.com\n'
        '"content-digest": sha-512=:WZDPaVn/7XgHaAy8pmojAkGWoRx2UFChF41A2svX'
        "+TaPm+AbwAgBWnrIiYllu7BNNyealdVLvRwEmTHWXvJwew==:\n"
        '"@query-param";name="Pet": dog\n'
        '"@signature-params": ("@authority" "content-digest" "@query-param";name="Pet")'
        ';created=1618884473;keyid="test-key-rsa-pss";tag="header-example"'
    )


def test_b23_full_coverage_base() -> None:
    si = (
        'sig-b23=("date" "@method" "@path" "@query" "@authority" "content-type" '
        '"content-digest" "content-length");created=1618884473;keyid="test-key-rsa-pss"'
    )
    assert _base_for(TEST_REQUEST, si) == (
        '"date": Tue, 20 Apr 2021 02:07:55 GMT\n'
        '"@method": POST\n'
        '"@path": /foo\n'
        '"@query": ?param=Value&Pet=dog\n'
        '"@authority": example.com\n'
        '"content-type": application/json\n'
        '"content-digest": sha-512=:WZDPaVn/7XgHaAy8pmojAkGWoRx2UFChF41A2svX'
        "+TaPm+AbwAgBWnrIiYllu7BNNyealdVLvRwEmTHWXvJwew==:\n"
        '"content-length": 18\n'
        '"@signature-params": ("date" "@method" "@path" "@query" "@authority" "content-type" '
        '"content-digest" "content-length");created=1618884473;keyid="test-key-rsa-pss"'
    )


def test_b25_base_proven_by_the_rfc_hmac() -> None:
    """hmac-sha256 is not accepted here, but HMAC is deterministic: the RFC's
    value recomputed over our base proves the base is the RFC's, byte for byte."""
    si = (
        'sig-b25=("date" "@authority" "content-type");created=1618884473;keyid="test-shared-secret"'
    )
    base = _base_for(TEST_REQUEST, si)
    assert base == (
        '"date": Tue, 20 Apr 2021 02:07:55 GMT\n'
        '"@authority": example.com\n'
        '"content-type": application/json\n'
        '"@signature-params": ("date" "@authority" "content-type")'
        ';created=1618884473;keyid="test-shared-secret"'
    )
    secret = base64.b64decode(  # B.1.5 test-shared-secret
        "uzvJfB4u3N0Jy4T7NZ75MDVcr8zSTInedJtkgcu46YW4XByzNJjxBdtjUkdJPBtbmHhIDi6pcl8jsasjlTMtDQ=="
    )
    mac = hmac.new(secret, base.encode(), hashlib.sha256).digest()
    assert base64.b64encode(mac).decode() == "pxcQw6G3AjtMBQjwo8XzkZf/bws5LelbaMk5rGIGtE8="


B24_INPUT = (
    'sig-b24=("@status" "content-type" "content-digest" "content-length")'
    ';created=1618884473;keyid="test-key-ecc-p256"'
)
B24_SIGNATURE = (
    "sig-b24=:wNmSUAhwb5LxtOtOpNa6W5xj067m5hFrj0XQ4fvpaCLx0NK"
    "ocgPquLgyahnzDnDAUy5eCdlYUEkLIj+32oiasw==:"
)


async def test_b24_ecdsa_p256_response_verifies() -> None:
    assert _base_for(TEST_RESPONSE, B24_INPUT) == (
        '"@status": 200\n'
        '"content-type": application/json\n'
        '"content-digest": sha-512=:mEWXIS7MaLRuGgxOBdODa3xqM1XdEvxoYhvlCFJ4'
        "1QJgJc4GTsPp29l5oGX69wWdXymyU0rjJuahq4l5aGgfLQ==:\n"
        '"content-length": 23\n'
        '"@signature-params": ("@status" "content-type" "content-digest" "content-length")'
        ';created=1618884473;keyid="test-key-ecc-p256"'
    )
    public = keys.load_public(B13_P256_PUBLIC)
    assert keys.load_private(B13_P256_PRIVATE).public_key().thumbprint() == public.thumbprint()
    signed = HTTPResponse(
        200,
        (*TEST_RESPONSE.headers, ("Signature-Input", B24_INPUT), ("Signature", B24_SIGNATURE)),
        TEST_RESPONSE.body,
    )
    jwks = _jwks(public, "test-key-ecc-p256")
    result = await verify_response(
        signed,
        jwks=jwks,
        now=CREATED + 5,
        expected_components=("@status", "content-type", "content-digest"),
    )
    assert (result.label, result.keyid, result.algorithm) == (
        "sig-b24",
        "test-key-ecc-p256",
        "ecdsa-p256-sha256",
    )
    assert result.nonce is None and result.created == CREATED
    # the same signature over a changed status, or a changed body, does not pass
    with pytest.raises(SignatureError) as err:
        await verify_response(
            HTTPResponse(201, signed.headers, signed.body), jwks=jwks, now=CREATED
        )
    assert err.value.code == "invalid_signature"
    with pytest.raises(SignatureError) as err:
        await verify_response(
            HTTPResponse(200, signed.headers, b'{"message": "bad dog"}'), jwks=jwks, now=CREATED
        )
    assert err.value.code == "digest_mismatch"


def test_b26_ed25519_request_base_and_signature() -> None:
    si = (
        'sig-b26=("date" "@method" "@path" "@authority" "content-type" "content-length")'
        ';created=1618884473;keyid="test-key-ed25519"'
    )
    base = _base_for(TEST_REQUEST, si)
    assert base == (
        '"date": Tue, 20 Apr 2021 02:07:55 GMT\n'
        '"@method": POST\n'
        '"@path": /foo\n'
        '"@authority": example.com\n'
        '"content-type": application/json\n'
        '"content-length": 18\n'
        '"@signature-params": ("date" "@method" "@path" "@authority" "content-type" '
        '"content-length");created=1618884473;keyid="test-key-ed25519"'
    )
    sig = base64.b64decode(
        "wqcAqbmYJ2ji2glfAMaRy4gruYYnx2nEFN2HN6jrnDnQCK1u02Gb04v9EDgwUPiu4A0w6vuQv5lIp5WPpBKRCw=="
    )
    key = keys.load_private(B14_ED25519_PRIVATE)
    assert algs.verify(key.public_key(), sig, base.encode())
    assert algs.sign(key, base.encode()) == sig  # Ed25519 is deterministic (RFC 8032)
    assert not algs.verify(key.public_key(), sig, base.replace("POST", "PUT").encode())


# RFC 9421 §2.4: a response that covers the request's signature and control data.
S24_REQUEST_SIG = (
    "LAH8BjcfcOcLojiuOBFWn0P5keD3xAOuJRGziCLuD8r5MW9S0RoXXLzLSRfGY/3SF8kVIkHjE13SEFdTo4Af/fJ/Pu9"
    "wheqoLVdwXyY/UkBIS1M8Brc8IODsn5DFIrG0IrburbLi0uCc+E2ZIIb6HbUJ+o+jP58JelMTe0QE3IpWINTEzpxjqDf5"
    "/Df+InHCAkQCTuKsamjWXUpyOT1Wkxi7YPVNOjW4MfNuTZ9HdbD2Tr65+BXeTG9ZS/9SWuXAc+BZ8WyPz0QRz//ec3uW"
    "Xd7bYYODSjRAxHqX+S1ag3LZElYyUKaAIjZ8MGOt4gXEwCSLDv/zqxZeWLj/PDkn6w=="
)
S24_INPUT = (
    'reqres=("@status" "content-length" "content-type" "signature";req;key="sig1" '
    '"@authority";req "@method";req);created=1618884479;keyid="test-key-ecc-p256"'
)
S24_SIGNATURE = (
    "reqres=:mh17P4TbYYBmBwsXPT4nsyVzW4Rp9Fb8WcvnfqKCQLoMvzOB"
    "LD/n32tL/GPW6XE5GAS5bdsg1khK6lBzV1Cx/Q==:"
)


async def test_s24_response_bound_to_request_verifies() -> None:
    request = HTTPRequest(
        "POST",
        "https://example.com/foo?param=Value&Pet=dog",
        (*TEST_REQUEST.headers, ("Signature", f"sig1=:{S24_REQUEST_SIG}:")),
        TEST_REQUEST.body,
    )
    response = HTTPResponse(
        503,
        (
            ("Date", "Tue, 20 Apr 2021 02:07:56 GMT"),
            ("Content-Type", "application/json"),
            ("Content-Length", "62"),
        ),
    )
    assert _base_for(response, S24_INPUT, request=request) == (
        '"@status": 503\n'
        '"content-length": 62\n'
        '"content-type": application/json\n'
        f'"signature";req;key="sig1": :{S24_REQUEST_SIG}:\n'
        '"@authority";req: example.com\n'
        '"@method";req: POST\n'
        '"@signature-params": ("@status" "content-length" "content-type" '
        '"signature";req;key="sig1" "@authority";req "@method";req)'
        ';created=1618884479;keyid="test-key-ecc-p256"'
    )
    signed = HTTPResponse(
        503, (*response.headers, ("Signature-Input", S24_INPUT), ("Signature", S24_SIGNATURE))
    )
    jwks = _jwks(keys.load_public(B13_P256_PUBLIC), "test-key-ecc-p256")
    expected = ("@status", '"signature";req;key="sig1"')
    result = await verify_response(
        signed, request=request, jwks=jwks, now=1618884479, expected_components=expected
    )
    assert result.label == "reqres"
    # bound: the same response presented for another request signature fails
    other = HTTPRequest(request.method, request.target_uri, (("Signature", "sig1=:AAAA:"),))
    with pytest.raises(SignatureError) as err:
        await verify_response(signed, request=other, jwks=jwks, now=1618884479)
    assert err.value.code == "invalid_signature"
    with pytest.raises(SignatureError) as err:  # ;req needs the request
        await verify_response(signed, jwks=jwks, now=1618884479)
    assert err.value.code == "missing_component"


# -- ztgate's profile: signed partner writes ------------------------------------------

NOW = 1_790_000_000
BODY = b'{"instructedAmount": {"currency": "CNY", "amount": "100.00"}, "creditor": "62220001"}'


def payment(body: bytes = BODY, **headers: str) -> HTTPRequest:
    fields = {
        "Host": "api.bank.example",
        "Authorization": "DPoP eyJhbGciOiJTTTJTTTMifQ.e30.c2ln",
        "Content-Type": "application/json",
        "Content-Digest": rfc9530.content_digest(body),
        **headers,
    }
    return HTTPRequest(
        "POST",
        "https://api.bank.example/v1/payments?consent=c-42",
        tuple(fields.items()),
        body,
    )


def signed(
    request: HTTPRequest, key: keys.PrivateKey, *, nonce: str = "n-0001", **kw: object
) -> HTTPRequest:
    kw.setdefault("created", NOW)
    headers = sign_request(request, key=key, keyid="partner-1", nonce=nonce, **kw)  # type: ignore[arg-type]
    return HTTPRequest(
        request.method, request.target_uri, (*request.headers, *headers.as_headers()), request.body
    )


@pytest.fixture(params=["sm2", "ec-p256"])
def partner_key(request: pytest.FixtureRequest) -> keys.PrivateKey:
    return keys.generate(request.param)


@pytest.fixture
def replay(store: Store) -> AuthnStoreReplay:
    return AuthnStoreReplay(store, clock=lambda: float(NOW))


async def check(
    request: HTTPRequest,
    key: keys.PrivateKey,
    replay: AuthnStoreReplay,
    *,
    now: float = NOW,
    **kw: object,
) -> object:
    jwks = kw.pop("jwks", None) or _jwks(key.public_key(), "partner-1")
    return await verify_request(request, jwks=jwks, replay_store=replay, now=now, **kw)  # type: ignore[arg-type]


async def refused(
    request: HTTPRequest, key: keys.PrivateKey, replay: AuthnStoreReplay, **kw: object
) -> str:
    with pytest.raises(SignatureError) as err:
        await check(request, key, replay, **kw)
    return err.value.code


async def test_round_trip_and_response(
    partner_key: keys.PrivateKey, replay: AuthnStoreReplay
) -> None:
    request = signed(payment(), partner_key)
    result = await check(request, partner_key, replay)
    expected_alg = {"sm2": "sm2-sm3", "ec-p256": "ecdsa-p256-sha256"}[partner_key.algorithm]
    assert result.algorithm == expected_alg  # type: ignore[attr-defined]
    assert result.components == (  # type: ignore[attr-defined]
        '"@method"',
        '"@target-uri"',
        '"content-digest"',
        '"authorization"',
    )
    assert result.nonce == "n-0001" and result.created == NOW  # type: ignore[attr-defined]
    si = dict(parse_dictionary(field(request, "Signature-Input")))["sig1"]
    assert isinstance(si, InnerList)
    assert dict(si.params)["alg"] == expected_alg

    # The edge answers with a response bound to this request; the partner verifies it.
    edge_key = keys.generate("sm2")
    response = HTTPResponse(201, (("Content-Type", "application/json"),), b'{"paymentId": "p-1"}')
    rs = sign_response(
        response,
        request=request,
        request_signature=result,  # type: ignore[arg-type]
        key=edge_key,
        keyid="edge-2026",
        created=NOW + 1,
    )
    signed_response = HTTPResponse(201, (*response.headers, *rs.as_headers()), response.body)
    verified = await verify_response(
        signed_response,
        request=request,
        jwks=_jwks(edge_key.public_key(), "edge-2026"),
        now=NOW + 2,
        expected_components=(
            "@status",
            "content-digest",
            "content-type",
            '"signature";req;key="sig1"',
        ),
    )
    assert verified.algorithm == "sm2-sm3"
    # a response replayed against a different signed request does not verify
    other = signed(payment(), partner_key, nonce="n-0002")
    with pytest.raises(SignatureError) as err:
        await verify_response(
            signed_response, request=other, jwks=_jwks(edge_key.public_key(), "edge-2026"), now=NOW
        )
    assert err.value.code == "invalid_signature"


def field(message: HTTPRequest | HTTPResponse, name: str) -> str:
    return next(v for k, v in message.headers if k.lower() == name.lower())


def replace(request: HTTPRequest, name: str, value: str) -> HTTPRequest:
    headers = tuple((k, value if k.lower() == name.lower() else v) for k, v in request.headers)
    return HTTPRequest(request.method, request.target_uri, headers, request.body)


async def test_replayed_nonce_is_refused(
    partner_key: keys.PrivateKey, replay: AuthnStoreReplay
) -> None:
    request = signed(payment(), partner_key)
    await check(request, partner_key, replay)
    assert await refused(request, partner_key, replay) == "replayed"
    # a fresh signature over an identical request with a new nonce is a new request
    await check(signed(payment(), partner_key, nonce="n-0002"), partner_key, replay)


async def test_failed_verification_does_not_burn_the_nonce(
    partner_key: keys.PrivateKey, replay: AuthnStoreReplay
) -> None:
    good = signed(payment(), partner_key)
    forged = replace(good, "Signature", "sig1=:" + base64.b64encode(b"\x01" * 64).decode() + ":")
    assert await refused(forged, partner_key, replay) == "invalid_signature"
    await check(good, partner_key, replay)


async def test_tampered_body(partner_key: keys.PrivateKey, replay: AuthnStoreReplay) -> None:
    request = signed(payment(), partner_key)
    tampered = HTTPRequest(
        request.method, request.target_uri, request.headers, BODY.replace(b"100", b"900")
    )
    assert await refused(tampered, partner_key, replay) == "digest_mismatch"


async def test_tampered_digest_and_body(
    partner_key: keys.PrivateKey, replay: AuthnStoreReplay
) -> None:
    request = signed(payment(), partner_key)
    body = BODY.replace(b"100", b"900")
    tampered = replace(request, "Content-Digest", rfc9530.content_digest(body))
    tampered = HTTPRequest(tampered.method, tampered.target_uri, tampered.headers, body)
    assert await refused(tampered, partner_key, replay) == "invalid_signature"


async def test_tampered_covered_header(
    partner_key: keys.PrivateKey, replay: AuthnStoreReplay
) -> None:
    request = signed(payment(), partner_key)
    stolen = replace(request, "Authorization", "DPoP someone-elses-token")
    assert await refused(stolen, partner_key, replay) == "invalid_signature"
    duplicated = HTTPRequest(
        request.method, request.target_uri, (*request.headers, ("Authorization", "x")), request.body
    )  # a second instance changes the canonical value (§2.1)
    assert await refused(duplicated, partner_key, replay) == "invalid_signature"


async def test_uncovered_headers_may_change(
    partner_key: keys.PrivateKey, replay: AuthnStoreReplay
) -> None:
    request = signed(payment(), partner_key)
    changed = replace(request, "Content-Type", "application/json; charset=utf-8")
    padded = replace(changed, "Authorization", "  " + field(request, "Authorization") + " ")
    await check(padded, partner_key, replay)  # surrounding whitespace is not significant (§2.1)


@pytest.mark.parametrize(
    ("method", "uri"),
    [
        ("PUT", "https://api.bank.example/v1/payments?consent=c-42"),
        ("POST", "https://api.bank.example/v1/payments?consent=c-43"),
        ("POST", "https://api.bank.example/v1/standing-orders?consent=c-42"),
        ("POST", "https://evil.example/v1/payments?consent=c-42"),
    ],
)
async def test_method_or_uri_swap(
    partner_key: keys.PrivateKey, replay: AuthnStoreReplay, method: str, uri: str
) -> None:
    request = signed(payment(), partner_key)
    moved = HTTPRequest(method, uri, request.headers, request.body)
    assert await refused(moved, partner_key, replay) == "invalid_signature"


async def test_missing_nonce(partner_key: keys.PrivateKey, replay: AuthnStoreReplay) -> None:
    request = payment()
    headers = sign_request(request, key=partner_key, keyid="partner-1", nonce=None, created=NOW)  # type: ignore[arg-type]
    unsigned_nonce = HTTPRequest(
        request.method, request.target_uri, (*request.headers, *headers.as_headers()), request.body
    )
    assert await refused(unsigned_nonce, partner_key, replay) == "missing_parameter"


@pytest.mark.parametrize(
    ("created", "expires", "code"),
    [
        (NOW - 311, None, "expired"),  # beyond max_age 300 + leeway 10
        (NOW + 11, None, "not_yet_valid"),
        (NOW - 100, NOW - 50, "expired"),
        (NOW, NOW - 1, "malformed_signature"),  # expires before created
    ],
)
async def test_freshness(
    partner_key: keys.PrivateKey,
    replay: AuthnStoreReplay,
    created: int,
    expires: int | None,
    code: str,
) -> None:
    request = signed(payment(), partner_key, created=created, expires=expires)
    assert await refused(request, partner_key, replay) == code


async def test_within_the_window_and_skew(
    partner_key: keys.PrivateKey, replay: AuthnStoreReplay
) -> None:
    await check(signed(payment(), partner_key, created=NOW - 305), partner_key, replay)
    await check(signed(payment(), partner_key, created=NOW + 9, nonce="n2"), partner_key, replay)
    await check(signed(payment(), partner_key, expires=NOW + 30, nonce="n3"), partner_key, replay)


async def test_alg_confusion(replay: AuthnStoreReplay) -> None:
    """An ES256 key's signature labelled sm2-sm3 and vice versa are refused outright."""
    for real, claimed in (("ec-p256", "sm2-sm3"), ("sm2", "ecdsa-p256-sha256"), ("sm2", "ed25519")):
        key = keys.generate(real)  # type: ignore[arg-type]
        request = signed(payment(), key, include_alg=False)
        si = field(request, "Signature-Input").replace(";keyid=", f';alg="{claimed}";keyid=')
        assert await refused(replace(request, "Signature-Input", si), key, replay) == "alg_mismatch"


async def test_jwk_alg_must_match_key(replay: AuthnStoreReplay) -> None:
    key = keys.generate("ec-p256")
    jwks = _jwks(key.public_key(), "partner-1", alg="SM2SM3")
    assert await refused(signed(payment(), key), key, replay, jwks=jwks) == "alg_mismatch"


async def test_key_algorithm_not_allowed(replay: AuthnStoreReplay) -> None:
    key = keys.generate("ed25519")  # supported for the RFC vectors, not accepted from partners
    assert await refused(signed(payment(), key), key, replay) == "alg_not_allowed"
    await check(
        signed(payment(), key), key, replay,
        allowed_algorithms=("ed25519",),
    )  # fmt: skip


async def test_unknown_or_foreign_keyid(
    partner_key: keys.PrivateKey, replay: AuthnStoreReplay
) -> None:
    request = signed(payment(), partner_key)
    other = keys.generate(partner_key.algorithm)
    assert await refused(
        request, partner_key, replay, jwks=_jwks(other.public_key(), "partner-2")
    ) == ("unknown_key")
    # the keyid resolves, but to another key: the signature is not that key's
    assert await refused(
        request, partner_key, replay, jwks=_jwks(other.public_key(), "partner-1")
    ) == ("invalid_signature")
    two = {"keys": [*_jwks(partner_key.public_key(), "partner-1")["keys"],  # type: ignore[misc]
                    *_jwks(other.public_key(), "partner-1")["keys"]]}  # type: ignore[misc]  # fmt: skip
    assert await refused(request, partner_key, replay, jwks=two) == "unknown_key"
    enc = _jwks(partner_key.public_key(), "partner-1", use="enc")
    assert await refused(request, partner_key, replay, jwks=enc) == "unknown_key"
    jwk = {**partner_key.public_key().to_jwk(), "kid": "partner-1"}
    wrap = {"keys": [{**jwk, "key_ops": ["wrapKey"]}]}
    assert await refused(request, partner_key, replay, jwks=wrap) == "unknown_key"
    private = {"keys": [{**jwk, "d": "AAAA"}]}
    assert await refused(request, partner_key, replay, jwks=private) == "unknown_key"


async def test_required_components(partner_key: keys.PrivateKey, replay: AuthnStoreReplay) -> None:
    # signs only @method and @target-uri although there is a body and an Authorization
    weak = signed(payment(), partner_key, components=("@method", "@target-uri"))
    assert await refused(weak, partner_key, replay) == "missing_component"
    # a deployment may demand more than the default
    request = signed(payment(), partner_key, nonce="n2")
    code = await refused(
        request, partner_key, replay, expected_components=("@method", "content-type")
    )
    assert code == "missing_component"
    # a GET without body or Authorization needs only @method and @target-uri
    get = HTTPRequest("GET", "https://api.bank.example/v1/accounts")
    await check(signed(get, partner_key, nonce="n3"), partner_key, replay)


async def test_covered_component_absent(
    partner_key: keys.PrivateKey, replay: AuthnStoreReplay
) -> None:
    request = signed(payment(), partner_key)
    dropped = HTTPRequest(
        request.method,
        request.target_uri,
        tuple((k, v) for k, v in request.headers if k != "Authorization"),
        request.body,
    )
    assert await refused(dropped, partner_key, replay, expected_components=("@method",)) == (
        "missing_component"
    )


async def test_tag(partner_key: keys.PrivateKey, replay: AuthnStoreReplay) -> None:
    request = signed(payment(), partner_key, tag="ztgate-payment")
    assert (
        await refused(request, partner_key, replay, expected_tag="ztgate-consent") == "invalid_tag"
    )
    await check(request, partner_key, replay, expected_tag="ztgate-payment")


async def test_labels(partner_key: keys.PrivateKey, replay: AuthnStoreReplay) -> None:
    request = signed(payment(), partner_key)
    si, sig = field(request, "Signature-Input"), field(request, "Signature")
    assert await refused(request, partner_key, replay, expected_label="sig2") == "unknown_label"
    two = replace(replace(request, "Signature-Input", f"{si}, {si.replace('sig1=', 'sig2=')}"),
                  "Signature", f"{sig}, {sig.replace('sig1=', 'sig2=')}")  # fmt: skip
    assert await refused(two, partner_key, replay) == "ambiguous_signature"
    await check(two, partner_key, replay, expected_label="sig2")
    dup = replace(request, "Signature-Input", f"{si}, {si}")  # same label twice in one field
    assert await refused(dup, partner_key, replay) == "malformed_signature"
    missing = replace(request, "Signature", sig.replace("sig1=", "sig9="))
    assert await refused(missing, partner_key, replay) == "unknown_label"


async def test_unsigned_request(replay: AuthnStoreReplay) -> None:
    key = keys.generate("sm2")
    assert await refused(payment(), key, replay) == "missing_signature"
    half = signed(payment(), key)
    only_input = HTTPRequest(
        half.method,
        half.target_uri,
        tuple(h for h in half.headers if h[0] != "Signature"),
        half.body,
    )
    assert await refused(only_input, key, replay) == "malformed_signature"


@pytest.mark.parametrize(
    ("signature_input", "signature", "code"),
    [
        (
            'sig1=("@method");created=1;keyid="k"',
            "sig1=:" + "A" * MAX_SIGNATURE_FIELD + ":",
            "malformed_signature",
        ),
        ("sig1=" + '("@method" ' * 3000 + ")", "sig1=:AA==:", "malformed_signature"),
        ('sig1=("@method");created=1;keyid="k"', "sig1=AA==", "malformed_signature"),
        ('sig1="@method";created=1;keyid="k"', "sig1=:AA==:", "malformed_signature"),
        ("sig1=(@method);created=1", "sig1=:AA==:", "malformed_signature"),
        ('sig1=("@method" 1);created=1;keyid="k"', "sig1=:AA==:", "malformed_signature"),
        ('sig1=("@method");created="now";keyid="k"', "sig1=:AA==:", "malformed_signature"),
        ('sig1=("@method");created=?1;keyid="k"', "sig1=:AA==:", "malformed_signature"),
        ('sig1=("@method");created=1.5;keyid="k"', "sig1=:AA==:", "malformed_signature"),
        ('sig1=("@method");created=1;keyid=k', "sig1=:AA==:", "malformed_signature"),
        ('sig1=("@method");keyid="k"', "sig1=:AA==:", "missing_parameter"),
        ('sig1=("@method");created=1;keyid="k";nonce=""', "sig1=:AA==:", "malformed_signature"),
        ('sig1=("@method" "@method");created=1;keyid="k"', "sig1=:AA==:", "malformed_signature"),
        ('sig1=("@method");created=1', "sig1=:AA==:", "missing_parameter"),
        ('sig1=("@method");created=1;keyid="k"\u00e9', "sig1=:AA==:", "malformed_signature"),
        ('sig1=("@method");created=1;keyid="k",', "sig1=:AA==:", "malformed_signature"),
    ],
)
async def test_malformed_signature_fields(
    replay: AuthnStoreReplay, signature_input: str, signature: str, code: str
) -> None:
    key = keys.generate("sm2")
    request = HTTPRequest(
        "GET",
        "https://api.bank.example/",
        (("Signature-Input", signature_input), ("Signature", signature)),
    )
    assert await refused(request, key, replay, expected_components=()) == code


@pytest.mark.parametrize(
    "components",
    [
        ("@method", "@method"),  # covered twice (§2.5)
        ("@signature-params",),
        ("@unknown",),
        ('"content-type";sf',),
        ('"content-type";bs',),
        ('"content-type";tr',),
        ("Content-Type",),  # field names are lower-case
        ('"@method";req',),  # req on a request
    ],
)
async def test_bad_component_lists(
    partner_key: keys.PrivateKey, replay: AuthnStoreReplay, components: tuple[str, ...]
) -> None:
    request = payment()
    comps = ", ".join(components)
    with pytest.raises(SignatureError) as err:
        sign_request(request, key=partner_key, keyid="partner-1", nonce="n", created=NOW,
                     components=components)  # fmt: skip
    assert err.value.code in (
        "malformed_signature",
        "unsupported_component",
        "missing_component",
    ), comps


def test_s228_query_param_encoding() -> None:
    """RFC 9421 §2.2.8's example: form-decoded, then re-encoded with %20 for spaces."""
    request = HTTPRequest(
        "GET",
        "https://www.example.com/parameters?var=this%20is%20a%20big%0Amultiline%20value"
        "&bar=with+plus+whitespace&fa%C3%A7ade%22%3A%20=something",
    )
    names = ("var", "bar", "fa%C3%A7ade%22%3A%20")
    comps = [Component("@query-param", (("name", n),)) for n in names]
    inner = InnerList(tuple(Item(c.name, c.params) for c in comps))
    assert signature_base(request, comps, inner).decode().split("\n")[:3] == [
        '"@query-param";name="var": this%20is%20a%20big%0Amultiline%20value',
        '"@query-param";name="bar": with%20plus%20whitespace',
        '"@query-param";name="fa%C3%A7ade%22%3A%20": something',
    ]
    # the percent-encode set: ! ' ( ) ~ are encoded, * - . _ are not
    odd = HTTPRequest("GET", "https://h.example/?k=a!b'c(d)e~f*g-h.i_j")
    comp = Component("@query-param", (("name", "k"),))
    line = signature_base(odd, [comp], InnerList((Item(comp.name, comp.params),))).decode()
    assert line.split("\n")[0] == '"@query-param";name="k": a%21b%27c%28d%29e%7Ef*g-h.i_j'
    for query in ("?a=1&a=2", "?b=1"):  # repeated or absent: refused, never guessed
        with pytest.raises(SignatureError) as err:
            bad = HTTPRequest("GET", "https://h.example/" + query)
            signature_base(bad, [Component("@query-param", (("name", "a"),))], InnerList(()))
        assert err.value.code == "missing_component"


def test_derived_components() -> None:
    request = HTTPRequest(
        "GET", "HTTPS://WWW.Example.COM:443/a/b%2Fc?x=1&y=a+b%20c&e=&x2=%C3%A7%22"
    )
    values = {
        "@method": "GET",
        "@scheme": "https",
        "@authority": "www.example.com",
        "@path": "/a/b%2Fc",
        "@query": "?x=1&y=a+b%20c&e=&x2=%C3%A7%22",
        "@request-target": "/a/b%2Fc?x=1&y=a+b%20c&e=&x2=%C3%A7%22",
    }
    for name, value in values.items():
        base = signature_base(request, [Component(name)], InnerList((Item(name),)))
        assert base.decode().split("\n")[0] == f'"{name}": {value}'
    for qname, value in (("y", "a%20b%20c"), ("e", ""), ("x2", "%C3%A7%22")):
        comp = Component("@query-param", (("name", qname),))
        base = signature_base(request, [comp], InnerList((Item("@query-param", comp.params),)))
        assert base.decode().split("\n")[0] == f'"@query-param";name="{qname}": {value}'
    for uri, authority, path, query in (
        ("http://h.example:8080", "h.example:8080", "/", "?"),
        ("https://[2001:db8::1]:8443/p?", "[2001:db8::1]:8443", "/p", "?"),
        ("http://h.example:80/", "h.example", "/", "?"),
    ):
        req = HTTPRequest("GET", uri)
        comps = [Component("@authority"), Component("@path"), Component("@query")]
        inner = InnerList(tuple(Item(c.name) for c in comps))
        lines = signature_base(req, comps, inner).decode().split("\n")
        assert lines[:3] == [f'"@authority": {authority}', f'"@path": {path}', f'"@query": {query}']


def test_field_canonicalisation() -> None:
    """§2.1: instances in order, trimmed, obs-fold to one SP, joined with ", "."""
    request = HTTPRequest(
        "GET",
        "https://h.example/",
        (("X-Multi", " a "), ("x-multi", "b,c"), ("X-Fold", "one\r\n  two"), ("X-Empty", "")),
    )
    comps = [Component("x-multi"), Component("x-fold"), Component("x-empty")]
    base = signature_base(request, comps, InnerList(tuple(Item(c.name) for c in comps)))
    assert base.decode().split("\n")[:3] == [
        '"x-multi": a, b,c',
        '"x-fold": one two',
        '"x-empty": ',
    ]


# -- interop: sm2-sm3 signatures are plain SM2 over the signature base ------------------


@pytest.mark.interop
async def test_sm2_signature_verifies_in_openssl(
    tmp_path: Path, ossl: Run, replay: AuthnStoreReplay
) -> None:
    key = keys.generate("sm2")
    request = signed(payment(), key)
    result = await check(request, key, replay)
    si = dict(parse_dictionary(field(request, "Signature-Input")))["sig1"]
    assert isinstance(si, InnerList)
    comps = [Component(str(i.value), i.params) for i in si.items]
    base = signature_base(request, comps, si)
    sig = dict(parse_dictionary(field(request, "Signature")))["sig1"]
    assert isinstance(sig, Item) and isinstance(sig.value, bytes)
    pub, msg, der = tmp_path / "pub.pem", tmp_path / "base.txt", tmp_path / "sig.der"
    pub.write_bytes(key.public_key().public_pem())
    msg.write_bytes(base)
    der.write_bytes(sm2.signature_to_der(sig.value))
    args = ["pkeyutl", "-verify", "-rawin", "-digest", "sm3", "-pkeyopt", "distid:1234567812345678",
            "-pubin", "-inkey", pub, "-in", msg, "-sigfile", der]  # fmt: skip
    assert b"Signature Verified Successfully" in ossl(*args).stdout
    msg.write_bytes(base.replace(b"POST", b"PUT"))
    assert ossl(*args, ok=False).returncode != 0
    assert result.algorithm == "sm2-sm3"  # type: ignore[attr-defined]


@pytest.mark.interop
async def test_openssl_sm2_signature_verifies_here(
    tmp_path: Path, ossl: Run, replay: AuthnStoreReplay
) -> None:
    """A partner signing with the OpenSSL CLI is accepted: the base is all they need."""
    key_pem, pub_pem = tmp_path / "partner.pem", tmp_path / "partner-pub.pem"
    ossl("genpkey", "-algorithm", "SM2", "-out", key_pem)
    ossl("pkey", "-in", key_pem, "-pubout", "-out", pub_pem)
    public = keys.load_public(pub_pem.read_bytes())
    request = payment()
    params = (("created", NOW), ("keyid", "partner-1"), ("alg", "sm2-sm3"), ("nonce", "ossl-1"))
    comps = [Component(c) for c in ("@method", "@target-uri", "content-digest", "authorization")]
    inner = InnerList(tuple(Item(c.name) for c in comps), params)
    base_file, der = tmp_path / "base.txt", tmp_path / "sig.der"
    base_file.write_bytes(signature_base(request, comps, inner))
    ossl("pkeyutl", "-sign", "-rawin", "-digest", "sm3", "-pkeyopt", "distid:1234567812345678",
         "-inkey", key_pem, "-in", base_file, "-out", der)  # fmt: skip
    raw = sm2.signature_to_raw(der.read_bytes())
    headers = (
        ("Signature-Input", serialize_dictionary((("sig1", inner),))),
        ("Signature", serialize_dictionary((("sig1", Item(raw)),))),
    )
    request = HTTPRequest(
        request.method, request.target_uri, (*request.headers, *headers), request.body
    )
    jwks = _jwks(public, "partner-1")
    result = await verify_request(request, jwks=jwks, replay_store=replay, now=NOW)
    assert result.algorithm == "sm2-sm3" and result.nonce == "ossl-1"


# -- RFC 8941 parser properties ---------------------------------------------------------

_keys = st.from_regex(r"[a-z*][a-z0-9_\-.*]{0,8}", fullmatch=True)
_bare = st.one_of(
    st.booleans(),
    st.integers(-999_999_999_999_999, 999_999_999_999_999),
    st.decimals(min_value=-999_999_999_999, max_value=999_999_999_999, places=3, allow_nan=False),
    st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=20),
    st.from_regex(r"[A-Za-z*][!#$%&'*+\-.^_`|~0-9A-Za-z:/]{0,10}", fullmatch=True).map(Token),
    st.binary(max_size=40),
)
_params = st.dictionaries(_keys, _bare, max_size=4).map(lambda d: tuple(d.items()))
_item = st.builds(Item, _bare, _params)
_member = st.one_of(_item, st.builds(InnerList, st.lists(_item, max_size=4).map(tuple), _params))
_dictionary = st.dictionaries(_keys, _member, max_size=5).map(lambda d: tuple(d.items()))


@given(_dictionary)
def test_serialise_parse_round_trip(value: tuple[tuple[str, object], ...]) -> None:
    text = serialize_dictionary(value)  # type: ignore[arg-type]
    parsed = parse_dictionary(text)
    assert serialize_dictionary(parsed) == text
    assert parsed == value


@given(st.text(max_size=300))
def test_parser_raises_only_its_error(text: str) -> None:
    try:
        parsed = parse_dictionary(text)
    except StructuredFieldError:
        return
    assert parse_dictionary(serialize_dictionary(parsed)) == parsed


@given(st.text(alphabet=st.sampled_from('sig1=("@method";:)?*-.,0123456789 "\\aA='), max_size=200))
def test_parser_on_near_miss_input(text: str) -> None:
    try:
        parsed = parse_dictionary(text)
    except StructuredFieldError:
        return
    assert parse_dictionary(serialize_dictionary(parsed)) == parsed


@given(st.text(max_size=300), st.text(max_size=300))
async def test_verifier_raises_only_signature_error(signature_input: str, signature: str) -> None:
    key = keys.generate("ec-p256")
    request = HTTPRequest(
        "GET",
        "https://h.example/",
        (("Signature-Input", signature_input), ("Signature", signature)),
    )
    try:
        await verify_request(
            request, jwks=_jwks(key.public_key(), "k"), replay_store=_NeverReplay(), now=NOW
        )
    except SignatureError as exc:
        assert exc.status in (400, 401)


class _NeverReplay:
    """Hypothesis cannot use the function-scoped store fixture; no input gets this far."""

    async def remember(self, nonce_key: str, expires_at: float) -> bool:
        raise AssertionError("random input must never reach the replay check")


# -- docs/http-signatures.md stays true ----------------------------------------------------

DOCS = Path(__file__).resolve().parents[2] / "docs" / "http-signatures.md"


def _http_blocks() -> list[str]:
    text = DOCS.read_text(encoding="utf-8").split("## Example", 1)[1]
    return [block.split("```", 1)[0] for block in text.split("```http\n")[1:]]


def _parse_http(block: str) -> tuple[str, tuple[tuple[str, str], ...], bytes]:
    head, _, body = block.partition("\n\n")
    start, *lines = head.split("\n")
    headers = tuple((k, v.strip()) for k, _, v in (line.partition(":") for line in lines))
    return start, headers, body.rstrip("\n").encode()


async def test_docs_example_verifies(replay: AuthnStoreReplay) -> None:
    req_block, resp_block = _http_blocks()
    start, headers, body = _parse_http(req_block)
    method, target, _ = start.split(" ")
    host = next(v for k, v in headers if k == "Host")
    request = HTTPRequest(method, f"https://{host}{target}", headers, body)
    jwks = _jwks(keys.load_public(B13_P256_PUBLIC), "test-key-ecc-p256")
    result = await verify_request(request, jwks=jwks, replay_store=replay, now=1790000000)
    assert result.algorithm == "ecdsa-p256-sha256"
    start, headers, body = _parse_http(resp_block)
    response = HTTPResponse(int(start.split(" ")[1]), headers, body)
    verified = await verify_response(
        response,
        request=request,
        jwks=jwks,
        now=1790000001,
        expected_components=("@status", "content-digest", '"signature";req;key="sig1"'),
    )
    assert verified.created == 1790000001
