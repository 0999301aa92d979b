"""The maskers: how one C2 value is turned into something safe to show (issue 7).

Each masker is a pure function of the value (and, for the keyed ones, a key):

* `partial` — display masking, JR/T 0171-2020 practice: keep a head and a tail
  and star the rest (card 6 + 4, mobile 3 + 4, resident ID 1 + 1, a name keeping
  one character); the split is the profile's to choose. A value too short to
  keep anything of is starred whole.
* `pseudonym` — a keyed HMAC-SM3 (`crypto.sm3.hmac`) of the value under a key
  derived per partner: the same value always gives the same pseudonym for one
  partner (it can correlate records) and different pseudonyms for two partners
  (they cannot join their data), and nobody without the key can test a guess.
* `token` — a format-preserving token: same length, each character replaced by
  one of its own class (digit, lower, upper, CJK ideograph; anything else kept),
  keyed and deterministic, for a downstream that validates formats. A token is
  never itself a valid card, ID or mobile number, so no scanner mistakes it for
  leaked data.
* `generalise` — an age band from a birth date or resident ID, a city instead of
  an address.
* removal is not a function here: the engine deletes the member.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping
from datetime import date
from functools import lru_cache
from typing import Any, Final

from crypto import sm3
from gateway import pii
from gateway.masking import detector
from gateway.masking.classification import Kind

__all__ = [
    "PseudonymKeys",
    "age_band",
    "generalise",
    "partial",
    "partial_email",
    "pseudonym",
    "token",
]

STAR: Final = "*"
_PSEUDONYM_CONTEXT: Final = b"ztgate/masking/pseudonym/v1\x00"
_TOKEN_CONTEXT: Final = b"ztgate/masking/token/v1\x00"
_DATE: Final = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})")
_CITY_END: Final = re.compile(r"^(.{2,12}?(?:自治州|地区|市|盟|州))")
_PROVINCE_END: Final = re.compile(r"^(.{2,8}?(?:省|自治区|特别行政区))")
_CJK_FIRST, _CJK_COUNT = 0x4E00, 0x9FA5 - 0x4E00 + 1


def partial(value: str, head: int, tail: int) -> str:
    """`value` with all but `head` leading and `tail` trailing characters starred."""
    n = len(value)
    if head < 0 or tail < 0:
        raise ValueError("head and tail are non-negative")
    if head + tail >= n:
        return STAR * n
    return value[:head] + STAR * (n - head - tail) + value[n - tail :]


def partial_email(value: str, head: int) -> str:
    """An e-mail address with its local part kept to `head` characters; the domain
    stays (it names a provider, not a person)."""
    local, sep, domain = value.rpartition("@")
    if not sep or not local:
        return STAR * len(value)
    return partial(local, head, 0) + "@" + domain


class PseudonymKeys:
    """The master key of pseudonyms and tokens, and the per-scope keys derived from it.

    A scope is a partner's client id (or ``audit``): its key is
    HMAC-SM3(master, context || scope), so the master key never keys a pseudonym
    itself and one scope's pseudonyms say nothing about another's.
    """

    __slots__ = ("_master",)

    def __init__(self, master: bytes) -> None:
        if len(master) < 32:
            raise ValueError("the pseudonym master key is at least 32 bytes")
        self._master = bytes(master)

    def for_scope(self, scope: str) -> bytes:
        return _derive(self._master, scope)

    def __repr__(self) -> str:  # never print the key
        return "PseudonymKeys(<secret>)"


@lru_cache(maxsize=1024)
def _derive(master: bytes, scope: str) -> bytes:
    return sm3.hmac(master, _PSEUDONYM_CONTEXT + scope.encode("utf-8"))


PSEUDONYM_CACHE_SIZE: Final = 4096
"""Pseudonyms and tokens remembered (least recently used first out): they are
deterministic per (scope key, kind, value), and a response repeats its account and
card numbers; bounded, since the values come from upstream bodies."""


@lru_cache(maxsize=PSEUDONYM_CACHE_SIZE)
def pseudonym(key: bytes, kind: Kind, value: str) -> str:
    """``pn_`` and 20 base32 characters (100 bits) of HMAC-SM3(key, kind || value)."""
    mac = sm3.hmac(key, kind.value.encode() + b"\x00" + value.encode("utf-8"))
    return "pn_" + base64.b32encode(mac).decode()[:20].lower()


def _keystream(key: bytes, kind: Kind, value: str, n: int) -> list[int]:
    out: list[int] = []
    counter = 0
    seed = _TOKEN_CONTEXT + kind.value.encode() + b"\x00" + value.encode("utf-8")
    while len(out) < n:
        block = sm3.hmac(key, counter.to_bytes(4, "big") + seed)
        out.extend(int.from_bytes(block[i : i + 4], "big") for i in range(0, 32, 4))
        counter += 1
    return out[:n]


def _substitute(ch: str, r: int) -> str:
    o = ord(ch)
    if 0x30 <= o <= 0x39:
        return chr(0x30 + r % 10)
    if 0x61 <= o <= 0x7A:
        return chr(0x61 + r % 26)
    if 0x41 <= o <= 0x5A:
        return chr(0x41 + r % 26)
    if _CJK_FIRST <= o < _CJK_FIRST + _CJK_COUNT:
        return chr(_CJK_FIRST + r % _CJK_COUNT)
    return ch


def _class_index(ch: str) -> int:
    """`ch`'s position within its substitution class (digit, letter, ideograph)."""
    o = ord(ch)
    if 0x30 <= o <= 0x39:
        return o - 0x30
    if 0x61 <= o <= 0x7A:
        return o - 0x61
    if 0x41 <= o <= 0x5A:
        return o - 0x41
    return o - _CJK_FIRST


def _number_at(s: str) -> tuple[int, int] | None:
    """The span of the first card, ID or mobile number the detector finds in `s`."""
    for f in detector.find(s):
        if f.kind is not Kind.EMAIL:
            return f.start, f.end
    return None


@lru_cache(maxsize=PSEUDONYM_CACHE_SIZE)
def token(key: bytes, kind: Kind, value: str) -> str:
    """A keyed, deterministic, format-preserving stand-in for `value` (see the module
    docstring): same length, same character classes, never a card, ID or mobile number
    (an e-mail address stays address-shaped: that is the format)."""
    stream = _keystream(key, kind, value, len(value))
    chars = [_substitute(ch, r) for ch, r in zip(value, stream, strict=True)]
    if chars == list(value):
        # Every substitution drew its own character (likely for short values): move the
        # first substitutable one on by one within its class, so the token differs.
        for i, ch in enumerate(chars):
            if _substitute(ch, 1) != ch or _substitute(ch, 0) != ch:
                chars[i] = _substitute(ch, _class_index(ch) + 1)
                break
    # Deterministic nudges: no mainland mobile or province code starts with 0, and one
    # of every ten last digits fails Luhn; so a token never validates as data.
    for attempt in range(40):
        span = _number_at("".join(chars))
        if span is None:
            out = "".join(chars)
            return STAR * len(value) if out == value and value else out
        digits = [i for i in range(*span) if chars[i].isascii() and chars[i].isdigit()]
        if attempt == 0:
            chars[digits[0]] = "0"
        else:
            chars[digits[-1]] = str((int(chars[digits[-1]]) + 1) % 10)
    return STAR * len(value)  # not reached in practice; never return a valid number


def age_band(born: date, today: date, width: int = 10) -> str:
    """``"30-39"``: the `width`-year band of the age on `today` (``"90+"`` from 90)."""
    years = today.year - born.year - ((today.month, today.day) < (born.month, born.day))
    if years < 0:
        return "unknown"
    if years >= 90:
        return "90+"
    low = years // width * width
    return f"{low}-{low + width - 1}"


def _birth_date(kind: Kind, value: str) -> date | None:
    if kind is Kind.RESIDENT_ID:
        return pii.resident_id_birth_date(value) if len(value) == 18 else None
    match = _DATE.match(value)
    if match is None:
        return None
    try:
        return date(int(match[1]), int(match[2]), int(match[3]))
    except ValueError:
        return None


def city_of(address: str) -> str:
    """The province and city an address string begins with, else all stars.

    Chinese addresses run from large to small (省 → 市 → 区 → street): the city is
    a prefix. Municipalities (北京市…) are their own city.
    """
    province = _PROVINCE_END.match(address)
    rest = address[province.end() :] if province else address
    city = _CITY_END.match(rest)
    if city is None:
        return province.group(1) if province else STAR * min(len(address), 6)
    return (province.group(1) if province else "") + city.group(1)


_ADDRESS_KEEP: Final = ("province", "city")


def generalise(kind: Kind, value: Any, today: date) -> Any:
    """The generalised form of `value`, or None when `kind` has none (then the
    engine removes the value instead)."""
    if kind in (Kind.BIRTH_DATE, Kind.RESIDENT_ID) and isinstance(value, str):
        born = _birth_date(kind, value)
        return age_band(born, today) if born else None
    if kind is Kind.ADDRESS:
        if isinstance(value, str):
            return city_of(value)
        if isinstance(value, Mapping):
            kept = {k: value[k] for k in _ADDRESS_KEEP if isinstance(value.get(k), str)}
            return kept or None
    return None
