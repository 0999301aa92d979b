"""Pipeline outcomes as ext_authz ``CheckResponse`` messages (envoy.service.auth.v3).

Allow: ``OkHttpResponse.headers`` with ``OVERWRITE_IF_EXISTS_OR_ADD`` (a client's
copy of one of these headers is replaced, never appended to), and
``headers_to_remove`` for every other ``x-ztgate-*`` header the request
carried — nothing internal that the edge did not set itself reaches the
upstream. The mask profile, decision id and partner also go to the filter's dynamic
metadata (namespace ``envoy.filters.http.ext_authz``), where the response's
ext_proc reads them; so does, for a verified signed request, what the
response signature is bound to (`gateway.response_signing.SignedRequest`).

Allow also adds ``response_headers_to_add`` for the client: the quota's
``RateLimit-Policy``/``RateLimit`` fields.

Deny: ``DeniedHttpResponse`` with the status, ``content-type:
application/json``, ``cache-control: no-store``, the ``WWW-Authenticate``
challenge of a 401, a 429's ``Retry-After`` and RateLimit fields, and the body
``{"error", "reason": [...], "decision_id"}``.
The gRPC status is UNAUTHENTICATED for a 401 and PERMISSION_DENIED otherwise.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Final

from envoy.config.core.v3.base_pb2 import HeaderValue, HeaderValueOption
from envoy.service.auth.v3.external_auth_pb2 import (
    CheckResponse,
    DeniedHttpResponse,
)
from envoy.type.v3.http_status_pb2 import HttpStatus
from google.rpc import code_pb2, status_pb2

from gateway.context import INTERNAL_PREFIX
from gateway.pipeline import Allow, Deny, Outcome

__all__ = ["check_response", "deny_response"]

_OVERWRITE: Final = HeaderValueOption.OVERWRITE_IF_EXISTS_OR_ADD
_UNAUTHENTICATED: Final = status_pb2.Status(code=code_pb2.UNAUTHENTICATED)
_PERMISSION_DENIED: Final = status_pb2.Status(code=code_pb2.PERMISSION_DENIED)
_DENY_HEADERS: Final = (
    HeaderValueOption(header=HeaderValue(key="content-type", value="application/json")),
    HeaderValueOption(header=HeaderValue(key="cache-control", value="no-store")),
)


def _varint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _field(tag: bytes, payload: bytes) -> bytes:
    """A length-delimited field: its key (`tag`, precomputed), length and payload."""
    return tag + _varint(len(payload)) + payload


_TAG1: Final = b"\x0a"  # field 1, length-delimited
_TAG2: Final = b"\x12"
_TAG3: Final = b"\x1a"
_TAG4: Final = b"\x22"
_TAG5: Final = b"\x2a"
_TAG6: Final = b"\x32"
_APPEND_OVERWRITE: Final = b"\x18" + _varint(_OVERWRITE)  # HeaderValueOption.append_action
_STATUS_OK: Final = _field(_TAG1, b"")  # CheckResponse.status, present, code OK (0)


def _header_option(name: str, value: str) -> bytes:
    """``HeaderValueOption{header: {key, value}, append_action: OVERWRITE_IF_EXISTS_OR_ADD}``."""
    header = _field(_TAG1, name.encode()) + _field(_TAG2, value.encode())
    return _field(_TAG1, header) + _APPEND_OVERWRITE


def _string_entry(key: str, value: str) -> bytes:
    """One ``Struct.fields`` map entry whose value is a ``Value.string_value``."""
    return _field(_TAG1, _field(_TAG1, key.encode()) + _field(_TAG2, _field(_TAG3, value.encode())))


def _allow_response(outcome: Allow, received: Iterable[str]) -> bytes:
    """The serialised ``CheckResponse``, written directly in protobuf wire format: an
    allow is the common answer, and filling the message and serialising it cost about
    four times as much. ``tests/gateway/test_responses.py`` holds it equal, message for
    message, to the one the protobuf library builds."""
    ok = [_field(_TAG2, _header_option(name, value)) for name, value in outcome.headers]
    set_here = {name for name, _ in outcome.headers}
    ok.extend(
        _field(_TAG5, name.encode())
        for name in received
        if name.startswith(INTERNAL_PREFIX) and name not in set_here
    )
    ok.extend(
        _field(_TAG6, _header_option(name, value)) for name, value in outcome.response_headers
    )
    metadata = [
        _string_entry("mask_profile", outcome.mask_profile),
        _string_entry("decision_id", outcome.decision_id),
    ]
    if outcome.client_id is not None:
        metadata.append(_string_entry("client_id", outcome.client_id))
    if outcome.signed_request is not None:
        metadata.extend(_string_entry(k, v) for k, v in outcome.signed_request.metadata())
    return _STATUS_OK + _field(_TAG3, b"".join(ok)) + _field(_TAG4, b"".join(metadata))


def deny_response(outcome: Deny) -> CheckResponse:
    body = json.dumps(
        {
            "error": outcome.error,
            "reason": list(outcome.reasons),
            "decision_id": outcome.decision_id,
        },
        separators=(",", ":"),
    )
    headers = list(_DENY_HEADERS)
    if outcome.challenge is not None:
        headers.append(
            HeaderValueOption(header=HeaderValue(key="www-authenticate", value=outcome.challenge))
        )
    headers.extend(
        HeaderValueOption(header=HeaderValue(key=name, value=value))
        for name, value in outcome.headers
    )
    return CheckResponse(
        status=_UNAUTHENTICATED if outcome.status == 401 else _PERMISSION_DENIED,
        denied_response=DeniedHttpResponse(
            status=HttpStatus(code=outcome.status),
            headers=headers,
            body=body,
        ),
    )


def check_response(outcome: Outcome, received: Iterable[str] = ()) -> bytes:
    """The serialised response for `outcome`; `received` are the request's header names."""
    if isinstance(outcome, Allow):
        return _allow_response(outcome, received)
    return bytes(deny_response(outcome).SerializeToString())
