"""Partner clients: registration checks, private_key_jwt and mTLS authentication.

Real keys (crypto.keys), real assertions (crypto.jose.encode_jwt), real X.509
certificates (cryptography), and the real store (the `store` fixture, SQLite
and PostgreSQL). Every rejection must be the same opaque ``invalid_client``;
the logged ``reason`` proves that the intended check is the one that fired.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import datetime as dt
import hashlib
import hmac
import json
import logging
import re
import secrets
import time
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from authn import clients
from authn.clients import AuthenticatedClient, authenticate_client, grant_scopes, register_client
from authn.errors import AuthnError
from authn.store.base import OAuthClient, Store
from crypto import jose, keys

TOKEN_ENDPOINT = "https://as.bank.example/v1/token"
ISSUER = "https://as.bank.example"
JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
FAILED = "client authentication failed"
DN = "CN=tpp-01.partner.example,O=Partner TPP Ltd,C=CN"
DROP: Any = object()


def b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def seg(obj: Any) -> str:
    return b64u(json.dumps(obj, separators=(",", ":")).encode())


def sha256_b64u(data: bytes) -> str:
    return b64u(hashlib.sha256(data).digest())


def jwk_of(key: keys.PrivateKey, kid: str) -> dict[str, str]:
    return {**key.public_key().to_jwk(), "kid": kid}


def claims_for(client_id: str, **over: Any) -> dict[str, Any]:
    now = int(time.time())
    base: dict[str, Any] = {
        "iss": client_id,
        "sub": client_id,
        "aud": TOKEN_ENDPOINT,
        "iat": now,
        "exp": now + 60,
        "jti": secrets.token_urlsafe(16),
    }
    base.update(over)
    return {k: v for k, v in base.items() if v is not DROP}


def assertion(key: keys.PrivateKey, client_id: str, kid: str | None = "k1", **over: Any) -> str:
    return jose.encode_jwt(claims_for(client_id, **over), key, kid=kid)


def pk_form(token: str, **extra: str) -> dict[str, str]:
    return {
        "grant_type": "client_credentials",
        "client_assertion_type": JWT_BEARER,
        "client_assertion": token,
        **extra,
    }


async def authenticate(
    store: Store,
    form: dict[str, str],
    cert: bytes | None = None,
    trusted: bool = False,
    now: float | None = None,
    **kw: Any,
) -> AuthenticatedClient:
    return await authenticate_client(
        store,
        form=form,
        token_endpoint=TOKEN_ENDPOINT,
        issuer=ISSUER,
        now=time.time() if now is None else now,
        peer_cert_der=cert,
        trusted_ca_verified=trusted,
        **kw,
    )


async def rejected(
    store: Store, caplog: pytest.LogCaptureFixture, form: dict[str, str], reason: str, **kw: Any
) -> None:
    """Opaque invalid_client to the caller; the expected reason in the log."""
    caplog.clear()
    with (
        caplog.at_level(logging.INFO, logger="ztgate.authn.clients"),
        pytest.raises(AuthnError) as info,
    ):
        await authenticate(store, form, **kw)
    err = info.value
    assert (err.code, err.status, err.description, err.headers) == (
        "invalid_client",
        401,
        FAILED,
        {},
    )
    assert str(err) == f"invalid_client: {FAILED}"
    reasons = [getattr(r, "reason", "") for r in caplog.records if r.name == clients.log.name]
    assert len(reasons) == 1 and re.search(reason, reasons[0]), reasons


# -- fixtures ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ring() -> dict[str, keys.PrivateKey]:
    return {alg: keys.generate(alg) for alg in keys.ALGORITHMS}


@dataclasses.dataclass(frozen=True)
class Pki:
    leaf: bytes  # DER, issued by the partner CA, subject DN
    other_leaf: bytes  # same CA, another subject
    self_signed: bytes
    self_signed_pem: bytes
    other_self_signed: bytes  # same subject, another key


def _cert(subject: str, issuer: x509.Name | None, signer: ec.EllipticCurvePrivateKey) -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name.from_rfc4514_string(subject)
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer or name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
    )
    cert = builder.sign(key if issuer is None else signer, hashes.SHA256())
    return cert.public_bytes(serialization.Encoding.DER)


@pytest.fixture(scope="module")
def pki() -> Pki:
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Partner Test CA")])
    self_signed = _cert(DN, None, ca_key)
    pem = x509.load_der_x509_certificate(self_signed).public_bytes(serialization.Encoding.PEM)
    return Pki(
        leaf=_cert(DN, ca, ca_key),
        other_leaf=_cert("CN=tpp-02.partner.example,O=Partner TPP Ltd,C=CN", ca, ca_key),
        self_signed=self_signed,
        self_signed_pem=pem,
        other_self_signed=_cert(DN, None, ca_key),
    )


async def pk_client(store: Store, *jwks: dict[str, str], scopes: str = "accounts") -> OAuthClient:
    return await register_client(
        store,
        name="Partner TPP",
        auth_method="private_key_jwt",
        jwks={"keys": list(jwks)},
        scopes=scopes,
    )


# -- registration ----------------------------------------------------------------------


async def test_register_private_key_jwt_stores_a_normalised_jwks(
    store: Store, ring: dict[str, keys.PrivateKey]
) -> None:
    sm2_jwk = {**jwk_of(ring["sm2"], "s"), "x5c": ["ignored"], "use": "sig"}
    jwks = json.dumps({"keys": [sm2_jwk, jwk_of(ring["ec-p256"], "e")]})
    client = await register_client(
        store,
        name="Partner",
        auth_method="private_key_jwt",
        jwks=jwks,
        scopes=["accounts", "payments:read", "accounts"],
    )
    assert re.fullmatch(r"c-[a-z2-7]{26}", client.client_id)
    assert client.scopes == ("accounts", "payments:read")
    assert (client.tls_subject_dn, client.tls_cert_sha256, client.disabled) == (None, None, False)
    stored = json.loads(client.jwks)["keys"]
    assert stored[0] == {**ring["sm2"].public_key().to_jwk(), "kid": "s", "alg": "SM2SM3"} | {
        "use": "sig"
    }
    assert stored[1]["alg"] == "ES256"
    assert await store.get_client(client.client_id) == client
    other = await pk_client(store, jwk_of(ring["ed25519"], "k1"))
    assert other.client_id != client.client_id


async def test_register_mtls_clients(store: Store, pki: Pki) -> None:
    tls = await register_client(
        store, name="TPP", auth_method="tls_client_auth", tls_subject_dn=DN, scopes="a b"
    )
    assert tls.tls_subject_dn == DN and json.loads(tls.jwks) == {"keys": []}
    selfs = await register_client(
        store,
        name="TPP",
        auth_method="self_signed_tls_client_auth",
        tls_cert_pem=pki.self_signed_pem.decode(),
        scopes=["a"],
    )
    assert selfs.tls_cert_sha256 == sha256_b64u(pki.self_signed)


def _bad_jwks(ring: dict[str, keys.PrivateKey]) -> list[tuple[str, Any]]:
    sm2 = jwk_of(ring["sm2"], "k1")
    p384 = ec.generate_private_key(ec.SECP384R1()).public_key().public_numbers()
    return [
        ("missing", None),
        ("not JSON", "{"),
        ("no keys", {"keys": []}),
        ("not a list", {"keys": sm2}),
        ("too many", {"keys": [jwk_of(ring["sm2"], f"k{i}") for i in range(11)]}),
        ("not an object", {"keys": ["x"]}),
        ("private d", {"keys": [{**sm2, "d": b64u(b"\x01" * 32)}]}),
        ("oct", {"keys": [{"kty": "oct", "k": "c2VjcmV0", "kid": "h"}]}),
        ("RSA", {"keys": [{"kty": "RSA", "n": "AQAB", "e": "AQAB", "kid": "r"}]}),
        (
            "P-384",
            {"keys": [{"kty": "EC", "crv": "P-384", "kid": "p", "x": b64u(p384.x.to_bytes(48))}]},
        ),
        ("off-curve SM2", {"keys": [{**sm2, "y": b64u(b"\x01" * 32)}]}),
        ("no kid", {"keys": [{k: v for k, v in sm2.items() if k != "kid"}]}),
        ("empty kid", {"keys": [{**sm2, "kid": ""}]}),
        ("duplicate kid", {"keys": [sm2, jwk_of(ring["ec-p256"], "k1")]}),
        ("encryption key", {"keys": [{**sm2, "use": "enc"}]}),
        ("alg of another type", {"keys": [{**sm2, "alg": "ES256"}]}),
        ("alg HS256", {"keys": [{**sm2, "alg": "HS256"}]}),
    ]


async def test_register_rejects_bad_jwks(store: Store, ring: dict[str, keys.PrivateKey]) -> None:
    for label, jwks in _bad_jwks(ring):
        with pytest.raises(AuthnError) as info:
            await register_client(
                store, name="P", auth_method="private_key_jwt", jwks=jwks, scopes="a"
            )
        assert (info.value.code, info.value.status) == ("invalid_client_metadata", 400), label
        assert info.value.description.startswith("jwks: "), label
        if label == "private d":
            assert "private" in info.value.description


@pytest.mark.parametrize(
    ("field", "kwargs"),
    [
        ("name", {"name": ""}),
        ("name", {"name": "bad\nname"}),
        ("auth_method", {"auth_method": "client_secret_basic"}),
        ("auth_method", {"auth_method": "none"}),
        ("scopes", {"scopes": ""}),
        ("scopes", {"scopes": []}),
        ("scopes", {"scopes": "a  b"}),
        ("scopes", {"scopes": ["accounts", "pay ments"]}),
        ("scopes", {"scopes": ["accounts", "payments!"]}),
        ("scopes", {"scopes": [f"s{i}" for i in range(65)]}),
        ("tls_subject_dn", {"tls_subject_dn": DN}),
        ("tls_cert_pem", {"tls_cert_pem": "x"}),
        ("tls_subject_dn", {"auth_method": "tls_client_auth", "jwks": None}),
        ("tls_subject_dn", {"auth_method": "tls_client_auth", "jwks": None, "tls_subject_dn": ""}),
        (
            "tls_subject_dn",
            {"auth_method": "tls_client_auth", "jwks": None, "tls_subject_dn": "cn=x, o = y"},
        ),
        ("jwks", {"auth_method": "tls_client_auth", "tls_subject_dn": DN}),
        ("tls_cert_pem", {"auth_method": "self_signed_tls_client_auth", "jwks": None}),
        (
            "tls_cert_pem",
            {"auth_method": "self_signed_tls_client_auth", "jwks": None, "tls_cert_pem": "no"},
        ),
        (
            "tls_subject_dn",
            {"auth_method": "self_signed_tls_client_auth", "jwks": None, "tls_subject_dn": DN},
        ),
    ],
)
async def test_register_names_the_bad_field(
    store: Store, ring: dict[str, keys.PrivateKey], field: str, kwargs: dict[str, Any]
) -> None:
    args: dict[str, Any] = {
        "name": "Partner",
        "auth_method": "private_key_jwt",
        "jwks": {"keys": [jwk_of(ring["sm2"], "k1")]},
        "scopes": "accounts",
    }
    with pytest.raises(AuthnError) as info:
        await register_client(store, **(args | kwargs))
    assert (info.value.code, info.value.status) == ("invalid_client_metadata", 400)
    assert info.value.description.startswith(f"{field}: ")


async def test_register_refuses_a_pem_bundle(store: Store, pki: Pki) -> None:
    with pytest.raises(AuthnError, match="tls_cert_pem: "):
        await register_client(
            store,
            name="P",
            auth_method="self_signed_tls_client_auth",
            tls_cert_pem=pki.self_signed_pem * 2,
            scopes="a",
        )


# -- private_key_jwt: accepted -----------------------------------------------------------


@pytest.mark.parametrize("alg", ["sm2", "ec-p256", "ed25519"])
async def test_private_key_jwt_accepted(
    store: Store, ring: dict[str, keys.PrivateKey], alg: keys.Algorithm
) -> None:
    client = await pk_client(store, jwk_of(ring[alg], "k1"))
    token = assertion(ring[alg], client.client_id)
    header = token.split(".")[0]
    assert (
        json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))["alg"]
        == (keys.JWS_ALG[alg])
    )
    got = await authenticate(store, pk_form(token, client_id=client.client_id))
    assert got == AuthenticatedClient(client, "private_key_jwt", None)


async def test_private_key_jwt_variants(
    store: Store, ring: dict[str, keys.PrivateKey], pki: Pki
) -> None:
    sm2, es = ring["sm2"], ring["ec-p256"]
    client = await pk_client(store, jwk_of(sm2, "s"), jwk_of(es, "e"))
    cid = client.client_id
    for key, kid, aud in [
        (sm2, "s", ISSUER),  # FAPI 2.0: the issuer identifier
        (es, "e", TOKEN_ENDPOINT),  # RFC 7523: the token endpoint
        (es, "e", ["https://elsewhere.example", ISSUER]),
    ]:
        got = await authenticate(store, pk_form(assertion(key, cid, kid, aud=aud)))
        assert got.client == client and got.cert_sha256 is None
    # a private_key_jwt client that also presented a certificate gets it bound
    got = await authenticate(store, pk_form(assertion(sm2, cid, "s")), cert=pki.leaf)
    assert got.cert_sha256 == sha256_b64u(pki.leaf)
    # no iat is allowed (RFC 7523 §3): the lifetime then counts from now
    await authenticate(store, pk_form(assertion(sm2, cid, "s", iat=DROP)))
    # a single-key JWKS needs no kid
    single = await pk_client(store, jwk_of(sm2, "only"))
    await authenticate(store, pk_form(assertion(sm2, single.client_id, kid=None)))


async def test_issuer_audience_only(
    store: Store, caplog: pytest.LogCaptureFixture, ring: dict[str, keys.PrivateKey]
) -> None:
    key = ring["ec-p256"]
    cid = (await pk_client(store, jwk_of(key, "k1"))).client_id
    await authenticate(store, pk_form(assertion(key, cid, aud=ISSUER)), issuer_audience_only=True)
    for aud in (TOKEN_ENDPOINT, [ISSUER], [ISSUER, TOKEN_ENDPOINT]):
        form = pk_form(assertion(key, cid, aud=aud))
        await rejected(store, caplog, form, "aud", issuer_audience_only=True)


# -- private_key_jwt: refused --------------------------------------------------------------


def _hs256(secret: bytes, claims: dict[str, Any], kid: str) -> str:
    signing_input = f"{seg({'alg': 'HS256', 'typ': 'JWT', 'kid': kid})}.{seg(claims)}"
    mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64u(mac)}"


async def test_private_key_jwt_refusals(
    store: Store, caplog: pytest.LogCaptureFixture, ring: dict[str, keys.PrivateKey]
) -> None:
    sm2, es = ring["sm2"], ring["ec-p256"]
    client = await pk_client(store, jwk_of(sm2, "k1"), jwk_of(es, "e"))
    cid = client.client_id
    other = (await pk_client(store, jwk_of(sm2, "k1"))).client_id
    now = int(time.time())
    stranger = keys.generate("sm2")
    public_jwk = jwk_of(sm2, "k1")
    cases: list[tuple[dict[str, str], str]] = [
        (
            pk_form(assertion(sm2, cid), client_assertion_type="urn:x:saml2-bearer"),
            "assertion_type",
        ),
        ({"client_assertion": assertion(sm2, cid)}, "assertion_type"),
        ({"client_assertion_type": JWT_BEARER}, "client_assertion missing"),
        (pk_form(assertion(sm2, cid, iss=other)), "invalid_issuer"),  # iss != sub
        (pk_form(assertion(sm2, cid, iss=DROP)), "invalid_issuer"),
        (pk_form(assertion(sm2, other, iss=cid)), "invalid_issuer"),
        (pk_form(assertion(sm2, cid), client_id=other), "differs"),  # sub != client_id
        (pk_form(assertion(sm2, cid, sub=DROP)), "no usable sub"),
        (pk_form(assertion(sm2, cid, aud="https://evil.example/token")), "invalid_audience"),
        (pk_form(assertion(sm2, cid, aud=DROP)), "invalid_audience"),
        (pk_form(assertion(sm2, cid, aud=f"{TOKEN_ENDPOINT}/")), "invalid_audience"),
        (pk_form(assertion(sm2, cid, iat=now - 90, exp=now - 30)), "expired"),
        (pk_form(assertion(sm2, cid, exp=DROP)), "missing_claim"),
        (pk_form(assertion(sm2, cid, exp=now + 3600)), "lives too long"),
        (pk_form(assertion(sm2, cid, iat=now - 200, exp=now + 200)), "lives too long"),
        (pk_form(assertion(sm2, cid, iat=now + 60, exp=now + 120)), "not_yet_valid|iat"),
        (pk_form(assertion(sm2, cid, exp=str(now + 60))), "malformed"),
        (pk_form(assertion(sm2, cid, jti=DROP)), "missing_claim"),
        (pk_form(assertion(sm2, cid, jti="")), "jti"),
        (pk_form(assertion(sm2, cid, jti=7)), "jti|invalid_token|malformed"),
        (pk_form(assertion(stranger, cid)), "invalid_signature"),  # key not in the JWKS
        (pk_form(assertion(stranger, cid, kid="nope")), "unknown_kid"),
        (pk_form(assertion(sm2, cid, kid=None)), "unknown_kid"),  # two keys: kid needed
        (pk_form(assertion(es, cid, kid="k1")), "alg_not_allowed"),  # kid of the SM2 key
        (pk_form(assertion(sm2, cid, kid="e")), "alg_not_allowed"),  # kid of the P-256 key
        (pk_form(f"{seg({'alg': 'none'})}.{seg(claims_for(cid))}."), "alg_not_allowed"),
        (pk_form(f"{seg({'alg': 'none', 'kid': 'k1'})}.{seg(claims_for(cid))}.AA"), "alg"),
        (pk_form(_hs256(sm2.public_key().public_pem(), claims_for(cid), "k1")), "alg_not_allowed"),
        (pk_form(_hs256(json.dumps(public_jwk).encode(), claims_for(cid), "k1")), "alg"),
        (pk_form(_hs256(public_jwk["x"].encode(), claims_for(cid), "k1")), "alg_not_allowed"),
        (pk_form(assertion(sm2, cid, pad="x" * 9000)), "oversized"),
        (pk_form(assertion(sm2, "c-unknownunknownunknownunkn")), "unknown client"),
        (pk_form("not.a.jwt"), "no usable sub"),
        (pk_form(assertion(sm2, cid), client_secret="s3cret"), "client_secret"),
        # values a database cannot hold never reach the store (PostgreSQL refuses NUL)
        (pk_form(assertion(sm2, "c-\x00")), "no usable sub"),
        (pk_form(assertion(sm2, cid, jti="a\x00b")), "unusable jti"),
        (pk_form(assertion(sm2, cid, jti="\ud800")), "unusable jti"),
    ]
    for form, reason in cases:
        await rejected(store, caplog, form, reason)
    # the client itself is still fine
    await authenticate(store, pk_form(assertion(sm2, cid)))


async def test_times_are_checked_against_now(
    store: Store, caplog: pytest.LogCaptureFixture, ring: dict[str, keys.PrivateKey]
) -> None:
    """exp/iat against the caller's `now`, not only crypto.jose's own clock."""
    key = ring["sm2"]
    cid = (await pk_client(store, jwk_of(key, "k1"))).client_id
    wall = time.time()
    await rejected(store, caplog, pk_form(assertion(key, cid)), "^assertion expired", now=wall + 80)
    await rejected(store, caplog, pk_form(assertion(key, cid)), "^iat in the future", now=wall - 30)
    form = pk_form(assertion(key, cid, iat=DROP, exp=int(wall) + 200))
    await rejected(store, caplog, form, "^assertion lives too long", now=wall - 120)
    await authenticate(store, pk_form(assertion(key, cid)), now=wall + 5)


async def test_disabled_client_and_wrong_method(
    store: Store, caplog: pytest.LogCaptureFixture, ring: dict[str, keys.PrivateKey], pki: Pki
) -> None:
    sm2 = ring["sm2"]
    client = await pk_client(store, jwk_of(sm2, "k1"))
    disabled = dataclasses.replace(client, client_id=client.client_id + "x", disabled=True)
    await store.put_client(disabled)
    await rejected(store, caplog, pk_form(assertion(sm2, disabled.client_id)), "disabled")
    mtls = await register_client(
        store, name="T", auth_method="tls_client_auth", tls_subject_dn=DN, scopes="a"
    )
    # an mTLS client cannot authenticate with an assertion, nor the reverse
    form = pk_form(assertion(sm2, mtls.client_id))
    await rejected(store, caplog, form, "registered for", cert=pki.leaf, trusted=True)
    form = {"client_id": client.client_id}
    await rejected(store, caplog, form, "registered for", cert=pki.leaf, trusted=True)


async def test_jti_is_single_use(
    store: Store, caplog: pytest.LogCaptureFixture, ring: dict[str, keys.PrivateKey]
) -> None:
    key = ring["ec-p256"]
    cid = (await pk_client(store, jwk_of(key, "k1"))).client_id
    form = pk_form(assertion(key, cid, jti="once"))
    await authenticate(store, form)
    await rejected(store, caplog, form, "replayed")
    # a fresh assertion reusing the jti is a replay too; another client's jti space is its own
    await rejected(store, caplog, pk_form(assertion(key, cid, jti="once")), "replayed")
    cid2 = (await pk_client(store, jwk_of(key, "k1"))).client_id
    await authenticate(store, pk_form(assertion(key, cid2, jti="once")))


async def test_concurrent_replay_accepts_exactly_one(
    store: Store, ring: dict[str, keys.PrivateKey]
) -> None:
    key = ring["sm2"]
    cid = (await pk_client(store, jwk_of(key, "k1"))).client_id
    form = pk_form(assertion(key, cid))
    results = await asyncio.gather(
        *(authenticate(store, form) for _ in range(10)), return_exceptions=True
    )
    accepted = [r for r in results if isinstance(r, AuthenticatedClient)]
    refused = [r for r in results if isinstance(r, AuthnError) and r.code == "invalid_client"]
    assert (len(accepted), len(refused)) == (1, 9), results


# -- mTLS ------------------------------------------------------------------------------------


async def test_tls_client_auth(store: Store, caplog: pytest.LogCaptureFixture, pki: Pki) -> None:
    client = await register_client(
        store, name="T", auth_method="tls_client_auth", tls_subject_dn=DN, scopes="a"
    )
    form = {"grant_type": "client_credentials", "client_id": client.client_id}
    got = await authenticate(store, form, cert=pki.leaf, trusted=True)
    assert got == AuthenticatedClient(client, "tls_client_auth", sha256_b64u(pki.leaf))
    await rejected(store, caplog, form, "trusted CA", cert=pki.leaf, trusted=False)
    await rejected(store, caplog, form, "subject DN", cert=pki.other_leaf, trusted=True)
    await rejected(store, caplog, form, "no client certificate", cert=None, trusted=True)
    await rejected(store, caplog, form, "unparsable", cert=b"\x30\x03\x02\x01\x01", trusted=True)
    await rejected(store, caplog, {}, "no client authentication", cert=pki.leaf, trusted=True)
    for junk in ("c-\x00", "\ud800", "c-" + "x" * 200):  # never sent to the store
        form2 = {"client_id": junk}
        await rejected(store, caplog, form2, "no client authentication", cert=pki.leaf)
    form2 = {"client_id": "c-nobody"}
    await rejected(store, caplog, form2, "unknown client", cert=pki.leaf, trusted=True)


async def test_self_signed_tls_client_auth(
    store: Store, caplog: pytest.LogCaptureFixture, pki: Pki
) -> None:
    client = await register_client(
        store,
        name="T",
        auth_method="self_signed_tls_client_auth",
        tls_cert_pem=pki.self_signed_pem,
        scopes="a",
    )
    form = {"client_id": client.client_id}
    got = await authenticate(store, form, cert=pki.self_signed)
    assert got == AuthenticatedClient(
        client, "self_signed_tls_client_auth", sha256_b64u(pki.self_signed)
    )
    await rejected(store, caplog, form, "not the registered one", cert=pki.other_self_signed)
    await rejected(store, caplog, form, "not the registered one", cert=pki.leaf, trusted=True)
    await rejected(store, caplog, form, "no client certificate", cert=b"")


# -- scopes ------------------------------------------------------------------------------------


def test_grant_scopes() -> None:
    client = OAuthClient(
        client_id="c-x",
        name="x",
        auth_method="private_key_jwt",
        jwks='{"keys":[]}',
        tls_subject_dn=None,
        tls_cert_sha256=None,
        scopes=("accounts", "payments", "fx:quotes"),
        created_at=0.0,
    )
    assert grant_scopes(client, None) == "accounts payments fx:quotes"
    assert grant_scopes(client, "") == "accounts payments fx:quotes"
    assert grant_scopes(client, "fx:quotes accounts fx:quotes") == "accounts fx:quotes"
    for bad in ("admin", "accounts admin", "accounts  payments", " accounts", "Accounts", "a\x00"):
        with pytest.raises(AuthnError) as info:
            grant_scopes(client, bad)
        assert (info.value.code, info.value.status) == ("invalid_scope", 400)


# -- property: arbitrary input only ever yields AuthnError -------------------------------------

_KEYS = st.sampled_from(
    ["client_id", "client_assertion", "client_assertion_type", "client_secret", "scope"]
)


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
async def test_arbitrary_forms_only_raise_authn_error(
    store: Store, ring: dict[str, keys.PrivateKey], pki: Pki, data: st.DataObject
) -> None:
    key = ring["sm2"]
    cid = (await pk_client(store, jwk_of(key, "k1"))).client_id
    token = assertion(key, cid)
    value = st.text(max_size=300) | st.sampled_from(
        [
            cid,
            JWT_BEARER,
            token,
            token[:-4],
            token + "A",
            token.replace(".", "..", 1),
            "c-\x00",
            "x" * 9000,
        ]
    )
    form = data.draw(st.dictionaries(_KEYS | st.text(max_size=20), value, max_size=5))
    cert = data.draw(
        st.none() | st.binary(max_size=64) | st.sampled_from([pki.leaf, pki.self_signed])
    )
    try:
        got = await authenticate(store, form, cert=cert, trusted=data.draw(st.booleans()))
    except AuthnError as exc:
        assert (exc.code, exc.status, exc.description) == ("invalid_client", 401, FAILED)
    else:
        assert got.client.client_id == cid
