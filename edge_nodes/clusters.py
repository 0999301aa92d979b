"""Upstream clusters (active health checks, outlier detection, circuit breakers) and
the edge agent's clusters.

Endpoints are literal IP addresses (STATIC clusters): what an edge node dials is
fixed by the configuration, never by a DNS answer.

The agent runs N worker processes, each on its own loopback port; the ext_authz
cluster lists all of them (HTTP/2, least request: a call goes to the worker with
fewer calls in flight, so a worker that is momentarily slower gets less, not an
equal share). No outlier detection on the agent's cluster: it would eject a
live worker for slow answers under load (timeouts count as gateway failures),
leaving the others all the load — the ejection feeds itself. A TCP health check
(every second) takes a worker whose port is closed (dead, restarting) out of
rotation instead. A slow worker stays in: its late answers are denied by
Envoy's ext_authz timeout (``failure_mode_allow`` is false), as is every call
to a worker not yet marked down — fail closed, never allowed.
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
        "lb_policy": "LEAST_REQUEST",
        "load_assignment": _load_assignment(name, endpoints),
        "typed_extension_protocol_options": _http2(),
        "health_checks": [
            {
                "timeout": "0.5s",
                "interval": "1s",
                "no_traffic_interval": "1s",
                "unhealthy_threshold": 1,
                "healthy_threshold": 1,
                "tcp_health_check": {},
            }
        ],
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
