"""The route table of one listener: each configured route, then a catch-all 404.

Each route carries its facts to the edge agent in ext_authz context extensions
(``route_id``, ``api_product``, ``classification``, ``mtls``, ``environment`` on
sandbox routes and, for templates, ``path_template``): the agent decides from what
Envoy matched, never from a copy of the configuration that could disagree. Matching
is case-sensitive and runs on the normalised path (the connection manager normalises
before routing), so the path the agent is told about is the path the upstream
receives.

mTLS routes are left out of listeners without a client CA (they could never
present a validated client certificate there).
"""

from __future__ import annotations

from typing import Any, Final

from edge_nodes.listeners import (
    CLIENT_HEADER,
    PARTNER_RATE_LIMIT_FILTER,
    route_config_name,
    uses_ext_proc,
)
from edge_nodes.resources import (
    BUFFER_PER_ROUTE,
    EXT_AUTHZ_PER_ROUTE,
    EXT_PROC_PER_ROUTE,
    LOCAL_RATE_LIMIT,
    URI_TEMPLATE,
    millis,
)
from gateway.config import GatewayConfig, Listener, LocalRateLimit, Route

NOT_FOUND_ROUTE: Final = "ztgate.not_found"
SECURITY_HEADERS: Final = (
    ("x-content-type-options", "nosniff"),
    ("cache-control", "no-store"),
)
HSTS: Final = ("strict-transport-security", "max-age=31536000")


SIGNED_BODY_LIMIT: Final = 64 * 1024
"""Body sent to the agent on a signed route without its own ``max_request_bytes``."""
PARTNER_DESCRIPTOR: Final = "ztgate_partner"
MAX_PARTNER_BUCKETS: Final = 10_000
"""Per-partner buckets a node keeps per route (least recently used evicted first)."""


def _bucket(limit: LocalRateLimit) -> dict[str, Any]:
    return {
        "max_tokens": limit.requests,
        "tokens_per_fill": limit.requests,
        "fill_interval": f"{limit.seconds}s",
    }


def _token_bucket_filter(stat_prefix: str, limit: LocalRateLimit, runtime: str) -> dict[str, Any]:
    always = {"default_value": {"numerator": 100, "denominator": "HUNDRED"}}
    return {
        "@type": LOCAL_RATE_LIMIT,
        "stat_prefix": stat_prefix,
        "token_bucket": _bucket(limit),
        "filter_enabled": {**always, "runtime_key": f"ztgate.{runtime}.enabled"},
        "filter_enforced": {**always, "runtime_key": f"ztgate.{runtime}.enforced"},
        "response_headers_to_add": [
            {
                "header": {"key": "retry-after", "value": str(limit.seconds)},
                "append_action": "OVERWRITE_IF_EXISTS_OR_ADD",
            }
        ],
        "enable_x_ratelimit_headers": "DRAFT_VERSION_03",
    }


def local_rate_limit(route: Route) -> dict[str, Any]:
    """Envoy's token bucket for `route` on this node: 429 with ``Retry-After`` and the
    draft RateLimit fields (``x-ratelimit-*``) once the bucket is empty."""
    assert route.local_rate_limit is not None
    return _token_bucket_filter(f"route_{route.id}", route.local_rate_limit, "local_rate_limit")


def partner_rate_limit(route: Route) -> dict[str, Any]:
    """Envoy's token bucket per partner for `route` on this node, for the filter after
    ext_authz: the route's own ``rate_limits`` action turns the ``x-ztgate-client``
    header into a descriptor entry, and a descriptor with an empty value is a dynamic
    one — one bucket per distinct partner (at most `MAX_PARTNER_BUCKETS`, least
    recently used evicted). A request without the header (no partner: the agent only
    sets it for partners) takes the default bucket, of the same size, shared by all
    such requests; a partner's request takes only its own."""
    limit = route.partner_rate_limit
    assert limit is not None
    out = _token_bucket_filter(f"partner_{route.id}", limit, "partner_rate_limit")
    out["descriptors"] = [
        {"entries": [{"key": PARTNER_DESCRIPTOR, "value": ""}], "token_bucket": _bucket(limit)}
    ]
    out["max_dynamic_descriptors"] = MAX_PARTNER_BUCKETS
    out["always_consume_default_token_bucket"] = False
    out["rate_limits"] = [
        {
            "actions": [
                {
                    "request_headers": {
                        "header_name": CLIENT_HEADER,
                        "descriptor_key": PARTNER_DESCRIPTOR,
                        "skip_if_absent": True,
                    }
                }
            ]
        }
    ]
    return out


def context_extensions(route: Route) -> dict[str, str]:
    """The route facts the agent reads (ext_authz ``CheckRequest.attributes.
    context_extensions``)."""
    out = {
        "route_id": route.id,
        "api_product": route.api_product,
        "classification": route.classification,
        "mtls": "true" if route.mtls else "false",
    }
    if route.signed:
        out["signed"] = "true"
    if route.environment != "production":
        out["environment"] = route.environment
    if route.match_kind == "template":
        out["path_template"] = route.match
    return out


def build_route_configuration(cfg: GatewayConfig, listener: Listener) -> dict[str, Any]:
    mtls_here = listener.tls is not None and listener.tls.client_ca is not None
    ext_proc = uses_ext_proc(cfg)
    routes = [_route(cfg, route, ext_proc) for route in cfg.routes if mtls_here or not route.mtls]
    routes.append(_not_found(ext_proc))
    response_headers = list(SECURITY_HEADERS)
    if listener.tls is not None:
        response_headers.append(HSTS)
    return {
        "name": route_config_name(listener),
        "validate_clusters": True,
        "virtual_hosts": [{"name": "edge", "domains": ["*"], "routes": routes}],
        "response_headers_to_add": [
            {"header": {"key": k, "value": v}, "append_action": "OVERWRITE_IF_EXISTS_OR_ADD"}
            for k, v in response_headers
        ],
        "response_headers_to_remove": ["x-envoy-upstream-service-time"],
    }


def _match(route: Route) -> dict[str, Any]:
    match: dict[str, Any]
    if route.match_kind == "path":
        match = {"path": route.match}
    elif route.match_kind == "prefix":
        match = {"prefix": route.match}
    elif route.match_kind == "regex":
        match = {"safe_regex": {"regex": route.match}}
    else:
        match = {
            "path_match_policy": {
                "name": "envoy.path.match.uri_template.uri_template_matcher",
                "typed_config": {"@type": URI_TEMPLATE, "path_template": route.match},
            }
        }
    if route.methods is not None:
        methods = sorted(route.methods)
        string_match = (
            {"exact": methods[0]}
            if len(methods) == 1
            else {"safe_regex": {"regex": "|".join(methods)}}
        )
        match["headers"] = [{"name": ":method", "string_match": string_match}]
    return match


def _route(cfg: GatewayConfig, route: Route, ext_proc: bool) -> dict[str, Any]:
    check_settings: dict[str, Any] = {"context_extensions": context_extensions(route)}
    if route.signed:  # the agent checks the RFC 9421 signature's Content-Digest
        check_settings["with_request_body"] = {
            "max_request_bytes": route.max_request_bytes or SIGNED_BODY_LIMIT,
            "allow_partial_message": False,
            "pack_as_bytes": True,
        }
    per_filter: dict[str, Any] = {
        "envoy.filters.http.ext_authz": {
            "@type": EXT_AUTHZ_PER_ROUTE,
            "check_settings": check_settings,
        }
    }
    if route.max_request_bytes is not None:
        per_filter["envoy.filters.http.buffer"] = {
            "@type": BUFFER_PER_ROUTE,
            "buffer": {"max_request_bytes": route.max_request_bytes},
        }
    if route.local_rate_limit is not None:
        per_filter["envoy.filters.http.local_ratelimit"] = local_rate_limit(route)
    if route.partner_rate_limit is not None:
        per_filter[PARTNER_RATE_LIMIT_FILTER] = partner_rate_limit(route)
    if ext_proc and not route.masking:
        per_filter["envoy.filters.http.ext_proc"] = {"@type": EXT_PROC_PER_ROUTE, "disabled": True}
    return {
        "name": route.id,
        "match": _match(route),
        "route": {"cluster": route.cluster, "timeout": millis(route.timeout_ms)},
        "typed_per_filter_config": per_filter,
    }


def _not_found(ext_proc: bool) -> dict[str, Any]:
    """Anything no route matches: 404 from Envoy, without asking the agent."""
    per_filter: dict[str, Any] = {
        "envoy.filters.http.ext_authz": {"@type": EXT_AUTHZ_PER_ROUTE, "disabled": True}
    }
    if ext_proc:
        per_filter["envoy.filters.http.ext_proc"] = {"@type": EXT_PROC_PER_ROUTE, "disabled": True}
    return {
        "name": NOT_FOUND_ROUTE,
        "match": {"prefix": "/"},
        "direct_response": {"status": 404, "body": {"inline_string": '{"error":"not_found"}'}},
        "response_headers_to_add": [
            {
                "header": {"key": "content-type", "value": "application/json"},
                "append_action": "OVERWRITE_IF_EXISTS_OR_ADD",
            }
        ],
        "typed_per_filter_config": per_filter,
    }
