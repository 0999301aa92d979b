"""A validator for the small JSON Schema (2020-12) subset the gateway schema uses.

The gateway configuration's published schema (``gateway/schema/gateway-v1.json``)
is also what the loader enforces: this module interprets it directly, so the
file operators read and the rules the loader applies cannot drift apart. It
stops at the first violation and names it by key path (``routes[2].timeout_ms``),
which a general JSON Schema library does not do readably.

Only the keywords listed in `_KEYWORDS` are understood; a schema using any other
keyword is refused when loaded, so a future schema edit cannot silently be
ignored. Semantics follow the specification: ``integer`` accepts integral
floats, booleans are never numbers, ``enum``/``uniqueItems`` compare numbers by
value, patterns are ECMA-262 (a final ``$`` matches only at the end),
``anyOf`` reports the most specific failure of its branches.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from functools import cache
from typing import Any, Final

_KEYWORDS: Final = frozenset(
    {
        "type",
        "enum",
        "properties",
        "required",
        "additionalProperties",
        "propertyNames",
        "minProperties",
        "maxProperties",
        "items",
        "minItems",
        "maxItems",
        "uniqueItems",
        "minimum",
        "maximum",
        "minLength",
        "maxLength",
        "pattern",
        "anyOf",
        "$ref",
    }
)
_ANNOTATIONS: Final = frozenset(
    {"$schema", "$id", "$defs", "$comment", "title", "description", "default", "examples"}
)
_IDENTIFIER: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")


class GatewayConfigError(ValueError):
    """Invalid gateway configuration; `key` is the path of the offending key (dotted,
    with [i] for list items), e.g. ``routes[2].cluster``."""

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"{key}: {problem}" if key else problem)
        self.key = key
        self.problem = problem


def key_path(parent: str, key: str) -> str:
    """``parent.key``, or ``parent["odd key"]`` when the key is not identifier-like."""
    if _IDENTIFIER.fullmatch(key):
        return f"{parent}.{key}" if parent else key
    return f"{parent}[{json.dumps(key[:64])}]"


def check_schema(schema: Mapping[str, Any]) -> None:
    """Refuse a schema that uses a keyword this validator does not implement."""

    def walk(node: Any, where: str) -> None:
        if isinstance(node, list):
            for i, item in enumerate(node):
                walk(item, f"{where}[{i}]")
            return
        if not isinstance(node, dict):
            return
        for key, value in node.items():
            if key not in _KEYWORDS and key not in _ANNOTATIONS:
                raise GatewayConfigError(where, f"unsupported schema keyword {key!r}")
            if key == "properties" or key == "$defs":
                for name, sub in value.items():
                    walk(sub, f"{where}/{key}/{name}")
            elif key not in ("enum", "required", "examples", "default"):
                walk(value, f"{where}/{key}")

    walk(schema, "#")


def validate(doc: object, schema: Mapping[str, Any]) -> None:
    """Raise `GatewayConfigError` for the first place `doc` breaks `schema`."""
    _Validator(schema).check(doc, schema, "")


def _type_of(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "integer" if value.is_integer() else "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _canonical(value: object) -> str:
    """A key under which JSON-equal values (1 and 1.0) coincide and 1 and true do not."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return json.dumps(value, sort_keys=True)


def _in_enum(value: object, options: list[Any]) -> bool:
    if isinstance(value, str):  # the common case: a string equals only an equal string
        return any(isinstance(o, str) and o == value for o in options)
    return _canonical(value) in _canonical_set(json.dumps(options, sort_keys=True))


@cache
def _canonical_set(options_json: str) -> frozenset[str]:
    return frozenset(_canonical(o) for o in json.loads(options_json))


@cache
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(re.sub(r"\$$", r"\\Z", pattern))


class _Validator:
    def __init__(self, root: Mapping[str, Any]) -> None:
        self.root = root

    def resolve(self, ref: str) -> Mapping[str, Any]:
        if not ref.startswith("#/"):
            raise GatewayConfigError("", f"unsupported $ref {ref!r}")
        node: Any = self.root
        for part in ref[2:].split("/"):
            node = node[part]
        return dict(node)

    def check(self, value: object, schema: Mapping[str, Any], path: str) -> None:
        if "$ref" in schema:
            self.check(value, self.resolve(schema["$ref"]), path)
        if "anyOf" in schema:
            self._any_of(value, schema["anyOf"], path)
        if "enum" in schema and not _in_enum(value, schema["enum"]):
            options = ", ".join(json.dumps(v) for v in schema["enum"])
            raise GatewayConfigError(path, f"must be one of {options}")
        if "type" in schema:
            self._type(value, schema["type"], path)
        if isinstance(value, dict):
            self._object(value, schema, path)
        elif isinstance(value, list):
            self._array(value, schema, path)
        elif isinstance(value, str):
            self._string(value, schema, path)
        elif isinstance(value, int | float) and not isinstance(value, bool):
            self._number(value, schema, path)

    def _any_of(self, value: object, options: list[Mapping[str, Any]], path: str) -> None:
        failures: list[GatewayConfigError] = []
        for option in options:
            try:
                self.check(value, option, path)
            except GatewayConfigError as exc:
                failures.append(exc)
            else:
                return
        kinds = [self._describe(option) for option in options]
        actual = _type_of(value)
        fitting = [f for f, kind in zip(failures, kinds, strict=True) if kind == actual]
        if fitting:
            raise max(fitting, key=lambda f: len(f.key))
        raise GatewayConfigError(path, f"must be {' or '.join(kinds)}, not {actual}")

    def _describe(self, schema: Mapping[str, Any]) -> str:
        if "$ref" in schema:
            return self._describe(self.resolve(schema["$ref"]))
        kind = schema.get("type")
        if isinstance(kind, str):
            return kind
        return "a valid value"

    def _type(self, value: object, expected: str | list[str], path: str) -> None:
        names = [expected] if isinstance(expected, str) else expected
        actual = _type_of(value)
        ok = actual in names or (actual == "integer" and "number" in names)
        if not ok:
            raise GatewayConfigError(path, f"must be {' or '.join(names)}, not {actual}")

    def _object(self, value: dict[Any, Any], schema: Mapping[str, Any], path: str) -> None:
        props: Mapping[str, Any] = schema.get("properties", {})
        extra = schema.get("additionalProperties", True)
        for key in value:
            if not isinstance(key, str):
                raise GatewayConfigError(path, "object keys must be strings")
        if extra is False:
            for key in sorted(value):
                if key not in props:
                    allowed = ", ".join(sorted(props))
                    raise GatewayConfigError(
                        key_path(path, key), f"unknown key (allowed: {allowed})"
                    )
        for key in schema.get("required", ()):
            if key not in value:
                raise GatewayConfigError(key_path(path, key), "is required")
        if "minProperties" in schema and len(value) < schema["minProperties"]:
            raise GatewayConfigError(path, f"must have at least {schema['minProperties']} members")
        if "maxProperties" in schema and len(value) > schema["maxProperties"]:
            raise GatewayConfigError(path, f"must have at most {schema['maxProperties']} members")
        names = schema.get("propertyNames")
        for key in sorted(value):
            where = key_path(path, key)
            if names is not None:
                try:
                    self.check(key, names, where)
                except GatewayConfigError as exc:
                    raise GatewayConfigError(where, f"invalid name: {exc.problem}") from None
            if key in props:
                self.check(value[key], props[key], where)
            elif isinstance(extra, dict):
                self.check(value[key], extra, where)

    def _array(self, value: list[Any], schema: Mapping[str, Any], path: str) -> None:
        if "minItems" in schema and len(value) < schema["minItems"]:
            raise GatewayConfigError(path, f"must have at least {schema['minItems']} items")
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            raise GatewayConfigError(path, f"must have at most {schema['maxItems']} items")
        if schema.get("uniqueItems"):
            seen: set[str] = set()
            for i, item in enumerate(value):
                key = _canonical(item)
                if key in seen:
                    raise GatewayConfigError(f"{path}[{i}]", "duplicates an earlier item")
                seen.add(key)
        if "items" in schema:
            for i, item in enumerate(value):
                self.check(item, schema["items"], f"{path}[{i}]")

    def _string(self, value: str, schema: Mapping[str, Any], path: str) -> None:
        if "minLength" in schema and len(value) < schema["minLength"]:
            raise GatewayConfigError(path, f"must be at least {schema['minLength']} characters")
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            raise GatewayConfigError(path, f"must be at most {schema['maxLength']} characters")
        if "pattern" in schema and not _compiled(schema["pattern"]).search(value):
            what = f" ({schema['title']})" if "title" in schema else ""
            raise GatewayConfigError(path, f"must match {schema['pattern']}{what}")

    def _number(self, value: float, schema: Mapping[str, Any], path: str) -> None:
        if isinstance(value, float) and not math.isfinite(value):
            raise GatewayConfigError(path, "must be a finite number")
        if "minimum" in schema and value < schema["minimum"]:
            raise GatewayConfigError(path, f"must be at least {schema['minimum']}")
        if "maximum" in schema and value > schema["maximum"]:
            raise GatewayConfigError(path, f"must be at most {schema['maximum']}")
