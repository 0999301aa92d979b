"""Configuration pushes to a running Envoy: a route change applies without a restart;
an invalid resource is NACKed, reported, not resent, and traffic keeps flowing on
the last good configuration; a bad file is refused naming the key; incremental
xDS and per-node overrides work on a second node."""

from __future__ import annotations

import subprocess
import sys
import time
from typing import Any

from edge_nodes.routes import context_extensions
from gateway.config import Route
from tests.edge_nodes.conftest import NODE, Edge
from tests.edge_nodes.harness import (
    envoy_stats,
    free_port,
    http_request,
    start_envoy,
    stop_envoy,
    wait_for,
)

NEW_ROUTE = {
    "id": "new.feature",
    "prefix": "/new/",
    "cluster": "bank",
    "api_product": "products",
    "classification": "public",
}
# RE2 (Envoy) has no backreferences; Python's re accepts this, so only Envoy can say no.
BAD_ROUTE = {
    "id": "bad.regex",
    "regex": r"/bad/(a)\1",
    "cluster": "bank",
    "api_product": "products",
    "classification": "public",
}


def _ztgate_nodes(edge: Edge, *extra: str) -> str:
    proc = subprocess.run(
        [sys.executable, "-m", "ztgate", "nodes", "--control-plane", edge.cp.admin, *extra],
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.decode()


def test_route_change_applies_on_the_running_envoy(edge: Edge) -> None:
    pid = edge.envoy.pid
    before = envoy_stats(edge.envoy, "listener_manager.")
    assert http_request(edge.plain, "/new/x")[0] == 404
    doc = edge.config()
    doc["routes"].append(NEW_ROUTE)
    try:
        started = time.monotonic()
        status, body = edge.apply(doc)
        assert status == 200, body
        wait_for(lambda: http_request(edge.plain, "/new/x")[0] == 200, timeout=10, interval=0.005)
        elapsed = time.monotonic() - started
        print(f"route change: reload request to first routed request {elapsed * 1000:.0f} ms")
        assert edge.authz.checks[-1].context == context_extensions(
            Route("new.feature", "prefix", "/new/", "bank", "products", "public")
        )
        node = edge.wait_in_sync()
        assert node["acked_version"] == body["versions"][NODE]
        assert edge.envoy.pid == pid and edge.envoy.running()
        after = envoy_stats(edge.envoy, "listener_manager.")
        # Only the route table changed: no listener was replaced or drained.
        assert (
            after["listener_manager.listener_modified"]
            == before["listener_manager.listener_modified"]
        )
        assert after["listener_manager.total_listeners_draining"] == 0
    finally:
        edge.restore()
    assert http_request(edge.plain, "/new/x")[0] == 404


def test_rejected_resource_is_reported_not_resent_and_traffic_flows(edge: Edge) -> None:
    rds = "http.plain.rds.plain-routes."
    rejected_before = envoy_stats(edge.envoy, rds).get(rds + "update_rejected", 0)
    good_version = edge.cp.node(NODE)["acked_version"]
    doc = edge.config()
    doc["routes"].append(BAD_ROUTE)
    try:
        status, body = edge.apply(doc)
        assert status == 200, body  # nothing our checks can see is wrong with it

        def nacked() -> dict[str, Any] | None:
            node = edge.cp.node(NODE)
            return node if node["last_error"] and node["error_current"] else None

        node = wait_for(nacked)
        err = node["last_error"]
        assert err["type"] == "rds" and err["version"] == node["types"]["rds"]["sent_version"]
        assert "regex" in err["message"].lower() or "invalid" in err["message"].lower()
        assert node["acked_version"] == good_version and not node["in_sync"]
        responses = node["types"]["rds"]["responses"]

        # The node keeps serving its last good configuration.
        assert http_request(edge.plain, "/public/still-here")[0] == 200
        assert http_request(edge.plain, "/bad/aa")[0] == 404

        # ... and the rejected version is not offered again.
        time.sleep(1.5)
        node = edge.cp.node(NODE)
        assert node["types"]["rds"]["responses"] == responses
        assert node["types"]["rds"]["nacks"] == 1
        assert envoy_stats(edge.envoy, rds)[rds + "update_rejected"] == rejected_before + 1

        table = _ztgate_nodes(edge)
        line = next(row for row in table.splitlines() if row.startswith(NODE))
        assert "connected" in line and " no " in line and "rds" in line
        assert "rejected" in line and "(current)" in line
    finally:
        edge.restore()
    node = edge.cp.node(NODE)
    assert node["in_sync"] and not node["error_current"]
    assert "(past)" in _ztgate_nodes(edge)


def test_bad_file_is_refused_naming_the_key_and_old_config_serves(edge: Edge) -> None:
    version = edge.cp.node(NODE)["acked_version"]
    doc = edge.config()
    doc["routes"][1]["cluster"] = "corebank"
    try:
        status, body = edge.apply(doc)
        assert status == 422
        assert body == {
            "error": "invalid_config",
            "key": "routes[1].cluster",
            "problem": "unknown cluster 'corebank'",
        }
        doc = edge.config()
        doc["control_plane"]["xds_port"] = 1
        status, body = edge.apply(doc)
        assert (status, body["key"]) == (422, "control_plane.xds_port")
        edge.config_path.write_text("{not json")
        status, body = edge.cp.reload()
        assert status == 422 and "not valid JSON" in body["problem"]
        assert http_request(edge.plain, "/public/x")[0] == 200
        assert edge.cp.node(NODE)["acked_version"] == version
        assert edge.cp.node(NODE)["snapshot_version"] == version
    finally:
        edge.restore()


def test_registry_json_and_table(edge: Edge) -> None:
    import json

    doc = json.loads(_ztgate_nodes(edge, "--json"))
    (node,) = [n for n in doc["nodes"] if n["node_id"] == NODE]
    assert node["connected"] and node["build"].startswith("envoy/1.")
    assert set(node["types"]) == {"cds", "lds", "rds", "sds"}
    table = _ztgate_nodes(edge).splitlines()
    assert table[0].split() == [
        "NODE",
        "STATE",
        "WANTED",
        "ACKED",
        "SYNC",
        "LAST",
        "SEEN",
        "LAST",
        "ERROR",
    ]


def test_incremental_xds_node_with_its_own_ports(edge: Edge) -> None:
    """A second node on delta xDS, its listeners on per-node ports: it gets the same
    routes, follows a change, and NACKs are tracked for it too."""
    ports = {"plain": free_port(), "tls": free_port()}
    doc = edge.config()
    doc["nodes"] = {"edge-delta": {"listener_ports": ports}}
    status, body = edge.apply(doc)
    assert status == 200, body
    envoy = start_envoy(edge.dir / "envoy-delta", "edge-delta", edge.cp.xds_port, delta=True)
    try:
        edge.wait_in_sync("edge-delta")
        assert http_request(ports["plain"], "/public/x")[0] == 200
        doc["routes"].append(NEW_ROUTE)
        assert edge.apply(doc)[0] == 200
        wait_for(lambda: http_request(ports["plain"], "/new/x")[0] == 200)
        edge.wait_in_sync("edge-delta")
        doc["routes"].append(BAD_ROUTE)
        assert edge.apply(doc)[0] == 200
        node = wait_for(lambda: (n := edge.cp.node("edge-delta"))["error_current"] and n)
        assert node["last_error"]["type"] == "rds"
        time.sleep(1.0)
        assert (
            edge.cp.node("edge-delta")["types"]["rds"]["responses"]
            == node["types"]["rds"]["responses"]
        )
        assert http_request(ports["plain"], "/new/x")[0] == 200
    finally:
        stop_envoy(envoy)
        edge.restore()


def test_a_local_rate_limit_is_enforced_by_envoy_before_the_agent(edge: Edge) -> None:
    """A route's ``local_rate_limit`` is Envoy's token bucket: once empty, 429 with
    Retry-After, and the agent is not even asked."""
    doc = edge.config()
    limited = {**NEW_ROUTE, "local_rate_limit": {"requests": 3, "seconds": 60}}
    doc["routes"].append(limited)
    try:
        status, body = edge.apply(doc)
        assert status == 200, body
        wait_for(lambda: http_request(edge.plain, "/new/x")[0] == 200, timeout=10)
        statuses = []
        for _ in range(5):
            edge.clear()
            answer = http_request(edge.plain, "/new/x")
            statuses.append(answer[0])
            if answer[0] == 429:
                assert not edge.authz.checks  # refused before ext_authz
                assert answer[1]["retry-after"] == "60"
        assert statuses.count(429) >= 2 and statuses[-1] == 429, statuses
    finally:
        edge.restore()


def test_each_partner_has_its_own_local_bucket_on_a_node(edge: Edge) -> None:
    """A route's ``partner_rate_limit`` is Envoy's token bucket per partner, keyed on
    the ``x-ztgate-client`` the allow set: one partner emptying its bucket leaves
    another's untouched; a forged ``x-ztgate-client`` buys no one a fresh bucket."""
    doc = edge.config()
    limited = {**NEW_ROUTE, "partner_rate_limit": {"requests": 3, "seconds": 60}}
    doc["routes"].append(limited)

    def call(partner: str, **extra: str) -> tuple[int, dict[str, str]]:
        headers = {"authorization": f"Bearer partner:{partner}", **extra}
        status, fields, _ = http_request(edge.plain, "/new/x", headers=headers)
        return status, fields

    try:
        status, body = edge.apply(doc)
        assert status == 200, body
        wait_for(lambda: http_request(edge.plain, "/new/y")[0] == 200, timeout=10)
        budgetly = [call("budgetly") for _ in range(5)]
        statuses = [s for s, _ in budgetly]
        assert statuses[:3] == [200, 200, 200] and statuses[3:] == [429, 429], statuses
        refused = budgetly[-1][1]
        assert refused["retry-after"] == "60" and refused["x-ratelimit-limit"] == "3"
        edge.clear()
        assert call("budgetly")[0] == 429
        assert [r.path for r in edge.authz.checks] == ["/new/x"]  # asked first, then limited
        # Another partner on the same node has its own bucket...
        assert [call("harbourshield")[0] for _ in range(3)] == [200, 200, 200]
        assert call("harbourshield")[0] == 429
        # ...and a client's own x-ztgate-client is stripped before anyone reads it.
        assert call("budgetly", **{"x-ztgate-client": "someone-new"})[0] == 429
    finally:
        edge.restore()
