"""TOTP: RFC 4226/6238 vectors, window, input rules, otpauth URI, enrolment and replay."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import hmac
from urllib.parse import parse_qs, unquote, urlsplit

import pytest

from authn import totp
from authn.errors import AuthnError
from authn.store.base import Store
from authn.totp import (
    confirm,
    enroll,
    generate_secret,
    hotp,
    match_step,
    otpauth_uri,
    totp_at,
    verify,
)
from crypto.envelope import KeyEncryptionKeyRing
from crypto.errors import CryptoError

# RFC 6238 Appendix A: the seed is "12345678901234567890" repeated/truncated to
# the HMAC key length of each algorithm.
SEEDS = {
    "SHA1": b"12345678901234567890",
    "SHA256": b"12345678901234567890123456789012",
    "SHA512": b"1234567890" * 6 + b"1234",
}

# RFC 6238 Appendix B, every row (8 digits, X = 30, T0 = 0).
RFC6238_B = [
    (59, 0x1, "94287082", "SHA1"),
    (59, 0x1, "46119246", "SHA256"),
    (59, 0x1, "90693936", "SHA512"),
    (1111111109, 0x23523EC, "07081804", "SHA1"),
    (1111111109, 0x23523EC, "68084774", "SHA256"),
    (1111111109, 0x23523EC, "25091201", "SHA512"),
    (1111111111, 0x23523ED, "14050471", "SHA1"),
    (1111111111, 0x23523ED, "67062674", "SHA256"),
    (1111111111, 0x23523ED, "99943326", "SHA512"),
    (1234567890, 0x273EF07, "89005924", "SHA1"),
    (1234567890, 0x273EF07, "91819424", "SHA256"),
    (1234567890, 0x273EF07, "93441116", "SHA512"),
    (2000000000, 0x3F940AA, "69279037", "SHA1"),
    (2000000000, 0x3F940AA, "90698825", "SHA256"),
    (2000000000, 0x3F940AA, "38618901", "SHA512"),
    (20000000000, 0x27BC86AA, "65353130", "SHA1"),
    (20000000000, 0x27BC86AA, "77737706", "SHA256"),
    (20000000000, 0x27BC86AA, "47863826", "SHA512"),
]

# RFC 4226 Appendix D: HOTP(secret = "12345678901234567890", count), 6 digits, SHA-1.
RFC4226_D = [
    "755224",
    "287082",
    "359152",
    "969429",
    "338314",
    "254676",
    "287922",
    "162583",
    "399871",
    "520489",
]


@pytest.mark.parametrize(("t", "step", "code", "alg"), RFC6238_B)
def test_rfc6238_appendix_b(t: int, step: int, code: str, alg: totp.Algorithm) -> None:
    assert totp.time_step(t) == step
    assert totp_at(SEEDS[alg], t, digits=8, algorithm=alg) == code
    assert hotp(SEEDS[alg], step, 8, alg) == code
    assert match_step(SEEDS[alg], code, t, digits=8, algorithm=alg) == step


@pytest.mark.parametrize(("count", "code"), list(enumerate(RFC4226_D)))
def test_rfc4226_appendix_d(count: int, code: str) -> None:
    assert hotp(SEEDS["SHA1"], count) == code


def test_generate_secret_sizes() -> None:
    assert len(generate_secret()) == 20
    assert len(generate_secret("SHA256")) == 32
    assert len(generate_secret("SHA512")) == 64
    assert len({generate_secret() for _ in range(20)}) == 20
    with pytest.raises(ValueError):
        generate_secret("MD5")  # type: ignore[arg-type]


NOW = 1_700_000_015.0
STEP = int(NOW // 30)


def test_window_plus_minus_one_accepted_two_refused() -> None:
    secret = generate_secret()
    for delta in (-1, 0, 1):
        assert match_step(secret, hotp(secret, STEP + delta), NOW) == STEP + delta
    for delta in (-3, -2, 2, 3):
        code = hotp(secret, STEP + delta)
        if code not in {hotp(secret, STEP + d) for d in (-1, 0, 1)}:  # 10^-6 collision guard
            assert match_step(secret, code, NOW) is None
    assert match_step(secret, hotp(secret, STEP - 1), NOW, window=0) is None


def test_match_compares_every_candidate(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    secret = generate_secret()
    # The earliest candidate matches; the later ones must still be compared.
    assert match_step(secret, hotp(secret, STEP - 1), NOW) == STEP - 1
    assert len(calls) == 3
    calls.clear()
    assert match_step(secret, hotp(secret, STEP - 1), NOW, window=2) == STEP - 1
    assert len(calls) == 5


MALFORMED = [
    "",
    "12345",
    "1234567",
    "abcdef",
    "12345a",
    " 12345",
    "123456 ",
    "123456\n",
    "+12345",
    "-12345",
    "12 345",
    "\uff11\uff12\uff13\uff14\uff15\uff16",  # full-width digits: isdigit() but not ASCII
    "\u0661\u0662\u0663\u0664\u0665\u0666",  # Arabic-Indic digits
    "\u00b9\u00b2\u00b3456",  # superscripts
    "1" * 10240,
]


@pytest.mark.parametrize("code", MALFORMED, ids=list(range(len(MALFORMED))))
def test_malformed_codes_never_match(code: str) -> None:
    secret = SEEDS["SHA1"]
    assert match_step(secret, code, NOW) is None


def test_full_width_version_of_a_valid_code_is_refused() -> None:
    secret = generate_secret()
    code = hotp(secret, STEP)
    wide = "".join(chr(ord(c) + 0xFEE0) for c in code)
    assert match_step(secret, code, NOW) == STEP
    assert match_step(secret, wide, NOW) is None


def test_eight_digit_codes() -> None:
    secret = generate_secret("SHA256")
    code = totp_at(secret, NOW, digits=8, algorithm="SHA256")
    assert len(code) == 8
    assert match_step(secret, code, NOW, digits=8, algorithm="SHA256") == STEP
    assert match_step(secret, code[:6], NOW, digits=8, algorithm="SHA256") is None
    with pytest.raises(ValueError):
        hotp(secret, 1, 7)


def test_otpauth_uri_parses() -> None:
    secret = generate_secret()
    uri = otpauth_uri(secret, account_name="alice smith@bank.example")
    parts = urlsplit(uri)
    assert parts.scheme == "otpauth"
    assert parts.netloc == "totp"
    assert "+" not in uri and " " not in uri and "%20" in parts.path
    assert unquote(parts.path) == "/ztgate:alice smith@bank.example"
    params = parse_qs(parts.query, strict_parsing=True)
    assert set(params) == {"secret", "issuer", "algorithm", "digits", "period"}
    assert all(len(v) == 1 for v in params.values())
    b32 = params["secret"][0]
    assert "=" not in b32
    assert base64.b32decode(b32 + "=" * (-len(b32) % 8)) == secret
    assert params["issuer"] == ["ztgate"]
    assert params["algorithm"] == ["SHA1"]
    assert params["digits"] == ["6"]
    assert params["period"] == ["30"]


def test_otpauth_uri_custom_params_and_encoding() -> None:
    secret = generate_secret("SHA512")
    uri = otpauth_uri(
        secret, account_name="bob", issuer="Acme Bank & Co", algorithm="SHA512", digits=8
    )
    parts = urlsplit(uri)
    assert unquote(parts.path) == "/Acme Bank & Co:bob"
    params = parse_qs(parts.query)
    assert params["issuer"] == ["Acme Bank & Co"]
    assert params["algorithm"] == ["SHA512"]
    assert params["digits"] == ["8"]
    for bad in (
        {"account_name": "a:b"},
        {"account_name": ""},
        {"account_name": "x", "issuer": "i:x"},
    ):
        with pytest.raises(ValueError):
            otpauth_uri(secret, **bad)  # type: ignore[arg-type]


# --- store-backed --------------------------------------------------------------------


def _secret_of(uri: str) -> bytes:
    b32 = parse_qs(urlsplit(uri).query)["secret"][0]
    return base64.b32decode(b32 + "=" * (-len(b32) % 8))


@pytest.fixture
def ring() -> KeyEncryptionKeyRing:
    return KeyEncryptionKeyRing.generate()


async def _enrolled(store: Store, ring: KeyEncryptionKeyRing, name: str) -> tuple[str, bytes]:
    """A user with a confirmed TOTP factor, confirmed at step STEP - 5."""
    user = await store.create_user(name, name.title())
    uri = await enroll(store, ring, subject=user.subject, account_name=name)
    secret = _secret_of(uri)
    then = NOW - 150
    await confirm(store, ring, subject=user.subject, code=totp_at(secret, then), now=then)
    return user.subject, secret


def _wrong_code(secret: bytes, now: float) -> str:
    """A well-formed code that matches no step in the ±1 window."""
    step = int(now // 30)
    taken = {hotp(secret, step + d) for d in (-1, 0, 1)}
    return next(c for c in ("000000", "111111", "222222", "333333") if c not in taken)


async def _code_error(coro: object) -> str:
    with pytest.raises(AuthnError) as exc:
        await coro  # type: ignore[misc]
    assert exc.value.status == 401
    return exc.value.code


async def test_enroll_stores_sealed_seed(store: Store, ring: KeyEncryptionKeyRing) -> None:
    user = await store.create_user("totp-alice", "Alice")
    uri = await enroll(store, ring, subject=user.subject, account_name="alice")
    secret = _secret_of(uri)
    assert len(secret) == 20
    record = await store.get_totp(user.subject)
    assert record is not None
    assert (record.algorithm, record.digits, record.period, record.confirmed) == (
        "SHA1",
        6,
        30,
        False,
    )
    assert record.sealed_seed != secret
    assert secret not in record.sealed_seed
    assert base64.b32encode(secret) not in record.sealed_seed
    assert ring.open(record.sealed_seed, context=b"totp:" + user.subject.encode()) == secret
    with pytest.raises(CryptoError):  # bound to its owner
        ring.open(record.sealed_seed, context=b"totp:someone-else")


async def test_unconfirmed_enrolment_cannot_verify(
    store: Store, ring: KeyEncryptionKeyRing
) -> None:
    user = await store.create_user("totp-unconf", "U")
    secret = _secret_of(await enroll(store, ring, subject=user.subject, account_name="u"))
    code = totp_at(secret, NOW)
    assert (
        await _code_error(verify(store, ring, subject=user.subject, code=code, now=NOW))
        == "invalid_otp"
    )
    wrong = _wrong_code(secret, NOW)
    assert (
        await _code_error(confirm(store, ring, subject=user.subject, code=wrong, now=NOW))
        == "invalid_otp"
    )
    record = await store.get_totp(user.subject)
    assert record is not None and not record.confirmed
    await confirm(store, ring, subject=user.subject, code=code, now=NOW)
    record = await store.get_totp(user.subject)
    assert record is not None and record.confirmed and record.last_step == STEP
    # The confirming code is spent: it cannot log in as well.
    assert (
        await _code_error(verify(store, ring, subject=user.subject, code=code, now=NOW))
        == "otp_reused"
    )
    next_code = totp_at(secret, NOW + 30)
    await verify(store, ring, subject=user.subject, code=next_code, now=NOW + 30)


async def test_no_enrolment_is_invalid(store: Store, ring: KeyEncryptionKeyRing) -> None:
    user = await store.create_user("totp-none", "N")
    assert (
        await _code_error(verify(store, ring, subject=user.subject, code="123456", now=NOW))
        == "invalid_otp"
    )
    assert (
        await _code_error(confirm(store, ring, subject=user.subject, code="123456", now=NOW))
        == "invalid_otp"
    )


async def test_reenrol_replaces_unconfirmed_but_not_confirmed(
    store: Store, ring: KeyEncryptionKeyRing
) -> None:
    user = await store.create_user("totp-reenrol", "R")
    first = _secret_of(await enroll(store, ring, subject=user.subject, account_name="r"))
    second = _secret_of(
        await enroll(
            store, ring, subject=user.subject, account_name="r", algorithm="SHA256", digits=8
        )
    )
    assert first != second and len(second) == 32
    old_code = totp_at(first, NOW)  # 6 digits from the replaced seed
    assert (
        await _code_error(confirm(store, ring, subject=user.subject, code=old_code, now=NOW))
        == "invalid_otp"
    )
    await confirm(
        store,
        ring,
        subject=user.subject,
        code=totp_at(second, NOW, digits=8, algorithm="SHA256"),
        now=NOW,
    )
    with pytest.raises(AuthnError) as exc:
        await enroll(store, ring, subject=user.subject, account_name="r")
    assert (exc.value.code, exc.value.status) == ("totp_already_enrolled", 409)
    record = await store.get_totp(user.subject)
    assert record is not None and record.confirmed and record.algorithm == "SHA256"


async def test_enroll_rejects_bad_parameters(store: Store, ring: KeyEncryptionKeyRing) -> None:
    user = await store.create_user("totp-params", "P")
    bad: list[dict[str, object]] = [
        {"account_name": "a:b"},
        {"account_name": ""},
        {"account_name": "p", "digits": 7},
        {"account_name": "p", "algorithm": "MD5"},
    ]
    for kwargs in bad:
        with pytest.raises(AuthnError) as exc:
            await enroll(store, ring, subject=user.subject, **kwargs)  # type: ignore[arg-type]
        assert (exc.value.code, exc.value.status) == ("invalid_request", 400)
    assert await store.get_totp(user.subject) is None


async def test_window_and_reuse(store: Store, ring: KeyEncryptionKeyRing) -> None:
    subject, secret = await _enrolled(store, ring, "totp-bob")
    # one step behind is accepted...
    await verify(store, ring, subject=subject, code=hotp(secret, STEP - 1), now=NOW)
    # ...the same code again is not,
    assert (
        await _code_error(
            verify(store, ring, subject=subject, code=hotp(secret, STEP - 1), now=NOW)
        )
        == "otp_reused"
    )
    # one step ahead is accepted,
    await verify(store, ring, subject=subject, code=hotp(secret, STEP + 1), now=NOW)
    # and then the older, never-used current step is a replay-window code: refused.
    assert (
        await _code_error(verify(store, ring, subject=subject, code=hotp(secret, STEP), now=NOW))
        == "otp_reused"
    )
    record = await store.get_totp(subject)
    assert record is not None and record.last_step == STEP + 1
    # Two steps away is simply invalid.
    later = NOW + 300
    far = hotp(secret, int(later // 30) + 2)
    if far not in {hotp(secret, int(later // 30) + d) for d in (-1, 0, 1)}:
        assert (
            await _code_error(verify(store, ring, subject=subject, code=far, now=later))
            == "invalid_otp"
        )


async def test_verify_rejects_malformed(store: Store, ring: KeyEncryptionKeyRing) -> None:
    subject, secret = await _enrolled(store, ring, "totp-malformed")
    for code in MALFORMED:
        error = await _code_error(verify(store, ring, subject=subject, code=code, now=NOW))
        assert error == "invalid_otp", code
    await verify(store, ring, subject=subject, code=totp_at(secret, NOW), now=NOW)


async def test_concurrent_use_of_one_code_has_one_winner(
    store: Store, ring: KeyEncryptionKeyRing
) -> None:
    subject, secret = await _enrolled(store, ring, "totp-race")
    code = totp_at(secret, NOW)
    results = await asyncio.gather(
        *(verify(store, ring, subject=subject, code=code, now=NOW) for _ in range(10)),
        return_exceptions=True,
    )
    wins = [r for r in results if r is None]
    losses = [r for r in results if isinstance(r, AuthnError)]
    assert len(wins) == 1, results
    assert len(losses) == 9 and {e.code for e in losses} == {"otp_reused"}


async def test_moved_seed_does_not_open(store: Store, ring: KeyEncryptionKeyRing) -> None:
    victim, secret = await _enrolled(store, ring, "totp-victim")
    mallory = await store.create_user("totp-mallory", "M")
    record = await store.get_totp(victim)
    assert record is not None
    await store.put_totp(dataclasses.replace(record, subject=mallory.subject))
    with pytest.raises(CryptoError):
        await verify(store, ring, subject=mallory.subject, code=totp_at(secret, NOW), now=NOW)
