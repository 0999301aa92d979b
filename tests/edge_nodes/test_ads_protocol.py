"""The ADS server's protocol rules, driven by a gRPC client that plays the node:
ACKs and NACKs, stale nonces, named subscriptions, reconnection with a held
version, rejected versions never re-offered, and incremental xDS."""

from __future__ import annotations

import copy
import queue
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from envoy.config.core.v3.base_pb2 import Node
from envoy.service.discovery.v3 import ads_pb2_grpc
from envoy.service.discovery.v3.discovery_pb2 import (
    DeltaDiscoveryRequest,
    DiscoveryRequest,
)
from google.rpc.status_pb2 import Status

from edge_nodes.resources import CLUSTER, ENDPOINT, ROUTE
from tests.edge_nodes.harness import (
    ControlPlaneThread,
    write_config,
)


class AdsClient:
    def __init__(self, port: int, *, delta: bool = False) -> None:
        self.channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        stub = ads_pb2_grpc.AggregatedDiscoveryServiceStub(self.channel)
        self._requests: queue.Queue[Any] = queue.Queue()
        self._responses: queue.Queue[Any] = queue.Queue()
        method = stub.DeltaAggregatedResources if delta else stub.StreamAggregatedResources
        call = method(iter(self._requests.get, None))
        threading.Thread(target=self._read, args=(call,), daemon=True).start()

    def _read(self, call: Any) -> None:
        try:
            for response in call:
                self._responses.put(response)
        except grpc.RpcError as exc:
            self._responses.put(exc)

    def send(self, request: Any) -> None:
        self._requests.put(request)

    def recv(self, timeout: float = 5.0) -> Any:
        item = self._responses.get(timeout=timeout)
        if isinstance(item, grpc.RpcError):
            raise item
        return item

    def quiet(self, seconds: float = 0.6) -> bool:
        try:
            item = self._responses.get(timeout=seconds)
        except queue.Empty:
            return True
        raise AssertionError(f"unexpected {type(item).__name__}: {item}")

    def close(self) -> None:
        self._requests.put(None)
        self.channel.close()


@pytest.fixture
def client(cp: ControlPlaneThread) -> Iterator[AdsClient]:
    c = AdsClient(cp.xds_port)
    yield c
    c.close()


def _apply(cp: ControlPlaneThread, change: Any = None) -> None:
    doc = copy.deepcopy(cp.base)  # type: ignore[attr-defined]
    if change is not None:
        change(doc)
    write_config(cp.config_path, doc)
    status, body = cp.reload()
    assert status == 200, body


def _node(node_id: str) -> Node:
    return Node(id=node_id, cluster="test")


def _interval(ms: int) -> Any:
    return lambda d: d["clusters"]["bank"]["health_check"].update(interval_ms=ms)


def test_subscribe_ack_then_quiet(cp: ControlPlaneThread, client: AdsClient) -> None:
    client.send(DiscoveryRequest(node=_node("py-ack"), type_url=CLUSTER))
    resp = client.recv()
    assert resp.type_url == CLUSTER and resp.version_info and resp.nonce
    names = sorted(_name(r) for r in resp.resources)
    assert names == ["bank", "ztgate_ext_authz", "ztgate_ext_proc"]
    client.send(
        DiscoveryRequest(
            type_url=CLUSTER, version_info=resp.version_info, response_nonce=resp.nonce
        )
    )
    assert client.quiet()
    node = cp.node("py-ack")
    assert node["types"]["cds"]["acked_version"] == resp.version_info


def _name(resource: Any) -> str:
    from envoy.config.cluster.v3.cluster_pb2 import Cluster

    cluster = Cluster()
    resource.Unpack(cluster)
    return str(cluster.name)


def test_nack_is_recorded_and_never_resent(cp: ControlPlaneThread, client: AdsClient) -> None:
    client.send(DiscoveryRequest(node=_node("py-nack"), type_url=CLUSTER))
    resp = client.recv()
    nack = DiscoveryRequest(
        type_url=CLUSTER,
        version_info="",
        response_nonce=resp.nonce,
        error_detail=Status(code=3, message="cluster bank: bad health check"),
    )
    client.send(nack)
    assert client.quiet(1.0)
    node = cp.node("py-nack")
    assert node["last_error"]["type"] == "cds" and node["error_current"]
    assert node["last_error"]["version"] == resp.version_info
    assert "bad health check" in node["last_error"]["message"]
    assert node["types"]["cds"]["responses"] == 1
    try:
        _apply(cp, _interval(1500))  # new content: a new version is worth sending
        fixed = client.recv()
        assert fixed.version_info != resp.version_info
    finally:
        _apply(cp)


def test_stale_nonce_is_ignored(cp: ControlPlaneThread, client: AdsClient) -> None:
    client.send(DiscoveryRequest(node=_node("py-stale"), type_url=CLUSTER))
    first = client.recv()
    try:
        _apply(cp, _interval(1700))
        assert client.quiet()  # one response in flight per type: waits for the ACK
        client.send(
            DiscoveryRequest(
                type_url=CLUSTER,
                response_nonce="not-a-nonce-we-sent",
                error_detail=Status(code=3, message="stale"),
            )
        )
        assert client.quiet()
        assert cp.node("py-stale")["last_error"] is None
        client.send(
            DiscoveryRequest(
                type_url=CLUSTER, version_info=first.version_info, response_nonce=first.nonce
            )
        )
        second = client.recv()
        assert second.version_info != first.version_info
    finally:
        _apply(cp)


def test_named_subscriptions_get_exactly_their_names(client: AdsClient) -> None:
    client.send(
        DiscoveryRequest(node=_node("py-rds"), type_url=ROUTE, resource_names=["plain-routes"])
    )
    resp = client.recv()
    assert len(resp.resources) == 1
    client.send(
        DiscoveryRequest(
            type_url=ROUTE,
            version_info=resp.version_info,
            response_nonce=resp.nonce,
            resource_names=["plain-routes", "tls-routes"],
        )
    )
    more = client.recv()
    assert more.version_info == resp.version_info and len(more.resources) == 2


def test_reconnection_with_the_current_version_gets_nothing(cp: ControlPlaneThread) -> None:
    first = AdsClient(cp.xds_port)
    first.send(DiscoveryRequest(node=_node("py-reconnect"), type_url=CLUSTER))
    version = first.recv().version_info
    first.close()
    again = AdsClient(cp.xds_port)
    try:
        again.send(
            DiscoveryRequest(node=_node("py-reconnect"), type_url=CLUSTER, version_info=version)
        )
        assert again.quiet()
        assert cp.node("py-reconnect")["types"]["cds"]["acked_version"] == version
    finally:
        again.close()


def test_rejected_version_is_not_reoffered_after_reconnection(cp: ControlPlaneThread) -> None:
    first = AdsClient(cp.xds_port)
    first.send(DiscoveryRequest(node=_node("py-rejected"), type_url=CLUSTER, version_info="older"))
    resp = first.recv()
    first.send(
        DiscoveryRequest(
            type_url=CLUSTER,
            version_info="older",
            response_nonce=resp.nonce,
            error_detail=Status(code=3, message="no"),
        )
    )
    assert first.quiet()
    first.close()
    # Same node, still holding its last good version: the rejected one is not offered.
    second = AdsClient(cp.xds_port)
    second.send(DiscoveryRequest(node=_node("py-rejected"), type_url=CLUSTER, version_info="older"))
    assert second.quiet()
    second.close()
    # A restarted node that holds nothing gets the current version (once).
    fresh = AdsClient(cp.xds_port)
    try:
        fresh.send(DiscoveryRequest(node=_node("py-rejected"), type_url=CLUSTER))
        assert fresh.recv().version_info == resp.version_info
    finally:
        fresh.close()


def test_types_it_does_not_serve_are_not_answered(client: AdsClient) -> None:
    client.send(DiscoveryRequest(node=_node("py-eds"), type_url=ENDPOINT, resource_names=["bank"]))
    assert client.quiet()


@pytest.mark.parametrize("node_id", ["", "bad id!", "x" * 200, "-leading-dash"])
def test_bad_node_ids_are_refused(cp: ControlPlaneThread, node_id: str) -> None:
    c = AdsClient(cp.xds_port)
    try:
        c.send(DiscoveryRequest(node=_node(node_id), type_url=CLUSTER))
        with pytest.raises(grpc.RpcError) as info:
            c.recv()
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    finally:
        c.close()


def test_delta_sends_only_what_changed(cp: ControlPlaneThread) -> None:
    c = AdsClient(cp.xds_port, delta=True)
    try:
        c.send(DeltaDiscoveryRequest(node=_node("py-delta"), type_url=CLUSTER))
        first = c.recv()
        held = {r.name: r.version for r in first.resources}
        assert sorted(held) == ["bank", "ztgate_ext_authz", "ztgate_ext_proc"]
        c.send(DeltaDiscoveryRequest(type_url=CLUSTER, response_nonce=first.nonce))
        assert c.quiet()
        _apply(cp, _interval(1900))
        changed = c.recv()
        assert [r.name for r in changed.resources] == ["bank"] and not changed.removed_resources
        c.send(DeltaDiscoveryRequest(type_url=CLUSTER, response_nonce=changed.nonce))
        _apply(cp, lambda d: [r.update(masking=False) for r in d["routes"]])
        removed = c.recv()
        assert list(removed.removed_resources) == ["ztgate_ext_proc"]
        assert cp.node("py-delta")["types"]["cds"]["nacks"] == 0
    finally:
        c.close()
        _apply(cp)
    # A reconnecting node that reports what it holds gets only the difference.
    again = AdsClient(cp.xds_port, delta=True)
    try:
        again.send(
            DeltaDiscoveryRequest(
                node=_node("py-delta"), type_url=CLUSTER, initial_resource_versions=held
            )
        )
        assert again.quiet()
    finally:
        again.close()


def test_snapshot_build_failure_keeps_the_old_one(cp: ControlPlaneThread, tmp_path: Path) -> None:
    version = cp.cp.cache.snapshot("py-ack").version
    write_config(cp.config_path, {"version": 1})
    status, body = cp.reload()
    assert status == 422 and body["key"] == "listeners"
    assert cp.cp.cache.snapshot("py-ack").version == version
    _apply(cp)
