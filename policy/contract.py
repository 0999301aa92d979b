"""The policy input document: validation on the hot path, and a realistic example.

Every decision is judged on one JSON document whose shape is fixed by
``policy/schema/input-v1.json`` (docs/policy.md describes it field by field).
`check_input` enforces exactly that schema — the same members, types, enums,
ranges, lengths and patterns — without a JSON Schema library: it runs on every
request and must cost microseconds, not milliseconds, so the shape declared
below is compiled once into one Python function (`policy.validator`).
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
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Final

from policy.validator import Bool, Enum, Headers, Int, Ip, Map, Obj, Str, Strings, compile_check

__all__ = [
    "CLASSIFICATIONS",
    "ENVIRONMENTS",
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
ENVIRONMENTS: Final = ("production", "sandbox")
"""Which data a route serves and a partner may reach (absent: production)."""
_DEPTH_BUDGET: Final = 1_000_000
_TIMESTAMP: Final = (0, 2**53 - 1)
"""Timestamps: unix seconds, at most 2**53 - 1 (exact in every JSON implementation)."""
_PATH: Final = r"^/[^\u0000-\u0020\u007f?#]*$"
_HOST: Final = r"^[a-z0-9.:\[\]-]{1,262}$"

# The same facts as policy/schema/input-v1.json, member by member, compiled once into
# one function (policy.validator: no call per member on the hot path).
_SHAPE: Final = Obj(
    "",
    {
        "version": Enum("version", (INPUT_VERSION,)),
        "request": Obj(
            "request",
            {
                "method": Str("request.method", pattern=r"^[A-Z]{1,16}$"),
                "path": Str("request.path", max_len=2048, pattern=_PATH),
                "host": Str("request.host", pattern=_HOST),
                "headers": Headers("request.headers", 64, 4096),
                "query": Map(
                    "request.query",
                    64,
                    Str("request.query", max_len=256),
                    Strings("request.query", 32, 2048),
                ),
                "client_address": Ip("request.client_address"),
                "tls": Obj(
                    "request.tls",
                    {
                        "ja4": Str(
                            "request.tls.ja4", pattern=r"^[A-Za-z0-9_]{1,128}$", nullable=True
                        ),
                        "client_cert_sha256": Str(
                            "request.tls.client_cert_sha256",
                            pattern=r"^[0-9a-f]{64}$",
                            nullable=True,
                        ),
                        "version": Str("request.tls.version", max_len=32, nullable=True),
                    },
                ),
            },
        ),
        "identity": Obj(
            "identity",
            {
                "subject": Str("identity.subject", min_len=1, max_len=256, nullable=True),
                "kind": Enum("identity.kind", KINDS),
                "acr": Str("identity.acr", max_len=256, nullable=True),
                "amr": Strings("identity.amr", 16, 64),
                "auth_time": Int("identity.auth_time", *_TIMESTAMP, nullable=True),
                "scopes": Strings("identity.scopes", 64, 128),
                "client_id": Str("identity.client_id", min_len=1, max_len=256, nullable=True),
                "consent": Obj(
                    "identity.consent",
                    {
                        "id": Str("identity.consent.id", min_len=1, max_len=256),
                        "status": Str("identity.consent.status", max_len=32),
                        "resources": Strings("identity.consent.resources", 256, 256),
                        "expires_at": Int("identity.consent.expires_at", *_TIMESTAMP),
                    },
                    nullable=True,
                ),
                "roles": Strings("identity.roles", 32, 64),
                "partner": Obj(
                    "identity.partner",
                    {
                        "status": Str("identity.partner.status", max_len=32),
                        "allowed_networks": Strings("identity.partner.allowed_networks", 32, 64),
                        "rate_limit_tier": Str(
                            "identity.partner.rate_limit_tier", max_len=64, nullable=True
                        ),
                        "environment": Enum("identity.partner.environment", ENVIRONMENTS),
                    },
                    nullable=True,
                    optional=frozenset({"environment"}),
                ),
            },
            optional=frozenset({"partner"}),
        ),
        "device": Obj(
            "device",
            {
                "id": Str("device.id", min_len=1, max_len=256, nullable=True),
                "known": Bool("device.known"),
                "bound_to_subject": Bool("device.bound_to_subject"),
                "trust": Enum("device.trust", TRUST_LEVELS),
                "anomalies": Strings("device.anomalies", 32, 128),
            },
        ),
        "risk": Obj(
            "risk",
            {
                "score": Int("risk.score", 0, 100),
                "reasons": Strings("risk.reasons", 32, 128),
            },
        ),
        "route": Obj(
            "route",
            {
                "id": Str("route.id", min_len=1, max_len=128),
                "api_product": Str("route.api_product", min_len=1, max_len=128),
                "classification": Enum("route.classification", CLASSIFICATIONS),
                "environment": Enum("route.environment", ENVIRONMENTS),
                "params": Map(
                    "route.params",
                    16,
                    Str("route.params", max_len=64),
                    Str("route.params", max_len=256),
                ),
            },
            optional=frozenset({"params", "environment"}),
        ),
        "time": Obj("time", {"now": Int("time.now", *_TIMESTAMP)}),
    },
)
_CHECK_DOCUMENT: Final = compile_check(_SHAPE, "check_input_v1")


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
