"""Refresh-token attacks against `TokenIssuer.refresh`, on SQLite and PostgreSQL.

Rotation on every use, reuse detection revoking the whole family (and the
access tokens minted from it), the family's absolute lifetime, client and
sender binding. Every refusal is ``invalid_grant``, 400 (RFC 6749 §5.2).
"""

from __future__ import annotations

import asyncio
import json

import pytest

from authn.cnf import cnf_for_certificate, x5t_s256
from authn.refresh import REUSE_DETECTED, RefreshTokens, new_refresh_token
from authn.store import RefreshRecord, Store
from authn.tokens import TokenIssuer, TokenResponse
from crypto import keys
from tests.authn.conftest import StoreURL
from tests.authn.token_harness import (
    CLIENT,
    PEPPER,
    Env,
    make_cert,
    make_env,
    parts,
    refused,
    reopen,
)

DAY = 86400


@pytest.fixture
def env(store: Store) -> Env:
    return make_env(store)


async def login(env: Env, **overrides: object) -> tuple[TokenResponse, str]:
    response = await env.mint(**overrides)
    assert response.refresh_token is not None
    return response, response.refresh_token


async def use(
    issuer: TokenIssuer, refresh_token: str, **kwargs: object
) -> tuple[TokenResponse, str]:
    kwargs.setdefault("client_id", CLIENT)
    response = await issuer.refresh(refresh_token, **kwargs)  # type: ignore[arg-type]
    assert response.refresh_token is not None
    return response, response.refresh_token


async def test_each_use_rotates_and_carries_the_grant_unchanged(env: Env) -> None:
    first, token = await login(env)
    original = parts(first.access_token)[1]
    seen = {token}
    for _ in range(3):
        env.clock.advance(60)
        response, token = await use(env.issuer, token)
        assert token not in seen and len(token) == 43
        seen.add(token)
        claims = (await env.verifier.verify(response.access_token)).claims_dict()
        for same in ("sub", "client_id", "sid", "acr", "amr", "auth_time", "scope", "aud"):
            assert claims[same] == original[same], same  # refreshing never escalates
        assert claims["jti"] != original["jti"] and claims["iat"] > original["iat"]
    assert response.to_json()["refresh_token"] == token


async def test_reused_refresh_token_revokes_the_whole_family(env: Env) -> None:
    first, stolen = await login(env)
    second, current = await use(env.issuer, stolen)  # the client rotates
    bystander, bystander_token = await login(env, subject="u-bob")
    for response in (first, second):
        await env.verifier.verify(response.access_token)  # both cached
    # The thief replays the old token: the server cannot tell who is who.
    assert await refused(env.issuer.refresh(stolen, client_id=CLIENT), "invalid_grant") == (
        REUSE_DETECTED
    )
    # Everything of the family is dead, the client's newer token included.
    await refused(env.issuer.refresh(current, client_id=CLIENT), "invalid_grant")
    for response in (first, second):
        assert await refused(env.verifier.verify(response.access_token)) == "token revoked"
        assert await env.issuer.introspect(response.access_token) == {"active": False}
    assert await env.issuer.introspect(current) == {"active": False}
    sid = parts(first.access_token)[1]["sid"]
    await refused(env.mint(family_id=sid), "invalid_grant")  # no joining it, e.g. step-up
    # Other sessions are untouched.
    assert await env.verifier.verify(bystander.access_token)
    await use(env.issuer, bystander_token)


async def test_replay_under_another_client_id_still_revokes_the_family(env: Env) -> None:
    """A used token coming back is theft whoever presents it (the thief may well be
    a registered client of its own)."""
    first, stolen = await login(env)
    _, current = await use(env.issuer, stolen)
    got = await refused(env.issuer.refresh(stolen, client_id="thief-app"), "invalid_grant")
    assert got == REUSE_DETECTED
    await refused(env.issuer.refresh(current, client_id=CLIENT), "invalid_grant")
    assert await refused(env.verifier.verify(first.access_token)) == "token revoked"


async def test_step_up_joins_the_family_and_dies_with_it(env: Env) -> None:
    first, token = await login(env)
    sid = parts(first.access_token)[1]["sid"]
    stepped = await env.mint(family_id=sid, acr="urn:ztgate:acr:hardware", with_refresh=False)
    assert parts(stepped.access_token)[1]["sid"] == sid
    await env.issuer.revoke(token, "refresh_token")
    assert await refused(env.verifier.verify(stepped.access_token)) == "token revoked"


async def test_reuse_in_one_process_is_enforced_in_another(env: Env, store_url: StoreURL) -> None:
    first, stolen = await login(env)
    other_store = await reopen(store_url)
    try:
        other = env.other_issuer(other_store)
        second, current = await use(other, stolen)  # the client, served by worker B
        await env.verifier.verify(second.access_token)
        await refused(env.issuer.refresh(stolen, client_id=CLIENT), "invalid_grant")  # worker A
        await refused(other.refresh(current, client_id=CLIENT), "invalid_grant")
        verifier = env.other_verifier(other_store)
        await verifier.sync_revocations()
        for response in (first, second):
            assert await refused(verifier.verify(response.access_token)) == "token revoked"
            assert await refused(env.verifier.verify(response.access_token)) == "token revoked"
    finally:
        await other_store.close()


async def test_concurrent_redemptions_leave_at_most_one_winner(env: Env) -> None:
    first, token = await login(env)
    results = await asyncio.gather(
        *(env.issuer.refresh(token, client_id=CLIENT) for _ in range(4)), return_exceptions=True
    )
    winners = [r for r in results if isinstance(r, TokenResponse)]
    assert len(winners) <= 1
    for r in results:
        if not isinstance(r, TokenResponse):
            assert getattr(r, "code", None) == "invalid_grant", r
    # A race is a reuse: the family is revoked, the winner's new tokens with it.
    for winner in winners:
        await refused(
            env.issuer.refresh(winner.refresh_token or "", client_id=CLIENT), "invalid_grant"
        )
        assert await refused(env.verifier.verify(winner.access_token)) == "token revoked"
    assert await refused(env.verifier.verify(first.access_token)) == "token revoked"


async def test_expired_refresh_token_is_refused_and_lifetime_is_absolute(env: Env) -> None:
    _, token = await login(env)
    env.clock.advance(env.config.refresh_ttl - 60)
    _, rotated = await use(env.issuer, token)  # near the end: still good
    assert (await env.issuer.introspect(rotated))["exp"] == int(env.clock()) + 60
    env.clock.advance(60)  # the rotated token keeps the family's expiry, not a new one
    description = await refused(env.issuer.refresh(rotated, client_id=CLIENT), "invalid_grant")
    assert description == "refresh token expired"
    assert await env.issuer.introspect(rotated) == {"active": False}


async def test_refresh_by_another_client_is_refused_without_consuming(env: Env) -> None:
    _, token = await login(env)
    description = await refused(env.issuer.refresh(token, client_id="other-app"), "invalid_grant")
    assert description == "refresh token was issued to another client"
    await use(env.issuer, token)  # the legitimate client keeps its session


@pytest.mark.parametrize("kind", ["garbage", "empty", "random", "access-token", "padded", "long"])
async def test_unknown_refresh_token_is_refused(env: Env, kind: str) -> None:
    first, token = await login(env)
    presented = {
        "garbage": "garbage",
        "empty": "",
        "random": new_refresh_token(),
        "access-token": first.access_token,
        "padded": token + "=",
        "long": token * 100,
    }[kind]
    description = await refused(env.issuer.refresh(presented, client_id=CLIENT), "invalid_grant")
    assert description == "unknown refresh token"
    await use(env.issuer, token)


async def test_another_deployments_pepper_finds_nothing(env: Env) -> None:
    _, token = await login(env)
    other = TokenIssuer(env.store, env.ring, env.config, refresh_pepper=b"\x08" * 32)
    await refused(other.refresh(token, client_id=CLIENT), "invalid_grant")
    with pytest.raises(ValueError):
        RefreshTokens(env.store, b"short")


async def test_dpop_bound_family_refreshes_only_for_its_key(env: Env) -> None:
    holder, thief = keys.generate("ec-p256"), keys.generate("ec-p256")
    jkt = holder.public_key().thumbprint()
    _, token = await login(env, cnf={"jkt": jkt})
    for presented, description in [
        (None, "refresh token is bound to a DPoP key: none was presented"),
        (thief.public_key().thumbprint(), "refresh token is bound to another DPoP key"),
        ("é", "refresh token is bound to another DPoP key"),
    ]:
        got = await refused(
            env.issuer.refresh(token, client_id=CLIENT, dpop_jkt=presented), "invalid_grant"
        )
        assert got == description
    response, _ = await use(env.issuer, token, dpop_jkt=jkt)  # not consumed by the failures
    assert response.token_type == "DPoP"
    assert parts(response.access_token)[1]["cnf"] == {"jkt": jkt}


async def test_certificate_bound_family_refreshes_only_with_its_certificate(env: Env) -> None:
    cert, other = make_cert("partner-a"), make_cert("partner-b")
    _, token = await login(env, cnf=cnf_for_certificate(cert), client_id="partner-a")
    for presented in (None, x5t_s256(other)):
        await refused(
            env.issuer.refresh(token, client_id="partner-a", client_cert_sha256=presented),
            "invalid_grant",
        )
    response, _ = await use(
        env.issuer, token, client_id="partner-a", client_cert_sha256=x5t_s256(cert)
    )
    verified = await env.verifier.verify(response.access_token, client_cert_sha256=x5t_s256(cert))
    assert verified.cnf == cnf_for_certificate(cert)


async def test_unbound_family_refreshed_with_dpop_binds_the_new_access_token(env: Env) -> None:
    holder = keys.generate("ed25519")
    _, token = await login(env)
    response, token = await use(env.issuer, token, dpop_jkt=holder.public_key().thumbprint())
    assert response.token_type == "DPoP"
    response, _ = await use(env.issuer, token)  # the family itself stays unbound
    assert response.token_type == "Bearer"


async def test_corrupt_stored_grant_is_invalid_grant_not_a_crash(env: Env) -> None:
    refresh = RefreshTokens(env.store, PEPPER)
    for i, claims in enumerate(["not json", "[]", json.dumps({"amr": "pwd"}), "{}"]):
        token = new_refresh_token()
        digest = refresh.digest(token)
        assert digest is not None
        now = env.clock()
        await env.store.put_refresh(
            RefreshRecord(digest, f"fam-{i}", "u-1", CLIENT, claims, now, now + DAY, None, False)
        )
        got = await refused(env.issuer.refresh(token, client_id=CLIENT), "invalid_grant")
        assert got == "unusable refresh token"
        assert await env.issuer.introspect(token) == {"active": False}
