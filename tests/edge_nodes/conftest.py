"""One edge for a test module: a control plane, a real Envoy attached to it, a
recording upstream and a recording agent; plus a way to change the configuration
and wait for the node to be back in sync."""

from __future__ import annotations

import copy
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from edge_nodes.envoy import LocalEnvoy
from edge_nodes.pki import Issued
from tests.edge_nodes.harness import (
    ControlPlaneThread,
    RecordingAuthz,
    RecordingUpstream,
    base_config,
    free_port,
    make_pki,
    start_envoy,
    stop_envoy,
    wait_for,
    write_config,
)

NODE = "edge-1"


@dataclass
class Edge:
    dir: Path
    upstream: RecordingUpstream
    authz: RecordingAuthz
    cp: ControlPlaneThread
    envoy: LocalEnvoy
    plain: int
    tls: int
    doc: dict[str, Any]
    ca: Issued
    client: Issued

    @property
    def config_path(self) -> Path:
        return self.cp.config_path

    def config(self) -> dict[str, Any]:
        return copy.deepcopy(self.doc)

    def apply(self, doc: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        write_config(self.config_path, doc)
        return self.cp.reload()

    def wait_in_sync(self, node: str = NODE, timeout: float = 10.0) -> dict[str, Any]:
        def synced() -> dict[str, Any] | None:
            status = self.cp.node(node)
            return status if status["in_sync"] and status["connected"] else None

        return wait_for(synced, timeout)

    def restore(self) -> None:
        status, body = self.apply(self.doc)
        assert status == 200, body
        self.wait_in_sync()

    def clear(self) -> None:
        self.upstream.clear()
        self.authz.checks.clear()
        self.authz.processed.clear()


@pytest.fixture(scope="module")
def edge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Edge]:
    d = tmp_path_factory.mktemp("edge")
    ca, _, client = make_pki(d)
    upstream = RecordingUpstream()
    authz = RecordingAuthz().start()
    plain, tls = free_port(), free_port()
    doc = base_config(
        upstream_port=upstream.port, agent_ports=[authz.port], plain_port=plain, tls_port=tls
    )
    cp = ControlPlaneThread(write_config(d / "gateway.json", doc))
    envoy = None
    try:
        envoy = start_envoy(d / "envoy", NODE, cp.xds_port)
        e = Edge(d, upstream, authz, cp, envoy, plain, tls, doc, ca, client)
        e.wait_in_sync()
        # Health checking has marked the upstream healthy before traffic is judged.
        wait_for(lambda: _healthy(e), 10)
        yield e
    finally:
        if envoy is not None:
            stop_envoy(envoy)
        cp.stop()
        authz.stop()
        upstream.stop()


def _healthy(e: Edge) -> bool:
    from tests.edge_nodes.harness import http_request

    status, _, _ = http_request(e.plain, "/public/probe")
    if status != 200:
        time.sleep(0.05)
    return status == 200


@pytest.fixture(scope="module")
def cp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlaneThread]:
    """A control plane and no Envoy: for driving the protocol or the admin API directly."""
    d = tmp_path_factory.mktemp("cp")
    make_pki(d)
    doc = base_config(
        upstream_port=free_port(), agent_ports=[9], plain_port=free_port(), tls_port=free_port()
    )
    cp = ControlPlaneThread(write_config(d / "gateway.json", doc), base=doc)
    yield cp
    cp.stop()
