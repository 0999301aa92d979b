"""A response body in, a masked body or a block out (issue 7: "a body that cannot be
parsed on a masked route is blocked, not passed through").

* JSON media types (``application/json``, ``application/*+json``) are parsed,
  masked by the engine and re-serialised (UTF-8, compact). A body that is not
  valid JSON — truncated, compressed, ``NaN``, nested deeper than the engine
  takes — is blocked.
* An empty body passes: there is nothing in it.
* Any other media type is blocked, unless the route's configuration lists it in
  ``text_types``: then the body must be UTF-8 and the detector masks what it finds
  in it as text (a text body has no fields for rules to label).
* A blocked body is replaced by ``{"error": "response_blocked", "reason":
  "masking:<why>"}``, status 502: the upstream's answer could not be made safe.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from dataclasses import dataclass
from typing import Final

from gateway.masking import rawtext
from gateway.masking.engine import MaskingEngine, Request, TooDeep

__all__ = ["BLOCKED_STATUS", "BodyOutcome", "blocked_body", "is_json_type", "mask_body"]

BLOCKED_STATUS: Final = 502


@dataclass(frozen=True)
class BodyOutcome:
    """The body to send, and whether it is the upstream's (masked) or a block."""

    body: bytes
    blocked: bool = False
    reason: str | None = None
    changed: bool = True


def blocked_body(reason: str, step: str = "masking") -> bytes:
    """The JSON body of a blocked response: ``<step>:<reason>`` (``signature`` for
    `gateway.response_signing`)."""
    return json.dumps(
        {"error": "response_blocked", "reason": f"{step}:{reason}"}, separators=(",", ":")
    ).encode()


def media_type(content_type: str | None) -> tuple[str, str | None]:
    """(type/subtype lower-cased, charset or None) of a Content-Type value."""
    if not content_type:
        return "", None
    main, *params = content_type.split(";")
    charset = None
    for param in params:
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset":
            charset = value.strip().strip('"').lower()
    return main.strip().lower(), charset


def is_json_type(kind: str) -> bool:
    return kind == "application/json" or (
        kind.startswith("application/") and kind.endswith("+json")
    )


def _block(reason: str) -> BodyOutcome:
    return BodyOutcome(blocked_body(reason), blocked=True, reason=reason)


def mask_body(
    engine: MaskingEngine,
    body: bytes,
    content_type: str | None,
    request: Request,
    *,
    text_types: Collection[str] = (),
) -> BodyOutcome:
    """The masked `body` of a response with `content_type` (see the module docstring)."""
    if not body:
        return BodyOutcome(body, changed=False)
    kind, charset = media_type(content_type)
    if charset not in (None, "utf-8", "utf8"):
        return _block("unsupported_charset")
    if is_json_type(kind):
        try:
            doc, suspects = rawtext.parse(body)
        except ValueError:  # UnicodeDecodeError included
            return _block("unparseable_body")
        try:
            return BodyOutcome(engine.mask_json(doc, request, suspects=suspects).encode())
        except (TooDeep, RecursionError, UnicodeEncodeError):
            # UnicodeEncodeError: a lone surrogate (``"\ud800"``) cannot be sent as UTF-8.
            return _block("unparseable_body")
    if kind in text_types:
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            return _block("unparseable_body")
        return BodyOutcome(engine.mask_text(text, request).encode())
    return _block("content_type_not_allowed")
