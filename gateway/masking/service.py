"""Masking as the ext_proc processor applies it: one `ResponseMasker` per stream.

`gateway.ext_proc` hands over the two response phases of a masked route:

* **response headers** — remember the content type; a response with no body
  passes; a media type that is neither JSON nor a configured text type is
  blocked at once (an immediate 502 with the JSON error of `body`); otherwise the
  headers pass with ``content-length`` removed, since the masked body will differ
  in length (Envoy then frames it itself);
* **response body** — Envoy buffers the whole body (``response_body_mode:
  BUFFERED``); it is masked under the stream's profile and sent back as a body
  mutation, or blocked. A body that arrives without ``end_of_stream`` (not
  buffered) is blocked: half a document cannot be checked.

The route is the Envoy route name (``xds.route_name``, the gateway's route id),
which the control plane asks Envoy to send as a response attribute; without it
only the global rules apply. The pseudonym scope is the partner's client id if
the decision's metadata carries one (``client_id``); without it a profile whose
pseudonyms are per partner removes those values instead (fail closed).

Configuration, read once when a worker starts (`MaskingSettings.from_config`, from
the agent's ``[agent]`` table): ``masking_rules`` (a rules file; default the shipped
``rules/default.json``), ``masking_key_file`` (the pseudonym master key, ≥ 32 bytes,
not readable by group or others; without it a random key per process, so pseudonyms
are stable only within one process — said in a warning; ``ztgate up`` provisions
one), and ``masking_text_types`` (media types masked as text rather than blocked).
"""

from __future__ import annotations

import logging
import secrets
import stat
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, Final

from envoy.config.core.v3.base_pb2 import HeaderValue, HeaderValueOption
from envoy.service.ext_proc.v3.external_processor_pb2 import (
    BodyMutation,
    BodyResponse,
    CommonResponse,
    HeaderMutation,
    HeadersResponse,
    ImmediateResponse,
    ProcessingResponse,
)
from envoy.type.v3.http_status_pb2 import HttpStatus

from gateway.masking.body import BLOCKED_STATUS, blocked_body, is_json_type, mask_body, media_type
from gateway.masking.engine import MaskingEngine, Request
from gateway.masking.maskers import PseudonymKeys
from gateway.masking.rules import default_rules, load_rules

__all__ = ["ROUTE_ATTRIBUTE", "MaskingSettings", "ResponseMasker", "route_of"]

log = logging.getLogger("ztgate.gateway.masking")

ROUTE_ATTRIBUTE: Final = "xds.route_name"
EXT_PROC_NAMESPACE: Final = "envoy.filters.http.ext_proc"
_PASS_HEADERS: Final = ProcessingResponse(
    response_headers=HeadersResponse(
        response=CommonResponse(header_mutation=HeaderMutation(remove_headers=["content-length"]))
    )
)
_CONTINUE_HEADERS: Final = ProcessingResponse(response_headers=HeadersResponse())


@dataclass(frozen=True)
class MaskingSettings:
    """The engine and the media types masked as text."""

    engine: MaskingEngine
    text_types: frozenset[str] = field(default_factory=frozenset)

    @staticmethod
    def from_config(
        rules_path: Path | None = None,
        key_file: Path | None = None,
        text_types: tuple[str, ...] = (),
    ) -> MaskingSettings:
        """From the agent's configuration (`AgentConfig` ``masking_rules``,
        ``masking_key_file``, ``masking_text_types``); a bad file raises, naming it."""
        rules = load_rules(rules_path) if rules_path is not None else default_rules()
        if key_file is not None:
            keys = PseudonymKeys(_read_key(key_file))
        else:
            log.warning(
                "no masking_key_file: pseudonyms use a random per-process key",
                extra={"event": "gateway.masking_ephemeral_key"},
            )
            keys = PseudonymKeys(secrets.token_bytes(32))
        types = frozenset(t.strip().lower() for t in text_types if t.strip())
        return MaskingSettings(MaskingEngine(rules, keys), types)


def _read_key(path: Path) -> bytes:
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ValueError(f"{path}: the masking key must not be readable by group or others")
    return path.read_bytes()


@cache
def default_settings() -> MaskingSettings:
    """The shipped rules with a per-process key: for tests and tools that start an
    ext_proc service without an agent configuration."""
    return MaskingSettings.from_config()


def route_of(attributes: Any) -> str | None:
    """The route name Envoy sent as a processing attribute, if any."""
    if EXT_PROC_NAMESPACE not in attributes:
        return None
    fields = attributes[EXT_PROC_NAMESPACE].fields
    if ROUTE_ATTRIBUTE not in fields:
        return None
    name: str = fields[ROUTE_ATTRIBUTE].string_value
    return name or None


def blocked(step: str, reason: str) -> ProcessingResponse:
    """The response that replaces one the edge will not let out: `BLOCKED_STATUS` with a
    JSON reason ``<step>:<reason>`` (``masking`` here, ``signature`` in
    `gateway.response_signing`) and ``details`` Envoy logs."""
    return ProcessingResponse(
        immediate_response=ImmediateResponse(
            status=HttpStatus(code=BLOCKED_STATUS),
            headers=HeaderMutation(
                set_headers=[
                    HeaderValueOption(
                        header=HeaderValue(key="content-type", raw_value=b"application/json")
                    ),
                    HeaderValueOption(
                        header=HeaderValue(key="cache-control", raw_value=b"no-store")
                    ),
                ]
            ),
            body=blocked_body(reason, step),
            details=f"ztgate_{step}_{reason}",
        )
    )


def _blocked(reason: str) -> ProcessingResponse:
    return blocked("masking", reason)


def _header(headers: Any, name: str) -> str | None:
    for h in headers.headers.headers:
        if h.key.lower() == name:
            return str(h.raw_value.decode("latin-1") if h.raw_value else h.value)
    return None


class ResponseMasker:
    """The masking state of one ext_proc stream (one response)."""

    def __init__(self, settings: MaskingSettings, profile: str, partner: str | None = None) -> None:
        self.settings = settings
        self.profile = profile
        self.partner = partner
        self.route: str | None = None
        self.content_type: str | None = None

    def note_route(self, attributes: Any) -> None:
        self.route = route_of(attributes) or self.route

    def headers(self, request: Any) -> ProcessingResponse:
        """The answer to a ProcessingRequest's response-headers phase."""
        message = request.response_headers
        # Envoy puts attributes on the request (v3 since 1.31); older ones on the headers.
        self.note_route(message.attributes)
        self.note_route(request.attributes)
        self.content_type = _header(message, "content-type")
        if message.end_of_stream:
            return _CONTINUE_HEADERS  # no body follows: nothing to mask
        kind, _ = media_type(self.content_type)
        if not is_json_type(kind) and kind not in self.settings.text_types:
            self._log_block("content_type_not_allowed")
            return _blocked("content_type_not_allowed")
        return _PASS_HEADERS

    def body(self, request: Any) -> ProcessingResponse:
        """The answer to a ProcessingRequest's (buffered) response-body phase."""
        self.note_route(request.attributes)
        message = request.response_body
        if not message.end_of_stream:
            self._log_block("body_not_buffered")
            return _blocked("body_not_buffered")
        request = Request(self.route, self.profile, self.partner)
        outcome = mask_body(
            self.settings.engine,
            message.body,
            self.content_type,
            request,
            text_types=self.settings.text_types,
        )
        if log.isEnabledFor(logging.DEBUG):
            log.debug(
                "response masked",
                extra={
                    "event": "gateway.masking_applied",
                    "route": self.route,
                    "mask_profile": self.profile,
                    "blocked": outcome.blocked,
                },
            )
        if outcome.blocked:
            self._log_block(outcome.reason or "blocked")
            return _blocked(outcome.reason or "blocked")
        if not outcome.changed:
            return ProcessingResponse(response_body=BodyResponse())
        return ProcessingResponse(
            response_body=BodyResponse(
                response=CommonResponse(body_mutation=BodyMutation(body=outcome.body))
            )
        )

    def _log_block(self, reason: str) -> None:
        log.warning(
            "response blocked by masking",
            extra={
                "event": "gateway.masking_blocked",
                "reason": reason,
                "route": self.route,
                "mask_profile": self.profile,
            },
        )
