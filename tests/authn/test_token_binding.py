"""Sender-constrained access tokens through `TokenVerifier.verify`, on SQLite and PostgreSQL.

DPoP (RFC 9449): the token carries ``cnf.jkt``; every request needs a fresh
proof by that key, for this method and URL, covering this token (``ath``).
Proof parsing on its own is test_dpop.py; here the point is the *binding*:
which proof goes with which token, and that none of it is cached.

mTLS (RFC 8705): the token carries ``cnf.x5t#S256``; the TLS client
certificate must hash to it, on every call.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from authn.cnf import cnf_for_certificate, x5t_s256
from authn.dpop import DPoPCheck, make_proof
from authn.store import Store
from crypto import keys
from tests.authn.conftest import StoreURL
from tests.authn.token_harness import Env, make_cert, make_env, refused, reopen

URL = "https://api.bank.example/v1/accounts"
CERT = make_cert("partner-a")
OTHER_CERT = make_cert("partner-b")


@pytest.fixture
def env(store: Store) -> Env:
    return make_env(store)


@pytest.fixture(scope="module")
def holder() -> keys.PrivateKey:
    """The client's DPoP key."""
    return keys.generate("ec-p256")


async def bound_token(env: Env, key: keys.PrivateKey) -> str:
    response = await env.mint(cnf={"jkt": key.public_key().thumbprint()}, with_refresh=False)
    assert response.token_type == "DPoP"
    return response.access_token


def check(
    env: Env,
    key: keys.PrivateKey,
    token: str | None,
    *,
    method: str = "GET",
    url: str = URL,
    request: tuple[str, str] = ("GET", URL),
    **kwargs: Any,
) -> DPoPCheck:
    """The request (`request`) with a proof by `key` claiming `method` `url` for `token`."""
    proof = make_proof(key, method=method, url=url, access_token=token, now=env.clock(), **kwargs)
    return DPoPCheck(proof, *request)


# -- DPoP: the happy path, which every test below deviates from -----------------------


@pytest.mark.parametrize("algorithm", ["ec-p256", "ed25519", "sm2"])
async def test_valid_proof_is_accepted_on_every_request(env: Env, algorithm: str) -> None:
    key = keys.generate(algorithm)  # type: ignore[arg-type]
    token = await bound_token(env, key)
    first = await env.verifier.verify(token, dpop=check(env, key, token))
    assert first.token_type == "DPoP"
    assert first.cnf == {"jkt": key.public_key().thumbprint()}
    env.clock.advance(30)  # cache hit: the signature is not re-checked, the proof is
    assert await env.verifier.verify(token, dpop=check(env, key, token)) is first
    query = check(env, key, token, url=URL + "?page=2", request=("GET", URL + "?page=2"))
    assert await env.verifier.verify(token, dpop=query)  # RFC 9449 §4.3: query ignored


# -- DPoP: proofs that do not fit the request -------------------------------------------


@pytest.mark.parametrize(
    ("method", "url", "description"),
    [
        ("POST", URL, "DPoP proof htm does not match the request method"),
        ("get", URL, "DPoP proof htm does not match the request method"),
        ("GET", "https://api.bank.example/v1/payments", "DPoP proof htu does not match the "),
        ("GET", "https://evil.example/v1/accounts", "DPoP proof htu does not match the "),
        ("GET", "http://api.bank.example/v1/accounts", "DPoP proof htu does not match the "),
    ],
)
async def test_proof_for_another_request_is_refused(
    env: Env, holder: keys.PrivateKey, method: str, url: str, description: str
) -> None:
    token = await bound_token(env, holder)
    await env.verifier.verify(token, dpop=check(env, holder, token))  # cached from now on
    wrong = check(env, holder, token, method=method, url=url)
    got = await refused(env.verifier.verify(token, dpop=wrong), "invalid_dpop_proof")
    assert got.startswith(description)


async def test_proof_by_another_key_is_refused(env: Env, holder: keys.PrivateKey) -> None:
    """A thief with the token but not the key signs with a key of their own."""
    token = await bound_token(env, holder)
    for algorithm in ("ec-p256", "sm2"):
        thief = keys.generate(algorithm)
        got = await refused(
            env.verifier.verify(token, dpop=check(env, thief, token)), scheme="DPoP"
        )
        assert got == "DPoP proof key does not match the token binding"


async def test_replayed_proof_is_refused_here_and_in_other_processes(
    env: Env, holder: keys.PrivateKey, store_url: StoreURL
) -> None:
    token = await bound_token(env, holder)
    proof = check(env, holder, token)
    await env.verifier.verify(token, dpop=proof)
    got = await refused(env.verifier.verify(token, dpop=proof), "invalid_dpop_proof")
    assert got == "DPoP proof jti has already been used"
    second = check(env, holder, token, jti="once")
    other_store = await reopen(store_url)
    try:  # the jti is recorded in the shared store: no edge worker takes it twice
        other = env.other_verifier(other_store)
        await other.verify(token, dpop=second)
        await refused(env.verifier.verify(token, dpop=second), "invalid_dpop_proof")
        await refused(other.verify(token, dpop=proof), "invalid_dpop_proof")
    finally:
        await other_store.close()


async def test_missing_proof_is_refused_even_when_cached(env: Env, holder: keys.PrivateKey) -> None:
    """Bearer use of a DPoP-bound token (RFC 9449 §7.2): the token type must match."""
    token = await bound_token(env, holder)
    got = await refused(env.verifier.verify(token), scheme="DPoP")
    assert got == "DPoP-bound token presented without a DPoP proof"
    await env.verifier.verify(token, dpop=check(env, holder, token))
    assert await refused(env.verifier.verify(token), scheme="DPoP") == got


async def test_proof_without_or_with_wrong_ath_is_refused(
    env: Env, holder: keys.PrivateKey
) -> None:
    token = await bound_token(env, holder)
    other = await bound_token(env, holder)
    no_ath = check(env, holder, None)  # a token-endpoint proof replayed at the RS
    got = await refused(env.verifier.verify(token, dpop=no_ath), "invalid_dpop_proof")
    assert got == "DPoP proof has no ath for the access token"
    wrong_ath = check(env, holder, other)
    got = await refused(env.verifier.verify(token, dpop=wrong_ath), "invalid_dpop_proof")
    assert got == "DPoP proof ath does not match the access token"
    # The caller's DPoPCheck cannot point ath at another token: the verifier binds it.
    mislabelled = check(env, holder, other)
    mislabelled = DPoPCheck(mislabelled.proof, "GET", URL, access_token=other)
    await refused(env.verifier.verify(token, dpop=mislabelled), "invalid_dpop_proof")


async def test_stale_and_future_proofs_are_refused(env: Env, holder: keys.PrivateKey) -> None:
    token = await bound_token(env, holder)
    stale = check(env, holder, token)
    env.clock.advance(60 + env.config.leeway + 1)
    got = await refused(env.verifier.verify(token, dpop=stale), "invalid_dpop_proof")
    assert got == "DPoP proof iat is outside the acceptable window"
    future = make_proof(holder, method="GET", url=URL, access_token=token, now=env.clock() + 11)
    await refused(
        env.verifier.verify(token, dpop=DPoPCheck(future, "GET", URL)), "invalid_dpop_proof"
    )


async def test_bearer_token_presented_with_dpop_is_refused(
    env: Env, holder: keys.PrivateKey
) -> None:
    """An unbound token under the DPoP scheme: the token type must match both ways."""
    token = await env.token()
    assert (await env.verifier.verify(token)).token_type == "Bearer"
    got = await refused(env.verifier.verify(token, dpop=check(env, holder, token)), scheme="DPoP")
    assert got == "token is not DPoP-bound but was presented with DPoP"


async def test_token_failures_under_dpop_use_the_dpop_challenge(
    env: Env, holder: keys.PrivateKey
) -> None:
    token = await bound_token(env, holder)
    env.clock.advance(env.config.access_ttl + env.config.leeway)
    assert await refused(env.verifier.verify(token), scheme="DPoP") == "token expired"
    got = await refused(
        env.verifier.verify("garbage", dpop=check(env, holder, "garbage")), scheme="DPoP"
    )
    assert got == "malformed token"


async def test_revoked_dpop_token_is_refused_with_a_valid_proof(
    env: Env, holder: keys.PrivateKey
) -> None:
    token = await bound_token(env, holder)
    await env.verifier.verify(token, dpop=check(env, holder, token))
    await env.issuer.revoke(token)
    got = await refused(env.verifier.verify(token, dpop=check(env, holder, token)), scheme="DPoP")
    assert got == "token revoked"


@pytest.mark.parametrize("jkt", ["é" * 43, "\ud800", "", "x" * 300])
async def test_odd_jkt_under_our_signature_is_refused_not_a_crash(
    env: Env, holder: keys.PrivateKey, jkt: str
) -> None:
    token = env.forge(json.dumps(env.claims(cnf={"jkt": jkt})).encode())
    got = await refused(env.verifier.verify(token, dpop=check(env, holder, token)), scheme="DPoP")
    assert got == "DPoP proof key does not match the token binding"


# -- mTLS (RFC 8705) ----------------------------------------------------------------------


async def test_certificate_bound_token(env: Env, holder: keys.PrivateKey) -> None:
    response = await env.mint(cnf=cnf_for_certificate(CERT), with_refresh=False)
    token = response.access_token
    assert response.token_type == "Bearer"  # RFC 8705 §3: still a bearer scheme
    verified = await env.verifier.verify(token, client_cert_sha256=x5t_s256(CERT))
    assert verified.cnf == {"x5t#S256": x5t_s256(CERT)} and verified.token_type == "Bearer"
    # cached from here on: the certificate is checked on every call regardless
    got = await refused(env.verifier.verify(token, client_cert_sha256=x5t_s256(OTHER_CERT)))
    assert got == "client certificate does not match the token binding"
    got = await refused(env.verifier.verify(token))
    assert got == "certificate-bound token presented without a client certificate"
    await refused(env.verifier.verify(token, client_cert_sha256=x5t_s256(CERT)[:-1]))
    await refused(env.verifier.verify(token, client_cert_sha256="é" * 43))
    await refused(
        env.verifier.verify(
            token, dpop=check(env, holder, token), client_cert_sha256=x5t_s256(CERT)
        ),
        scheme="DPoP",
    )
    assert await env.verifier.verify(token, client_cert_sha256=x5t_s256(CERT)) is verified


async def test_unbound_token_ignores_a_client_certificate(env: Env) -> None:
    token = await env.token()
    assert await env.verifier.verify(token, client_cert_sha256=x5t_s256(CERT))


@pytest.mark.parametrize("cnf", [{}, {"kid": "k1"}, {"jwk": "x"}, {"jkt": "a", "kid": "b"}])
async def test_unknown_confirmation_methods_are_refused(env: Env, cnf: dict[str, str]) -> None:
    """A token bound in a way this verifier cannot check must not pass as a bearer token."""
    token = env.forge(json.dumps({**env.claims(), "cnf": cnf}).encode())
    await refused(env.verifier.verify(token), scheme="DPoP" if "jkt" in cnf else "Bearer")
