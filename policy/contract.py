"""The policy input document: validation on the hot path, and a realistic example.

Every decision is judged on one JSON document whose shape is fixed by
``policy/schema/input-v1.json`` (docs/policy.md describes it field by field).
`check_input` enforces exactly that schema — the same members, types, enums,
ranges, lengths and patterns — without a JSON Schema library: it runs on every
request and must cost tens of microseconds, not milliseconds.
tests/policy/test_contract.py proves the two agree on generated documents.

Fail closed (issue 4, acceptance check 4): malformed JSON, a missing member,
a wrong type, an unknown member, nesting deeper than `MAX_DEPTH` or more than
`MAX_INPUT_BYTES` of JSON give a short machine-readable reason such as
``input:missing:identity.subject`` — never an exception. Reasons are built
from static paths only, never from the caller's keys or values.

Beyond the schema, `check_input` refuses what is not JSON (non-string keys,
tuples, NaN) and strings holding lone UTF-16 surrogates (I-JSON, RFC 7493
§2.1): handing such a string to regorus' ``Engine.set_input`` crashes the
process.
"""

from __future__ import annotations

import copy
import ipaddress
import json
import re
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, Final

__all__ = [
    "CLASSIFICATIONS",
    "EXAMPLE_PATH",
    "INPUT_VERSION",
    "KINDS",
    "MAX_DEPTH",
    "MAX_INPUT_BYTES",
    "SCHEMA_PATH",
    "TRUST_LEVELS",
    "check_input",
    "example_input",
    "input_schema",
    "load_json",
    "parse_input_json",
]

MAX_INPUT_BYTES: Final = 1024 * 1024
"""Largest accepted JSON encoding of an input document (issue 4: > 1 MiB → deny)."""
MAX_DEPTH: Final = 32
"""Deepest accepted nesting of objects and arrays (a valid document is 4 deep)."""
INPUT_VERSION: Final = "1"
SCHEMA_PATH: Final = Path(__file__).parent / "schema" / "input-v1.json"
KINDS: Final = ("customer", "partner", "staff", "anonymous")
TRUST_LEVELS: Final = ("bound_with_key", "bound", "known", "new", "suspicious")
"""device_fingerprint.assessment.TrustLevel values, strongest first (the schema's enum)."""
CLASSIFICATIONS: Final = ("public", "account", "transfer", "partner", "staff")
_MAX_TIMESTAMP: Final = 2**53 - 1
_DEPTH_BUDGET: Final = 1_000_000

Check = Callable[[object], str | None]
"""A validator for one member: None when valid, else the full reason."""

_MISSING: Final = object()
_SURROGATE: Final = re.compile("[\ud800-\udfff]")


def _is_int(value: object) -> bool:
    """JSON Schema's ``integer``: an int that is not a bool, or an integral float."""
    if isinstance(value, bool):
        return False
    return isinstance(value, int) or (isinstance(value, float) and value.is_integer())


def _string(
    path: str,
    *,
    max_len: int | None = None,
    min_len: int = 0,
    pattern: str | None = None,
    nullable: bool = False,
) -> Check:
    """A string member; `pattern` is anchored with ECMA-262 meaning (whole string)."""
    fullmatch = (
        re.compile(pattern.removeprefix("^").removesuffix("$")).fullmatch if pattern else None
    )
    limit = max_len if max_len is not None else 1 << 62
    bad_type, bad_value, too_long = (f"input:{k}:{path}" for k in ("type", "value", "too_long"))
    surrogate = _SURROGATE.search

    def check(value: object) -> str | None:
        if not isinstance(value, str):
            return None if value is None and nullable else bad_type
        size = len(value)
        if size > limit:
            return too_long
        if size < min_len or (not value.isascii() and surrogate(value)):
            return bad_value
        if fullmatch is not None and fullmatch(value) is None:
            return bad_value
        return None

    return check


def _enum(path: str, values: tuple[str, ...]) -> Check:
    allowed = frozenset(values)
    reason = f"input:value:{path}"
    return lambda value: None if isinstance(value, str) and value in allowed else reason


def _boolean(path: str) -> Check:
    reason = f"input:type:{path}"
    return lambda value: None if isinstance(value, bool) else reason


def _integer(path: str, low: int, high: int, *, nullable: bool = False) -> Check:
    bad_type, bad_value = f"input:type:{path}", f"input:value:{path}"

    def check(value: object) -> str | None:
        if value is None and nullable:
            return None
        if not _is_int(value):
            return bad_type
        return None if low <= value <= high else bad_value  # type: ignore[operator]

    return check


def _map(path: str, max_props: int, key: Check, value_check: Check) -> Check:
    """An object with free keys (headers, query, params)."""
    bad_type, too_long = f"input:type:{path}", f"input:too_long:{path}"

    def check(value: object) -> str | None:
        if not isinstance(value, dict):
            return bad_type
        if len(value) > max_props:
            return too_long
        for name, element in value.items():
            reason = key(name) or value_check(element)
            if reason is not None:
                return reason
        return None

    return check


def _object(
    path: str, members: Mapping[str, Check], *, optional: Iterable[str] = (), nullable: bool = False
) -> Check:
    """An object with a fixed set of members; unknown ones are refused."""
    prefix = f"{path}." if path else ""
    skip = frozenset(optional)
    table = tuple((name, f"input:missing:{prefix}{name}", check) for name, check in members.items())
    bad_type, unknown = f"input:type:{path or '$'}", f"input:unknown:{path or '$'}"

    def check(value: object) -> str | None:
        if value is None and nullable:
            return None
        if not isinstance(value, dict):
            return bad_type
        seen = 0
        for name, missing, member in table:
            element = value.get(name, _MISSING)
            if element is _MISSING:
                if name in skip:
                    continue
                return missing
            seen += 1
            reason = member(element)
            if reason is not None:
                return reason
        return unknown if len(value) != seen else None

    return check


_OCTET: Final = "(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9][0-9]|[0-9])"
_IPV4: Final = re.compile(rf"{_OCTET}(?:\.{_OCTET}){{3}}").fullmatch


def _ip_address(path: str) -> Check:
    """JSON Schema formats ``ipv4`` / ``ipv6`` (no zone id), as jsonschema checks them."""
    base = _string(path, max_len=64)
    bad_value = f"input:value:{path}"

    def check(value: object) -> str | None:
        reason = base(value)
        if reason is not None:
            return reason
        assert isinstance(value, str)
        if _IPV4(value) is not None:  # exactly what IPv4Address accepts, ~10x faster
            return None
        try:
            return None if not ipaddress.IPv6Address(value).scope_id else bad_value
        except ValueError:
            return bad_value

    return check


def _strings(path: str, max_items: int, max_len: int) -> Check:
    """An array of strings; one loop, no call per item (the hot path's commonest shape)."""
    bad_type, bad_value, too_long = (f"input:{k}:{path}" for k in ("type", "value", "too_long"))
    surrogate = _SURROGATE.search

    def check(value: object) -> str | None:
        if not isinstance(value, list):
            return bad_type
        if len(value) > max_items:
            return too_long
        for item in value:
            if not isinstance(item, str):
                return bad_type
            if len(item) > max_len:
                return too_long
            if not item.isascii() and surrogate(item):
                return bad_value
        return None

    return check


def _timestamp(path: str, *, nullable: bool = False) -> Check:
    return _integer(path, 0, _MAX_TIMESTAMP, nullable=nullable)


# The same facts as policy/schema/input-v1.json, member by member.
_HEADER_NAME: Final = r"^[a-z0-9!#$%&'*+.^_`|~-]{1,128}$"
_HEADER_VALUE: Final = r"^[^\u0000-\u0008\u000a-\u001f\u007f]*$"
_PATH: Final = r"^/[^\u0000-\u0020\u007f?#]*$"
_HOST: Final = r"^[a-z0-9.:\[\]-]{1,262}$"


def _headers(path: str, max_props: int, max_len: int) -> Check:
    """Selected headers: token names, values without control characters (tab allowed).

    Printable ASCII — nearly every real value — skips the regular expression.
    """
    name_ok = re.compile(_HEADER_NAME[1:-1]).fullmatch
    value_ok = re.compile(_HEADER_VALUE[1:-1]).fullmatch
    surrogate = _SURROGATE.search
    bad_type, bad_value, too_long = (f"input:{k}:{path}" for k in ("type", "value", "too_long"))

    def check(value: object) -> str | None:
        if not isinstance(value, dict):
            return bad_type
        if len(value) > max_props:
            return too_long
        for name, text in value.items():
            if not isinstance(name, str) or name_ok(name) is None:
                return bad_value
            if not isinstance(text, str):
                return bad_type
            if len(text) > max_len:
                return too_long
            if text.isascii():
                if not text.isprintable() and value_ok(text) is None:
                    return bad_value
            elif surrogate(text) or value_ok(text) is None:
                return bad_value
        return None

    return check


_CHECK_DOCUMENT: Final = _object(
    "",
    {
        "version": _enum("version", (INPUT_VERSION,)),
        "request": _object(
            "request",
            {
                "method": _string("request.method", pattern=r"^[A-Z]{1,16}$"),
                "path": _string("request.path", max_len=2048, pattern=_PATH),
                "host": _string("request.host", pattern=_HOST),
                "headers": _headers("request.headers", 64, 4096),
                "query": _map(
                    "request.query",
                    64,
                    _string("request.query", max_len=256),
                    _strings("request.query", 32, 2048),
                ),
                "client_address": _ip_address("request.client_address"),
                "tls": _object(
                    "request.tls",
                    {
                        "ja4": _string(
                            "request.tls.ja4", pattern=r"^[A-Za-z0-9_]{1,128}$", nullable=True
                        ),
                        "client_cert_sha256": _string(
                            "request.tls.client_cert_sha256",
                            pattern=r"^[0-9a-f]{64}$",
                            nullable=True,
                        ),
                        "version": _string("request.tls.version", max_len=32, nullable=True),
                    },
                ),
            },
        ),
        "identity": _object(
            "identity",
            {
                "subject": _string("identity.subject", min_len=1, max_len=256, nullable=True),
                "kind": _enum("identity.kind", KINDS),
                "acr": _string("identity.acr", max_len=256, nullable=True),
                "amr": _strings("identity.amr", 16, 64),
                "auth_time": _timestamp("identity.auth_time", nullable=True),
                "scopes": _strings("identity.scopes", 64, 128),
                "client_id": _string("identity.client_id", min_len=1, max_len=256, nullable=True),
                "consent": _object(
                    "identity.consent",
                    {
                        "id": _string("identity.consent.id", min_len=1, max_len=256),
                        "status": _string("identity.consent.status", max_len=32),
                        "resources": _strings("identity.consent.resources", 256, 256),
                        "expires_at": _timestamp("identity.consent.expires_at"),
                    },
                    nullable=True,
                ),
                "roles": _strings("identity.roles", 32, 64),
            },
        ),
        "device": _object(
            "device",
            {
                "id": _string("device.id", min_len=1, max_len=256, nullable=True),
                "known": _boolean("device.known"),
                "bound_to_subject": _boolean("device.bound_to_subject"),
                "trust": _enum("device.trust", TRUST_LEVELS),
                "anomalies": _strings("device.anomalies", 32, 128),
            },
        ),
        "risk": _object(
            "risk",
            {
                "score": _integer("risk.score", 0, 100),
                "reasons": _strings("risk.reasons", 32, 128),
            },
        ),
        "route": _object(
            "route",
            {
                "id": _string("route.id", min_len=1, max_len=128),
                "api_product": _string("route.api_product", min_len=1, max_len=128),
                "classification": _enum("route.classification", CLASSIFICATIONS),
                "params": _map(
                    "route.params",
                    16,
                    _string("route.params", max_len=64),
                    _string("route.params", max_len=256),
                ),
            },
            optional=("params",),
        ),
        "time": _object("time", {"now": _timestamp("time.now")}),
    },
)


def _too_deep(doc: object) -> bool:
    """Nesting deeper than MAX_DEPTH; iterative, with bounded depth and work (cycles
    and shared sub-objects in a Python-built value cannot make it run away)."""
    stack: list[tuple[object, int]] = [(doc, 1)]
    budget = _DEPTH_BUDGET
    while stack and budget > 0:
        budget -= 1
        node, depth = stack.pop()
        if isinstance(node, dict):
            children: Iterable[object] = node.values()
        elif isinstance(node, list | tuple):
            children = node
        else:
            continue
        if depth > MAX_DEPTH:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


def check_input(doc: object) -> str | None:
    """None if `doc` is a well-formed policy input (input-v1.json), else the reason.

    Never raises. A valid document is shallow by construction, so nesting is
    measured only when the shape check has already failed, to give the more
    telling ``input:too_deep``.
    """
    try:
        reason = _CHECK_DOCUMENT(doc)
        if reason is not None and _too_deep(doc):
            return "input:too_deep"
        return reason
    except Exception:  # a hostile object (e.g. a raising __eq__); fail closed
        return "input:malformed"


def _refuse_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def load_json(raw: bytes) -> tuple[object, str | None]:
    """Parse JSON within the input limits: ``(value, None)`` or ``(None, reason)``.

    Never raises. The size is checked before parsing; NaN and Infinity are
    refused (not JSON, and regorus cannot take them). For bodies that wrap an
    input document (OPA's ``{"input": ...}``); still `check_input` the document.
    """
    if len(raw) > MAX_INPUT_BYTES:
        return None, "input:too_large"
    try:
        return json.loads(raw, parse_constant=_refuse_constant), None
    except RecursionError:
        return None, "input:too_deep"
    except (ValueError, TypeError):
        return None, "input:malformed_json"


def parse_input_json(raw: bytes) -> dict[str, Any] | str:
    """The validated input document encoded in `raw`, or why it is refused."""
    doc, reason = load_json(raw)
    if reason is None:
        reason = check_input(doc)
    if reason is not None:
        return reason
    assert isinstance(doc, dict)
    return doc


def input_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of the input document."""
    schema: dict[str, Any] = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    return schema


EXAMPLE_PATH: Final = SCHEMA_PATH.with_name("example-input-v1.json")
_EXAMPLE: Final[dict[str, Any]] = json.loads(EXAMPLE_PATH.read_text(encoding="utf-8"))
"""A customer reading an account balance at 2026-01-01T00:00:00Z (fixed, so tests are
deterministic): passkey login two minutes earlier, known bound device, low risk."""


def _merge(base: dict[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    for key, value in overrides.items():
        if isinstance(value, Mapping) and isinstance(base.get(key), dict):
            _merge(base[key], value)
        else:
            base[key] = copy.deepcopy(value)
    return base


def example_input(**overrides: Any) -> dict[str, Any]:
    """A realistic, valid input (~2 KB, policy/schema/example-input-v1.json): a
    customer reading an account balance, which the default bundle allows.

    `overrides` are merged deeply: ``example_input(risk={"score": 80})`` changes
    only the score; a non-object value (``consent={...}`` over null, a list)
    replaces what was there. The result is a fresh copy each time.
    """
    return _merge(copy.deepcopy(_EXAMPLE), overrides)
