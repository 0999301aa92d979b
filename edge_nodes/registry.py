"""The node registry: which edge nodes are connected, what each has accepted.

Per node it keeps the snapshot version the control plane wants it on, the
version of each resource type it has ACKed, the last NACK (resource type,
rejected version and Envoy's ``error_detail``), and when it was last heard from.
A NACKed version is remembered per node and type so that it is not offered to
that node again — on the same stream or after a reconnection — until the
configuration changes that resource type. `ztgate nodes` prints `status()`.

All methods run on the control plane's event loop (no locking).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Final

from edge_nodes.resources import SHORT_NAMES

MAX_NODES: Final = 4096
MAX_ERROR: Final = 2048


class TooManyNodes(RuntimeError):
    pass


@dataclass(frozen=True)
class Nack:
    type: str
    version: str
    message: str
    at: float


@dataclass(frozen=True)
class TypeStatus:
    acked_version: str
    sent_version: str
    responses: int
    nacks: int


@dataclass(frozen=True)
class NodeStatus:
    node_id: str
    cluster: str
    build: str
    connected: bool
    streams: int
    first_seen: float
    last_seen: float
    snapshot_version: str
    acked_version: str
    in_sync: bool
    types: Mapping[str, TypeStatus]
    last_error: Nack | None
    error_current: bool
    """The last NACKed version is still the one the node should be on."""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class _Type:
    acked_version: str = ""
    sent_version: str = ""
    responses: int = 0
    nacks: int = 0
    rejected_version: str | None = None


@dataclass
class _Node:
    node_id: str
    cluster: str = ""
    build: str = ""
    streams: int = 0
    first_seen: float = field(default_factory=time.time)
    last_seen: float = field(default_factory=time.time)
    target: Mapping[str, str] = field(default_factory=dict)
    snapshot_version: str = ""
    acked_version: str = ""
    types: dict[str, _Type] = field(default_factory=dict)
    last_error: Nack | None = None

    def type(self, type_url: str) -> _Type:
        return self.types.setdefault(type_url, _Type())


class Registry:
    def __init__(self, clock: Any = time.time) -> None:
        self._nodes: dict[str, _Node] = {}
        self._clock = clock

    def _node(self, node_id: str) -> _Node:
        node = self._nodes.get(node_id)
        if node is None:
            if len(self._nodes) >= MAX_NODES:
                raise TooManyNodes(f"more than {MAX_NODES} nodes")
            now = self._clock()
            node = self._nodes[node_id] = _Node(node_id, first_seen=now, last_seen=now)
        return node

    def known(self) -> list[str]:
        return sorted(self._nodes)

    def connect(self, node_id: str, cluster: str, build: str) -> None:
        node = self._node(node_id)
        node.streams += 1
        node.cluster, node.build = cluster[:128], build[:128]
        node.last_seen = self._clock()

    def disconnect(self, node_id: str) -> None:
        node = self._nodes.get(node_id)
        if node is not None:
            node.streams = max(0, node.streams - 1)
            node.last_seen = self._clock()

    def seen(self, node_id: str) -> None:
        self._node(node_id).last_seen = self._clock()

    def target(self, node_id: str, version: str, types: Mapping[str, str]) -> None:
        """The snapshot `node_id` should be on: its version and per-type versions
        (only the types it needs)."""
        node = self._node(node_id)
        node.snapshot_version, node.target = version, dict(types)
        self._update_sync(node)

    def sent(self, node_id: str, type_url: str, version: str) -> None:
        t = self._node(node_id).type(type_url)
        t.sent_version = version
        t.responses += 1

    def acked(self, node_id: str, type_url: str, version: str, *, reported: bool = False) -> None:
        """`node_id` holds `version` of `type_url`: it ACKed a response, or (`reported`)
        stated it on a new stream. Only an ACK of something sent clears a rejection."""
        node = self._node(node_id)
        t = node.type(type_url)
        t.acked_version = version
        if not reported and version != t.rejected_version:
            t.rejected_version = None
        self._update_sync(node)

    def nacked(self, node_id: str, type_url: str, version: str, message: str) -> None:
        node = self._node(node_id)
        t = node.type(type_url)
        t.nacks += 1
        t.rejected_version = version
        node.last_error = Nack(
            SHORT_NAMES.get(type_url, type_url), version, message[:MAX_ERROR], self._clock()
        )

    def rejected(self, node_id: str, type_url: str) -> str | None:
        node = self._nodes.get(node_id)
        if node is None or type_url not in node.types:
            return None
        return node.types[type_url].rejected_version

    def _update_sync(self, node: _Node) -> None:
        if node.target and all(node.type(t).acked_version == v for t, v in node.target.items()):
            node.acked_version = node.snapshot_version

    def status(self, node_ids: Iterable[str] | None = None) -> list[NodeStatus]:
        out = []
        for node_id in sorted(node_ids if node_ids is not None else self._nodes):
            node = self._nodes.get(node_id)
            if node is None:
                continue
            in_sync = bool(node.snapshot_version) and node.acked_version == node.snapshot_version
            error_current = node.last_error is not None and any(
                t.rejected_version is not None and t.rejected_version == node.target.get(url)
                for url, t in node.types.items()
            )
            out.append(
                NodeStatus(
                    node_id=node.node_id,
                    cluster=node.cluster,
                    build=node.build,
                    connected=node.streams > 0,
                    streams=node.streams,
                    first_seen=node.first_seen,
                    last_seen=node.last_seen,
                    snapshot_version=node.snapshot_version,
                    acked_version=node.acked_version,
                    in_sync=in_sync,
                    types={
                        SHORT_NAMES.get(url, url): TypeStatus(
                            t.acked_version, t.sent_version, t.responses, t.nacks
                        )
                        for url, t in sorted(node.types.items())
                    },
                    last_error=node.last_error,
                    error_current=error_current,
                )
            )
        return out
