"""The snapshot cache: the configuration being served and one snapshot per node.

`update` swaps in a new configuration only when a consistent snapshot builds for
every node the control plane knows (and for an unlisted node); otherwise it
raises and the previous snapshots keep serving. Streams subscribe per node and
are woken when that node's snapshot changes version.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Final

from edge_nodes import snapshot as snapshots
from edge_nodes.registry import Registry
from edge_nodes.resources import SecretMaterial
from edge_nodes.snapshot import Snapshot, SnapshotError
from gateway.config import GatewayConfig

log = logging.getLogger("edge_nodes.cache")

PROBE_NODE: Final = "ztgate-config-probe"
"""A node id no override names: building its snapshot checks the shared resources."""

Listener = Callable[[], None]


class SnapshotCache:
    def __init__(
        self, cfg: GatewayConfig, secrets: Mapping[str, SecretMaterial], registry: Registry
    ) -> None:
        self._registry = registry
        self._watchers: dict[str, set[Listener]] = {}
        self._cfg = cfg
        self._secrets = dict(secrets)
        self._snapshots = self._build_all(cfg, self._secrets, registry.known())
        self.generation = 1

    @property
    def config(self) -> GatewayConfig:
        return self._cfg

    @property
    def secrets(self) -> Mapping[str, SecretMaterial]:
        return self._secrets

    def _build_all(
        self, cfg: GatewayConfig, secrets: Mapping[str, SecretMaterial], nodes: list[str]
    ) -> dict[str, Snapshot]:
        """One build per distinct node override: nodes without one share a snapshot."""
        shared = snapshots.build(cfg, PROBE_NODE, secrets)
        out = {PROBE_NODE: shared}
        for node in sorted({*cfg.nodes, *nodes}):
            out[node] = snapshots.build(cfg, node, secrets) if node in cfg.nodes else shared
        return out

    def update(self, cfg: GatewayConfig, secrets: Mapping[str, SecretMaterial]) -> dict[str, str]:
        """Serve `cfg`; returns node → snapshot version. Raises `SnapshotError` (old
        snapshots kept) when any node's snapshot is inconsistent."""
        built = self._build_all(cfg, secrets, self._registry.known())
        changed = [n for n, s in built.items() if self._snapshots.get(n, s).version != s.version]
        self._cfg, self._secrets, self._snapshots = cfg, dict(secrets), built
        self.generation += 1
        known = set(self._registry.known())
        for node_id in changed:
            if node_id in known:
                self._set_target(node_id)
            for wake in list(self._watchers.get(node_id, ())):
                wake()
        log.info(
            "configuration applied",
            extra={"generation": self.generation, "nodes_changed": len(changed)},
        )
        return {n: s.version for n, s in built.items() if n != PROBE_NODE}

    def snapshot(self, node_id: str) -> Snapshot:
        """`node_id`'s snapshot, built on first use (raises `SnapshotError`)."""
        snap = self._snapshots.get(node_id)
        if snap is None:
            if node_id in self._cfg.nodes:
                snap = snapshots.build(self._cfg, node_id, self._secrets)
            else:
                snap = self._snapshots[PROBE_NODE]
            self._snapshots[node_id] = snap
        return snap

    def _set_target(self, node_id: str) -> None:
        snap = self._snapshots[node_id]
        needed = {t: r.version for t, r in snap.types.items() if r.items}
        self._registry.target(node_id, snap.version, needed)

    def watch(self, node_id: str, wake: Listener) -> Callable[[], None]:
        """Call `wake` whenever `node_id`'s snapshot changes; returns the unsubscribe."""
        try:
            self.snapshot(node_id)
            self._set_target(node_id)
        except SnapshotError:
            log.exception("no snapshot for node", extra={"node": node_id})
        self._watchers.setdefault(node_id, set()).add(wake)

        def cancel() -> None:
            self._watchers.get(node_id, set()).discard(wake)

        return cancel
