"""`authn.store` against both databases: round trips, one-time semantics under
concurrency, revocation, failure windows, persistence and migrations."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import sqlite3
import stat
from pathlib import Path

import asyncpg  # type: ignore[import-untyped]
import pytest

from authn.errors import AuthnError
from authn.store import (
    Challenge,
    OAuthClient,
    RefreshRecord,
    Store,
    TotpRecord,
    WebAuthnCredential,
    open_store,
)
from authn.store.schema import LATEST
from authn.store.sql import PURGE_EVERY, SqlStore

StoreURL = tuple[str, str | None]

T0 = 1_700_000_000.123456789  # not exactly representable: catches float32 / rounding


def totp(subject: str, *, last_step: int = 0, confirmed: bool = False) -> TotpRecord:
    return TotpRecord(subject, b"\x00sealed\xff" * 4, "SHA256", 8, 30, confirmed, last_step)


def credential(subject: str, cid: bytes = b"\x01cred\x00", **kw: object) -> WebAuthnCredential:
    fields: dict[str, object] = {
        "credential_id": cid,
        "subject": subject,
        "public_key": b"\xa5\x01\x02\x03&\x00" * 8,
        "sign_count": 2**32 - 1,
        "transports": ("usb", "nfc", "hybrid"),
        "aaguid": "00000000-0000-0000-0000-000000000000",
        "attestation_format": "none",
        "backup_eligible": True,
        "backed_up": False,
        "created_at": T0,
        "last_used_at": None,
        "flagged": None,
        "name": "YubiKey 5",
    }
    fields.update(kw)
    return WebAuthnCredential(**fields)  # type: ignore[arg-type]


def challenge(cid: str = "c-1", *, expires_at: float = T0 + 300, **kw: object) -> Challenge:
    fields: dict[str, object] = {
        "challenge_id": cid,
        "purpose": "webauthn.authenticate",
        "challenge": b"\x00\x01random\xfe\xff",
        "subject": None,
        "expires_at": expires_at,
        "data": '{"origin": "https://bank.example"}',
    }
    fields.update(kw)
    return Challenge(**fields)  # type: ignore[arg-type]


def refresh(digest: bytes = b"\x00digest", family: str = "fam-1", **kw: object) -> RefreshRecord:
    fields: dict[str, object] = {
        "token_digest": digest,
        "family_id": family,
        "subject": "u-x",
        "client_id": "mobile-app",
        "claims": '{"acr": "urn:bank:acr:2fa", "amr": ["pwd", "otp"]}',
        "issued_at": T0,
        "expires_at": T0 + 86400,
        "used_at": None,
        "revoked": False,
    }
    fields.update(kw)
    return RefreshRecord(**fields)  # type: ignore[arg-type]


# --- users and passwords ------------------------------------------------------------------


async def test_user_round_trip(store: Store) -> None:
    user = await store.create_user("alice", "Alice Ünicode", "staff")
    assert re.fullmatch(r"u-[a-z2-7]{26}", user.subject)
    assert (user.kind, user.disabled) == ("staff", False)
    assert await store.get_user(user.subject) == user
    assert await store.get_user_by_username("alice") == user
    assert await store.get_user("u-nobody") is None
    assert await store.get_user_by_username("bob") is None
    other = await store.create_user("bob", "Bob")
    assert other.kind == "customer" and other.subject != user.subject


async def test_duplicate_username(store: Store) -> None:
    await store.create_user("alice", "Alice")
    with pytest.raises(AuthnError) as info:
        await store.create_user("alice", "Another Alice")
    assert (info.value.code, info.value.status) == ("username_taken", 409)


async def test_chosen_subject(store: Store) -> None:
    """An operator may give the login of core customer ``cst_…`` that very subject."""
    user = await store.create_user("dora", "Dora", subject="cst_8f3a2b1c9d0e4f56")
    assert user.subject == "cst_8f3a2b1c9d0e4f56"
    assert await store.get_user("cst_8f3a2b1c9d0e4f56") == user
    with pytest.raises(AuthnError) as taken:
        await store.create_user("dora2", "Dora Again", subject="cst_8f3a2b1c9d0e4f56")
    assert (taken.value.code, taken.value.status) == ("subject_taken", 409)
    assert await store.get_user_by_username("dora2") is None
    with pytest.raises(AuthnError) as both:
        await store.create_user("dora", "Dora", subject="cst_other")
    assert both.value.code == "username_taken"
    for bad in ("", "-x", "a b", "a/b", "x" * 65, "é", "a\n"):
        with pytest.raises(ValueError, match="subject"):
            await store.create_user("eve", "Eve", subject=bad)
    assert await store.get_user_by_username("eve") is None


async def test_concurrent_duplicate_username_has_one_winner(store: Store) -> None:
    results = await asyncio.gather(
        *(store.create_user("carol", f"Carol {i}") for i in range(20)), return_exceptions=True
    )
    winners = [r for r in results if not isinstance(r, BaseException)]
    losers = [r for r in results if isinstance(r, BaseException)]
    assert len(winners) == 1
    assert all(isinstance(r, AuthnError) and r.code == "username_taken" for r in losers)
    assert await store.get_user_by_username("carol") == winners[0]


async def test_password(store: Store) -> None:
    user = await store.create_user("alice", "Alice")
    assert await store.get_password(user.subject) is None
    await store.set_password(user.subject, "$pbkdf2-sm3$i=600000$c2FsdA$aGFzaA")
    assert await store.get_password(user.subject) == "$pbkdf2-sm3$i=600000$c2FsdA$aGFzaA"
    await store.set_password(user.subject, "$pbkdf2-sm3$new")
    assert await store.get_password(user.subject) == "$pbkdf2-sm3$new"
    with pytest.raises(LookupError):
        await store.set_password("u-nobody", "x")


# --- TOTP ---------------------------------------------------------------------------------


async def test_totp_round_trip_confirm_replace_delete(store: Store) -> None:
    user = await store.create_user("alice", "Alice")
    record = totp(user.subject, last_step=56_666_666)
    await store.put_totp(record)
    assert await store.get_totp(user.subject) == record
    await store.confirm_totp(user.subject)
    got = await store.get_totp(user.subject)
    assert got is not None and got.confirmed and got.sealed_seed == record.sealed_seed
    replacement = TotpRecord(user.subject, b"other", "SHA1", 6, 60, False, 0)
    await store.put_totp(replacement)
    assert await store.get_totp(user.subject) == replacement
    assert await store.delete_totp(user.subject) is True
    assert await store.delete_totp(user.subject) is False
    assert await store.get_totp(user.subject) is None
    with pytest.raises(LookupError):
        await store.put_totp(totp("u-nobody"))


async def test_advance_totp_step_refuses_reuse(store: Store) -> None:
    user = await store.create_user("alice", "Alice")
    await store.put_totp(totp(user.subject, last_step=100))
    assert await store.advance_totp_step(user.subject, 100) is False
    assert await store.advance_totp_step(user.subject, 99) is False
    assert await store.advance_totp_step(user.subject, 101) is True
    assert await store.advance_totp_step(user.subject, 101) is False
    assert await store.advance_totp_step(user.subject, 105) is True
    assert await store.advance_totp_step(user.subject, 103) is False
    got = await store.get_totp(user.subject)
    assert got is not None and got.last_step == 105
    assert await store.advance_totp_step("u-nobody", 1) is False


# --- WebAuthn -------------------------------------------------------------------------------


async def test_credential_round_trip_and_updates(store: Store) -> None:
    user = await store.create_user("alice", "Alice")
    first = credential(user.subject)
    second = credential(
        user.subject,
        b"\xffsecond",
        transports=(),
        created_at=T0 + 0.1,
        last_used_at=T0 + 5.5,
        flagged="sign count went backwards",
        name="",
        backup_eligible=False,
        backed_up=True,
    )
    await store.add_credential(first)
    await store.add_credential(second)
    assert await store.get_credential(first.credential_id) == first
    assert await store.get_credential(second.credential_id) == second
    assert await store.list_credentials(user.subject) == [first, second]
    assert await store.list_credentials("u-nobody") == []
    assert await store.get_credential(b"unknown") is None

    await store.update_credential_use(first.credential_id, 7, True, T0 + 60)
    await store.flag_credential(first.credential_id, "cloned?")
    got = await store.get_credential(first.credential_id)
    assert got is not None
    assert (got.sign_count, got.backed_up, got.last_used_at, got.flagged) == (
        7,
        True,
        T0 + 60,
        "cloned?",
    )

    other = await store.create_user("mallory", "Mallory")
    assert await store.delete_credential(other.subject, first.credential_id) is False
    assert await store.delete_credential(user.subject, first.credential_id) is True
    assert await store.get_credential(first.credential_id) is None
    assert await store.list_credentials(user.subject) == [second]


async def test_duplicate_credential(store: Store) -> None:
    alice = await store.create_user("alice", "Alice")
    bob = await store.create_user("bob", "Bob")
    await store.add_credential(credential(alice.subject))
    with pytest.raises(AuthnError) as info:
        await store.add_credential(credential(bob.subject))
    assert (info.value.code, info.value.status) == ("credential_exists", 409)
    got = await store.get_credential(credential(alice.subject).credential_id)
    assert got is not None and got.subject == alice.subject
    with pytest.raises(LookupError):
        await store.add_credential(credential("u-nobody", b"new"))


# --- single-use values ----------------------------------------------------------------------


async def test_take_challenge_is_single_use(store: Store) -> None:
    c = challenge(subject="u-someone", purpose="webauthn.register")
    await store.put_challenge(c)
    assert await store.take_challenge(c.challenge_id, "webauthn.authenticate", T0) is None
    assert await store.take_challenge(c.challenge_id, "webauthn.register", T0) == c
    assert await store.take_challenge(c.challenge_id, "webauthn.register", T0) is None
    assert await store.take_challenge("c-unknown", "webauthn.register", T0) is None
    anonymous = challenge("c-2")
    await store.put_challenge(anonymous)
    assert await store.take_challenge("c-2", "webauthn.authenticate", T0) == anonymous


async def test_take_challenge_refuses_expired(store: Store) -> None:
    await store.put_challenge(challenge("c-1", expires_at=T0 + 10))
    assert await store.take_challenge("c-1", "webauthn.authenticate", T0 + 10) is None
    assert await store.take_challenge("c-1", "webauthn.authenticate", T0 + 11) is None
    assert await store.take_challenge("c-1", "webauthn.authenticate", T0 + 9.999) is not None


async def test_duplicate_challenge_id_is_a_value_error(store: Store) -> None:
    await store.put_challenge(challenge("c-1"))
    with pytest.raises(ValueError):
        await store.put_challenge(challenge("c-1"))


async def test_use_nonce(store: Store) -> None:
    assert await store.use_nonce("dpop", "jti-1", T0 + 60, T0) is True
    assert await store.use_nonce("dpop", "jti-1", T0 + 60, T0 + 1) is False
    assert await store.use_nonce("client-assertion", "jti-1", T0 + 60, T0) is True
    # Still live at T0 + 59.9; expired at exactly its expiry, then reusable once more.
    assert await store.use_nonce("dpop", "jti-1", T0 + 120, T0 + 59.9) is False
    assert await store.use_nonce("dpop", "jti-1", T0 + 120, T0 + 60) is True
    assert await store.use_nonce("dpop", "jti-1", T0 + 180, T0 + 61) is False


# --- one winner under concurrency -------------------------------------------------------------


async def test_concurrent_take_challenge_has_one_winner(store: Store) -> None:
    await store.put_challenge(challenge("c-race"))
    results = await asyncio.gather(
        *(store.take_challenge("c-race", "webauthn.authenticate", T0) for _ in range(20))
    )
    assert sum(r is not None for r in results) == 1


async def test_concurrent_use_nonce_has_one_winner(store: Store) -> None:
    results = await asyncio.gather(
        *(store.use_nonce("dpop", "jti-race", T0 + 60, T0) for _ in range(20))
    )
    assert results.count(True) == 1
    # An expired value is reclaimed by exactly one of many racers too.
    results = await asyncio.gather(
        *(store.use_nonce("dpop", "jti-race", T0 + 200, T0 + 100) for _ in range(20))
    )
    assert results.count(True) == 1


async def test_concurrent_advance_totp_step_has_one_winner(store: Store) -> None:
    user = await store.create_user("alice", "Alice")
    await store.put_totp(totp(user.subject, last_step=10))
    results = await asyncio.gather(*(store.advance_totp_step(user.subject, 11) for _ in range(20)))
    assert results.count(True) == 1


async def test_concurrent_rotate_refresh_has_one_winner(store: Store) -> None:
    await store.put_refresh(refresh())
    results = await asyncio.gather(
        *(store.rotate_refresh(b"\x00digest", T0 + 10) for _ in range(20))
    )
    assert all(r is not None for r in results)
    firsts = [r for r in results if r is not None and r.used_at is None]
    assert len(firsts) == 1
    assert all(r.used_at == T0 + 10 for r in results if r is not None and r not in firsts)


async def test_two_workers_on_one_database_have_one_winner(store_url: StoreURL) -> None:
    """Separate stores (as separate edge processes would have): the database decides."""
    url, schema = store_url
    a = await open_store(url, schema=schema)
    b = await open_store(url, schema=schema)
    try:
        await a.put_challenge(challenge("c-race"))
        await a.put_refresh(refresh())
        takes = await asyncio.gather(
            *(s.take_challenge("c-race", "webauthn.authenticate", T0) for s in [a, b] * 10)
        )
        nonces = await asyncio.gather(*(s.use_nonce("n", "v", T0 + 9, T0) for s in [a, b] * 10))
        rotations = await asyncio.gather(
            *(s.rotate_refresh(b"\x00digest", T0) for s in [a, b] * 10)
        )
        assert sum(t is not None for t in takes) == 1
        assert nonces.count(True) == 1
        assert sum(r is not None and r.used_at is None for r in rotations) == 1
    finally:
        await a.close()
        await b.close()


# --- refresh tokens and revocation ------------------------------------------------------------


async def test_refresh_round_trip_and_rotation(store: Store) -> None:
    record = refresh()
    await store.put_refresh(record)
    assert await store.get_refresh(record.token_digest) == record
    first = await store.rotate_refresh(record.token_digest, T0 + 10)
    assert first == record  # as it was before: unused
    stored = await store.get_refresh(record.token_digest)
    assert stored is not None and stored.used_at == T0 + 10
    replay = await store.rotate_refresh(record.token_digest, T0 + 20)
    assert replay is not None and replay.used_at == T0 + 10  # reuse: first use kept
    assert await store.rotate_refresh(b"unknown", T0) is None

    used = refresh(b"\x01used", used_at=T0 + 1)
    await store.put_refresh(used)
    assert await store.rotate_refresh(used.token_digest, T0 + 2) == used
    revoked = refresh(b"\x02revoked", revoked=True)
    await store.put_refresh(revoked)
    rotated = await store.rotate_refresh(revoked.token_digest, T0 + 2)
    assert rotated is not None and rotated.revoked and rotated.used_at is None
    with pytest.raises(ValueError):
        await store.put_refresh(record)


async def test_revoke_refresh_family(store: Store) -> None:
    await store.put_refresh(refresh(b"a", "fam-1"))
    await store.put_refresh(refresh(b"b", "fam-1", used_at=T0 + 5))
    await store.put_refresh(refresh(b"c", "fam-2"))
    assert await store.is_family_revoked("fam-1") is False
    assert await store.revoke_refresh_family("fam-1") == 2
    assert await store.revoke_refresh_family("fam-1") == 0
    for digest in (b"a", b"b"):
        got = await store.get_refresh(digest)
        assert got is not None and got.revoked
    untouched = await store.get_refresh(b"c")
    assert untouched is not None and not untouched.revoked
    assert await store.is_family_revoked("fam-1") is True
    assert await store.is_family_revoked("fam-2") is False
    assert [k for k, _ in await store.revocations_since(0)] == ["family:fam-1"]
    # A family unknown to this store is still published (its access tokens may be out there).
    assert await store.revoke_refresh_family("fam-unknown") == 0
    assert await store.is_family_revoked("fam-unknown") is True


async def test_revoke_jti_and_revocations_since(store: Store) -> None:
    assert await store.is_jti_revoked("jti-1") is False
    await store.revoke_jti("jti-1", T0 + 600)
    await store.revoke_jti("jti-2", T0 + 600, family_id="fam-9")
    await store.revoke_refresh_family("fam-3")
    await store.revoke_jti("jti-1", T0 + 900)  # again: no duplicate, no new revoked_at
    assert await store.is_jti_revoked("jti-1") is True
    assert await store.is_jti_revoked("jti-2") is True
    assert await store.is_jti_revoked("jti-3") is False
    feed = await store.revocations_since(0)
    assert [k for k, _ in feed] == ["jti-1", "jti-2", "family:fam-3"]
    times = [t for _, t in feed]
    assert times == sorted(times) and len(set(times)) == 3
    assert [k for k, _ in await store.revocations_since(times[0])] == ["jti-2", "family:fam-3"]
    assert await store.revocations_since(times[-1]) == []
    with pytest.raises(ValueError):
        await store.revoke_jti("family:fam-3", T0)


async def test_purge_expired(store: Store) -> None:
    await store.revoke_jti("old", T0 - 1)
    await store.revoke_jti("live", T0 + 600)
    await store.put_challenge(challenge("c-old", expires_at=T0 - 1))
    # Opportunistic: PURGE_EVERY writes that carry a clock purge what expired by it.
    for i in range(PURGE_EVERY):
        await store.use_nonce("n", f"v{i}", T0 - 0.5 if i == 0 else T0 + 60, T0)
    assert await store.is_jti_revoked("old") is False
    assert await store.is_jti_revoked("live") is True
    assert await store.use_nonce("n", "v1", T0 + 60, T0) is False  # live ones survive
    await store.put_challenge(challenge("c-old"))  # the purged id is free again
    assert isinstance(store, SqlStore)
    await store.purge_expired(T0 + 601)
    assert await store.is_jti_revoked("live") is False


# --- partner clients --------------------------------------------------------------------------


async def test_client_round_trip_and_replace(store: Store) -> None:
    client = OAuthClient(
        client_id="partner-1",
        name="Partner One",
        auth_method="tls_client_auth",
        jwks='{"keys": []}',
        tls_subject_dn="CN=partner-1,O=Partner,C=CN",
        tls_cert_sha256=None,
        scopes=("accounts:read", "payments:initiate"),
        created_at=T0,
    )
    await store.put_client(client)
    assert await store.get_client("partner-1") == client
    assert await store.get_client("partner-2") is None
    replaced = OAuthClient(
        "partner-1", "Partner 1", "self_signed_tls_client_auth", '{"keys": []}', None,
        "q1w2e3", (), T0 + 1, disabled=True,
    )  # fmt: skip
    await store.put_client(replaced)
    assert await store.get_client("partner-1") == replaced


# --- failure counters ---------------------------------------------------------------------------


async def test_failure_counters_slide_with_the_window(store: Store) -> None:
    assert await store.failure_state("acct:u-1", T0, 60) == (0, 0.0)
    assert await store.record_failure("acct:u-1", T0, 60) == 1
    assert await store.record_failure("acct:u-1", T0 + 10, 60) == 2
    assert await store.record_failure("ip:10.0.0.1", T0 + 10, 60) == 1
    assert await store.failure_state("acct:u-1", T0 + 20, 60) == (2, T0 + 10)
    # T0 falls out of the window at T0 + 60.
    assert await store.record_failure("acct:u-1", T0 + 60, 60) == 2
    assert await store.failure_state("acct:u-1", T0 + 65, 60) == (2, T0 + 60)
    assert await store.failure_state("acct:u-1", T0 + 200, 60) == (0, 0.0)
    await store.clear_failures("acct:u-1")
    assert await store.failure_state("acct:u-1", T0 + 61, 60) == (0, 0.0)
    assert await store.failure_state("ip:10.0.0.1", T0 + 11, 60) == (1, T0 + 10)


async def test_concurrent_failures_are_all_counted(store: Store) -> None:
    await asyncio.gather(*(store.record_failure("ip:1", T0 + i, 3600) for i in range(20)))
    assert await store.failure_state("ip:1", T0 + 20, 3600) == (20, T0 + 19)


# --- persistence, migrations, opening -----------------------------------------------------------


async def test_persists_across_close_and_reopen(fresh_store_url: StoreURL) -> None:
    url, schema = fresh_store_url
    first = await open_store(url, schema=schema)
    user = await first.create_user("alice", "Alice")
    await first.put_totp(totp(user.subject))
    await first.add_credential(credential(user.subject))
    await first.put_refresh(refresh())
    await first.revoke_jti("jti-1", T0 + 600)
    await first.use_nonce("dpop", "jti-1", T0 + 60, T0)
    await first.record_failure("acct", T0, 60)
    await first.close()

    second = await open_store(url, schema=schema)
    try:
        assert await second.get_user(user.subject) == user
        assert await second.get_totp(user.subject) == totp(user.subject)
        assert await second.get_credential(b"\x01cred\x00") == credential(user.subject)
        assert await second.get_refresh(b"\x00digest") == refresh()
        assert await second.is_jti_revoked("jti-1") is True
        assert await second.use_nonce("dpop", "jti-1", T0 + 60, T0 + 1) is False
        assert await second.failure_state("acct", T0 + 1, 60) == (1, T0)
    finally:
        await second.close()


async def _schema_versions(url: str, schema: str | None) -> list[int]:
    if url.startswith("sqlite://"):
        with contextlib.closing(sqlite3.connect(url.removeprefix("sqlite://"))) as conn:
            return [r[0] for r in conn.execute("SELECT version FROM schema_version")]
    conn = await asyncpg.connect(url, server_settings={"search_path": f'"{schema}"'})
    try:
        return [r[0] for r in await conn.fetch("SELECT version FROM schema_version")]
    finally:
        await conn.close()


async def test_migrations_are_idempotent_and_race_free(fresh_store_url: StoreURL) -> None:
    url, schema = fresh_store_url
    stores = await asyncio.gather(*(open_store(url, schema=schema) for _ in range(4)))
    await asyncio.gather(*(s.close() for s in stores))
    again = await open_store(url, schema=schema)
    await again.close()
    assert await _schema_versions(url, schema) == list(range(1, LATEST + 1))


async def test_store_and_store_url_are_one_database(store: Store, store_url: StoreURL) -> None:
    assert store.dialect == ("sqlite" if store_url[0].startswith("sqlite") else "postgresql")
    user = await store.create_user("alice", "Alice")
    other = await open_store(store_url[0], schema=store_url[1])
    try:
        assert await other.get_user(user.subject) == user
    finally:
        await other.close()


async def test_sqlite_file_is_private(tmp_path: Path) -> None:
    old_umask = os.umask(0o022)
    try:
        path = tmp_path / "new" / "dir" / "authn.db"
        store = await open_store(f"sqlite://{path}")
        await store.create_user("alice", "Alice")  # make SQLite create the -wal file too
        for p in (path, path.with_name("authn.db-wal"), path.with_name("authn.db-shm")):
            assert stat.S_IMODE(p.stat().st_mode) == 0o600, p
        await store.close()
        loose = tmp_path / "loose.db"
        loose.touch(mode=0o644)
        await (await open_store(f"sqlite://{loose}")).close()
        assert stat.S_IMODE(loose.stat().st_mode) == 0o600
    finally:
        os.umask(old_umask)


async def test_sqlite_in_memory() -> None:
    store = await open_store("sqlite://:memory:")
    try:
        user = await store.create_user("alice", "Alice")
        assert await store.get_user(user.subject) == user
    finally:
        await store.close()


async def test_open_store_rejects_bad_urls_without_leaking_secrets() -> None:
    with pytest.raises(ValueError, match="'mysql'") as info:
        await open_store("mysql://admin:hunter2@db.example/authn")
    assert "hunter2" not in str(info.value)
    with pytest.raises(ValueError) as info:
        await open_store("admin:hunter2@db.example")
    assert "hunter2" not in str(info.value)
    with pytest.raises(ValueError, match="postgresql"):
        await open_store("sqlite:///tmp/x.db", schema="s")
    with pytest.raises(ValueError, match="identifier"):
        await open_store("postgresql://u@h/db", schema='x"; DROP TABLE users; --')
    with pytest.raises(ValueError):
        await open_store("sqlite://")
