"""The Envoy resources generated from the gateway configuration: Envoy itself
accepts them (``envoy --mode validate``), they carry the settings the edge's
security rests on, and a snapshot is refused unless it is consistent."""

from __future__ import annotations

import copy
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from google.protobuf import json_format

from edge_nodes import pki, secrets, snapshot
from edge_nodes.envoy import envoy_binary
from edge_nodes.listeners import AGENT_HEADERS
from edge_nodes.resources import (
    CLUSTER,
    EXT_AUTHZ_CLUSTER,
    EXT_PROC_CLUSTER,
    LISTENER,
    ROUTE,
    SECRET,
    to_any,
)
from edge_nodes.snapshot import SnapshotError, check_consistent
from gateway import config
from gateway.config import GatewayConfig


@pytest.fixture(scope="module")
def state(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("state")
    pki.ensure_local_pki(d)
    return d


@pytest.fixture(scope="module")
def cfg(state: Path) -> GatewayConfig:
    return config.load_default(state)


@pytest.fixture(scope="module")
def docs(cfg: GatewayConfig) -> dict[str, dict[str, dict[str, Any]]]:
    return snapshot.generate(cfg, "edge-1", secrets.read_secrets(cfg))


def _static_bootstrap(docs: dict[str, dict[str, dict[str, Any]]]) -> dict[str, Any]:
    """The same resources as static configuration: RDS inlined, SDS by name."""
    listeners = copy.deepcopy(list(docs[LISTENER].values()))

    def inline(node: Any) -> None:
        if isinstance(node, dict):
            if "rds" in node:
                node["route_config"] = docs[ROUTE][node.pop("rds")["route_config_name"]]
            node.pop("sds_config", None)
            for value in node.values():
                inline(value)
        elif isinstance(node, list):
            for item in node:
                inline(item)

    inline(listeners)
    return {
        "node": {"id": "validate", "cluster": "validate"},
        "static_resources": {
            "listeners": listeners,
            "clusters": list(docs[CLUSTER].values()),
            "secrets": list(docs[SECRET].values()),
        },
    }


def test_envoy_accepts_the_default_configuration(
    docs: dict[str, dict[str, dict[str, Any]]], tmp_path: Path
) -> None:
    path = tmp_path / "static.json"
    path.write_text(json.dumps(_static_bootstrap(docs)))
    proc = subprocess.run(
        [str(envoy_binary()), "--mode", "validate", "-c", str(path), "--log-level", "error"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "OK" in proc.stdout


def _hcm(docs: dict[str, dict[str, dict[str, Any]]]) -> dict[str, Any]:
    listener = docs[LISTENER]["edge-https"]
    hcm: dict[str, Any] = listener["filter_chains"][0]["filters"][0]["typed_config"]
    return hcm


def test_connection_manager_normalises_and_limits(
    docs: dict[str, dict[str, dict[str, Any]]], cfg: GatewayConfig
) -> None:
    hcm = _hcm(docs)
    assert hcm["normalize_path"] is True and hcm["merge_slashes"] is True
    assert hcm["path_with_escaped_slashes_action"] == "REJECT_REQUEST"
    assert hcm["max_request_headers_kb"] == cfg.http.max_request_headers_kb
    proto = hcm["common_http_protocol_options"]
    assert proto["headers_with_underscores_action"] == "REJECT_REQUEST"
    assert proto["max_headers_count"] == cfg.http.max_headers_count
    assert hcm["request_headers_timeout"] == "10.000s" and hcm["request_timeout"] == "60.000s"
    assert hcm["use_remote_address"] is True and hcm["forward_client_cert_details"] == "SANITIZE"
    names = [f["name"].rsplit(".", 1)[1] for f in hcm["http_filters"]]
    assert names == [
        "header_mutation",
        "local_ratelimit",
        "ext_authz",
        "partner_local_ratelimit",
        "buffer",
        "ext_proc",
        "router",
    ]
    buffer = hcm["http_filters"][names.index("buffer")]["typed_config"]
    assert buffer["max_request_bytes"] == cfg.http.max_request_bytes


def test_internal_headers_are_stripped_first_and_ja4_overwrites(
    docs: dict[str, dict[str, dict[str, Any]]],
) -> None:
    config = _hcm(docs)["http_filters"][0]["typed_config"]["mutations"]
    mutations = config["request_mutations"]
    strip = {"remove_on_match": {"key_matcher": {"prefix": "x-ztgate-", "ignore_case": True}}}
    assert mutations[0] == strip and config["request_trailers_mutations"] == [strip]
    assert mutations[1]["append"] == {
        "header": {"key": "x-ztgate-ja4", "value": "%TLS_JA4_FINGERPRINT%"},
        "append_action": "OVERWRITE_IF_EXISTS_OR_ADD",
    }
    listener = docs[LISTENER]["edge-https"]
    inspector = listener["listener_filters"][0]["typed_config"]
    assert inspector["enable_ja4_fingerprinting"] is True


def test_ext_authz_fails_closed_with_only_the_needed_headers(
    docs: dict[str, dict[str, dict[str, Any]]], cfg: GatewayConfig
) -> None:
    authz = _filter(docs, "envoy.filters.http.ext_authz")
    assert authz["failure_mode_allow"] is False
    assert authz["grpc_service"] == {
        "envoy_grpc": {"cluster_name": EXT_AUTHZ_CLUSTER},
        "timeout": "0.250s",
    }
    assert authz["include_peer_certificate"] is True
    assert authz["allowed_headers"]["patterns"] == list(AGENT_HEADERS)
    cluster = docs[CLUSTER][EXT_AUTHZ_CLUSTER]
    endpoints = cluster["load_assignment"]["endpoints"][0]["lb_endpoints"]
    ports = [e["endpoint"]["address"]["socket_address"]["port_value"] for e in endpoints]
    assert ports == list(cfg.agent.ports) and cluster["lb_policy"] == "LEAST_REQUEST"
    assert "http2_protocol_options" in json.dumps(cluster["typed_extension_protocol_options"])
    # A slow worker is not ejected (that would pile its load on the others); a dead
    # one leaves rotation through the TCP health check.
    assert "outlier_detection" not in cluster
    (hc,) = cluster["health_checks"]
    assert "tcp_health_check" in hc and hc["interval"] == "1s"


def test_routes_carry_their_facts_and_ext_proc_only_where_masking(
    docs: dict[str, dict[str, dict[str, Any]]], cfg: GatewayConfig
) -> None:
    routes = docs[ROUTE]["edge-https-routes"]["virtual_hosts"][0]["routes"]
    by_name = {r["name"]: r for r in routes}
    assert (
        routes[-1]["name"] == "ztgate.not_found" and routes[-1]["direct_response"]["status"] == 404
    )
    for route in cfg.routes:
        generated = by_name[route.id]
        per_filter = generated["typed_per_filter_config"]
        ext = per_filter["envoy.filters.http.ext_authz"]["check_settings"]["context_extensions"]
        assert ext["route_id"] == route.id and ext["classification"] == route.classification
        assert ext["api_product"] == route.api_product
        assert ext["mtls"] == ("true" if route.mtls else "false")
        ext_proc = per_filter.get("envoy.filters.http.ext_proc")
        assert (ext_proc is None) == route.masking
        partner = per_filter.get("ztgate.partner_local_ratelimit")
        assert (partner is None) == (route.partner_rate_limit is None)
        if partner is not None:  # a dynamic bucket per x-ztgate-client value
            assert route.partner_rate_limit is not None
            action = partner["rate_limits"][0]["actions"][0]["request_headers"]
            assert action["header_name"] == "x-ztgate-client"
            (descriptor,) = partner["descriptors"]
            assert descriptor["entries"] == [{"key": action["descriptor_key"], "value": ""}]
            assert descriptor["token_bucket"]["max_tokens"] == route.partner_rate_limit.requests
            assert partner["always_consume_default_token_bucket"] is False
        assert generated["route"]["cluster"] == route.cluster
    assert any(r.partner_rate_limit for r in cfg.routes)  # the ob.* routes by default
    balances = by_name["accounts.balances"]["match"]
    assert balances["path_match_policy"]["typed_config"]["path_template"] == (
        "/api/accounts/{account_id}/balance"
    )
    assert balances["headers"] == [{"name": ":method", "string_match": {"exact": "GET"}}]
    processor = _filter(docs, "envoy.filters.http.ext_proc")
    assert processor["failure_mode_allow"] is False
    assert processor["processing_mode"]["response_body_mode"] == "BUFFERED"
    assert processor["grpc_service"]["envoy_grpc"]["cluster_name"] == EXT_PROC_CLUSTER


def test_no_ext_proc_anywhere_without_masking_routes(cfg: GatewayConfig) -> None:
    plain = GatewayConfig(
        cfg.listeners,
        cfg.clusters,
        tuple(r for r in cfg.routes if not r.masking),
        agent=cfg.agent,
        certificates=cfg.certificates,
        trusted_cas=cfg.trusted_cas,
    )
    docs = snapshot.generate(plain, "edge-1", secrets.read_secrets(plain))
    assert "ext_proc" not in json.dumps(docs)
    assert EXT_PROC_CLUSTER not in docs[CLUSTER]


def test_upstreams_have_health_checks_and_outlier_detection(
    docs: dict[str, dict[str, dict[str, Any]]],
) -> None:
    bank = docs[CLUSTER]["corebank"]
    (hc,) = bank["health_checks"]
    assert hc["http_health_check"]["path"] == "/healthz" and hc["unhealthy_threshold"] == 3
    assert bank["outlier_detection"]["consecutive_5xx"] == 5
    assert bank["circuit_breakers"]["thresholds"][0]["max_requests"] == 1024


def test_tls_comes_from_sds_and_client_certificates_are_optional(
    docs: dict[str, dict[str, dict[str, Any]]],
) -> None:
    tls = docs[LISTENER]["edge-https"]["filter_chains"][0]["transport_socket"]["typed_config"]
    common = tls["common_tls_context"]
    assert common["tls_certificate_sds_secret_configs"][0]["name"] == "edge-server"
    assert common["validation_context_sds_secret_config"]["name"] == "edge-client-ca"
    assert common["tls_params"]["tls_minimum_protocol_version"] == "TLSv1_2"
    assert tls["require_client_certificate"] is False
    assert set(docs[SECRET]) == {"edge-server", "edge-client-ca"}


def test_versions_follow_content(cfg: GatewayConfig) -> None:
    material = secrets.read_secrets(cfg)
    a = snapshot.build(cfg, "edge-1", material)
    assert snapshot.build(cfg, "edge-1", material).version == a.version
    assert snapshot.build(cfg, "edge-2", material).version == a.version  # no override
    changed = GatewayConfig(
        cfg.listeners,
        cfg.clusters,
        cfg.routes[:-1],
        cfg.control_plane,
        cfg.http,
        cfg.agent,
        cfg.certificates,
        cfg.trusted_cas,
    )
    b = snapshot.build(changed, "edge-1", material)
    differ = {t for t in a.types if a.types[t].version != b.types[t].version}
    assert differ == {ROUTE} and a.version != b.version


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (
            lambda d: d[ROUTE]["edge-https-routes"]["virtual_hosts"][0]["routes"][0][
                "route"
            ].update(cluster="gone"),
            "RouteConfiguration 'edge-https-routes' refers to unknown Cluster 'gone'",
        ),
        (
            lambda d: d[SECRET].pop("edge-server"),
            "Listener 'edge-https' refers to unknown Secret 'edge-server'",
        ),
        (
            lambda d: d[CLUSTER].pop(EXT_AUTHZ_CLUSTER),
            "Listener 'edge-https' refers to unknown Cluster 'ztgate_ext_authz'",
        ),
        (
            lambda d: d[ROUTE].pop("edge-https-routes"),
            "Listener 'edge-https' refers to unknown RouteConfiguration 'edge-https-routes'",
        ),
        (
            lambda d: d[ROUTE].update(extra={"name": "extra"}),
            "RouteConfiguration 'extra' is not used by any listener",
        ),
    ],
)
def test_inconsistent_snapshots_are_refused(
    docs: dict[str, dict[str, dict[str, Any]]], mutate: Any, message: str
) -> None:
    broken = copy.deepcopy(docs)
    mutate(broken)
    with pytest.raises(SnapshotError, match=message):
        check_consistent(broken)


def test_unknown_fields_never_reach_a_node() -> None:
    with pytest.raises(json_format.ParseError):
        to_any(CLUSTER, {"name": "x", "conect_timeout": "1s"})


def _filter(docs: Any, name: str) -> Any:
    """The typed config of the HTTP filter called `name` (order is checked elsewhere)."""
    return next(f["typed_config"] for f in _hcm(docs)["http_filters"] if f["name"] == name)
