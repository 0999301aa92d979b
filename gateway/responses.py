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


def _allow_response(outcome: Allow, received: Iterable[str]) -> CheckResponse:
    """Filled in place (``add()`` and field assignment), which costs about a third of
    building the same message from keyword-constructed sub-messages."""
    response = CheckResponse()
    response.status.SetInParent()  # code OK (0)
    ok = response.ok_response
    ok.SetInParent()
    add = ok.headers.add
    for name, value in outcome.headers:
        option = add()
        option.header.key = name
        option.header.value = value
        option.append_action = _OVERWRITE
    for name, value in outcome.response_headers:
        option = ok.response_headers_to_add.add()
        option.header.key = name
        option.header.value = value
        option.append_action = _OVERWRITE
    set_here = {name for name, _ in outcome.headers}
    ok.headers_to_remove.extend(
        name for name in received if name.startswith(INTERNAL_PREFIX) and name not in set_here
    )
    fields = response.dynamic_metadata.fields
    fields["mask_profile"].string_value = outcome.mask_profile
    fields["decision_id"].string_value = outcome.decision_id
    if outcome.client_id is not None:
        fields["client_id"].string_value = outcome.client_id
    if outcome.signed_request is not None:
        for key, value in outcome.signed_request.metadata():
            fields[key].string_value = value
    return response


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


def check_response(outcome: Outcome, received: Iterable[str] = ()) -> CheckResponse:
    """The response for `outcome`; `received` are the request's header names."""
    if isinstance(outcome, Allow):
        return _allow_response(outcome, received)
    return deny_response(outcome)
