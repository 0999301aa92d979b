"""TOTP second factor: RFC 6238 over RFC 4226 HOTP, enrolment and replay-safe verification.

Parameters and why:

* HMAC-SHA1 by default: it is what every authenticator app implements
  (RFC 6238 §1.2 makes SHA-256/SHA-512 optional and many apps silently
  ignore the ``algorithm`` URI parameter). HOTP only needs the PRF property
  of HMAC, which collisions in SHA-1 do not affect (RFC 4226 App. A.2).
  SHA256 and SHA512 are supported for tokens that honour them.
* Seeds as long as the HMAC output (20/32/64 bytes): RFC 4226 §4 R6 asks for
  at least 128 and recommends 160 bits; RFC 6238 §5.1 keys of the hash's
  output length.
* X = 30 s time step and T0 = 0 (RFC 6238 §4.1 defaults), 6 digits (8 allowed),
  and at most one step of drift either way (RFC 6238 §5.2 recommends at most
  one step of network delay; we also allow one ahead for clock skew).
* Every accepted step is remembered (`TotpRecord.last_step`) and a code at or
  below it is refused: RFC 6238 §5.2 says a verifier MUST NOT accept the
  second attempt of an OTP after success. The store advances that mark with
  one conditional statement, so among concurrent uses of a code exactly one
  wins.
* Seeds are stored sealed (`crypto.envelope`, context ``b"totp:" + subject``):
  RFC 4226 §7.5 requires the shared secrets be protected at rest.

Brute force of the 10^-6 code space is *not* throttled here: the caller must
count `invalid_otp` failures with `authn.throttle` (RFC 4226 §7.3).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from typing import Literal, get_args
from urllib.parse import quote, urlencode

from authn.errors import AuthnError
from authn.store.base import Store, TotpRecord
from crypto.envelope import KeyEncryptionKeyRing

__all__ = [
    "DEFAULT_PERIOD",
    "Algorithm",
    "confirm",
    "enroll",
    "generate_secret",
    "hotp",
    "match_step",
    "otpauth_uri",
    "seal_context",
    "time_step",
    "totp_at",
    "verify",
]

Algorithm = Literal["SHA1", "SHA256", "SHA512"]
DEFAULT_PERIOD = 30
_DIGESTS = {"SHA1": hashlib.sha1, "SHA256": hashlib.sha256, "SHA512": hashlib.sha512}
_SECRET_SIZES = {"SHA1": 20, "SHA256": 32, "SHA512": 64}
_DIGITS = (6, 8)


def _check_params(algorithm: str, digits: int, period: int = DEFAULT_PERIOD) -> None:
    if algorithm not in get_args(Algorithm):
        raise ValueError(f"unsupported TOTP algorithm {algorithm!r}")
    if digits not in _DIGITS:
        raise ValueError("TOTP codes have 6 or 8 digits")
    if isinstance(period, bool) or not isinstance(period, int) or not 1 <= period <= 300:
        raise ValueError("TOTP period must be 1..300 seconds")


def generate_secret(algorithm: Algorithm = "SHA1") -> bytes:
    """A fresh random seed of the HMAC output length (RFC 4226 §4 R6, RFC 6238 §5.1)."""
    _check_params(algorithm, 6)
    return secrets.token_bytes(_SECRET_SIZES[algorithm])


def hotp(secret: bytes, counter: int, digits: int = 6, algorithm: Algorithm = "SHA1") -> str:
    """HOTP(K, C) = Truncate(HMAC(K, C)) mod 10^digits, zero-padded (RFC 4226 §5.3).

    C is the 8-byte big-endian counter (§5.1); dynamic truncation takes the
    low nibble of the last HMAC byte as the offset (§5.4, generalised to the
    longer SHA-2 outputs exactly as RFC 6238 Appendix A does).
    """
    _check_params(algorithm, digits)
    if not 0 <= counter < 2**64:
        raise ValueError("HOTP counter must fit in 8 bytes")
    mac = hmac.new(secret, counter.to_bytes(8, "big"), _DIGESTS[algorithm]).digest()
    offset = mac[-1] & 0x0F
    code = int.from_bytes(mac[offset : offset + 4], "big") & 0x7FFF_FFFF
    return str(code % 10**digits).zfill(digits)


def time_step(t: float, period: int = DEFAULT_PERIOD) -> int:
    """T = floor((Unix time - T0) / X) with T0 = 0 (RFC 6238 §4.2)."""
    if t < 0:
        raise ValueError("time before the Unix epoch")
    return int(t // period)


def totp_at(
    secret: bytes,
    t: float,
    *,
    digits: int = 6,
    algorithm: Algorithm = "SHA1",
    period: int = DEFAULT_PERIOD,
) -> str:
    """TOTP = HOTP(K, T) for the time step containing `t` (RFC 6238 §4.2)."""
    _check_params(algorithm, digits, period)
    return hotp(secret, time_step(t, period), digits, algorithm)


def _well_formed(code: object, digits: int) -> bool:
    # isdigit() alone accepts full-width digits and superscripts; insist on ASCII.
    return isinstance(code, str) and len(code) == digits and code.isascii() and code.isdigit()


def match_step(
    secret: bytes,
    code: str,
    now: float,
    window: int = 1,
    *,
    digits: int = 6,
    algorithm: Algorithm = "SHA1",
    period: int = DEFAULT_PERIOD,
) -> int | None:
    """The time step within ±`window` of `now` whose code is `code`, or None.

    Every candidate is computed and compared with `hmac.compare_digest`, with
    no early exit, so timing does not reveal which step (if any) matched.
    Should two steps yield the same code (chance ~10^-digits), the later one
    is returned: after it is recorded neither can be replayed.
    """
    _check_params(algorithm, digits, period)
    if not 0 <= window <= 10:
        raise ValueError("TOTP window must be 0..10 steps")
    if not _well_formed(code, digits):
        return None
    current = time_step(now, period)
    given = code.encode("ascii")
    found: int | None = None
    for step in range(max(0, current - window), current + window + 1):
        candidate = hotp(secret, step, digits, algorithm).encode("ascii")
        if hmac.compare_digest(candidate, given):
            found = step
    return found


def otpauth_uri(
    secret: bytes,
    *,
    account_name: str,
    issuer: str = "ztgate",
    algorithm: Algorithm = "SHA1",
    digits: int = 6,
    period: int = DEFAULT_PERIOD,
) -> str:
    """``otpauth://totp/<issuer>:<account>?secret=…&issuer=…`` (Google Key URI Format).

    The label parts and parameters are percent-encoded (spaces as %20, never
    "+"); the secret is RFC 4648 §6 base32 without padding, as the format
    requires. Neither issuer nor account name may contain a colon, which
    separates them in the label.
    """
    _check_params(algorithm, digits, period)
    for name, value in (("issuer", issuer), ("account_name", account_name)):
        if not value or ":" in value or any(ord(c) < 0x20 for c in value):
            raise ValueError(f"{name} must be non-empty, without ':' or control characters")
    label = f"{quote(issuer, safe='')}:{quote(account_name, safe='')}"
    query = urlencode(
        {
            "secret": base64.b32encode(secret).decode("ascii").rstrip("="),
            "issuer": issuer,
            "algorithm": algorithm,
            "digits": str(digits),
            "period": str(period),
        },
        quote_via=quote,
    )
    return f"otpauth://totp/{label}?{query}"


def seal_context(subject: str) -> bytes:
    """Envelope context binding a sealed seed to its owner (a copied blob will not open)."""
    return b"totp:" + subject.encode("utf-8")


def _invalid() -> AuthnError:
    return AuthnError("invalid_otp", "the one-time code is not valid", 401)


def _reused() -> AuthnError:
    return AuthnError("otp_reused", "this one-time code has already been used", 401)


async def enroll(
    store: Store,
    kek_ring: KeyEncryptionKeyRing,
    *,
    subject: str,
    account_name: str,
    algorithm: Algorithm = "SHA1",
    digits: int = 6,
) -> str:
    """Start (or restart) TOTP enrolment; returns the otpauth URI to show as a QR code.

    An unconfirmed enrolment is replaced (the user rescans); a confirmed one
    is not, since that would let whoever holds a session silently move the
    second factor to their own device: remove it explicitly first
    (AuthnError("totp_already_enrolled", 409)). Bad parameters or an account
    name the URI cannot carry (empty, ':') are AuthnError("invalid_request").
    """
    try:
        secret = generate_secret(algorithm)
        uri = otpauth_uri(secret, account_name=account_name, algorithm=algorithm, digits=digits)
    except ValueError as exc:
        raise AuthnError("invalid_request", str(exc)) from None
    existing = await store.get_totp(subject)
    if existing is not None and existing.confirmed:
        raise AuthnError("totp_already_enrolled", "a confirmed TOTP factor already exists", 409)
    sealed = kek_ring.seal(secret, context=seal_context(subject))
    record = TotpRecord(
        subject=subject,
        sealed_seed=sealed,
        algorithm=algorithm,
        digits=digits,
        period=DEFAULT_PERIOD,
        confirmed=False,
        last_step=0,
    )
    await store.put_totp(record)
    return uri


async def _accept(
    store: Store, kek_ring: KeyEncryptionKeyRing, record: TotpRecord, code: str, now: float
) -> None:
    """Match `code` against `record` and claim its step atomically, or raise."""
    if not _well_formed(code, record.digits):
        raise _invalid()
    secret = kek_ring.open(record.sealed_seed, context=seal_context(record.subject))
    step = match_step(
        secret,
        code,
        now,
        digits=record.digits,
        algorithm=record.algorithm,
        period=record.period,
    )
    if step is None:
        raise _invalid()
    if step <= record.last_step or not await store.advance_totp_step(record.subject, step):
        raise _reused()


async def confirm(
    store: Store, kek_ring: KeyEncryptionKeyRing, *, subject: str, code: str, now: float
) -> None:
    """Activate a pending enrolment with the first valid code (proves the app has the seed).

    The confirming code's step is recorded too, so it cannot be replayed as
    a login code.
    """
    record = await store.get_totp(subject)
    if record is None:
        raise _invalid()
    if record.confirmed:
        raise AuthnError("totp_already_enrolled", "the TOTP factor is already confirmed", 409)
    await _accept(store, kek_ring, record, code, now)
    await store.confirm_totp(subject)


async def verify(
    store: Store, kek_ring: KeyEncryptionKeyRing, *, subject: str, code: str, now: float
) -> None:
    """Accept a login code or raise AuthnError (401).

    ``invalid_otp``: malformed or wrong code, or no confirmed enrolment (the
    same answer, so a probe cannot tell whether a user has TOTP).
    ``otp_reused``: right code but its step was already used (RFC 6238 §5.2).
    """
    record = await store.get_totp(subject)
    if record is None or not record.confirmed:
        raise _invalid()
    await _accept(store, kek_ring, record, code, now)
