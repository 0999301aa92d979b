"""A JSON document shape, compiled to one straight-line Python function.

`policy.contract` declares the input document (policy/schema/input-v1.json)
with the nodes below and calls `compile_check` once, at import. The result
checks a document in one function — no call per member, no interpretation of
a schema — which is what makes validating every decision cheap (issue 4,
acceptance check 5: the check runs before every evaluation). Each node emits
the same tests, in the same order, with the same reasons, as a hand-written
check would; tests/policy/test_contract.py proves the compiled function agrees
with the JSON Schema (via ``jsonschema``) at every limit and on generated
documents.

Only constants of this module's callers reach the generated source: reasons
are ``repr``'d static strings, patterns and sets are passed in as named
constants, never spliced in as text.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

__all__ = [
    "Bool",
    "Enum",
    "Headers",
    "Int",
    "Ip",
    "Map",
    "Node",
    "Obj",
    "Str",
    "Strings",
    "compile_check",
]

_SURROGATE: Final = re.compile("[\ud800-\udfff]")
_OCTET: Final = "(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9][0-9]|[0-9])"
_IPV4: Final = re.compile(rf"{_OCTET}(?:\.{_OCTET}){{3}}")


def _ipv6_ok(value: str) -> bool:
    """JSON Schema format ``ipv6`` as jsonschema checks it, without a zone id."""
    try:
        return not ipaddress.IPv6Address(value).scope_id
    except ValueError:
        return False


class _Gen:
    """Source lines of the function being built, and the constants it names."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.namespace: dict[str, Any] = {
            "_MISSING": _MISSING,
            "_surrogate": _SURROGATE.search,
            "_ipv4": _IPV4.fullmatch,
            "_ipv6_ok": _ipv6_ok,
        }
        self._vars = 0

    def const(self, value: object) -> str:
        name = f"_k{len(self.namespace)}"
        self.namespace[name] = value
        return name

    def var(self) -> str:
        self._vars += 1
        return f"v{self._vars}"

    def emit(self, depth: int, text: str) -> None:
        self.lines.append("    " * depth + text)

    def fail(self, depth: int, condition: str, reason: str) -> None:
        self.emit(depth, f"if {condition}:")
        self.emit(depth + 1, f"return {reason!r}")


_MISSING: Final = object()


def _reasons(path: str) -> tuple[str, str, str]:
    """(type, value, too_long) reasons of `path`."""
    return (f"input:type:{path}", f"input:value:{path}", f"input:too_long:{path}")


class Node:
    """One member's shape; `emit` writes tests of the variable `v` that return the
    reason on the first failure and fall through when `v` is valid."""

    def emit(self, g: _Gen, v: str, depth: int) -> None:
        raise NotImplementedError


@dataclass(frozen=True)
class Str(Node):
    """A string; `pattern` is anchored with ECMA-262 meaning (the whole string)."""

    path: str
    max_len: int | None = None
    min_len: int = 0
    pattern: str | None = None
    nullable: bool = False

    def emit(self, g: _Gen, v: str, depth: int) -> None:
        bad_type, bad_value, too_long = _reasons(self.path)
        g.emit(depth, f"if not isinstance({v}, str):")
        if self.nullable:
            g.fail(depth + 1, f"{v} is not None", bad_type)
        else:
            g.emit(depth + 1, f"return {bad_type!r}")
        g.emit(depth, "else:")
        d = depth + 1
        if self.max_len is not None:
            g.fail(d, f"len({v}) > {self.max_len}", too_long)
        if self.min_len:
            g.fail(d, f"len({v}) < {self.min_len}", bad_value)
        g.fail(d, f"not {v}.isascii() and _surrogate({v}) is not None", bad_value)
        if self.pattern is not None:
            regex = re.compile(self.pattern.removeprefix("^").removesuffix("$"))
            g.fail(d, f"{g.const(regex.fullmatch)}({v}) is None", bad_value)


@dataclass(frozen=True)
class Enum(Node):
    path: str
    values: tuple[str, ...]

    def emit(self, g: _Gen, v: str, depth: int) -> None:
        allowed = g.const(frozenset(self.values))
        g.fail(depth, f"not isinstance({v}, str) or {v} not in {allowed}", _reasons(self.path)[1])


@dataclass(frozen=True)
class Bool(Node):
    path: str

    def emit(self, g: _Gen, v: str, depth: int) -> None:
        g.fail(depth, f"not isinstance({v}, bool)", _reasons(self.path)[0])


@dataclass(frozen=True)
class Int(Node):
    """JSON Schema's ``integer`` (an int that is not a bool, or an integral float)
    between `low` and `high`."""

    path: str
    low: int
    high: int
    nullable: bool = False

    def emit(self, g: _Gen, v: str, depth: int) -> None:
        bad_type, bad_value, _ = _reasons(self.path)
        if self.nullable:
            g.emit(depth, f"if {v} is not None:")
            depth += 1
        not_int = (
            f"isinstance({v}, bool) or not (isinstance({v}, int)"
            f" or (isinstance({v}, float) and {v}.is_integer()))"
        )
        g.fail(depth, not_int, bad_type)
        g.fail(depth, f"not ({self.low} <= {v} <= {self.high})", bad_value)


@dataclass(frozen=True)
class Strings(Node):
    """An array of strings."""

    path: str
    max_items: int
    max_len: int

    def emit(self, g: _Gen, v: str, depth: int) -> None:
        bad_type, bad_value, too_long = _reasons(self.path)
        g.fail(depth, f"not isinstance({v}, list)", bad_type)
        g.fail(depth, f"len({v}) > {self.max_items}", too_long)
        item = g.var()
        g.emit(depth, f"for {item} in {v}:")
        g.fail(depth + 1, f"not isinstance({item}, str)", bad_type)
        g.fail(depth + 1, f"len({item}) > {self.max_len}", too_long)
        g.fail(depth + 1, f"not {item}.isascii() and _surrogate({item}) is not None", bad_value)


@dataclass(frozen=True)
class Ip(Node):
    """JSON Schema formats ``ipv4`` / ``ipv6`` (no zone id), as jsonschema checks them."""

    path: str
    max_len: int = 64

    def emit(self, g: _Gen, v: str, depth: int) -> None:
        Str(self.path, max_len=self.max_len).emit(g, v, depth)
        # The IPv4 expression accepts exactly what IPv4Address does, ~10x faster.
        g.fail(depth, f"_ipv4({v}) is None and not _ipv6_ok({v})", _reasons(self.path)[1])


@dataclass(frozen=True)
class Map(Node):
    """An object with free keys (query parameters, route parameters)."""

    path: str
    max_props: int
    key: Str
    value: Node

    def emit(self, g: _Gen, v: str, depth: int) -> None:
        bad_type, _, too_long = _reasons(self.path)
        g.fail(depth, f"not isinstance({v}, dict)", bad_type)
        g.fail(depth, f"len({v}) > {self.max_props}", too_long)
        key, element = g.var(), g.var()
        g.emit(depth, f"for {key}, {element} in {v}.items():")
        self.key.emit(g, key, depth + 1)
        self.value.emit(g, element, depth + 1)


_HEADER_NAME: Final = r"^[a-z0-9!#$%&'*+.^_`|~-]{1,128}$"
_HEADER_VALUE: Final = r"^[^\u0000-\u0008\u000a-\u001f\u007f]*$"


@dataclass(frozen=True)
class Headers(Node):
    """Selected headers: token names, values without control characters (tab allowed).
    Printable ASCII — nearly every real value — skips the regular expression."""

    path: str
    max_props: int
    max_len: int
    known_names: int = 1024
    """How many distinct valid names to remember (header names are few in practice;
    a client sending new ones only stops more from being remembered)."""

    def emit(self, g: _Gen, v: str, depth: int) -> None:
        bad_type, bad_value, too_long = _reasons(self.path)
        name_ok = g.const(re.compile(_HEADER_NAME[1:-1]).fullmatch)
        value_ok = g.const(re.compile(_HEADER_VALUE[1:-1]).fullmatch)
        g.fail(depth, f"not isinstance({v}, dict)", bad_type)
        g.fail(depth, f"len({v}) > {self.max_props}", too_long)
        name, text = g.var(), g.var()
        d = depth + 1
        # Valid names seen before skip the expression: a bounded set of exact `str`s the
        # expression accepted (a pure fact about the string, safe to remember; never a
        # str subclass, whose __eq__ could claim to equal one).
        known = g.const(set())
        g.emit(depth, f"for {name}, {text} in {v}.items():")
        g.emit(d, f"if type({name}) is not str or {name} not in {known}:")
        g.fail(d + 1, f"not isinstance({name}, str) or {name_ok}({name}) is None", bad_value)
        g.emit(d + 1, f"if type({name}) is str and len({known}) < {self.known_names}:")
        g.emit(d + 2, f"{known}.add({name})")
        g.fail(d, f"not isinstance({text}, str)", bad_type)
        g.fail(d, f"len({text}) > {self.max_len}", too_long)
        g.emit(d, f"if {text}.isascii():")
        g.fail(d + 1, f"not {text}.isprintable() and {value_ok}({text}) is None", bad_value)
        g.emit(d, f"elif _surrogate({text}) is not None or {value_ok}({text}) is None:")
        g.emit(d + 1, f"return {bad_value!r}")


@dataclass(frozen=True)
class Obj(Node):
    """An object with a fixed set of members, checked in order; unknown ones are
    refused (after the members: a missing or malformed member is the reason first)."""

    path: str
    members: Mapping[str, Node]
    optional: frozenset[str] = field(default_factory=frozenset)
    nullable: bool = False

    def emit(self, g: _Gen, v: str, depth: int) -> None:
        prefix = f"{self.path}." if self.path else ""
        where = self.path or "$"
        if self.nullable:
            g.emit(depth, f"if {v} is not None:")
            depth += 1
        g.fail(depth, f"not isinstance({v}, dict)", f"input:type:{where}")
        present: list[str] = []
        for name, member in self.members.items():
            element = g.var()
            g.emit(depth, f"{element} = {v}.get({name!r}, _MISSING)")
            if name in self.optional:
                g.emit(depth, f"if {element} is not _MISSING:")
                member.emit(g, element, depth + 1)
                present.append(f"({element} is not _MISSING)")
            else:
                g.fail(depth, f"{element} is _MISSING", f"input:missing:{prefix}{name}")
                member.emit(g, element, depth)
        required = len(self.members) - len(present)
        count = " + ".join([str(required), *present])
        g.fail(depth, f"len({v}) != {count}", f"input:unknown:{where}")


def compile_check(root: Node, name: str = "check") -> Callable[[object], str | None]:
    """One function checking a document against `root`: None when valid, else the reason
    of the first failure. May raise on hostile objects (a raising ``__eq__``): callers
    turn that into a reason."""
    g = _Gen()
    g.emit(0, f"def {name}(doc):")
    root.emit(g, "doc", 1)
    g.emit(1, "return None")
    source = "\n".join(g.lines) + "\n"
    code = compile(source, f"<policy.validator:{name}>", "exec")
    exec(code, g.namespace)  # noqa: S102 — our own source, built from constants above
    check: Callable[[object], str | None] = g.namespace[name]
    check.__doc__ = f"Generated by policy.validator.compile_check ({len(g.lines)} lines)."
    return check
