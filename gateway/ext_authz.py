"""Envoy's external authorization service (envoy.service.auth.v3.Authorization/Check)
on ``grpc.aio``: one `Pipeline` per worker process.

Per request: parse the CheckRequest into a `RequestContext` (a request that
cannot be judged is a 403 with its reason), run the pipeline (its own
deadline), and answer with a `CheckResponse` (`gateway.responses`). The
handler never lets an exception reach gRPC: Envoy would then deny with a bare
403 (``failure_mode_allow`` is false) but the client would get no reason and
the decision log no entry, so an unexpected error is ``403 gateway:error``.
"""

from __future__ import annotations

import logging
from typing import Any, Final

import grpc
from envoy.service.auth.v3.external_auth_pb2 import CheckRequest

from gateway import ext_proc
from gateway.context import RequestRejected, parse_check_request
from gateway.masking.service import MaskingSettings
from gateway.pipeline import Deny, Pipeline
from gateway.response_signing import ResponseSigner
from gateway.responses import check_response

__all__ = ["AuthorizationService", "start_server"]

log = logging.getLogger("ztgate.gateway.ext_authz")

SERVER_OPTIONS: Final = (
    ("grpc.so_reuseport", 0),  # one worker per port: a second bind must fail loudly
    ("grpc.max_receive_message_length", 1024 * 1024),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.max_pings_without_data", 0),
)


SERVICE: Final = "envoy.service.auth.v3.Authorization"


def _as_bytes(response: bytes) -> bytes:
    return response


class AuthorizationService:
    def __init__(self, pipeline: Pipeline) -> None:
        self._pipeline = pipeline

    async def Check(self, request: CheckRequest, context: Any) -> bytes:
        """The serialised ``CheckResponse`` (the server's serializer passes bytes on)."""
        try:
            try:
                ctx = parse_check_request(request)
            except RequestRejected as rejected:
                return check_response(self._pipeline.reject(rejected.reason))
            outcome = await self._pipeline.check(ctx)
            return check_response(outcome, ctx.headers)
        except Exception as exc:
            log.error(
                "ext_authz handler failed",
                exc_info=True,
                extra={"event": "gateway.handler_error", "error_type": type(exc).__name__},
            )
            try:
                return check_response(self._pipeline.reject("gateway:error"))
            except Exception:  # the decision log itself failed: still deny
                return check_response(Deny(403, "access_denied", ("gateway:error",), ""))


async def start_server(
    pipeline: Pipeline,
    host: str,
    port: int,
    masking: MaskingSettings | None = None,
    signer: ResponseSigner | None = None,
) -> tuple[grpc.aio.Server, int]:
    """Serve `pipeline` on ``host:port`` (plain gRPC; loopback only), with the response
    processor (`gateway.ext_proc`, with the response `signer`) beside it; port 0
    picks a free one. Returns the started server and its port."""
    server = grpc.aio.server(options=SERVER_OPTIONS)
    service = AuthorizationService(pipeline)
    check = grpc.unary_unary_rpc_method_handler(
        service.Check,
        request_deserializer=CheckRequest.FromString,
        response_serializer=_as_bytes,  # Check answers serialised (gateway.responses)
    )
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler(SERVICE, {"Check": check}),)
    )
    ext_proc.add_to_server(server, masking, signer)
    address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    try:
        bound = server.add_insecure_port(address)
    except RuntimeError as exc:
        raise OSError(f"cannot listen on {address}: {exc}") from None
    if bound == 0 or (port and bound != port):
        raise OSError(f"cannot listen on {address}")
    await server.start()
    return server, bound
