"""Restarting the control plane does not interrupt traffic: Envoy keeps its last
configuration while the control plane is down, reconnects to the new process,
and the new process's first push changes nothing on the node. The control plane
runs as a real process (``ztgate control-plane``) and is killed with SIGKILL."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.edge_nodes.harness import (
    RecordingAuthz,
    RecordingUpstream,
    base_config,
    envoy_stats,
    free_port,
    http_request,
    make_pki,
    start_envoy,
    stop_envoy,
    wait_for,
    write_config,
)

NODE = "edge-restart"


class ControlPlaneProcess:
    def __init__(self, config: Path, xds_port: int, admin_port: int, log: Path) -> None:
        self._log = log.open("ab")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "ztgate",
                "control-plane",
                "--gateway-config",
                str(config),
                "--xds-port",
                str(xds_port),
                "--admin-port",
                str(admin_port),
            ],
            stdout=subprocess.PIPE,
            stderr=self._log,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        assert line, f"control plane did not start; see {log}"
        self.ports = json.loads(line)
        self.admin_port = admin_port

    def node(self) -> dict[str, Any] | None:
        import http.client

        conn = http.client.HTTPConnection("127.0.0.1", self.admin_port, timeout=5)
        try:
            conn.request("GET", "/nodes")
            doc = json.loads(conn.getresponse().read())
        finally:
            conn.close()
        nodes = [n for n in doc["nodes"] if n["node_id"] == NODE]
        return nodes[0] if nodes else None

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)
        self._log.close()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()


class Traffic:
    """Requests in a loop until stopped; every status is kept."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.statuses: list[int | str] = []
        self.times: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.statuses.append(http_request(self.port, "/public/traffic")[0])
            except OSError as exc:
                self.statuses.append(type(exc).__name__)
            self.times.append(time.monotonic())
            time.sleep(0.01)

    def stop(self) -> list[int | str]:
        self._stop.set()
        self._thread.join(10)
        return self.statuses


@pytest.fixture
def pieces(tmp_path: Path) -> Iterator[tuple[Path, RecordingUpstream, RecordingAuthz]]:
    make_pki(tmp_path)
    upstream, authz = RecordingUpstream(), RecordingAuthz().start()
    try:
        yield tmp_path, upstream, authz
    finally:
        authz.stop()
        upstream.stop()


def test_restarting_the_control_plane_does_not_interrupt_traffic(
    pieces: tuple[Path, RecordingUpstream, RecordingAuthz],
) -> None:
    d, upstream, authz = pieces
    plain, tls, xds, admin = free_port(), free_port(), free_port(), free_port()
    doc = base_config(
        upstream_port=upstream.port, agent_ports=[authz.port], plain_port=plain, tls_port=tls
    )
    # What is judged is the control plane's absence, not how fast this test's Python
    # ext_authz answers on a loaded machine: a generous check timeout keeps a slow
    # answer from becoming Envoy's 503.
    doc = {**doc, "agent": {**doc["agent"], "timeout_ms": 5000}}
    config = write_config(d / "gateway.json", doc)
    first = ControlPlaneProcess(config, xds, admin, d / "cp1.log")
    second = None
    envoy = start_envoy(d / "envoy", NODE, xds)
    try:
        synced = wait_for(lambda: (n := first.node()) is not None and n["in_sync"] and n)
        wait_for(lambda: http_request(plain, "/public/warm")[0] == 200)
        before = envoy_stats(envoy, "listener_manager.") | envoy_stats(envoy, "cluster_manager.")
        traffic = Traffic(plain)
        time.sleep(0.3)

        first.kill()
        killed = time.monotonic()
        wait_for(
            lambda: (
                envoy_stats(envoy, "control_plane.connected_state")["control_plane.connected_state"]
                == 0
            )
        )
        time.sleep(0.5)  # traffic flows while no control plane exists

        restarted = time.monotonic()
        second = ControlPlaneProcess(config, xds, admin, d / "cp2.log")
        node = wait_for(lambda: (n := second.node()) is not None and n["in_sync"] and n, timeout=15)
        reconnected = time.monotonic()
        time.sleep(0.3)
        statuses = traffic.stop()

        assert set(statuses) == {200}, [s for s in statuses if s != 200][:5]
        # Requests were served with no control plane, and while the node reconnected.
        assert any(killed < t < restarted for t in traffic.times)
        assert any(restarted < t < reconnected for t in traffic.times)
        assert node["acked_version"] == synced["acked_version"]
        # Nothing was re-sent for listeners and clusters (the node already held those
        # versions); routes and secrets were answered once, unchanged.
        assert node["types"]["lds"]["responses"] == 0 and node["types"]["cds"]["responses"] == 0
        after = envoy_stats(envoy, "listener_manager.") | envoy_stats(envoy, "cluster_manager.")
        for stat in (
            "listener_manager.listener_modified",
            "listener_manager.listener_removed",
            "listener_manager.listener_create_success",
            "cluster_manager.cluster_modified",
            "cluster_manager.cluster_removed",
        ):
            assert after[stat] == before[stat], stat
        assert after["listener_manager.total_listeners_draining"] == 0

        # The new control plane pushes changes as the old one did.
        doc["routes"].append(
            {
                "id": "after.restart",
                "prefix": "/after/",
                "cluster": "bank",
                "api_product": "p",
                "classification": "public",
            }
        )
        write_config(config, doc)
        import http.client

        conn = http.client.HTTPConnection("127.0.0.1", admin, timeout=10)
        conn.request("POST", "/config/reload")
        assert conn.getresponse().status == 200
        conn.close()
        wait_for(lambda: http_request(plain, "/after/x")[0] == 200)
    finally:
        stop_envoy(envoy)
        if second is not None:
            second.stop()
        if first.proc.poll() is None:
            first.stop()
