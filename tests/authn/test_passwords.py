"""PBKDF2-HMAC-SM3 password hashing: format, normalisation, rehash, no-raise verification."""

from __future__ import annotations

import base64
import dataclasses
import re
import threading
import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from authn import passwords
from authn.errors import AuthnError
from authn.passwords import (
    PasswordPolicy,
    hash_password,
    hash_password_async,
    needs_rehash,
    set_user_password,
    verify_dummy,
    verify_password,
    verify_password_async,
    verify_user_password,
)
from authn.store.base import Store
from crypto import sm3

POLICY = PasswordPolicy(iterations=1000)
PW = "correct horse battery staple"
FORMAT = re.compile(r"\$pbkdf2-sm3\$i=1000\$([A-Za-z0-9+/]{22})\$([A-Za-z0-9+/]{43})")


def _b64(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4))


def test_default_policy_is_expensive_enough() -> None:
    assert PasswordPolicy().iterations >= 300_000
    assert PasswordPolicy().min_length >= 10


def test_round_trip_and_format() -> None:
    encoded = hash_password(PW, POLICY)
    m = FORMAT.fullmatch(encoded)
    assert m is not None, encoded
    salt, digest = _b64(m[1]), _b64(m[2])
    assert len(salt) == 16
    # Independent recomputation: RFC 8018 PBKDF2 with HMAC-SM3 over the UTF-8 password.
    assert digest == sm3.pbkdf2(PW.encode(), salt, 1000, 32)
    assert verify_password(PW, encoded) is True


def test_wrong_password() -> None:
    encoded = hash_password(PW, POLICY)
    assert verify_password(PW + "!", encoded) is False
    assert verify_password(PW.upper(), encoded) is False
    assert verify_password("", encoded) is False


def test_salts_differ_per_hash() -> None:
    hashes = {hash_password(PW, POLICY) for _ in range(5)}
    assert len(hashes) == 5
    salts = {h.split("$")[3] for h in hashes}
    assert len(salts) == 5


def test_nfkc_equivalence() -> None:
    fullwidth = "".join(chr(ord(c) + 0xFEE0) for c in "Password1234")  # U+FF01 block
    assert unicodedata.normalize("NFKC", fullwidth) == "Password1234"
    assert verify_password("Password1234", hash_password(fullwidth, POLICY))
    composed, decomposed = "caf\u00e9-au-lait", "cafe\u0301-au-lait"
    assert composed != decomposed
    assert verify_password(decomposed, hash_password(composed, POLICY))


@pytest.mark.parametrize("bad", ["abc\x00defghijkl", "\x00" * 12, "trailing-nul-pw\x00"])
def test_nul_rejected(bad: str) -> None:
    with pytest.raises(AuthnError) as exc:
        hash_password(bad, POLICY)
    assert exc.value.code == "invalid_password"
    encoded = hash_password(bad.replace("\x00", "") or "x" * 12, POLICY)
    assert verify_password(bad, encoded) is False


def test_length_limits() -> None:
    policy = PasswordPolicy(iterations=1000, min_length=10, max_length=20)
    for bad in ["short", "123456789", "x" * 21, "\ufdfa\ufdfa"]:  # U+FDFA: 18 chars under NFKC
        with pytest.raises(AuthnError) as exc:
            hash_password(bad, policy)
        assert exc.value.code == "invalid_password"
        assert exc.value.status == 400
    assert verify_password("x" * 20, hash_password("x" * 20, policy))
    assert verify_password("x" * 10, hash_password("x" * 10, policy))


def test_lone_surrogate_rejected() -> None:
    with pytest.raises(AuthnError):
        hash_password("password-\ud800-x", POLICY)
    assert verify_password("password-\ud800-x", hash_password(PW, POLICY)) is False


def test_policy_validation() -> None:
    with pytest.raises(ValueError):
        PasswordPolicy(iterations=0)
    with pytest.raises(ValueError):
        PasswordPolicy(iterations=2**24 + 1)
    with pytest.raises(ValueError):
        PasswordPolicy(min_length=30, max_length=20)


def test_needs_rehash() -> None:
    encoded = hash_password(PW, POLICY)
    assert needs_rehash(encoded, POLICY) is False
    assert needs_rehash(encoded, PasswordPolicy(iterations=2000)) is True
    # A lower configured cost never downgrades stored hashes.
    assert needs_rehash(encoded, PasswordPolicy(iterations=500)) is False
    assert needs_rehash("garbage", POLICY) is True
    assert needs_rehash("$pbkdf2-sha256$i=1000$abc$def", POLICY) is True


def _valid_parts() -> tuple[str, str]:
    m = FORMAT.fullmatch(hash_password(PW, POLICY))
    assert m is not None
    return m[1], m[2]


def test_malformed_encodings_are_false_not_errors() -> None:
    salt, digest = _valid_parts()
    good = f"$pbkdf2-sm3$i=1000${salt}${digest}"
    assert verify_password(PW, good)
    short_salt = base64.b64encode(b"12345678").decode().rstrip("=")
    long_hash = base64.b64encode(b"h" * 64).decode().rstrip("=")
    bad = [
        "",
        "$",
        "$pbkdf2-sm3$",
        good[:-1],
        good + "A",
        good + "$",
        good.replace("sm3", "sha256"),
        good.replace("i=1000", "i=0"),
        good.replace("i=1000", "i=01000"),
        good.replace("i=1000", "i=-1000"),
        good.replace("i=1000", "i=16777217"),  # above the SM3 PBKDF2 cap
        good.replace("i=1000", "i=99999999999999999999"),
        good.replace("i=1000", "rounds=1000"),
        good.replace(salt, salt + "=="),  # padded
        good.replace(salt, salt[:-1] + "!"),
        good.replace(salt, short_salt),
        good.replace(digest, long_hash),
        good.replace(digest, digest[:-1] + "B"),  # non-canonical trailing bits
        good.replace(salt, "\u0660" * 22),  # Arabic-Indic digits are not base64
        good + " ",
        " " + good,
        good + "\n",
        good * 50,
    ]
    for encoded in bad:
        assert verify_password(PW, encoded) is False, encoded
        assert needs_rehash(encoded, POLICY) is True


@settings(max_examples=300, deadline=None)
@given(password=st.text(max_size=300), encoded=st.text(max_size=300))
def test_verify_never_raises_on_arbitrary_text(password: str, encoded: str) -> None:
    assert verify_password(password, encoded) is False


_near_valid = st.builds(
    "${}$i={}${}${}".format,
    st.sampled_from(["pbkdf2-sm3", "pbkdf2-sm3 ", "PBKDF2-SM3"]),
    st.one_of(st.integers(-5, 2000).map(str), st.text("0123456789", max_size=12)),
    st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdef+/=-_", max_size=40),
    st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdef+/=-_", max_size=60),
)


@settings(max_examples=300, deadline=None)
@given(password=st.text(max_size=50), encoded=_near_valid)
def test_verify_never_raises_on_near_valid_encodings(password: str, encoded: str) -> None:
    assert isinstance(verify_password(password, encoded), bool)
    assert isinstance(needs_rehash(encoded, POLICY), bool)


def test_verify_dummy_spends_the_policy_cost(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    real = sm3.pbkdf2

    def counting(password: bytes, salt: bytes, iterations: int, length: int = 32) -> bytes:
        calls.append(iterations)
        return real(password, salt, iterations, length)

    monkeypatch.setattr(sm3, "pbkdf2", counting)
    assert verify_dummy(PW, POLICY) is False
    assert verify_dummy(PW, PasswordPolicy(iterations=1500)) is False
    assert calls == [1000, 1500]


async def test_async_helpers_run_off_the_event_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    loop_thread = threading.get_ident()
    seen: list[int] = []
    real = passwords.hash_password

    def spy(password: str, policy: PasswordPolicy) -> str:
        seen.append(threading.get_ident())
        return real(password, policy)

    monkeypatch.setattr(passwords, "hash_password", spy)
    encoded = await hash_password_async(PW, POLICY)
    assert seen and seen[0] != loop_thread
    assert await verify_password_async(PW, encoded) is True
    assert await verify_password_async("nope-nope-nope", encoded) is False


# --- store-backed --------------------------------------------------------------------


async def test_user_password_round_trip(store: Store) -> None:
    user = await store.create_user("pw-alice", "Alice")
    await set_user_password(store, user.subject, PW, POLICY)
    stored = await store.get_password(user.subject)
    assert stored is not None and PW not in stored and FORMAT.fullmatch(stored)
    assert await verify_user_password(store, user, PW, POLICY) is True
    assert await verify_user_password(store, user, PW + "x", POLICY) is False
    assert await store.get_password(user.subject) == stored  # no rehash needed
    disabled = dataclasses.replace(user, disabled=True)
    assert await verify_user_password(store, disabled, PW, POLICY) is False


async def test_unknown_user_and_missing_password_do_dummy_work(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []
    real = sm3.pbkdf2

    def counting(password: bytes, salt: bytes, iterations: int, length: int = 32) -> bytes:
        calls.append(iterations)
        return real(password, salt, iterations, length)

    monkeypatch.setattr(sm3, "pbkdf2", counting)
    assert await verify_user_password(store, None, PW, POLICY) is False
    user = await store.create_user("pw-nopass", "No Password")
    assert await verify_user_password(store, user, PW, POLICY) is False
    assert calls == [1000, 1000]


async def test_successful_login_upgrades_outdated_hash(store: Store) -> None:
    user = await store.create_user("pw-bob", "Bob")
    await set_user_password(store, user.subject, PW, POLICY)
    old = await store.get_password(user.subject)
    stronger = PasswordPolicy(iterations=2000)
    assert await verify_user_password(store, user, "wrong-password", stronger) is False
    assert await store.get_password(user.subject) == old  # a failure never rewrites
    assert await verify_user_password(store, user, PW, stronger) is True
    new = await store.get_password(user.subject)
    assert new is not None and new.startswith("$pbkdf2-sm3$i=2000$")
    assert needs_rehash(new, stronger) is False
    assert verify_password(PW, new)


async def test_set_user_password_enforces_policy(store: Store) -> None:
    user = await store.create_user("pw-carol", "Carol")
    with pytest.raises(AuthnError) as exc:
        await set_user_password(store, user.subject, "short", POLICY)
    assert exc.value.code == "invalid_password"
    assert await store.get_password(user.subject) is None
