"""WebAuthn ceremonies (authn.webauthn) against a real software authenticator and real stores.

Every store-backed test runs on SQLite and PostgreSQL (the ``store`` fixture).
Section numbers are WebAuthn Level 3.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import uuid
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from authn.errors import AuthnError
from authn.store.base import Store, User
from authn.webauthn import (
    AuthenticationResult,
    WebAuthnConfig,
    authentication_options,
    decode_id,
    encode_id,
    list_credentials,
    registration_options,
    remove_credential,
    user_handle,
    verify_authentication,
    verify_registration,
)
from tests.authn.soft_authenticator import EDDSA, ES256, SoftAuthenticator, b64u, b64u_dec, cbor

CFG = WebAuthnConfig()
NOW = 1_700_000_000.0


async def new_user(store: Store, prefix: str = "wa") -> User:
    return await store.create_user(f"{prefix}-{uuid.uuid4().hex[:12]}", "Zhang San")


async def register(
    store: Store,
    auth: SoftAuthenticator,
    user: User,
    *,
    cfg: WebAuthnConfig = CFG,
    fmt: str = "none",
    name: str = "phone",
    **knobs: Any,
) -> str:
    """A full registration ceremony; returns the base64url credential id."""
    challenge_id, options = await registration_options(store, cfg, user=user, now=NOW)
    response = auth.create(options, fmt=fmt, **knobs)
    record = await verify_registration(
        store, cfg, user=user, challenge_id=challenge_id, credential=response, now=NOW, name=name
    )
    return encode_id(record.credential_id)


async def login(
    store: Store,
    auth: SoftAuthenticator,
    user: User | None = None,
    *,
    cfg: WebAuthnConfig = CFG,
    now: float = NOW,
    **knobs: Any,
) -> AuthenticationResult:
    challenge_id, options = await authentication_options(store, cfg, user=user, now=now)
    response = auth.get(options, **knobs)
    return await verify_authentication(
        store, cfg, challenge_id=challenge_id, credential=response, now=now
    )


async def error_of(awaitable: Any) -> AuthnError:
    with pytest.raises(AuthnError) as info:
        await awaitable
    return info.value


def flip(b64: str, index: int = -1) -> str:
    raw = bytearray(b64u_dec(b64))
    raw[index] ^= 0x01
    return b64u(bytes(raw))


# --- registration (§7.1) ---------------------------------------------------------


@pytest.mark.parametrize("fmt", ["none", "packed"])
@pytest.mark.parametrize("alg", [ES256, EDDSA])
async def test_register_and_log_in(store: Store, fmt: str, alg: int) -> None:
    user = await new_user(store)
    auth = SoftAuthenticator(alg=alg, be=True, bs=True)
    cred_id = await register(store, auth, user, fmt=fmt)
    record = await store.get_credential(b64u_dec(cred_id))
    assert record is not None
    assert record.subject == user.subject
    assert (record.attestation_format, record.transports, record.name) == (
        fmt,
        ("internal",),
        "phone",
    )
    assert record.aaguid == "00000000-0000-0000-0000-000000000000"
    assert (record.sign_count, record.backup_eligible, record.backed_up, record.flagged) == (
        0,
        True,
        True,
        None,
    )
    result = await login(store, auth)
    assert result == AuthenticationResult(user.subject, cred_id, 1, True, True)
    assert result.amr == ("hwk", "user")


async def test_registration_options(store: Store) -> None:
    user = await new_user(store)
    auth = SoftAuthenticator()
    first = await register(store, auth, user)
    challenge_id, options = await registration_options(store, CFG, user=user, now=NOW)
    assert options["rp"] == {"name": "ztgate", "id": "localhost"}
    assert options["authenticatorSelection"]["residentKey"] == "required"
    assert options["authenticatorSelection"]["userVerification"] == "required"
    assert options["attestation"] == "none"
    assert [p["alg"] for p in options["pubKeyCredParams"]] == [-7, -8]
    assert options["timeout"] == 60000
    assert [c["id"] for c in options["excludeCredentials"]] == [first]
    # The user handle is opaque: derived from the subject, not the username (§14.6.1).
    handle = b64u_dec(options["user"]["id"])
    assert handle == user_handle(user.subject) and len(handle) == 32
    assert user.username.encode() not in handle and user.subject.encode() not in handle
    challenge = await store.take_challenge(challenge_id, "webauthn.register", NOW)
    assert challenge is not None and challenge.subject == user.subject
    assert challenge.expires_at == NOW + CFG.challenge_ttl
    assert b64u(challenge.challenge) == options["challenge"] and len(challenge.challenge) >= 16


async def test_several_credentials_and_exclusion(store: Store) -> None:
    user = await new_user(store)
    phone, tablet = SoftAuthenticator(), SoftAuthenticator(alg=EDDSA)
    ids = {await register(store, phone, user), await register(store, tablet, user, name="tablet")}
    # The same authenticator again: excluded (§5.4 excludeCredentials).
    with pytest.raises(PermissionError):
        await register(store, phone, user)
    listed = await list_credentials(store, subject=user.subject)
    assert {c.credential_id for c in listed} == ids
    assert {c.name for c in listed} == {"phone", "tablet"}
    assert (await login(store, phone)).credential_id in ids
    assert (await login(store, tablet, user)).credential_id in ids
    assert listed[0].as_json().keys() == {
        "credential_id",
        "name",
        "created_at",
        "last_used_at",
        "flagged",
    }


async def test_credential_id_already_registered_is_refused(store: Store) -> None:
    alice, mallory = await new_user(store), await new_user(store)
    cred_id = await register(store, SoftAuthenticator(), alice)
    err = await error_of(
        register(store, SoftAuthenticator(), mallory, credential_id=b64u_dec(cred_id))
    )
    assert (err.code, err.status) == ("invalid_registration", 400)
    record = await store.get_credential(b64u_dec(cred_id))
    assert record is not None and record.subject == alice.subject


async def test_attestation_format_not_allowed(store: Store) -> None:
    user = await new_user(store)
    cfg = dataclasses.replace(CFG, allowed_attestation_formats=("none",))
    err = await error_of(register(store, SoftAuthenticator(), user, cfg=cfg, fmt="packed"))
    assert (err.code, err.description) == ("invalid_registration", "attestation format not allowed")
    for fmt in ("fido-u2f", "tpm", "apple", "x"):
        err = await error_of(register(store, SoftAuthenticator(), user, fmt=fmt))
        assert err.code == "invalid_registration"
    assert await store.list_credentials(user.subject) == []


async def test_packed_attestation_with_bad_signature(store: Store) -> None:
    user = await new_user(store)
    challenge_id, options = await registration_options(store, CFG, user=user, now=NOW)
    response = SoftAuthenticator().create(options, fmt="packed")
    # Re-sign the attestation statement with an unrelated key.
    import cbor2

    att = cbor2.loads(b64u_dec(response["response"]["attestationObject"]))
    att["attStmt"]["sig"] = ec.generate_private_key(ec.SECP256R1()).sign(
        att["authData"], ec.ECDSA(__import__("cryptography").hazmat.primitives.hashes.SHA256())
    )
    response["response"]["attestationObject"] = b64u(cbor(att))
    err = await error_of(
        verify_registration(
            store, CFG, user=user, challenge_id=challenge_id, credential=response, now=NOW
        )
    )
    assert err.code == "invalid_registration"


# --- authentication (§7.2) ---------------------------------------------------------


async def test_discoverable_login_updates_the_record(store: Store) -> None:
    user = await new_user(store)
    auth = SoftAuthenticator()
    cred_id = await register(store, auth, user)
    challenge_id, options = await authentication_options(store, CFG, user=None, now=NOW)
    assert options["allowCredentials"] == [] and options["userVerification"] == "required"
    assert options["rpId"] == "localhost"
    result = await verify_authentication(
        store, CFG, challenge_id=challenge_id, credential=auth.get(options), now=NOW + 5
    )
    assert (result.subject, result.credential_id, result.sign_count) == (user.subject, cred_id, 1)
    record = await store.get_credential(b64u_dec(cred_id))
    assert record is not None and (record.sign_count, record.last_used_at) == (1, NOW + 5)


async def test_login_with_username_allows_only_unflagged_credentials(store: Store) -> None:
    user = await new_user(store)
    phone, old = SoftAuthenticator(), SoftAuthenticator()
    phone_id = await register(store, phone, user)
    old_id = await register(store, old, user)
    await store.flag_credential(b64u_dec(old_id), "lost")
    _, options = await authentication_options(store, CFG, user=user, now=NOW)
    assert [c["id"] for c in options["allowCredentials"]] == [phone_id]
    assert options["allowCredentials"][0]["transports"] == ["internal"]
    # Username-first login works without a userHandle (non-discoverable use).
    assert (await login(store, phone, user, user_handle=None)).subject == user.subject


async def test_removal(store: Store) -> None:
    alice, bob = await new_user(store), await new_user(store)
    auth = SoftAuthenticator()
    cred_id = await register(store, auth, alice)
    assert not await remove_credential(store, subject=bob.subject, credential_id=cred_id)
    assert not await remove_credential(store, subject=alice.subject, credential_id="not b64!")
    assert await remove_credential(store, subject=alice.subject, credential_id=cred_id)
    assert not await remove_credential(store, subject=alice.subject, credential_id=cred_id)
    err = await error_of(login(store, auth))
    assert (err.code, err.description, err.status) == (
        "invalid_assertion",
        "unknown credential",
        401,
    )


async def test_counterless_authenticator_keeps_working(store: Store) -> None:
    """Count 0 on both sides is "no counter" (§6.1.1), not a regression."""
    user = await new_user(store)
    auth = SoftAuthenticator(counter_step=0)
    await register(store, auth, user)
    for _ in range(3):
        assert (await login(store, auth)).sign_count == 0


# --- origin and RP ID -----------------------------------------------------------------


BAD_ORIGINS = [
    "http://localhost:9999",  # other port
    "https://localhost:8081",  # other scheme
    "http://evil.example:8081",  # other host
    "http://localhost",  # default port is a different origin
    "http://localhost:8081/",  # not an origin serialisation
    "http://sub.localhost:8081",
]


@pytest.mark.parametrize("origin", BAD_ORIGINS)
async def test_wrong_origin_registration(store: Store, origin: str) -> None:
    err = await error_of(register(store, SoftAuthenticator(origin=origin), await new_user(store)))
    assert (err.code, err.description, err.status) == (
        "invalid_registration",
        "origin not allowed",
        400,
    )


@pytest.mark.parametrize("origin", BAD_ORIGINS)
async def test_wrong_origin_authentication(store: Store, origin: str) -> None:
    auth = SoftAuthenticator()
    await register(store, auth, await new_user(store))
    err = await error_of(login(store, auth, origin=origin))
    assert (err.code, err.description, err.status) == (
        "invalid_assertion",
        "origin not allowed",
        401,
    )


async def test_every_configured_origin_is_accepted_exactly(store: Store) -> None:
    cfg = WebAuthnConfig(origins=("http://localhost:8081", "http://localhost:8443"))
    auth = SoftAuthenticator(origin="http://localhost:8443")
    await register(store, auth, await new_user(store), cfg=cfg)
    assert (await login(store, auth, cfg=cfg, origin="http://localhost:8081")).sign_count == 1


async def test_wrong_rp_id_hash(store: Store) -> None:
    user = await new_user(store)
    err = await error_of(register(store, SoftAuthenticator(rp_id="evil.example"), user))
    assert err.description == "rpIdHash does not match the RP ID"
    auth = SoftAuthenticator()
    await register(store, auth, user)
    err = await error_of(login(store, auth, rp_id="evil.example"))
    assert (err.code, err.description) == ("invalid_assertion", "rpIdHash does not match the RP ID")


# --- flags (§6.1) -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("flag", "reason"),
    [("uv", "user verification (UV) required"), ("up", "user presence (UP) flag not set")],
)
async def test_missing_flag(store: Store, flag: str, reason: str) -> None:
    user = await new_user(store)
    err = await error_of(register(store, SoftAuthenticator(), user, **{flag: False}))
    assert (err.code, err.description) == ("invalid_registration", reason)
    auth = SoftAuthenticator()
    await register(store, auth, user)
    err = await error_of(login(store, auth, **{flag: False}))
    assert (err.code, err.description) == ("invalid_assertion", reason)


async def test_backup_flags(store: Store) -> None:
    user = await new_user(store)
    err = await error_of(register(store, SoftAuthenticator(be=False, bs=True), user))
    assert err.description == "backup state set without backup eligibility"
    auth = SoftAuthenticator(be=False)
    await register(store, auth, user)
    err = await error_of(login(store, auth, be=True))  # §6.1.3: BE is fixed for life
    assert err.description == "backup eligibility changed since registration"
    synced = SoftAuthenticator(be=True, bs=False)
    await register(store, synced, user)
    assert (await login(store, synced, bs=True)).backed_up  # BS may change


# --- challenges (§13.4.3) -------------------------------------------------------------


async def test_challenge_is_single_use(store: Store) -> None:
    user = await new_user(store)
    auth = SoftAuthenticator()
    challenge_id, options = await registration_options(store, CFG, user=user, now=NOW)
    response = auth.create(options)
    await verify_registration(
        store, CFG, user=user, challenge_id=challenge_id, credential=response, now=NOW
    )
    err = await error_of(
        verify_registration(
            store, CFG, user=user, challenge_id=challenge_id, credential=response, now=NOW
        )
    )
    assert (err.code, err.status) == ("invalid_challenge", 400)

    challenge_id, options = await authentication_options(store, CFG, user=None, now=NOW)
    response = auth.get(options)
    await verify_authentication(store, CFG, challenge_id=challenge_id, credential=response, now=NOW)
    err = await error_of(
        verify_authentication(store, CFG, challenge_id=challenge_id, credential=response, now=NOW)
    )
    assert err.code == "invalid_challenge"


async def test_failed_attempt_burns_the_challenge(store: Store) -> None:
    user = await new_user(store)
    auth = SoftAuthenticator()
    await register(store, auth, user)
    challenge_id, options = await authentication_options(store, CFG, user=None, now=NOW)
    await error_of(
        verify_authentication(store, CFG, challenge_id=challenge_id, credential="{}", now=NOW)
    )
    err = await error_of(
        verify_authentication(
            store, CFG, challenge_id=challenge_id, credential=auth.get(options), now=NOW
        )
    )
    assert err.code == "invalid_challenge"


async def test_challenge_expired(store: Store) -> None:
    user = await new_user(store)
    auth = SoftAuthenticator()
    challenge_id, options = await registration_options(store, CFG, user=user, now=NOW)
    late = NOW + CFG.challenge_ttl + 1
    err = await error_of(
        verify_registration(
            store,
            CFG,
            user=user,
            challenge_id=challenge_id,
            credential=auth.create(options),
            now=late,
        )
    )
    assert err.code == "invalid_challenge"
    await register(store, auth, user)
    challenge_id, options = await authentication_options(store, CFG, user=None, now=NOW)
    err = await error_of(
        verify_authentication(
            store, CFG, challenge_id=challenge_id, credential=auth.get(options), now=late
        )
    )
    assert err.code == "invalid_challenge"


async def test_challenge_of_another_user(store: Store) -> None:
    alice, bob = await new_user(store), await new_user(store)
    # Registration: Alice's challenge cannot register a credential on Bob's account.
    challenge_id, options = await registration_options(store, CFG, user=alice, now=NOW)
    err = await error_of(
        verify_registration(
            store,
            CFG,
            user=bob,
            challenge_id=challenge_id,
            credential=SoftAuthenticator().create(options),
            now=NOW,
        )
    )
    assert (err.code, err.description) == (
        "invalid_challenge",
        "challenge was issued to another user",
    )
    # Authentication: a challenge issued for Alice cannot be answered with Bob's passkey.
    bobs = SoftAuthenticator()
    bob_cred = await register(store, bobs, bob)
    challenge_id, options = await authentication_options(store, CFG, user=alice, now=NOW)
    response = bobs.get(options, credential_id=b64u_dec(bob_cred))
    err = await error_of(
        verify_authentication(store, CFG, challenge_id=challenge_id, credential=response, now=NOW)
    )
    assert (err.code, err.description) == (
        "invalid_assertion",
        "credential not registered to this user",
    )


async def test_challenge_purposes_do_not_mix(store: Store) -> None:
    user = await new_user(store)
    auth = SoftAuthenticator()
    await register(store, auth, user)
    challenge_id, options = await registration_options(store, CFG, user=user, now=NOW)
    options = {**options, "rpId": "localhost", "allowCredentials": []}
    err = await error_of(
        verify_authentication(
            store, CFG, challenge_id=challenge_id, credential=auth.get(options), now=NOW
        )
    )
    assert err.code == "invalid_challenge"


# --- user handle (§7.2 step 6) ----------------------------------------------------------


async def test_user_handle(store: Store) -> None:
    alice, bob = await new_user(store), await new_user(store)
    auth = SoftAuthenticator()
    await register(store, auth, alice)
    err = await error_of(login(store, auth, user_handle=None))
    assert err.description == "userHandle required for discoverable login"
    err = await error_of(login(store, auth, user_handle=user_handle(bob.subject)))
    assert err.description == "userHandle does not match the credential owner"
    err = await error_of(login(store, auth, alice, user_handle=user_handle(bob.subject)))
    assert err.code == "invalid_assertion"


# --- signatures and tampering (§7.2 step 20) ------------------------------------------------


async def test_assertion_signed_by_another_key(store: Store) -> None:
    user = await new_user(store)
    auth = SoftAuthenticator()
    cred_id = await register(store, auth, user)
    err = await error_of(login(store, auth, key=ec.generate_private_key(ec.SECP256R1())))
    assert (err.code, err.status) == ("invalid_assertion", 401)
    record = await store.get_credential(b64u_dec(cred_id))
    assert record is not None and record.flagged is None and record.sign_count == 0


def _tamper_client_data(r: dict[str, Any]) -> None:
    data = json.loads(b64u_dec(r["response"]["clientDataJSON"]))
    data["extra"] = "x"  # still valid JSON with the right challenge and origin
    r["response"]["clientDataJSON"] = b64u(json.dumps(data).encode())


def _tamper_auth_data(r: dict[str, Any]) -> None:
    r["response"]["authenticatorData"] = flip(r["response"]["authenticatorData"], -1)


def _tamper_signature(r: dict[str, Any]) -> None:
    r["response"]["signature"] = flip(r["response"]["signature"], 10)


@pytest.mark.parametrize("tamper", [_tamper_client_data, _tamper_auth_data, _tamper_signature])
async def test_tampered_assertion(store: Store, tamper: Any) -> None:
    user = await new_user(store)
    auth = SoftAuthenticator()
    await register(store, auth, user)
    challenge_id, options = await authentication_options(store, CFG, user=None, now=NOW)
    response = auth.get(options)
    tamper(response)
    err = await error_of(
        verify_authentication(store, CFG, challenge_id=challenge_id, credential=response, now=NOW)
    )
    assert (err.code, err.status) == ("invalid_assertion", 401)


async def test_tampered_registration(store: Store) -> None:
    user = await new_user(store)
    challenge_id, options = await registration_options(store, CFG, user=user, now=NOW)
    response = SoftAuthenticator().create(options, fmt="packed")
    _tamper_client_data(response)  # packed: the attestation signature covers clientDataHash
    err = await error_of(
        verify_registration(
            store, CFG, user=user, challenge_id=challenge_id, credential=response, now=NOW
        )
    )
    assert err.code == "invalid_registration"


# --- signature counter (§6.1.1, §7.2 step 21) -------------------------------------------------


async def test_sign_count_regression_flags_the_credential(store: Store) -> None:
    user = await new_user(store)
    original = SoftAuthenticator()
    cred_id = await register(store, original, user)
    clone = original.clone()  # extracted keys: both copies now sign
    assert (await login(store, original)).sign_count == 1
    assert (await login(store, original)).sign_count == 2
    err = await error_of(login(store, clone))  # the clone says 1: behind what we saw
    assert (err.code, err.status) == ("credential_cloned", 401)
    record = await store.get_credential(b64u_dec(cred_id))
    assert record is not None and record.flagged is not None
    assert record.flagged.startswith("sign_count_regression:")
    assert record.sign_count == 2
    # From now on even the genuine authenticator, with a valid count, is refused.
    err = await error_of(login(store, original))
    assert (err.code, err.status) == ("credential_flagged", 401)
    assert [c.flagged for c in await list_credentials(store, subject=user.subject)] == [True]
    # …and it is no longer offered for username-first login.
    _, options = await authentication_options(store, CFG, user=user, now=NOW)
    assert options["allowCredentials"] == []


@pytest.mark.parametrize(("stored", "presented"), [(5, 5), (5, 0), (5, 4)])
async def test_non_increasing_counts_are_regressions(
    store: Store, stored: int, presented: int
) -> None:
    user = await new_user(store)
    auth = SoftAuthenticator()
    await register(store, auth, user)
    assert (await login(store, auth, sign_count=stored)).sign_count == stored
    err = await error_of(login(store, auth, sign_count=presented))
    assert err.code == "credential_cloned"


async def test_forged_low_counter_does_not_flag(store: Store) -> None:
    """Flagging only follows a valid signature: a forger who knows a credential id
    (ids are public in allowCredentials) must not be able to suspend it."""
    user = await new_user(store)
    auth = SoftAuthenticator()
    cred_id = await register(store, auth, user)
    await login(store, auth, sign_count=7)
    err = await error_of(
        login(store, auth, sign_count=1, key=ec.generate_private_key(ec.SECP256R1()))
    )
    assert err.code == "invalid_assertion"
    record = await store.get_credential(b64u_dec(cred_id))
    assert record is not None and record.flagged is None
    assert (await login(store, auth, sign_count=8)).sign_count == 8


# --- malformed input: always AuthnError ----------------------------------------------------


async def _valid_assertion(store: Store) -> tuple[SoftAuthenticator, dict[str, Any]]:
    auth = SoftAuthenticator()
    await register(store, auth, await new_user(store))
    _, options = await authentication_options(store, CFG, user=None, now=NOW)
    return auth, auth.get(options)


def _malformed(valid: dict[str, Any]) -> list[Any]:
    resp = valid["response"]
    return [
        "",
        "not json",
        "[]",
        "null",
        "1" * 100_000,
        "[" * 100_000 + "]" * 100_000,
        "x" * 10_000_000,
        {},
        {**valid, "type": "password"},
        {**valid, "id": "AAAA"},
        {**valid, "rawId": "***"},
        {**valid, "rawId": "A"},
        {**valid, "rawId": 12},
        {**valid, "response": None},
        {**valid, "response": []},
        {k: v for k, v in valid.items() if k != "response"},
        {**valid, "response": {k: v for k, v in resp.items() if k != "clientDataJSON"}},
        {**valid, "response": {k: v for k, v in resp.items() if k != "authenticatorData"}},
        {**valid, "response": {k: v for k, v in resp.items() if k != "signature"}},
        {**valid, "response": {**resp, "clientDataJSON": b64u(b"\xff\xfe")}},
        {**valid, "response": {**resp, "clientDataJSON": b64u(b"[1]")}},
        {**valid, "response": {**resp, "clientDataJSON": "A" * 1_000_000}},
        {**valid, "response": {**resp, "authenticatorData": b64u(b"short")}},
        {**valid, "response": {**resp, "authenticatorData": resp["authenticatorData"] + "AAAA"}},
        {**valid, "response": {**resp, "signature": ""}},
        {**valid, "response": {**resp, "signature": {"a": 1}}},
        {**valid, "response": {**resp, "userHandle": 5}},
        {**valid, "response": {**resp, "userHandle": "!!"}},
    ]


async def test_malformed_assertions(store: Store) -> None:
    auth, valid = await _valid_assertion(store)
    for bad in _malformed(valid):
        challenge_id, options = await authentication_options(store, CFG, user=None, now=NOW)
        if isinstance(bad, dict) and bad.get("response") is valid["response"]:
            bad = {**bad, "response": auth.get(options)["response"]}
        err = await error_of(
            verify_authentication(store, CFG, challenge_id=challenge_id, credential=bad, now=NOW)
        )
        assert err.code in {"invalid_assertion", "invalid_challenge"}, bad
        assert err.status in {400, 401} and len(err.description) <= 100


async def test_malformed_registrations(store: Store) -> None:
    user = await new_user(store)
    challenge_id, options = await registration_options(store, CFG, user=user, now=NOW)
    valid = SoftAuthenticator().create(options)
    resp = valid["response"]
    cases: list[Any] = [
        "",
        "{",
        "x" * 10_000_000,
        {**valid, "response": {**resp, "attestationObject": b64u(b"\xa0")}},
        {**valid, "response": {**resp, "attestationObject": b64u(cbor({"fmt": "none"}))}},
        {
            **valid,
            "response": {
                **resp,
                "attestationObject": b64u(cbor({"fmt": 1, "authData": b"", "attStmt": {}})),
            },
        },
        {**valid, "response": {**resp, "attestationObject": "A" * 65537}},
        {**valid, "response": {**resp, "transports": "internal"}},
        {**valid, "id": encode_id(b"other")},
    ]
    for bad in cases:
        challenge_id, _ = await registration_options(store, CFG, user=user, now=NOW)
        err = await error_of(
            verify_registration(
                store, CFG, user=user, challenge_id=challenge_id, credential=bad, now=NOW
            )
        )
        assert err.code == "invalid_registration", bad
    err = await error_of(
        verify_registration(
            store, CFG, user=user, challenge_id="x" * 5000, credential=valid, now=NOW
        )
    )
    assert err.code == "invalid_challenge"
    err = await error_of(
        verify_registration(
            store, CFG, user=user, challenge_id=challenge_id, credential=valid, now=NOW, name="a\nb"
        )
    )
    assert err.code == "invalid_request"


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=20,
)
_b64ish = st.text(
    alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_=+/", max_size=300
)
_field = _json | _b64ish
_credentials = (
    st.text(max_size=200)
    | _json
    | st.fixed_dictionaries(
        {"id": _field, "rawId": _field, "type": st.sampled_from(["public-key", "x"]) | _field},
        optional={
            "response": st.dictionaries(
                st.sampled_from(["clientDataJSON", "authenticatorData", "signature", "userHandle"]),
                _field,
            )
            | _field
        },
    )
)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
async def test_arbitrary_input_only_raises_authn_error(store: Store, data: st.DataObject) -> None:
    credential = data.draw(_credentials)
    if (
        data.draw(st.booleans())
        and isinstance(credential, dict)
        and isinstance(credential.get("response"), dict)
    ):
        # Aim at deep checks: a registered credential id with fuzzed response members.
        _auth, valid = await _valid_assertion(store)
        credential = {**valid, "response": {**valid["response"], **credential["response"]}}
    challenge_id, _ = await authentication_options(store, CFG, user=None, now=NOW)
    err = await error_of(
        verify_authentication(store, CFG, challenge_id=challenge_id, credential=credential, now=NOW)
    )
    assert err.code in {"invalid_assertion", "invalid_challenge", "credential_flagged"}


# --- pure helpers ---------------------------------------------------------------------------


def test_config_validation() -> None:
    for origins in [
        ("http://localhost:8081/",),
        ("http://localhost:8081/passkey",),
        ("http://bank.example",),
        ("https://bank.example.evil",),
        ("ftp://localhost",),
        (),
    ]:
        with pytest.raises(ValueError):
            WebAuthnConfig(
                rp_id="bank.example" if "bank" in "".join(origins) else "localhost", origins=origins
            )
    WebAuthnConfig(
        rp_id="bank.example", origins=("https://bank.example", "https://m.bank.example:8443")
    )
    with pytest.raises(ValueError):
        WebAuthnConfig(allowed_attestation_formats=("none", "tpm"))
    with pytest.raises(ValueError):
        WebAuthnConfig(algorithms=(-999,))
    with pytest.raises(dataclasses.FrozenInstanceError):
        CFG.rp_id = "x"  # type: ignore[misc]


def test_id_encoding() -> None:
    raw = bytes(range(40))
    assert decode_id(encode_id(raw)) == raw
    assert "=" not in encode_id(raw)
    for bad in ["", "A", "AB==", "a+b/", "AB", "x" * 2000, "ab cd"]:
        assert decode_id(bad) in (None, b"") or encode_id(decode_id(bad) or b"") == bad
    assert decode_id("AB") is None  # non-canonical trailing bits
    assert decode_id(base64.urlsafe_b64encode(raw).decode()) is None  # padded
