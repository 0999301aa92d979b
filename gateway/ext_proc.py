"""Envoy's external processing service (envoy.service.ext_proc.v3.ExternalProcessor/Process)
on the same ``grpc.aio`` server as ext_authz: where responses are masked (issue 7).

The control plane sends the response of every route marked ``masking`` here
(response headers, then the buffered body; ``failure_mode_allow`` false). The
response phases go to `gateway.masking.service.ResponseMasker` (docs/masking.md):
the body is masked under the decision's mask profile (JR/T 0171-2020), error
bodies included, and a body that cannot be parsed — or a content type that is
not JSON — is blocked with a 502. The profile arrives as the dynamic metadata
ext_authz set (namespace ``envoy.filters.http.ext_authz``, keys ``mask_profile``
and ``decision_id``, forwarded through the filter's ``metadata_options``). A
stream without a valid profile is treated as ``strict``: the strictest profile is
the default (docs/policy.md). Any other phase gets the matching empty response,
which Envoy reads as CONTINUE with no mutation.

When ext_authz verified an RFC 9421 request signature, the same metadata carries
what the response must be bound to, and the masked response is signed by the
edge's key (`gateway.response_signing`); a response that cannot be signed is
blocked with a 502, never sent unsigned.

A message this processor does not understand (no phase set, or one added by a
later protocol version) ends the stream with INVALID_ARGUMENT: Envoy then fails
the request closed (5xx) instead of serving a response nobody examined.
"""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Final

import grpc
from envoy.service.ext_proc.v3 import external_processor_pb2_grpc
from envoy.service.ext_proc.v3.external_processor_pb2 import (
    BodyResponse,
    HeadersResponse,
    ProcessingRequest,
    ProcessingResponse,
    TrailersResponse,
)

from gateway.masking.service import MaskingSettings, ResponseMasker, default_settings
from gateway.response_signing import (
    MalformedSignedRequest,
    ResponseSigner,
    SignedRequest,
    StreamSigning,
    signed_request_from_metadata,
)

__all__ = ["AUTHZ_NAMESPACE", "DEFAULT_PROFILE", "ExternalProcessorService", "ResponseContext"]

log = logging.getLogger("ztgate.gateway.ext_proc")

AUTHZ_NAMESPACE: Final = "envoy.filters.http.ext_authz"
DEFAULT_PROFILE: Final = "strict"
_PROFILE: Final = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
_DECISION_ID: Final = re.compile(r"[A-Za-z0-9_.:-]{1,128}")

_CONTINUE: Final[dict[str, ProcessingResponse]] = {
    "request_headers": ProcessingResponse(request_headers=HeadersResponse()),
    "response_headers": ProcessingResponse(response_headers=HeadersResponse()),
    "request_body": ProcessingResponse(request_body=BodyResponse()),
    "response_body": ProcessingResponse(response_body=BodyResponse()),
    "request_trailers": ProcessingResponse(request_trailers=TrailersResponse()),
    "response_trailers": ProcessingResponse(response_trailers=TrailersResponse()),
}
"""Each phase's pass-through answer, built once (immutable by convention: never mutated)."""


@dataclass(frozen=True)
class ResponseContext:
    """What the decision says about one response: its mask profile and decision id."""

    mask_profile: str = DEFAULT_PROFILE
    decision_id: str | None = None
    from_decision: bool = False
    """Whether the profile came from the decision (False: the strict default)."""
    partner: str | None = None
    """The partner's client id when the decision carries one (``client_id``): the
    scope of its pseudonyms."""
    signed_request: SignedRequest | None = None
    """The verified request signature the response is bound to (and signed for)."""
    signed_unusable: bool = False
    """Signed-request metadata was there but did not parse: the response is blocked."""


def response_context(request: ProcessingRequest) -> ResponseContext:
    """The decision's metadata carried by `request`; the strict default when it is
    missing or malformed (a value not in the policy's profile syntax is not trusted)."""
    namespaces = request.metadata_context.filter_metadata
    if AUTHZ_NAMESPACE not in namespaces:
        return ResponseContext()
    fields = namespaces[AUTHZ_NAMESPACE].fields
    try:
        signed, unusable = signed_request_from_metadata(fields), False
    except MalformedSignedRequest:
        signed, unusable = None, True
    profile = fields["mask_profile"].string_value if "mask_profile" in fields else ""
    decision = fields["decision_id"].string_value if "decision_id" in fields else ""
    decision_id = decision if _DECISION_ID.fullmatch(decision) else None
    if not _PROFILE.fullmatch(profile):
        return ResponseContext(
            decision_id=decision_id, signed_request=signed, signed_unusable=unusable
        )
    client = fields["client_id"].string_value if "client_id" in fields else ""
    partner = client if _DECISION_ID.fullmatch(client) else None
    return ResponseContext(
        profile, decision_id, True, partner, signed_request=signed, signed_unusable=unusable
    )


class ExternalProcessorService(external_processor_pb2_grpc.ExternalProcessorServicer):  # type: ignore[misc]
    """The masking processor (see the module docstring)."""

    def __init__(
        self, settings: MaskingSettings | None = None, signer: ResponseSigner | None = None
    ) -> None:
        self._settings = settings
        self._signer = signer

    @property
    def settings(self) -> MaskingSettings:
        if self._settings is None:
            self._settings = default_settings()
        return self._settings

    async def Process(
        self, requests: AsyncIterator[ProcessingRequest], context: Any
    ) -> AsyncIterator[ProcessingResponse]:
        seen: ResponseContext | None = None
        masker: ResponseMasker | None = None
        signing: StreamSigning | None = None
        async for request in requests:
            phase = request.WhichOneof("request")
            answer = _CONTINUE.get(phase) if phase is not None else None
            if answer is None:
                log.warning(
                    "ext_proc message not understood; failing the request closed",
                    extra={"event": "gateway.ext_proc_bad_message"},
                )
                await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "unexpected ext_proc message")
                return
            if seen is None:
                seen = response_context(request)
                if log.isEnabledFor(logging.DEBUG):
                    log.debug(
                        "ext_proc stream",
                        extra={
                            "event": "gateway.ext_proc_stream",
                            "phase": phase,
                            "mask_profile": seen.mask_profile,
                            "from_decision": seen.from_decision,
                            "decision_id": seen.decision_id,
                        },
                    )
                masker = ResponseMasker(self.settings, seen.mask_profile, seen.partner)
                if seen.signed_request is not None or seen.signed_unusable:
                    signing = StreamSigning(
                        self._signer,
                        seen.signed_request,
                        unusable="bad_metadata" if seen.signed_unusable else None,
                    )
            if masker is not None and phase == "response_headers":
                answer = masker.headers(request)
                if signing is not None:
                    answer = signing.headers(request.response_headers, answer)
            elif masker is not None and phase == "response_body":
                answer = masker.body(request)
                if signing is not None:
                    answer = signing.body(request.response_body, answer)
            yield answer
            if answer.HasField("immediate_response"):
                return  # the response is replaced: Envoy sends nothing more for it


def add_to_server(
    server: grpc.aio.Server,
    settings: MaskingSettings | None = None,
    signer: ResponseSigner | None = None,
) -> None:
    """Register the processor on `server` (the worker's ext_authz server); `settings`
    default to the environment's (`gateway.masking.service`), read now, so that a
    broken rules file or key stops the worker from starting instead of failing
    every masked response. Without `signer`, responses to signed requests are
    blocked (`gateway.response_signing`)."""
    external_processor_pb2_grpc.add_ExternalProcessorServicer_to_server(
        ExternalProcessorService(settings or default_settings(), signer), server
    )
