"""Structured Field Values for HTTP (RFC 8941): the subset HTTP signatures need.

Dictionaries, Lists of Items and Inner Lists, and every RFC 8941 bare item
(Integer, Decimal, String, Token, Byte Sequence, Boolean), with parameters.
RFC 9651's Date and Display String are not parsed (they fail, as RFC 8941
parsers must). `Signature-Input`, `Signature` (RFC 9421 §4) and
`Content-Digest` / `Repr-Digest` (RFC 9530 §2-3) are all Dictionaries.

Parsing follows RFC 8941 §4.2 step by step and is strict:

- input must be ASCII and no longer than ``max_length`` (callers bound
  attacker-supplied headers before any work is done);
- members, inner-list items and parameters are counted and bounded, so a
  header of many tiny members cannot make the caller do unbounded work;
- a duplicate Dictionary key or parameter overwrites the earlier value as
  §4.2.2 and §4.2.3.2 require; ``duplicates="error"`` refuses it instead,
  for callers whose security rests on exactly one meaning per key;
- the only exception that can escape is `StructuredFieldError`.

Serialisation (RFC 8941 §4.1) is canonical: parsing a serialised value and
serialising it again yields the same string, which is what RFC 9421 §2.3
relies on when it re-serialises ``@signature-params``.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Final, Literal

__all__ = [
    "BareItem",
    "Dictionary",
    "InnerList",
    "Item",
    "Member",
    "Params",
    "StructuredFieldError",
    "Token",
    "parse_dictionary",
    "parse_item",
    "serialize_bare_item",
    "serialize_dictionary",
    "serialize_inner_list",
    "serialize_item",
    "serialize_params",
]

MAX_INTEGER: Final = 999_999_999_999_999
MAX_MEMBERS: Final = 64
MAX_PARAMS: Final = 32
MAX_INNER_ITEMS: Final = 64
_KEY: Final = re.compile(r"[a-z*][a-z0-9_\-.*]*")
_TOKEN: Final = re.compile(r"[A-Za-z*][!#$%&'*+\-.^_`|~0-9A-Za-z:/]*")
_B64: Final = re.compile(r"[A-Za-z0-9+/]*={0,2}")
_STRING: Final = re.compile(r'"((?:[ !#-\[\]-~]|\\["\\])*)"')
_UNESCAPE: Final = re.compile(r'\\(["\\])')
_PRINTABLE: Final = re.compile(r"[ -~]*")


class StructuredFieldError(ValueError):
    """The value is not a valid structured field (or cannot be serialised as one)."""


@dataclass(frozen=True)
class Token:
    """An RFC 8941 §3.3.4 Token (distinct from a String with the same characters)."""

    value: str


BareItem = bool | int | Decimal | str | Token | bytes
Params = tuple[tuple[str, BareItem], ...]


@dataclass(frozen=True)
class Item:
    value: BareItem
    params: Params = ()


@dataclass(frozen=True)
class InnerList:
    items: tuple[Item, ...]
    params: Params = ()


Member = Item | InnerList
Dictionary = tuple[tuple[str, Member], ...]


# -- parsing (RFC 8941 §4.2) ---------------------------------------------------------


class _Parser:
    def __init__(self, text: str, duplicates: Literal["overwrite", "error"]) -> None:
        self.s = text
        self.i = 0
        self.duplicates = duplicates

    def fail(self, why: str) -> StructuredFieldError:
        return StructuredFieldError(f"{why} at offset {self.i}")

    def peek(self) -> str:
        return self.s[self.i] if self.i < len(self.s) else ""

    def skip_sp(self) -> None:
        while self.peek() == " ":
            self.i += 1

    def skip_ows(self) -> None:
        while self.peek() in (" ", "\t") and self.peek():
            self.i += 1

    def at_end(self) -> bool:
        return self.i >= len(self.s)

    def put(self, pairs: list[tuple[str, object]], key: str, value: object, what: str) -> None:
        for n, (k, _) in enumerate(pairs):
            if k == key:
                if self.duplicates == "error":
                    raise self.fail(f"duplicate {what} {key!r}")
                pairs[n] = (key, value)  # §4.2.2: overwrite, keeping the first position
                return
        pairs.append((key, value))

    # §4.2.2
    def dictionary(self) -> Dictionary:
        members: list[tuple[str, object]] = []
        while not self.at_end():
            key = self.key()
            if self.peek() == "=":
                self.i += 1
                member: Member = self.item_or_inner_list()
            else:
                member = Item(True, self.params())
            self.put(members, key, member, "dictionary key")
            if len(members) > MAX_MEMBERS:
                raise self.fail(f"more than {MAX_MEMBERS} dictionary members")
            self.skip_ows()
            if self.at_end():
                break
            if self.peek() != ",":
                raise self.fail("expected ',' between dictionary members")
            self.i += 1
            self.skip_ows()
            if self.at_end():
                raise self.fail("trailing comma")
        return tuple(members)  # type: ignore[arg-type]

    # §4.2.1.1
    def item_or_inner_list(self) -> Member:
        if self.peek() == "(":
            return self.inner_list()
        return self.item()

    # §4.2.1.2
    def inner_list(self) -> InnerList:
        self.i += 1
        items: list[Item] = []
        while not self.at_end():
            self.skip_sp()
            if self.peek() == ")":
                self.i += 1
                return InnerList(tuple(items), self.params())
            items.append(self.item())
            if len(items) > MAX_INNER_ITEMS:
                raise self.fail(f"more than {MAX_INNER_ITEMS} inner-list items")
            if self.peek() not in (" ", ")") or self.at_end():
                raise self.fail("expected ' ' or ')' in inner list")
        raise self.fail("unterminated inner list")

    # §4.2.3
    def item(self) -> Item:
        value = self.bare_item()
        return Item(value, self.params())

    # §4.2.3.1
    def bare_item(self) -> BareItem:
        c = self.peek()
        if c == "-" or (c.isdigit() and c.isascii()):
            return self.number()
        if c == '"':
            return self.string()
        if c == ":":
            return self.byte_sequence()
        if c == "?":
            return self.boolean()
        if c == "*" or (c.isascii() and c.isalpha()):
            return self.token()
        raise self.fail("not the start of a bare item")

    # §4.2.3.2
    def params(self) -> Params:
        pairs: list[tuple[str, object]] = []
        while self.peek() == ";":
            self.i += 1
            self.skip_sp()
            key = self.key()
            value: BareItem = True
            if self.peek() == "=":
                self.i += 1
                value = self.bare_item()
            self.put(pairs, key, value, "parameter")
            if len(pairs) > MAX_PARAMS:
                raise self.fail(f"more than {MAX_PARAMS} parameters")
        return tuple(pairs)  # type: ignore[arg-type]

    # §4.2.3.3
    def key(self) -> str:
        m = _KEY.match(self.s, self.i)
        if m is None:
            raise self.fail("expected a key (lcalpha or '*' first)")
        self.i = m.end()
        return m.group()

    # §4.2.4
    def number(self) -> int | Decimal:
        start = self.i
        if self.peek() == "-":
            self.i += 1
        if not (self.peek().isascii() and self.peek().isdigit()):
            raise self.fail("expected a digit")
        is_decimal = False
        while not self.at_end():
            c = self.peek()
            if c.isascii() and c.isdigit():
                self.i += 1
            elif c == "." and not is_decimal:
                if self.i - start > 12 + (self.s[start] == "-"):
                    raise self.fail("decimal has more than 12 integer digits")
                is_decimal = True
                self.i += 1
            else:
                break
            if not is_decimal and self.i - start > 15 + (self.s[start] == "-"):
                raise self.fail("integer has more than 15 digits")
            if is_decimal and self.i - start > 16 + (self.s[start] == "-"):
                raise self.fail("decimal is longer than 16 characters")
        text = self.s[start : self.i]
        if not is_decimal:
            return int(text)
        if text.endswith("."):
            raise self.fail("decimal ends with '.'")
        if len(text) - text.index(".") - 1 > 3:
            raise self.fail("decimal has more than 3 fractional digits")
        return Decimal(text)

    # §4.2.5
    def string(self) -> str:
        m = _STRING.match(self.s, self.i)
        if m is None:
            raise self.fail(
                "invalid string (control or non-ASCII character, bad escape, unterminated)"
            )
        self.i = m.end()
        return _UNESCAPE.sub(r"\1", m.group(1))

    # §4.2.6
    def token(self) -> Token:
        m = _TOKEN.match(self.s, self.i)
        if m is None:  # pragma: no cover - bare_item checked the first character
            raise self.fail("expected a token")
        self.i = m.end()
        return Token(m.group())

    # §4.2.7
    def byte_sequence(self) -> bytes:
        self.i += 1
        end = self.s.find(":", self.i)
        if end < 0:
            raise self.fail("unterminated byte sequence")
        text = self.s[self.i : end]
        if _B64.fullmatch(text) is None:
            raise self.fail("byte sequence is not base64")
        self.i = end + 1
        try:  # §4.2.7: missing '=' padding SHOULD NOT fail
            return base64.b64decode(text.rstrip("=") + "=" * (-len(text.rstrip("=")) % 4))
        except (binascii.Error, ValueError):
            raise self.fail("byte sequence is not base64") from None

    # §4.2.8
    def boolean(self) -> bool:
        self.i += 1
        c = self.peek()
        if c not in ("0", "1"):
            raise self.fail("boolean must be ?0 or ?1")
        self.i += 1
        return c == "1"


def _start(text: object, max_length: int, duplicates: str) -> _Parser:
    if not isinstance(text, str):
        raise StructuredFieldError("structured field must be a str")
    if len(text) > max_length:
        raise StructuredFieldError(f"structured field longer than {max_length} characters")
    if not text.isascii():
        raise StructuredFieldError("structured field is not ASCII")
    if duplicates not in ("overwrite", "error"):
        raise ValueError("duplicates must be 'overwrite' or 'error'")
    parser = _Parser(text, duplicates)  # type: ignore[arg-type]
    parser.skip_sp()
    return parser


def _finish(parser: _Parser) -> None:
    parser.skip_sp()
    if not parser.at_end():
        raise parser.fail("unexpected characters after the value")


def parse_dictionary(
    text: str,
    *,
    max_length: int = 8192,
    duplicates: Literal["overwrite", "error"] = "overwrite",
) -> Dictionary:
    """RFC 8941 §4.2 with field type Dictionary; an empty field is an empty Dictionary."""
    parser = _start(text, max_length, duplicates)
    result = parser.dictionary()
    _finish(parser)
    return result


def parse_item(text: str, *, max_length: int = 8192) -> Item:
    """RFC 8941 §4.2 with field type Item."""
    parser = _start(text, max_length, "overwrite")
    result = parser.item()
    _finish(parser)
    return result


# -- serialisation (RFC 8941 §4.1) -----------------------------------------------------


def _serialize_key(key: str) -> str:
    if not isinstance(key, str) or _KEY.fullmatch(key) is None:
        raise StructuredFieldError(f"invalid key {key!r}")
    return key


def serialize_bare_item(value: BareItem) -> str:
    """§4.1.3.1. Decimals are rounded to three fractional digits (§4.1.5)."""
    if isinstance(value, bool):
        return "?1" if value else "?0"
    if isinstance(value, int):
        if not -MAX_INTEGER <= value <= MAX_INTEGER:
            raise StructuredFieldError("integer out of range")
        return str(value)
    if isinstance(value, Decimal):
        try:
            rounded = value.quantize(Decimal("0.001"), rounding=ROUND_HALF_EVEN)
        except InvalidOperation:
            raise StructuredFieldError("decimal out of range") from None
        if not rounded.is_finite() or abs(rounded) >= Decimal(10**12):
            raise StructuredFieldError("decimal out of range")
        text = f"{rounded:f}".rstrip("0")
        if text.endswith("."):
            text += "0"
        return "0.0" if text in ("-0.0",) else text
    if isinstance(value, str):
        if _PRINTABLE.fullmatch(value) is None:
            raise StructuredFieldError("string has a control or non-ASCII character")
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, Token):
        if _TOKEN.fullmatch(value.value) is None:
            raise StructuredFieldError(f"invalid token {value.value!r}")
        return value.value
    if isinstance(value, bytes):
        return ":" + base64.b64encode(value).decode("ascii") + ":"
    raise StructuredFieldError(f"not a bare item: {type(value).__name__}")


def serialize_params(params: Params) -> str:
    """§4.1.1.2: ``;key`` for a true Boolean, else ``;key=value``."""
    out: list[str] = []
    for key, value in params:
        out.append(";" + _serialize_key(key))
        if value is not True:
            out.append("=" + serialize_bare_item(value))
    return "".join(out)


def serialize_item(item: Item) -> str:
    return serialize_bare_item(item.value) + serialize_params(item.params)


def serialize_inner_list(inner: InnerList) -> str:
    """§4.1.1.1: ``(item item ...)`` followed by its parameters."""
    return "(" + " ".join(map(serialize_item, inner.items)) + ")" + serialize_params(inner.params)


def _serialize_member(member: Member) -> str:
    if isinstance(member, InnerList):
        return serialize_inner_list(member)
    return serialize_item(member)


def serialize_dictionary(members: Dictionary) -> str:
    """§4.1.2: ``key=value, key`` (a true Boolean member omits ``=?1``)."""
    out: list[str] = []
    for key, member in members:
        if isinstance(member, Item) and member.value is True:
            out.append(_serialize_key(key) + serialize_params(member.params))
        else:
            out.append(_serialize_key(key) + "=" + _serialize_member(member))
    return ", ".join(out)
