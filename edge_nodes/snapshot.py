"""Per-node snapshots: every resource a node gets, versioned, checked before a push.

As in go-control-plane's ``cache/v3`` snapshots, each resource type has its own
version and a snapshot is refused unless it is internally consistent: every
route's cluster, every listener's route configuration, every SDS secret a
listener names and every gRPC service's cluster is in the snapshot, and no route
configuration is left unreferenced. The consistency check walks the generated
resources themselves, so it also catches a generator bug.

Versions are content digests (SHA-256 of the canonical JSON of the resources),
not counters: a restarted control plane computes the versions Envoy already
holds and, when nothing changed, sends nothing on reconnection.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from envoy.config.route.v3 import route_components_pb2, route_pb2
from google.protobuf import any_pb2, json_format

from edge_nodes import clusters, listeners, routes
from edge_nodes.resources import (
    CLUSTER,
    LISTENER,
    ROUTE,
    SECRET,
    TYPE_ORDER,
    SecretMaterial,
    to_any,
)
from edge_nodes.secrets import build_secret
from gateway.config import GatewayConfig


class SnapshotError(ValueError):
    """The generated resources are inconsistent or not valid Envoy configuration."""


@dataclass(frozen=True)
class TypedResources:
    version: str
    items: Mapping[str, any_pb2.Any]
    """Resource name → packed resource."""
    digests: Mapping[str, str]
    """Resource name → content digest (incremental xDS resource versions)."""


@dataclass(frozen=True)
class Snapshot:
    version: str
    types: Mapping[str, TypedResources]

    def resources(self, type_url: str) -> TypedResources:
        return self.types.get(type_url) or TypedResources("", {}, {})

    def names(self) -> dict[str, list[str]]:
        return {t: sorted(r.items) for t, r in self.types.items()}


def _digest(doc: Any) -> str:
    canonical = json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canonical.encode("ascii")).hexdigest()


def generate(
    cfg: GatewayConfig, node_id: str, secrets: Mapping[str, SecretMaterial]
) -> dict[str, dict[str, dict[str, Any]]]:
    """Every resource `node_id` needs, in Envoy's JSON form: its listeners (per-node
    ports applied), one route configuration per listener, the upstream and agent
    clusters, and the secrets the listeners use."""
    view = cfg.for_node(node_id)
    out: dict[str, dict[str, dict[str, Any]]] = {SECRET: {}, CLUSTER: {}, LISTENER: {}, ROUTE: {}}
    for listener in view.listeners:
        out[LISTENER][listener.name] = listeners.build_listener(view, listener)
        route_config = routes.build_route_configuration(view, listener)
        out[ROUTE][route_config["name"]] = route_config
    for cluster in clusters.build_clusters(view):
        out[CLUSTER][cluster["name"]] = cluster
    referenced = set().union(*(references(doc)[SECRET] for doc in out[LISTENER].values()))
    for name in sorted(referenced & secrets.keys()):
        out[SECRET][name] = build_secret(secrets[name])
    return out


def build(cfg: GatewayConfig, node_id: str, secrets: Mapping[str, SecretMaterial]) -> Snapshot:
    """Generate, check and pack `node_id`'s snapshot; raises `SnapshotError`."""
    docs = generate(cfg, node_id, secrets)
    check_consistent(docs)
    types: dict[str, TypedResources] = {}
    for type_url in TYPE_ORDER:
        items: dict[str, any_pb2.Any] = {}
        digests: dict[str, str] = {}
        for name in sorted(docs[type_url]):
            doc = docs[type_url][name]
            try:
                items[name] = (
                    _pack_route_configuration(doc) if type_url == ROUTE else to_any(type_url, doc)
                )
            except json_format.ParseError as exc:
                # Message text names fields, never values: safe for secrets too.
                raise SnapshotError(f"{type_url.rsplit('.', 1)[-1]} {name!r}: {exc}") from None
            digests[name] = _digest(doc)[:16]
        version = _digest(sorted(digests.items()))[:16]
        types[type_url] = TypedResources(version, items, digests)
    version = _digest([(t, types[t].version) for t in TYPE_ORDER])[:12]
    return Snapshot(version, types)


@lru_cache(maxsize=16_384)
def _route_entry(canonical: str) -> route_components_pb2.Route:
    """One route, parsed once per distinct content (never mutated: callers copy)."""
    msg = route_components_pb2.Route()
    json_format.Parse(canonical, msg)
    return msg


def _pack_route_configuration(doc: Mapping[str, Any]) -> any_pb2.Any:
    """A RouteConfiguration, its routes taken from `_route_entry`: on a reload only
    the routes that changed are parsed again (parsing dominates for large tables)."""
    skeleton = {
        **doc,
        "virtual_hosts": [{**vh, "routes": []} for vh in doc.get("virtual_hosts", [])],
    }
    msg = route_pb2.RouteConfiguration()
    json_format.ParseDict(skeleton, msg)
    for vh_doc, vh in zip(doc.get("virtual_hosts", []), msg.virtual_hosts, strict=True):
        for route in vh_doc["routes"]:
            vh.routes.append(_route_entry(json.dumps(route, sort_keys=True)))
    out = any_pb2.Any()
    out.Pack(msg)
    return out


def _walk(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for item in node:
            yield from _walk(item)


def references(doc: Mapping[str, Any]) -> dict[str, set[str]]:
    """Names one resource refers to, by resource type."""
    refs: dict[str, set[str]] = {CLUSTER: set(), ROUTE: set(), SECRET: set()}
    for node in _walk(doc):
        envoy_grpc = node.get("envoy_grpc")
        if isinstance(envoy_grpc, dict) and "cluster_name" in envoy_grpc:
            refs[CLUSTER].add(envoy_grpc["cluster_name"])
        route = node.get("route")
        if isinstance(route, dict) and "cluster" in route:
            refs[CLUSTER].add(route["cluster"])
        rds = node.get("rds")
        if isinstance(rds, dict) and "route_config_name" in rds:
            refs[ROUTE].add(rds["route_config_name"])
        if "sds_config" in node and "name" in node:
            refs[SECRET].add(node["name"])
    return refs


def check_consistent(docs: Mapping[str, Mapping[str, Mapping[str, Any]]]) -> None:
    """Raise `SnapshotError` unless every reference resolves and every route
    configuration is used by a listener."""
    used_routes: set[str] = set()
    for type_url in (LISTENER, ROUTE, CLUSTER):
        kind = type_url.rsplit(".", 1)[-1]
        for name, doc in docs.get(type_url, {}).items():
            refs = references(doc)
            if type_url == LISTENER:
                used_routes |= refs[ROUTE]
            for target, names in refs.items():
                missing = sorted(names - set(docs.get(target, {})))
                if missing:
                    what = target.rsplit(".", 1)[-1]
                    raise SnapshotError(f"{kind} {name!r} refers to unknown {what} {missing[0]!r}")
    unused = sorted(set(docs.get(ROUTE, {})) - used_routes)
    if unused:
        raise SnapshotError(f"RouteConfiguration {unused[0]!r} is not used by any listener")
