"""Reading an untrusted collector payload: bounded, strict JSON, checked against its schema.

The JSON Schemas in ``schema/`` (``web-v1.json``, ``mobile-v1.json``) are the
single source of truth: `compile_schema` turns the subset of JSON Schema 2020-12
they use into a fast checker at import time, and refuses any keyword it does not
implement, so the published schema and the enforced one cannot drift apart.

`read_payload` never raises anything but `PayloadError`, whose ``reason`` is a
short machine-readable code built only from schema names — never from the
payload's bytes — so it is safe to log and to return to a client:

=================== ==========================================================
``too_large``       more than ``max_payload_bytes``
``utf8``            not valid UTF-8 (RFC 8259 §8.1 requires UTF-8)
``json``            not JSON text
``duplicate_key``   an object repeats a member name (RFC 8259 §4 leaves the
                    meaning open; parsers disagree, so we refuse)
``non_finite``      ``NaN``/``Infinity`` (not JSON) or a number overflowing to ∞
``too_deep``        nesting deeper than ``max_depth``, anywhere
``surrogate``       a ``\\uD800``-style escape that is not half of a pair
``not_object``      the top level is not an object
``kind``            ``kind`` missing or not ``web``/``mobile``
``collector_version`` missing or not ``MAJOR.MINOR.PATCH``
``missing:<name>``  a required member is absent
``field:<path>``    a known member has the wrong type or is out of bounds
=================== ==========================================================

Unknown members are ignored (newer collectors may add signals), but they still
count towards the size and depth limits.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from importlib import resources
from typing import Any, Final

__all__ = ["SCHEMAS", "PayloadError", "compile_schema", "read_payload"]

Checker = Callable[[Any], str | None]
"""Returns None when the value is valid, else the failing member's path."""


class PayloadError(ValueError):
    """A payload refused; ``reason`` is one of the codes in the module doc."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    doc = dict(pairs)
    if len(doc) != len(pairs):
        raise PayloadError("duplicate_key")
    return doc


def _no_constants(name: str) -> Any:
    raise PayloadError("non_finite")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # 1e400
        raise PayloadError("non_finite")
    return value


_DECODER: Final = json.JSONDecoder(
    object_pairs_hook=_no_duplicates, parse_constant=_no_constants, parse_float=_finite_float
)


_SURROGATE_ESCAPE: Final = re.compile(r"\\u[dD][89a-fA-F]")


def _check_tree(doc: Any, max_depth: int, strings: bool) -> None:
    """Depth of every container and, when `strings`, that no string holds a lone
    surrogate — iteratively, so no input can exhaust the stack."""
    stack: list[tuple[Any, int]] = [(doc, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > max_depth:
            raise PayloadError("too_deep")
        values = node.values() if node.__class__ is dict else node
        if strings and node.__class__ is dict:
            for key in node:
                _check_string(key)
        for value in values:
            cls = value.__class__
            if cls is dict or cls is list:
                stack.append((value, depth + 1))
            elif strings and cls is str:
                _check_string(value)


def _check_string(value: str) -> None:
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise PayloadError("surrogate") from None


def parse_json(raw: bytes, *, max_bytes: int, max_depth: int) -> dict[str, Any]:
    """Strict, bounded JSON → a top-level object (see the module doc for the reasons)."""
    if len(raw) > max_bytes:
        raise PayloadError("too_large")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise PayloadError("utf8") from None
    try:
        doc = _DECODER.decode(text)
    except RecursionError:
        raise PayloadError("too_deep") from None
    except ValueError as exc:
        if isinstance(exc, PayloadError):
            raise
        raise PayloadError("json") from None  # JSONDecodeError, int digit limit
    if not isinstance(doc, dict):
        raise PayloadError("not_object")
    # Only a \uD800-\uDFFF escape can put a surrogate into a decoded string.
    _check_tree(doc, max_depth, strings=_SURROGATE_ESCAPE.search(text) is not None)
    return doc


# --- schema compilation -----------------------------------------------------------------

_KNOWN_KEYWORDS: Final = frozenset(
    {
        "$schema",
        "$id",
        "title",
        "description",
        "type",
        "const",
        "enum",
        "properties",
        "required",
        "items",
        "maxItems",
        "minLength",
        "maxLength",
        "pattern",
        "minimum",
        "maximum",
    }
)


_PLAIN_STRING: Final = frozenset(
    {"$schema", "$id", "title", "description", "type", "minLength", "maxLength", "pattern"}
)


def _integer(value: Any) -> bool:
    """JSON Schema's integer: any number with a zero fractional part (not a boolean)."""
    cls = value.__class__
    return cls is int or (cls is float and value.is_integer())


_TYPES: Final[dict[str, Callable[[Any], bool]]] = {
    "string": lambda v: v.__class__ is str,
    "boolean": lambda v: v.__class__ is bool,
    "null": lambda v: v is None,
    "object": lambda v: v.__class__ is dict,
    "array": lambda v: v.__class__ is list,
    "number": lambda v: v.__class__ is int or v.__class__ is float,
    "integer": _integer,
}
"""Exact classes: `json` only ever produces these, and bool must not pass for a number."""


def _anchored(pattern: str) -> re.Pattern[str]:
    """ECMA-262 semantics for ``^…$`` patterns: ``$`` is the end of the input (Python's
    ``$`` would also match before a final newline)."""
    if not (pattern.startswith("^") and pattern.endswith("$")):
        raise ValueError(f"pattern {pattern!r} must be anchored with ^…$")
    return re.compile(pattern[:-1] + r"\Z")


def compile_schema(schema: dict[str, Any], path: str = "") -> Checker:
    """A checker for `schema`, which must use only the keywords this module implements."""
    unknown = set(schema) - _KNOWN_KEYWORDS
    if unknown:
        raise ValueError(f"{path or '(root)'}: unsupported keywords {sorted(unknown)}")
    checks: list[Checker] = []
    where = path or "(root)"

    if schema.get("type") == "string" and set(schema) <= _PLAIN_STRING:
        # The commonest node (font names, languages): one function instead of three
        # (type, then length and pattern) — the same verdicts, a third of the calls.
        low_s, high_s = schema.get("minLength", 0), schema.get("maxLength", math.inf)
        regex_s = _anchored(schema["pattern"]) if "pattern" in schema else None

        def check_plain_string(v: Any) -> str | None:
            if v.__class__ is not str or not low_s <= len(v) <= high_s:
                return where
            return where if regex_s is not None and regex_s.match(v) is None else None

        return check_plain_string
    if "type" in schema:
        names = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        tests = [_TYPES[name] for name in names]  # KeyError: a type this module lacks
        if len(tests) == 1:
            (test,) = tests
            checks.append(lambda v: None if test(v) else where)
        else:
            checks.append(lambda v: None if any(t(v) for t in tests) else where)
    if "const" in schema:
        const = schema["const"]
        checks.append(lambda v: None if type(v) is type(const) and v == const else where)
    if "enum" in schema:
        allowed = list(schema["enum"])
        checks.append(
            lambda v: None if any(type(v) is type(a) and v == a for a in allowed) else where
        )
    if "minLength" in schema or "maxLength" in schema or "pattern" in schema:
        low, high = schema.get("minLength", 0), schema.get("maxLength", math.inf)
        regex = _anchored(schema["pattern"]) if "pattern" in schema else None

        def check_string(v: Any) -> str | None:
            if not isinstance(v, str):
                return None
            if not low <= len(v) <= high:
                return where
            return where if regex is not None and regex.match(v) is None else None

        checks.append(check_string)
    if "minimum" in schema or "maximum" in schema:
        low_n, high_n = schema.get("minimum", -math.inf), schema.get("maximum", math.inf)

        def check_number(v: Any) -> str | None:
            if isinstance(v, bool) or not isinstance(v, int | float):
                return None
            return None if low_n <= v <= high_n else where

        checks.append(check_number)
    if "properties" in schema or "required" in schema:
        props = {
            name: compile_schema(sub, f"{path}.{name}" if path else name)
            for name, sub in schema.get("properties", {}).items()
        }
        required = [
            (n, f"missing:{path}.{n}" if path else f"missing:{n}")
            for n in schema.get("required", ())
        ]

        def check_object(v: Any) -> str | None:
            if not isinstance(v, dict):
                return None
            for name, missing in required:
                if name not in v:
                    return missing
            for name, check in props.items():
                if name in v:
                    failed = check(v[name])
                    if failed is not None:
                        return failed
            return None

        checks.append(check_object)
    if "items" in schema or "maxItems" in schema:
        item = compile_schema(schema["items"], path) if "items" in schema else None
        most = schema.get("maxItems", math.inf)

        def check_array(v: Any) -> str | None:
            if not isinstance(v, list):
                return None
            if len(v) > most:
                return where
            if item is not None:
                for element in v:
                    failed = item(element)
                    if failed is not None:
                        return failed
            return None

        checks.append(check_array)

    if len(checks) == 1:
        return checks[0]

    def check(v: Any) -> str | None:
        for one in checks:
            failed = one(v)
            if failed is not None:
                return failed
        return None

    return check


def _load(name: str) -> dict[str, Any]:
    text = resources.files("device_fingerprint").joinpath("schema", name).read_text("utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


SCHEMAS: Final[dict[str, dict[str, Any]]] = {
    "web": _load("web-v1.json"),
    "mobile": _load("mobile-v1.json"),
}
_CHECKERS: Final[dict[str, Checker]] = {kind: compile_schema(s) for kind, s in SCHEMAS.items()}
_VERSION: Final = _anchored(SCHEMAS["web"]["properties"]["collector_version"]["pattern"])


def read_payload(raw: bytes, *, max_bytes: int, max_depth: int) -> dict[str, Any]:
    """Parse and validate one payload; the result conforms to its kind's schema."""
    doc = parse_json(raw, max_bytes=max_bytes, max_depth=max_depth)
    kind = doc.get("kind")
    if not isinstance(kind, str) or kind not in _CHECKERS:
        raise PayloadError("kind")
    version = doc.get("collector_version")
    if not isinstance(version, str) or _VERSION.match(version) is None:
        raise PayloadError("collector_version")
    failed = _CHECKERS[kind](doc)
    if failed is not None:
        raise PayloadError(failed if failed.startswith("missing:") else f"field:{failed}")
    return doc
