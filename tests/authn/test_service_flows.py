"""End-to-end flows over HTTP against the running service, on SQLite and PostgreSQL.

Password → TOTP (acr mfa) → passkey (acr passkey), step-up challenges
(RFC 9470), DPoP-bound sessions (RFC 9449), refresh rotation and reuse
detection, revocation, throttling, and a restart that loses nothing.
"""

from __future__ import annotations

import time

from authn import acr
from authn.dpop import make_proof
from authn.totp import totp_at
from crypto import keys
from tests.authn.service_harness import Api, claims, totp_secret
from tests.authn.soft_authenticator import SoftAuthenticator

PASSWORD = "correct horse battery staple"


async def _mfa_user(api: Api, username: str = "zhang.san") -> tuple[str, bytes, str]:
    """A user with password and confirmed TOTP; returns (subject, TOTP secret, pwd token)."""
    subject = await api.create_user(username, PASSWORD)
    login = await api.login(username, PASSWORD)
    token = login.body["access_token"]
    enrolled = await api.call("POST", "/v1/totp/enroll", json_body={}, token=token)
    assert enrolled.status == 200, enrolled
    secret = totp_secret(enrolled.body["otpauth_uri"])
    code = totp_at(secret, time.time())
    confirmed = await api.call("POST", "/v1/totp/confirm", json_body={"code": code}, token=token)
    assert confirmed.status == 200, confirmed
    return subject, secret, token


async def _register_passkey(api: Api, token: str, device: SoftAuthenticator) -> str:
    options = await api.call("POST", "/v1/webauthn/register/options", json_body={}, token=token)
    assert options.status == 200, options
    credential = device.create(options.body["publicKey"], fmt="packed")
    body = {"challenge_id": options.body["challenge_id"], "credential": credential, "name": "phone"}
    reply = await api.call("POST", "/v1/webauthn/register/verify", json_body=body, token=token)
    assert reply.status == 201, reply
    credential_id: str = reply.body["credential_id"]
    return credential_id


async def _passkey_login(
    api: Api, device: SoftAuthenticator, token: str | None = None, **kwargs: object
) -> object:
    options = await api.call("POST", "/v1/webauthn/authenticate/options", json_body={})
    assertion = device.get(options.body["publicKey"], **kwargs)  # type: ignore[arg-type]
    body = {"challenge_id": options.body["challenge_id"], "credential": assertion}
    return await api.call("POST", "/v1/webauthn/authenticate/verify", json_body=body, token=token)


async def test_password_totp_passkey_and_step_up(api: Api) -> None:
    subject, secret, pwd_token = await _mfa_user(api)
    pwd = claims(pwd_token)
    assert (pwd["sub"], pwd["acr"], pwd["amr"]) == (subject, acr.PWD, ["pwd"])
    assert pwd["iss"] == api.url and pwd["aud"] == "ztgate"
    assert pwd["exp"] - pwd["iat"] == 300 and {"jti", "auth_time"} <= pwd.keys()

    # TOTP on top of the password token: acr mfa; the same code twice is refused.
    code = totp_at(secret, time.time() + 30)  # the next step: confirm used this one
    mfa = await api.call("POST", "/v1/login/totp", json_body={"code": code}, token=pwd_token)
    assert mfa.status == 200, mfa
    assert (mfa.body["acr"], mfa.body["amr"]) == (acr.MFA, ["mfa", "otp", "pwd"])
    again = await api.call("POST", "/v1/login/totp", json_body={"code": code}, token=pwd_token)
    assert (again.status, again.error) == (401, "otp_reused")
    wrong = await api.call("POST", "/v1/login/totp", json_body={"code": "000000"}, token=pwd_token)
    if code != "000000":
        assert (wrong.status, wrong.error) == (401, "invalid_otp")

    # The first passkey may be added with any session; a second one needs step-up.
    device = SoftAuthenticator(origin=api.url)
    credential_id = await _register_passkey(api, mfa.body["access_token"], device)
    reply = await api.call(
        "POST", "/v1/webauthn/register/options", json_body={}, token=mfa.body["access_token"]
    )
    assert (reply.status, reply.error) == (401, "insufficient_user_authentication")

    # Step-up (RFC 9470 §3): removing a credential demands acr passkey within 300 s.
    path = f"/v1/webauthn/credentials/{credential_id}"
    reply = await api.call("DELETE", path, token=mfa.body["access_token"])
    assert (reply.status, reply.error) == (401, "insufficient_user_authentication")
    challenge = reply.headers["WWW-Authenticate"]
    assert challenge.startswith('Bearer error="insufficient_user_authentication"')
    assert f'acr_values="{acr.PASSKEY}"' in challenge and "max_age=300" in challenge

    stepped = await _passkey_login(api, device, token=mfa.body["access_token"])
    assert stepped.status == 200, stepped  # type: ignore[attr-defined]
    body = stepped.body  # type: ignore[attr-defined]
    assert body["acr"] == acr.PASSKEY
    assert {"hwk", "user", "otp", "pwd", "mfa"} <= set(body["amr"])  # factors merged
    assert claims(body["access_token"])["sub"] == subject
    listed = await api.call("GET", "/v1/webauthn/credentials", token=body["access_token"])
    assert [c["credential_id"] for c in listed.body["credentials"]] == [credential_id]
    assert (await api.call("DELETE", path, token=body["access_token"])).status == 204
    assert (await api.call("DELETE", path, token=body["access_token"])).status == 404
    gone = await _passkey_login(api, device)
    assert gone.status == 401  # type: ignore[attr-defined]


async def test_step_up_refuses_another_users_factor(api: Api) -> None:
    await api.create_user("alice", PASSWORD)
    await api.create_user("bob", PASSWORD)
    alice = (await api.login("alice", PASSWORD)).body["access_token"]
    bob = (await api.login("bob", PASSWORD)).body["access_token"]
    bobs_phone = SoftAuthenticator(origin=api.url)
    await _register_passkey(api, bob, bobs_phone)
    # Bob's passkey presented with Alice's token must not raise Alice's acr.
    reply = await _passkey_login(api, bobs_phone, token=alice)
    assert (reply.status, reply.error) == (403, "subject_mismatch")  # type: ignore[attr-defined]


async def test_passkey_negative_cases_over_http(api: Api) -> None:
    await api.create_user("li.si", PASSWORD)
    token = (await api.login("li.si", PASSWORD)).body["access_token"]
    device = SoftAuthenticator(origin=api.url)
    await _register_passkey(api, token, device)
    assert (await _passkey_login(api, device)).status == 200  # type: ignore[attr-defined]
    for kwargs, code in (
        ({"origin": "http://localhost:1"}, "invalid_assertion"),
        ({"origin": api.url.replace("http:", "https:")}, "invalid_assertion"),
        ({"uv": False}, "invalid_assertion"),
        ({"sign_count": 1}, "credential_cloned"),  # not above the stored 1
    ):
        reply = await _passkey_login(api, device, **kwargs)
        assert (reply.status, reply.error) == (401, code), (kwargs, reply)  # type: ignore[attr-defined]
    flagged = await _passkey_login(api, device)
    assert (flagged.status, flagged.error) == (401, "credential_flagged")  # type: ignore[attr-defined]

    # A challenge is single-use: replaying a whole (valid) request fails.
    other = SoftAuthenticator(origin=api.url)
    await api.create_user("wang.wu", PASSWORD)
    await _register_passkey(api, (await api.login("wang.wu", PASSWORD)).body["access_token"], other)
    options = await api.call("POST", "/v1/webauthn/authenticate/options", json_body={})
    body = {
        "challenge_id": options.body["challenge_id"],
        "credential": other.get(options.body["publicKey"]),
    }
    first = await api.call("POST", "/v1/webauthn/authenticate/verify", json_body=body)
    replay = await api.call("POST", "/v1/webauthn/authenticate/verify", json_body=body)
    assert first.status == 200 and replay.status == 400, (first, replay)


async def test_password_throttling(api: Api) -> None:
    await api.create_user("victim", PASSWORD)
    replies = [await api.login("victim", f"guess-{i:04d}-xxxxx") for i in range(6)]
    assert [r.status for r in replies[:5]] == [401] * 5
    assert {r.error for r in replies[:5]} == {"invalid_credentials"}
    assert (replies[5].status, replies[5].error) == (429, "too_many_attempts")
    assert int(replies[5].headers["Retry-After"]) >= 1
    # An unknown user looks the same as a known one with a wrong password.
    unknown = await api.login("nobody", "whatever-password")
    assert (unknown.status, unknown.error) == (401, "invalid_credentials")


async def test_totp_guessing_is_throttled(api: Api) -> None:
    _, secret, token = await _mfa_user(api)
    current = {totp_at(secret, time.time() + d) for d in (-30, 0, 30, 60)}
    guesses = [c for c in (f"{n:06d}" for n in range(100)) if c not in current][:6]
    replies = [
        await api.call("POST", "/v1/login/totp", json_body={"code": g}, token=token)
        for g in guesses
    ]
    assert [r.error for r in replies] == ["invalid_otp"] * 5 + ["too_many_attempts"]


async def test_refresh_rotation_reuse_and_revocation(api: Api) -> None:
    await api.create_user("zhao.liu", PASSWORD)
    login = await api.login("zhao.liu", PASSWORD)
    first_refresh = login.body["refresh_token"]
    form = {"grant_type": "refresh_token", "refresh_token": first_refresh}
    rotated = await api.call("POST", "/v1/token", form=form)
    assert rotated.status == 200, rotated
    assert rotated.body["refresh_token"] != first_refresh
    assert rotated.headers["Cache-Control"] == "no-store"
    new_access = rotated.body["access_token"]
    assert claims(new_access)["acr"] == acr.PWD  # the session's factors, not more
    assert (await api.call("GET", "/v1/webauthn/credentials", token=new_access)).status == 200

    # Reusing the first refresh token revokes the whole family.
    reuse = await api.call("POST", "/v1/token", form=form)
    assert (reuse.status, reuse.error) == (400, "invalid_grant")
    form["refresh_token"] = rotated.body["refresh_token"]
    after = await api.call("POST", "/v1/token", form=form)
    assert (after.status, after.error) == (400, "invalid_grant")
    denied = await api.call("GET", "/v1/webauthn/credentials", token=new_access)
    assert (denied.status, denied.error) == (401, "invalid_token")

    # RFC 7009: revoking an access token takes effect at once (even if cached).
    login = await api.login("zhao.liu", PASSWORD)
    access = login.body["access_token"]
    assert (await api.call("GET", "/v1/webauthn/credentials", token=access)).status == 200
    revoked = await api.call("POST", "/v1/revoke", form={"token": access})
    assert (revoked.status, revoked.body) == (200, {})
    assert (await api.call("GET", "/v1/webauthn/credentials", token=access)).status == 401
    unknown = await api.call("POST", "/v1/revoke", form={"token": "not-a-token"})
    assert unknown.status == 200  # RFC 7009 §2.2


async def test_dpop_bound_session(api: Api) -> None:
    await api.create_user("mobile", PASSWORD)
    key = keys.generate("sm2")
    login_url = api.url + "/v1/login/password"
    proof = make_proof(key, method="POST", url=login_url)
    login = await api.login("mobile", PASSWORD, headers={"DPoP": proof})
    assert login.status == 200, login
    assert login.body["token_type"] == "DPoP"
    access = login.body["access_token"]
    assert claims(access)["cnf"] == {"jkt": key.public_key().thumbprint()}

    url = api.url + "/v1/webauthn/credentials"
    ok = make_proof(key, method="GET", url=url, access_token=access)
    reply = await api.call(
        "GET", "/v1/webauthn/credentials", token=access, scheme="DPoP", headers={"DPoP": ok}
    )
    assert reply.status == 200, reply
    replayed = await api.call(
        "GET", "/v1/webauthn/credentials", token=access, scheme="DPoP", headers={"DPoP": ok}
    )
    assert (replayed.status, replayed.error) == (401, "invalid_dpop_proof")
    as_bearer = await api.call("GET", "/v1/webauthn/credentials", token=access)
    assert as_bearer.status == 401 and as_bearer.headers["WWW-Authenticate"].startswith("DPoP")
    thief = make_proof(keys.generate("sm2"), method="GET", url=url, access_token=access)
    stolen = await api.call(
        "GET", "/v1/webauthn/credentials", token=access, scheme="DPoP", headers={"DPoP": thief}
    )
    assert stolen.status == 401
    wrong_method = make_proof(key, method="POST", url=url, access_token=access)
    reply = await api.call(
        "GET",
        "/v1/webauthn/credentials",
        token=access,
        scheme="DPoP",
        headers={"DPoP": wrong_method},
    )
    assert (reply.status, reply.error) == (401, "invalid_dpop_proof")

    # The refresh token is bound too: refreshing needs a proof by the same key.
    form = {"grant_type": "refresh_token", "refresh_token": login.body["refresh_token"]}
    token_url = api.url + "/v1/token"
    bare = await api.call("POST", "/v1/token", form=form)
    assert bare.status in (400, 401), bare
    other = make_proof(keys.generate("ec-p256"), method="POST", url=token_url)
    assert (await api.call("POST", "/v1/token", form=form, headers={"DPoP": other})).status in (
        400,
        401,
    )
    good = make_proof(key, method="POST", url=token_url)
    refreshed = await api.call("POST", "/v1/token", form=form, headers={"DPoP": good})
    assert refreshed.status == 200, refreshed
    assert claims(refreshed.body["access_token"])["cnf"] == {"jkt": key.public_key().thumbprint()}


async def test_restart_loses_nothing(api: Api) -> None:
    subject, secret, _ = await _mfa_user(api, "persist")
    device = SoftAuthenticator(origin=api.url)
    token = (await api.login("persist", PASSWORD)).body["access_token"]
    await _register_passkey(api, token, device)
    login = await api.login("persist", PASSWORD)
    revoked_access = login.body["access_token"]
    await api.call("POST", "/v1/revoke", form={"token": revoked_access})
    kept = await api.login("persist", PASSWORD)
    jwks_before = (await api.call("GET", "/.well-known/jwks.json")).body

    await api.restart()

    assert (await api.call("GET", "/.well-known/jwks.json")).body == jwks_before
    assert (await api.login("persist", PASSWORD)).status == 200
    assert (
        await api.call("GET", "/v1/webauthn/credentials", token=kept.body["access_token"])
    ).status == 200
    assert (await api.call("GET", "/v1/webauthn/credentials", token=revoked_access)).status == 401
    form = {"grant_type": "refresh_token", "refresh_token": kept.body["refresh_token"]}
    assert (await api.call("POST", "/v1/token", form=form)).status == 200
    passkey = await _passkey_login(api, device)
    assert passkey.status == 200, passkey  # type: ignore[attr-defined]
    assert claims(passkey.body["access_token"])["sub"] == subject  # type: ignore[attr-defined]
    code = totp_at(secret, time.time() + 30)
    mfa = await api.call(
        "POST", "/v1/login/totp", json_body={"code": code}, token=kept.body["access_token"]
    )
    assert mfa.status == 200, mfa


async def test_discovery_documents(api: Api) -> None:
    meta = await api.call("GET", "/.well-known/oauth-authorization-server")
    assert meta.body["issuer"] == api.url
    assert meta.body["token_endpoint"] == api.url + "/v1/token"
    jwks = (await api.call("GET", "/.well-known/jwks.json")).body
    [key] = jwks["keys"]
    assert (key["kty"], key["crv"], key["alg"]) == ("EC", "SM2", "SM2SM3")
    assert "d" not in key
    assert (await api.call("GET", "/healthz")).body == {"status": "ok"}
