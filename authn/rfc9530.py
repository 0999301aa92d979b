"""Digest Fields (RFC 9530): ``Content-Digest`` and ``Repr-Digest``.

Both fields are RFC 8941 Dictionaries whose keys name a hashing algorithm
and whose values are Byte Sequences (RFC 9530 §2, §3). ``Content-Digest``
hashes the message content as sent (after any content coding, RFC 9110
§6.4); ``Repr-Digest`` the selected representation data. The computation
is the same, only the bytes differ, so one pair of functions serves both:
the caller passes the right bytes.

Algorithms (RFC 9530 §5, IANA "Hash Algorithms for HTTP Digest Fields"):

- ``sha-256`` and ``sha-512`` — the two registered "Active" algorithms;
  accepted by default. ``sha-256`` is what ztgate sends.
- ``sm3`` — *not registered*. Offered because ztgate is SM-first and some
  partners' compliance profiles require SM3 wherever a hash is used; it
  is opt-in on both sides (``algorithms=`` / ``accepted=``), never sent
  alone by default, because a standard recipient ignores an unknown key
  (RFC 9530 §5: "MAY ignore") and would then see no digest at all. It adds
  nothing over SHA-256 for integrity, only for conformity.
- The deprecated ``md5``, ``sha``, ``unixsum``, ``unixcksum``, ``adler``,
  ``crc32c`` (§5, §6.6) are never honoured, even when they would match.

Verification (§6.7 "multiple digests"): at least one accepted algorithm
must be present, and *every* accepted algorithm present must match —
an attacker who can add a field member cannot slip a wrong SHA-512 past us
next to a right SHA-256. Comparison is constant-time. Keys we do not
accept are ignored (§2). Every failure is a `DigestError` with a
machine-readable ``code``.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Final, Literal

from authn.errors import AuthnError
from authn.rfc8941 import Item, StructuredFieldError, parse_dictionary, serialize_dictionary
from crypto import sm3

__all__ = [
    "ACCEPTED_BY_DEFAULT",
    "ALGORITHMS",
    "MAX_FIELD_LENGTH",
    "DigestError",
    "DigestErrorCode",
    "content_digest",
    "repr_digest",
    "verify_content_digest",
    "verify_repr_digest",
]

DigestErrorCode = Literal[
    "malformed_digest",  # not a Dictionary of Byte Sequences, oversized, or duplicate keys
    "unsupported_digest_algorithm",  # no accepted algorithm present (or asked to create one)
    "digest_mismatch",  # an accepted algorithm's value does not match the content
]

_HASHES: Final[dict[str, Callable[[bytes], bytes]]] = {
    "sha-256": lambda data: hashlib.sha256(data).digest(),
    "sha-512": lambda data: hashlib.sha512(data).digest(),
    "sm3": sm3.digest,
}
ALGORITHMS: Final = tuple(_HASHES)
"""Every algorithm this module can compute (``sm3`` is unregistered, see above)."""
ACCEPTED_BY_DEFAULT: Final = ("sha-256", "sha-512")
MAX_FIELD_LENGTH: Final = 4096
"""Two SHA-512 values serialise to < 200 characters; anything near 4 KiB is abuse."""


class DigestError(AuthnError):
    """A digest field is malformed, unusable or wrong; ``code`` says which."""

    def __init__(self, code: DigestErrorCode, description: str) -> None:
        super().__init__(code, description, 400)


def _check_algorithms(names: Iterable[str], what: str) -> tuple[str, ...]:
    names = tuple(names)
    if isinstance(names, str) or not names or any(n not in _HASHES for n in names):
        raise ValueError(f"{what} must be a non-empty subset of {ALGORITHMS}")
    return names


def content_digest(content: bytes, *, algorithms: Sequence[str] = ("sha-256",)) -> str:
    """The ``Content-Digest`` field value for `content` (RFC 9530 §2), e.g.
    ``sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:``."""
    if not isinstance(content, bytes):
        raise TypeError("content must be bytes")
    names = _check_algorithms(algorithms, "algorithms")
    return serialize_dictionary(tuple((n, Item(_HASHES[n](content))) for n in names))


repr_digest = content_digest
"""``Repr-Digest`` (RFC 9530 §3): the same computation over the representation data."""


def _parse(field_value: str) -> Mapping[str, bytes]:
    try:
        members = parse_dictionary(field_value, max_length=MAX_FIELD_LENGTH, duplicates="error")
    except StructuredFieldError:
        raise DigestError("malformed_digest", "digest field is not a valid Dictionary") from None
    out: dict[str, bytes] = {}
    for key, member in members:
        if not isinstance(member, Item) or not isinstance(member.value, bytes):
            raise DigestError("malformed_digest", "digest values must be Byte Sequences")
        out[key] = member.value
    return out


def verify_content_digest(
    field_value: str,
    content: bytes,
    *,
    accepted: Sequence[str] = ACCEPTED_BY_DEFAULT,
) -> tuple[str, ...]:
    """Check a ``Content-Digest`` value against `content`; return the algorithms verified.

    Raises `DigestError`: ``malformed_digest`` for a value that is not a
    Dictionary of Byte Sequences (duplicate keys included: two values for
    one algorithm have no single meaning); ``unsupported_digest_algorithm``
    when none of `accepted` is present; ``digest_mismatch`` when any present
    accepted algorithm disagrees with the content.
    """
    if not isinstance(content, bytes):
        raise TypeError("content must be bytes")
    names = _check_algorithms(accepted, "accepted")
    digests = _parse(field_value)
    present = tuple(n for n in names if n in digests)
    if not present:
        raise DigestError(
            "unsupported_digest_algorithm",
            f"digest field carries none of the accepted algorithms {list(names)}",
        )
    ok = True
    for name in present:  # check them all: no early exit on the first mismatch
        ok &= hmac.compare_digest(digests[name], _HASHES[name](content))
    if not ok:
        raise DigestError("digest_mismatch", "content does not match its digest")
    return present


verify_repr_digest = verify_content_digest
"""``Repr-Digest`` verification: pass the representation data as `content`."""
