"""The edge listener: TLS (certificate and client CA from SDS), JA4 fingerprinting,
and the HTTP connection manager with the filter chain every request crosses.

Filter order, and why:

1. ``header_mutation`` — removes every client-supplied ``x-ztgate-*`` header
   (prefix match, so no name is missed) and writes the connection's JA4 into
   ``x-ztgate-ja4`` (OVERWRITE_IF_EXISTS_OR_ADD). It runs before ext_authz
   because route-level header additions are applied by the router, after
   ext_authz (STANDARDS.md, Envoy).
2. ``local_ratelimit`` — routes with a ``local_rate_limit`` get one token bucket
   per route here, before ext_authz, so a flood is refused without asking the agent.
3. ``ext_authz`` — the edge agent decides; a failure or a timeout is a deny
   (``failure_mode_allow: false``). Only the headers the pipeline needs are
   sent; the route's facts travel as per-route context extensions.
4. ``local_ratelimit`` once more, named `PARTNER_RATE_LIMIT_FILTER`: routes with a
   ``partner_rate_limit`` get a token bucket per partner, keyed on the
   ``x-ztgate-client`` header the allow set (ext_authz's upstream headers are
   applied before the next filter runs; a client's own copy was removed in 1).
5. ``buffer`` — the request-size limit (413 beyond it; per-route overrides).
6. ``ext_proc`` — response processing (masking, response signatures) on routes
   marked ``masking``; emitted only when some route is, disabled per route elsewhere.
7. ``router`` — without ``x-envoy-*`` headers in either direction.
"""

from __future__ import annotations

from typing import Any, Final

from edge_nodes.resources import (
    ADS_SOURCE,
    BUFFER,
    DOWNSTREAM_TLS,
    EXT_AUTHZ,
    EXT_AUTHZ_CLUSTER,
    EXT_PROC,
    EXT_PROC_CLUSTER,
    HCM,
    HEADER_MUTATION,
    LOCAL_RATE_LIMIT,
    ROUTER,
    TLS_INSPECTOR,
    millis,
)
from gateway.config import GatewayConfig, Listener

INTERNAL_HEADER_PREFIX: Final = "x-ztgate-"
CLIENT_HEADER: Final = "x-ztgate-client"
"""Set by the agent's allow for a partner (its client id): the per-partner bucket key."""
PARTNER_RATE_LIMIT_FILTER: Final = "ztgate.partner_local_ratelimit"
JA4_HEADER: Final = "x-ztgate-ja4"
DEVICE_SIGNALS_HEADER: Final = "x-device-signals"
AGENT_HEADERS: Final[tuple[dict[str, Any], ...]] = (
    {"exact": "authorization"},
    {"exact": "dpop"},
    {"exact": "user-agent"},
    {"prefix": "sec-ch-ua"},
    {"exact": DEVICE_SIGNALS_HEADER},
    {"exact": "content-type"},
    {"exact": "x-request-id"},
    # RFC 9421 / 9530 on signed routes (a signature may cover only these fields).
    {"exact": "signature"},
    {"exact": "signature-input"},
    {"exact": "content-digest"},
    {"exact": "idempotency-key"},
    {"prefix": INTERNAL_HEADER_PREFIX},
)
"""What ext_authz forwards to the agent (``allowed_headers``); method, path, host,
source address and peer certificate travel in the CheckRequest's own fields."""
CIPHERS_TLS12: Final = (
    "ECDHE-ECDSA-AES128-GCM-SHA256",
    "ECDHE-RSA-AES128-GCM-SHA256",
    "ECDHE-ECDSA-AES256-GCM-SHA384",
    "ECDHE-RSA-AES256-GCM-SHA384",
    "ECDHE-ECDSA-CHACHA20-POLY1305",
    "ECDHE-RSA-CHACHA20-POLY1305",
)
"""Forward-secret AEAD suites only (TLS 1.3 suites are not configurable in BoringSSL)."""
LOCAL_REPLIES: Final = {
    404: "not_found",
    408: "request_timeout",
    413: "request_too_large",
    431: "request_headers_too_large",
    502: "bad_gateway",
    503: "unavailable",
    504: "upstream_timeout",
}
"""Envoy's own error responses get a JSON body ``{"error": "<reason>"}``. Not 400, 401,
403 or 429: the agent's denials use those and keep the body it wrote."""


def route_config_name(listener: Listener) -> str:
    return f"{listener.name}-routes"


def uses_ext_proc(cfg: GatewayConfig) -> bool:
    return any(route.masking for route in cfg.routes)


def build_listener(cfg: GatewayConfig, listener: Listener) -> dict[str, Any]:
    chain: dict[str, Any] = {
        "filters": [
            {
                "name": "envoy.filters.network.http_connection_manager",
                "typed_config": {"@type": HCM, **_connection_manager(cfg, listener)},
            }
        ]
    }
    out: dict[str, Any] = {
        "name": listener.name,
        "address": {"socket_address": {"address": listener.address, "port_value": listener.port}},
        "filter_chains": [chain],
        "per_connection_buffer_limit_bytes": 64 * 1024,
    }
    if listener.tls is not None:
        out["listener_filters"] = [
            {
                "name": "envoy.filters.listener.tls_inspector",
                "typed_config": {"@type": TLS_INSPECTOR, "enable_ja4_fingerprinting": True},
            }
        ]
        chain["transport_socket"] = {
            "name": "envoy.transport_sockets.tls",
            "typed_config": {"@type": DOWNSTREAM_TLS, **_downstream_tls(listener)},
        }
    return out


def _downstream_tls(listener: Listener) -> dict[str, Any]:
    assert listener.tls is not None
    common: dict[str, Any] = {
        "tls_params": {
            "tls_minimum_protocol_version": listener.tls.min_version,
            "tls_maximum_protocol_version": "TLSv1_3",
            "cipher_suites": list(CIPHERS_TLS12),
        },
        "tls_certificate_sds_secret_configs": [
            {"name": listener.tls.certificate, "sds_config": ADS_SOURCE}
        ],
        "alpn_protocols": ["h2", "http/1.1"],
    }
    if listener.tls.client_ca is not None:
        common["validation_context_sds_secret_config"] = {
            "name": listener.tls.client_ca,
            "sds_config": ADS_SOURCE,
        }
    # A client certificate is optional at the handshake (public routes have none);
    # one that is presented must chain to the client CA, and the agent denies mTLS
    # routes that arrive without a validated peer certificate.
    return {"common_tls_context": common, "require_client_certificate": False}


def _connection_manager(cfg: GatewayConfig, listener: Listener) -> dict[str, Any]:
    limits = cfg.http
    protocol: dict[str, Any] = {
        "idle_timeout": millis(limits.idle_timeout_ms),
        "max_headers_count": limits.max_headers_count,
        # x_ztgate_subject would pass the prefix filter and then be read as
        # X-Ztgate-Subject by CGI/WSGI-style upstreams: refuse underscores outright.
        "headers_with_underscores_action": "REJECT_REQUEST",
    }
    if limits.max_connection_duration_ms is not None:
        protocol["max_connection_duration"] = millis(limits.max_connection_duration_ms)
    return {
        "stat_prefix": listener.name,
        "codec_type": "AUTO",
        "rds": {"route_config_name": route_config_name(listener), "config_source": ADS_SOURCE},
        "http_filters": _http_filters(cfg, listener),
        "normalize_path": True,
        "merge_slashes": True,
        "path_with_escaped_slashes_action": "REJECT_REQUEST",
        "max_request_headers_kb": limits.max_request_headers_kb,
        "common_http_protocol_options": protocol,
        "http2_protocol_options": {"max_concurrent_streams": 100},
        "request_timeout": millis(limits.request_timeout_ms),
        "request_headers_timeout": millis(limits.request_headers_timeout_ms),
        "stream_idle_timeout": millis(limits.stream_idle_timeout_ms),
        "use_remote_address": True,
        "xff_num_trusted_hops": 0,
        "forward_client_cert_details": "SANITIZE",
        "server_header_transformation": "OVERWRITE",
        "server_name": "ztgate",
        "generate_request_id": True,
        "preserve_external_request_id": False,
        "local_reply_config": _local_replies(),
    }


def _http_filters(cfg: GatewayConfig, listener: Listener) -> list[dict[str, Any]]:
    mutations: list[dict[str, Any]] = [
        {
            "remove_on_match": {
                "key_matcher": {"prefix": INTERNAL_HEADER_PREFIX, "ignore_case": True}
            }
        }
    ]
    if listener.tls is not None:
        mutations.append(
            {
                "append": {
                    "header": {"key": JA4_HEADER, "value": "%TLS_JA4_FINGERPRINT%"},
                    "append_action": "OVERWRITE_IF_EXISTS_OR_ADD",
                }
            }
        )
    filters: list[dict[str, Any]] = [
        {
            "name": "envoy.filters.http.header_mutation",
            "typed_config": {
                "@type": HEADER_MUTATION,
                "mutations": {
                    "request_mutations": mutations,
                    # HTTP/2 request trailers reach the upstream too.
                    "request_trailers_mutations": mutations[:1],
                },
            },
        },
        # Routes with a local_rate_limit get their token bucket per route (edge_nodes.routes);
        # here, before ext_authz, so a flood is refused without asking the agent.
        {
            "name": "envoy.filters.http.local_ratelimit",
            "typed_config": {"@type": LOCAL_RATE_LIMIT, "stat_prefix": "local_rate_limit"},
        },
        {"name": "envoy.filters.http.ext_authz", "typed_config": _ext_authz(cfg)},
        # Routes with a partner_rate_limit get a token bucket per partner here, after
        # ext_authz set x-ztgate-client (edge_nodes.routes.partner_rate_limit).
        {
            "name": PARTNER_RATE_LIMIT_FILTER,
            "typed_config": {"@type": LOCAL_RATE_LIMIT, "stat_prefix": "partner_rate_limit"},
        },
        {
            "name": "envoy.filters.http.buffer",
            "typed_config": {"@type": BUFFER, "max_request_bytes": cfg.http.max_request_bytes},
        },
    ]
    if uses_ext_proc(cfg):
        filters.append({"name": "envoy.filters.http.ext_proc", "typed_config": _ext_proc(cfg)})
    filters.append(
        {
            "name": "envoy.filters.http.router",
            "typed_config": {"@type": ROUTER, "suppress_envoy_headers": True},
        }
    )
    return filters


def _ext_authz(cfg: GatewayConfig) -> dict[str, Any]:
    return {
        "@type": EXT_AUTHZ,
        "grpc_service": {
            "envoy_grpc": {"cluster_name": EXT_AUTHZ_CLUSTER},
            "timeout": millis(cfg.agent.timeout_ms),
        },
        "transport_api_version": "V3",
        "failure_mode_allow": False,
        # The agent unreachable, failing or late: deny with 503 so that monitoring can
        # tell an outage from a policy decision (the agent's own denials are 401/403).
        "status_on_error": {"code": "ServiceUnavailable"},
        "include_peer_certificate": True,
        "allowed_headers": {"patterns": list(AGENT_HEADERS)},
        "validate_mutations": True,
        "decoder_header_mutation_rules": {"disallow_system": True, "disallow_is_error": True},
        "stat_prefix": "ztgate",
    }


def _ext_proc(cfg: GatewayConfig) -> dict[str, Any]:
    return {
        "@type": EXT_PROC,
        "grpc_service": {
            "envoy_grpc": {"cluster_name": EXT_PROC_CLUSTER},
            "timeout": millis(cfg.agent.ext_proc_timeout_ms),
        },
        "failure_mode_allow": False,
        "status_on_error": {"code": "ServiceUnavailable"},
        "processing_mode": {
            "request_header_mode": "SKIP",
            "response_header_mode": "SEND",
            "request_body_mode": "NONE",
            "response_body_mode": "BUFFERED",
            "request_trailer_mode": "SKIP",
            "response_trailer_mode": "SKIP",
        },
        "message_timeout": millis(cfg.agent.ext_proc_timeout_ms),
        # The route's name (the gateway's route id) picks the masking rules.
        "response_attributes": ["xds.route_name"],
        # The decision's obligations (e.g. the masking profile) reach the processor
        # as the dynamic metadata ext_authz set.
        "metadata_options": {
            "forwarding_namespaces": {"untyped": ["envoy.filters.http.ext_authz"]}
        },
        "stat_prefix": "ztgate",
    }


def _local_replies() -> dict[str, Any]:
    mappers = [
        {
            "filter": {
                "status_code_filter": {
                    "comparison": {
                        "op": "EQ",
                        "value": {
                            "default_value": code,
                            "runtime_key": f"ztgate.local_reply.{code}",
                        },
                    }
                }
            },
            "body_format_override": {
                "json_format": {"error": reason},
                "content_type": "application/json",
            },
        }
        for code, reason in LOCAL_REPLIES.items()
    ]
    return {"mappers": mappers}
