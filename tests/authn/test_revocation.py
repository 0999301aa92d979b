"""Revocation (RFC 7009) and introspection (RFC 7662) of access tokens, on SQLite and PostgreSQL.

Revocation must beat the verifier's cache: a revoked token is refused on the
very next call in the process that revoked it, by other processes after their
next `sync_revocations`, and by a process started afterwards on its first
`verify`. Introspection answers ``{"active": false}`` and nothing more for
anything not live.
"""

from __future__ import annotations

import pytest

from authn.dpop import make_proof
from authn.store import Store
from crypto import keys
from tests.authn.conftest import StoreURL
from tests.authn.token_harness import (
    SUBJECT,
    Env,
    b64u,
    make_env,
    refused,
    reopen,
    sign_raw,
    unb64u,
)


@pytest.fixture
def env(store: Store) -> Env:
    return make_env(store)


# -- revocation in this process ---------------------------------------------------------


@pytest.mark.parametrize("hint", [None, "access_token", "refresh_token", "bogus"])
async def test_revoked_token_is_refused_at_once_even_when_cached(
    env: Env, hint: str | None
) -> None:
    token, kept = await env.token(), await env.token()
    await env.verifier.verify(token)  # cached: the next call skips signature and claims
    await env.issuer.revoke(token, hint)
    assert await refused(env.verifier.verify(token)) == "token revoked"
    assert await env.verifier.verify(kept)  # only that token
    assert await env.store.is_jti_revoked((await env.verifier.verify(kept)).jti) is False


async def test_revocation_by_another_client_is_ignored(env: Env) -> None:
    """RFC 7009 §2.1: a client may only revoke its own tokens (and learns nothing)."""
    token = await env.token()
    await env.issuer.revoke(token, client_id="other-app")
    assert await env.verifier.verify(token)
    await env.issuer.revoke(token, client_id="mobile-app")
    assert await refused(env.verifier.verify(token)) == "token revoked"


@pytest.mark.parametrize("junk", ["", "garbage", "a.b.c", "x" * 20000, "é"])
async def test_revoking_junk_is_silent(env: Env, junk: str) -> None:
    await env.issuer.revoke(junk)
    await env.issuer.revoke(junk, "refresh_token")
    assert await env.store.revocations_since(0) == []


async def test_revoking_a_refresh_token_revokes_the_access_tokens_of_its_family(
    env: Env,
) -> None:
    login = await env.mint()
    assert login.refresh_token is not None
    refreshed = await env.issuer.refresh(login.refresh_token, client_id="mobile-app")
    other_login = await env.mint()
    for token in (login.access_token, refreshed.access_token):
        await env.verifier.verify(token)
    await env.issuer.revoke(refreshed.refresh_token or "", "refresh_token")
    for token in (login.access_token, refreshed.access_token):
        assert await refused(env.verifier.verify(token)) == "token revoked"
    assert await env.verifier.verify(other_login.access_token)  # another session
    await refused(
        env.issuer.refresh(refreshed.refresh_token or "", client_id="mobile-app"), "invalid_grant"
    )


# -- revocation across processes ---------------------------------------------------------


async def test_revocation_reaches_another_process_after_sync(env: Env, store_url: StoreURL) -> None:
    token = await env.token()
    session = await env.mint()
    other_store = await reopen(store_url)
    try:
        other = env.other_verifier(other_store)
        for t in (token, session.access_token):
            await other.verify(t)  # cached over there
        await env.issuer.revoke(token)
        await env.issuer.revoke(session.refresh_token or "", "refresh_token")
        # Documented latency: until the other process syncs, its cache still answers.
        assert await other.verify(token)
        assert await other.sync_revocations() >= 2
        assert await refused(other.verify(token)) == "token revoked"
        assert await refused(other.verify(session.access_token)) == "token revoked"
        assert other.last_sync == env.clock()
        # ...and a revocation made over there reaches this process the same way.
        third = await env.token()
        await env.verifier.verify(third)
        await env.other_issuer(other_store).revoke(third)
        await env.verifier.sync_revocations()
        assert await refused(env.verifier.verify(third)) == "token revoked"
    finally:
        await other_store.close()


async def test_revocation_survives_a_restart(env: Env, store_url: StoreURL) -> None:
    token, session, kept = await env.token(), await env.mint(), await env.token()
    await env.issuer.revoke(token)
    await env.issuer.revoke(session.refresh_token or "", "refresh_token")
    await env.store.close()
    restarted_store = await reopen(store_url)
    try:
        fresh = env.other_verifier(restarted_store)  # first verify syncs before answering
        assert await refused(fresh.verify(token)) == "token revoked"
        assert await refused(fresh.verify(session.access_token)) == "token revoked"
        assert (await fresh.verify(kept)).subject == SUBJECT
        issuer = env.other_issuer(restarted_store)
        assert await issuer.introspect(token) == {"active": False}
        await refused(
            issuer.refresh(session.refresh_token or "", client_id="mobile-app"), "invalid_grant"
        )
    finally:
        await restarted_store.close()


async def test_sync_forgets_revocations_once_their_tokens_have_expired(env: Env) -> None:
    token = await env.token()
    await env.issuer.revoke(token)
    await env.verifier.sync_revocations()
    assert env.verifier.revoked_jtis
    env.clock.advance(env.config.access_ttl + env.config.leeway + 3600)
    await env.verifier.sync_revocations()
    assert env.verifier.revoked_jtis == {}
    assert await refused(env.verifier.verify(token)) == "token expired"


async def test_malleated_es256_signature_does_not_escape_revocation(store: Store) -> None:
    """ES256 accepts (r, n - s) too: a second spelling of the same token. Revocation
    is by jti, not by token string, so the other spelling is revoked as well."""
    env = make_env(store, "ec-p256")
    token = await env.token()
    head, payload, sig = token.split(".")
    raw = unb64u(sig)
    n = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
    flipped = raw[:32] + (n - int.from_bytes(raw[32:], "big")).to_bytes(32, "big")
    twin = f"{head}.{payload}.{b64u(flipped)}"
    assert (await env.verifier.verify(twin)).jti == (await env.verifier.verify(token)).jti
    await env.issuer.revoke(token)
    assert await refused(env.verifier.verify(twin)) == "token revoked"


# -- introspection (RFC 7662) ------------------------------------------------------------


async def test_introspection_of_a_live_access_token(env: Env) -> None:
    response = await env.mint()
    answer = await env.issuer.introspect(response.access_token)
    verified = await env.verifier.verify(response.access_token)
    assert answer == {**verified.claims_dict(), "active": True, "token_type": "Bearer"}
    assert answer["sub"] == SUBJECT and answer["scope"] == "accounts:read payments:write"
    assert answer["client_id"] == "mobile-app" and answer["exp"] == verified.exp
    holder = keys.generate("ed25519")
    bound = await env.token(cnf={"jkt": holder.public_key().thumbprint()})
    answer = await env.issuer.introspect(bound)
    assert answer["token_type"] == "DPoP" and answer["cnf"] == {
        "jkt": holder.public_key().thumbprint()
    }
    for_payments = await env.token(audience="payments-api")  # any audience may ask
    assert (await env.issuer.introspect(for_payments))["active"] is True


async def test_introspection_of_a_live_refresh_token(env: Env) -> None:
    response = await env.mint()
    answer = await env.issuer.introspect(response.refresh_token or "")
    assert answer["active"] is True and answer["token_type"] == "refresh_token"
    assert (answer["sub"], answer["client_id"]) == (SUBJECT, "mobile-app")
    await env.issuer.refresh(response.refresh_token or "", client_id="mobile-app")
    assert await env.issuer.introspect(response.refresh_token or "") == {"active": False}


async def _revoked(env: Env) -> str:
    token = await env.token()
    await env.issuer.revoke(token)
    return token


async def _family_revoked(env: Env) -> str:
    response = await env.mint()
    await env.issuer.revoke(response.refresh_token or "")
    return response.access_token


async def _expired(env: Env) -> str:
    token = await env.token()
    env.clock.advance(env.config.access_ttl + env.config.leeway)
    return token


async def _unsigned(env: Env) -> str:
    header = {"alg": "none", "typ": "at+jwt", "kid": env.ring.signing_key()[0]}
    return sign_raw(header, env.claims(), None)


async def _retired_key(env: Env) -> str:
    token = await env.token()
    old = env.ring.signing_key()[0]
    env.ring.rotate()
    env.ring.retire(old)
    return token


async def _dpop_proof(env: Env) -> str:
    return make_proof(keys.generate("ec-p256"), method="GET", url="https://a.example/")


@pytest.mark.parametrize(
    "make",
    [_revoked, _family_revoked, _expired, _unsigned, _retired_key, _dpop_proof],
    ids=lambda make: make.__name__.strip("_"),
)
async def test_introspection_of_a_dead_token_says_only_inactive(env: Env, make: object) -> None:
    token = await make(env)  # type: ignore[operator]
    assert await env.issuer.introspect(token) == {"active": False}


@pytest.mark.parametrize("junk", ["", "garbage", "a.b.c", "A" * 43, "x" * 20000, "é", "\x00"])
async def test_introspection_of_garbage_says_only_inactive(env: Env, junk: str) -> None:
    assert await env.issuer.introspect(junk) == {"active": False}


async def test_introspection_is_authoritative_across_processes(
    env: Env, store_url: StoreURL
) -> None:
    """Unlike `verify`, introspection asks the store: no sync latency."""
    token, session = await env.token(), await env.mint()
    other_store = await reopen(store_url)
    try:
        other = env.other_issuer(other_store)
        assert (await other.introspect(token))["active"] is True
        await env.issuer.revoke(token)
        await env.issuer.revoke(session.refresh_token or "", "refresh_token")
        assert await other.introspect(token) == {"active": False}
        assert await other.introspect(session.access_token) == {"active": False}
    finally:
        await other_store.close()
