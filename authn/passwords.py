"""Password hashing with PBKDF2-HMAC-SM3 (RFC 8018 §5.2, PRF = HMAC-SM3 per GB/T 32905).

Why PBKDF2 and not a memory-hard function: the deployment profile requires
SM-series primitives, and PBKDF2 is the construction RFC 8018 standardises on
top of any HMAC. Its weakness against GPU attackers is offset by a high
iteration count (`PasswordPolicy.iterations`, default 310 000 — the OWASP 2023
figure for PBKDF2-HMAC-SHA256, SM3 being of similar cost) that can be raised
at any time: each stored hash says how it was made, and `needs_rehash` tells
the login path to re-hash on the next successful login.

Stored format (PHC-string style, unpadded standard base64)::

    $pbkdf2-sm3$i=<iterations>$<b64 salt>$<b64 hash>

with a fresh random 16-byte salt per hash (RFC 8018 §4.1; NIST SP 800-132
§5.1 asks for at least 128 bits) and a 32-byte derived key (one SM3 block, so
no extra PRF chains an attacker would not have to compute).

Input rules, and why:

* Unicode is normalised with NFKC (as RFC 8265 §4.2 does for the
  OpaqueString profile, there with NFC), so that the same password typed on
  devices that produce different code-point sequences (full-width vs ASCII,
  composed vs decomposed) still matches.
* NUL is refused: HMAC zero-pads the key (RFC 2104 §2), so "pw" and "pw\\0"
  would derive the same hash.
* Length is bounded below (policy) and above, so that NFKC expansion and
  hashing cost stay bounded for hostile input.

Verification never raises on bad input or a corrupt stored hash; it returns
False. `verify_dummy` spends the same work when the user does not exist, so
response timing does not reveal which usernames are registered.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import hmac as _stdlib_hmac
import os
import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

from authn.errors import AuthnError
from authn.store.base import Store, User
from crypto import sm3

__all__ = [
    "HASH_SIZE",
    "SALT_SIZE",
    "SCHEME",
    "PasswordPolicy",
    "hash_password",
    "hash_password_async",
    "needs_rehash",
    "normalize_password",
    "set_user_password",
    "verify_dummy",
    "verify_password",
    "verify_password_async",
    "verify_user_password",
]

SCHEME = "pbkdf2-sm3"
SALT_SIZE = 16
HASH_SIZE = sm3.DIGEST_SIZE
_MAX_SALT = 64
_ENCODED_MAX = 256
"""A well-formed encoding is under 120 characters; longer input is rejected unparsed."""
_FORMAT = re.compile(
    r"\$pbkdf2-sm3\$i=(?P<i>[1-9][0-9]{0,8})\$(?P<salt>[A-Za-z0-9+/]+)\$(?P<hash>[A-Za-z0-9+/]+)"
)
_DUMMY_SALT = b"ztgate/dummy/pw\x00"
_DUMMY_HASH = sm3.digest(b"ztgate/passwords/dummy-hash")


@dataclass(frozen=True)
class PasswordPolicy:
    """Cost and length rules for new passwords.

    `iterations` applies to new hashes only; existing hashes keep their own
    count until `needs_rehash` triggers an upgrade. Lengths count Unicode code
    points after NFKC normalisation (NIST SP 800-63B §5.1.1.2: at least 8,
    allow at least 64; a bank sets 10 here).
    """

    iterations: int = 310_000
    min_length: int = 10
    max_length: int = 256

    def __post_init__(self) -> None:
        if not 1 <= self.iterations <= sm3.PBKDF2_MAX_ITERATIONS:
            raise ValueError(f"iterations must be in 1..{sm3.PBKDF2_MAX_ITERATIONS}")
        if not 1 <= self.min_length <= self.max_length <= 4096:
            raise ValueError("need 1 <= min_length <= max_length <= 4096")


def _b64e(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii").rstrip("=")


def _b64d(text: str) -> bytes | None:
    """Strict unpadded base64; None unless `text` is the canonical encoding."""
    try:
        raw = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        return None
    return raw if _b64e(raw) == text else None


def _parse(encoded: str) -> tuple[int, bytes, bytes] | None:
    if not isinstance(encoded, str) or len(encoded) > _ENCODED_MAX:
        return None
    m = _FORMAT.fullmatch(encoded)
    if m is None:
        return None
    iterations = int(m["i"])
    salt, digest = _b64d(m["salt"]), _b64d(m["hash"])
    if iterations > sm3.PBKDF2_MAX_ITERATIONS or salt is None or digest is None:
        return None
    if not SALT_SIZE <= len(salt) <= _MAX_SALT or len(digest) != HASH_SIZE:
        return None
    return iterations, salt, digest


def _prepare(password: object, max_length: int) -> str | None:
    """NFKC-normalised password, or None if the input can never be a password."""
    if not isinstance(password, str) or len(password) > max_length or "\x00" in password:
        return None
    normal = unicodedata.normalize("NFKC", password)
    if len(normal) > max_length or "\x00" in normal:
        return None
    try:
        normal.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates cannot come from a real client
        return None
    return normal


def normalize_password(password: str, policy: PasswordPolicy) -> bytes:
    """Validate a new password against `policy`; return what gets hashed.

    Raises AuthnError("invalid_password") with a reason safe to show the user.
    """
    if not isinstance(password, str):
        raise AuthnError("invalid_password", "password must be text")
    if "\x00" in password:
        raise AuthnError("invalid_password", "password must not contain NUL characters")
    normal = _prepare(password, policy.max_length)
    if normal is None:
        raise AuthnError(
            "invalid_password", f"password must be at most {policy.max_length} characters"
        )
    if len(normal) < policy.min_length:
        raise AuthnError(
            "invalid_password", f"password must be at least {policy.min_length} characters"
        )
    return normal.encode("utf-8")


def hash_password(password: str, policy: PasswordPolicy) -> str:
    """Hash a new password: `$pbkdf2-sm3$i=<n>$<salt>$<hash>` (blocking; see the async helper)."""
    data = normalize_password(password, policy)
    salt = os.urandom(SALT_SIZE)
    digest = sm3.pbkdf2(data, salt, policy.iterations, HASH_SIZE)
    return f"${SCHEME}$i={policy.iterations}${_b64e(salt)}${_b64e(digest)}"


# The verification length bound is independent of the current policy: lowering
# max_length must not lock out users whose passwords were valid when set.
_VERIFY_MAX_LENGTH = 4096


def verify_password(password: str, encoded: str) -> bool:
    """True iff `password` matches `encoded`. Never raises; unparseable input is False.

    The final comparison is constant-time (`hmac.compare_digest`). Policy
    length rules are deliberately not applied: a password valid when it was
    set stays usable after the policy tightens.
    """
    parsed = _parse(encoded)
    normal = _prepare(password, _VERIFY_MAX_LENGTH)
    if parsed is None or normal is None:
        return False
    iterations, salt, expected = parsed
    try:
        actual = sm3.pbkdf2(normal.encode("utf-8"), salt, iterations, len(expected))
    except Exception:  # a backend refusal must not turn into a 500 on login
        return False
    return _stdlib_hmac.compare_digest(actual, expected)


@lru_cache(maxsize=8)
def _dummy_encoded(iterations: int) -> str:
    return f"${SCHEME}$i={iterations}${_b64e(_DUMMY_SALT)}${_b64e(_DUMMY_HASH)}"


def verify_dummy(password: str, policy: PasswordPolicy) -> bool:
    """Spend one verification's worth of work for a user that does not exist; False.

    It runs the very code path of `verify_password` at the policy's cost
    against a fixed hash no password is known to match, so that "unknown
    user" and "wrong password" take the same time (OWASP ASVS V2.2 / CWE-204).
    Hashes still at an older, lower cost verify faster until `needs_rehash`
    has upgraded them on their owner's next login.
    """
    verify_password(password, _dummy_encoded(policy.iterations))
    return False


def needs_rehash(encoded: str, policy: PasswordPolicy) -> bool:
    """True if `encoded` should be replaced by a fresh hash under `policy`.

    That is the case for an unparseable or non-standard encoding and for one
    with fewer iterations than the policy. A *higher* count than the policy
    is kept: lowering the configured cost (say by a config mistake) must not
    silently weaken stored hashes on every login.
    """
    parsed = _parse(encoded)
    if parsed is None:
        return True
    iterations, salt, _ = parsed
    return iterations < policy.iterations or len(salt) != SALT_SIZE


async def hash_password_async(password: str, policy: PasswordPolicy) -> str:
    """`hash_password` in a worker thread: ~100 ms of CPU must not stall the event loop."""
    return await asyncio.to_thread(hash_password, password, policy)


async def verify_password_async(password: str, encoded: str) -> bool:
    """`verify_password` in a worker thread."""
    return await asyncio.to_thread(verify_password, password, encoded)


async def set_user_password(
    store: Store, subject: str, password: str, policy: PasswordPolicy
) -> None:
    """Validate, hash (off the event loop) and store a user's new password."""
    await store.set_password(subject, await hash_password_async(password, policy))


async def verify_user_password(
    store: Store, user: User | None, password: str, policy: PasswordPolicy
) -> bool:
    """Check `password` for `user` (None: unknown username), with equal work either way.

    Unknown users, users without a password and disabled users all cost one
    full verification and yield False. On success with an outdated hash the
    password is re-hashed under `policy` (RFC 8018 §4.2 iteration upgrade).
    Throttling (`authn.throttle`) is the caller's job, before this call.
    """
    encoded = await store.get_password(user.subject) if user is not None else None
    if user is None or encoded is None:
        await asyncio.to_thread(verify_dummy, password, policy)
        return False
    ok = await verify_password_async(password, encoded)
    if not ok or user.disabled:
        return False
    if needs_rehash(encoded, policy):
        # A password that no longer meets the length policy keeps its old hash.
        with contextlib.suppress(AuthnError):
            await set_user_password(store, user.subject, password, policy)
    return True
