"""Upstream clusters (active health checks, outlier detection, circuit breakers) and
the edge agent's clusters.

Endpoints are literal IP addresses (STATIC clusters): what an edge node dials is
fixed by the configuration, never by a DNS answer.

The agent runs N worker processes, each on its own loopback port; the ext_authz
cluster lists all of them (round robin, HTTP/2). A worker that stops answering
is ejected by outlier detection; while it is not yet ejected, the calls that
reach it fail and are denied (fail closed), never allowed.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from edge_nodes.listeners import uses_ext_proc
from edge_nodes.resources import (
    EXT_AUTHZ_CLUSTER,
    EXT_PROC_CLUSTER,
    UPSTREAM_HTTP_OPTIONS,
    millis,
)
from gateway.config import Cluster, Endpoint, GatewayConfig, OutlierDetection


def build_clusters(cfg: GatewayConfig) -> list[dict[str, Any]]:
    out = [_upstream(c) for c in cfg.clusters.values()]
    agent = [Endpoint(cfg.agent.address, port) for port in cfg.agent.ports]
    out.append(_agent_cluster(EXT_AUTHZ_CLUSTER, agent))
    if uses_ext_proc(cfg):
        out.append(_agent_cluster(EXT_PROC_CLUSTER, agent))
    return out


def _load_assignment(name: str, endpoints: Iterable[Endpoint]) -> dict[str, Any]:
    return {
        "cluster_name": name,
        "endpoints": [
            {
                "lb_endpoints": [
                    {
                        "endpoint": {
                            "address": {
                                "socket_address": {"address": e.address, "port_value": e.port}
                            }
                        }
                    }
                    for e in endpoints
                ]
            }
        ],
    }


def _http2() -> dict[str, Any]:
    return {
        UPSTREAM_HTTP_OPTIONS.rsplit("/", 1)[1]: {
            "@type": UPSTREAM_HTTP_OPTIONS,
            "explicit_http_config": {"http2_protocol_options": {}},
        }
    }


def _outlier(od: OutlierDetection) -> dict[str, Any]:
    return {
        "consecutive_5xx": od.consecutive_5xx,
        "consecutive_gateway_failure": od.consecutive_gateway_failure,
        "interval": millis(od.interval_ms),
        "base_ejection_time": millis(od.base_ejection_time_ms),
        "max_ejection_percent": od.max_ejection_percent,
    }


def _upstream(c: Cluster) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": c.name,
        "type": "STATIC",
        "connect_timeout": millis(c.connect_timeout_ms),
        "lb_policy": "ROUND_ROBIN",
        "load_assignment": _load_assignment(c.name, c.endpoints),
        "circuit_breakers": {
            "thresholds": [
                {
                    "priority": "DEFAULT",
                    "max_connections": c.max_connections,
                    "max_pending_requests": c.max_pending_requests,
                    "max_requests": c.max_requests,
                    "max_retries": 3,
                }
            ]
        },
    }
    if c.http2:
        out["typed_extension_protocol_options"] = _http2()
    if c.health_check is not None:
        hc = c.health_check
        out["health_checks"] = [
            {
                "timeout": millis(hc.timeout_ms),
                "interval": millis(hc.interval_ms),
                "no_traffic_interval": millis(hc.interval_ms),
                "unhealthy_threshold": hc.unhealthy_threshold,
                "healthy_threshold": hc.healthy_threshold,
                "http_health_check": {
                    "path": hc.path,
                    "codec_client_type": "HTTP2" if c.http2 else "HTTP1",
                },
            }
        ]
    if c.outlier_detection is not None:
        out["outlier_detection"] = _outlier(c.outlier_detection)
    return out


def _agent_cluster(name: str, endpoints: list[Endpoint]) -> dict[str, Any]:
    return {
        "name": name,
        "type": "STATIC",
        "connect_timeout": "0.250s",
        "lb_policy": "ROUND_ROBIN",
        "load_assignment": _load_assignment(name, endpoints),
        "typed_extension_protocol_options": _http2(),
        "outlier_detection": {
            "consecutive_5xx": 3,
            "consecutive_gateway_failure": 3,
            "interval": "1s",
            "base_ejection_time": "5s",
            "max_ejection_percent": 100,
        },
        "circuit_breakers": {
            "thresholds": [
                {
                    "priority": "DEFAULT",
                    "max_connections": 10_000,
                    "max_pending_requests": 10_000,
                    "max_requests": 10_000,
                    "max_retries": 0,
                }
            ]
        },
    }
