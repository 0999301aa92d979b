"""Incremental (delta) xDS over one ADS stream.

The node tells what it holds per resource (``initial_resource_versions`` on a
new stream, then what it ACKs); the server sends only the resources whose
content digest differs and names the ones that disappeared
(``removed_resources``). ACK/NACK, stale nonces, one response in flight per
type and "a NACKed version is not offered again" work as in `ads_sotw`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

from envoy.service.discovery.v3.discovery_pb2 import (
    DeltaDiscoveryRequest,
    DeltaDiscoveryResponse,
    Resource,
)

from edge_nodes.ads_sotw import MAX_NAMES, WILDCARD_TYPES, ProtocolError, StreamBase
from edge_nodes.registry import Registry
from edge_nodes.resources import TYPE_ORDER
from edge_nodes.snapshot import Snapshot

_ALL: Final = "*"


@dataclass
class _TypeState:
    wildcard: bool = False
    names: set[str] = field(default_factory=set)
    held: dict[str, str] = field(default_factory=dict)
    """Resource name → version the node holds."""
    nonce: str = ""
    in_flight: bool = False
    pending: dict[str, str | None] = field(default_factory=dict)
    sent_version: str = ""
    reported: bool = False
    new_names: bool = False


class DeltaStream(StreamBase):
    def __init__(self, node_id: str, registry: Registry) -> None:
        super().__init__(node_id, registry)
        self._types: dict[str, _TypeState] = {}

    def on_request(self, req: DeltaDiscoveryRequest) -> None:
        type_url = req.type_url
        if type_url not in TYPE_ORDER:
            return
        if len(req.resource_names_subscribe) + len(req.initial_resource_versions) > MAX_NAMES:
            raise ProtocolError(f"more than {MAX_NAMES} resource names")
        st = self._types.get(type_url)
        if st is None:
            st = self._types[type_url] = _TypeState()
            st.held = dict(req.initial_resource_versions)
            st.wildcard = type_url in WILDCARD_TYPES and (
                not req.resource_names_subscribe or _ALL in req.resource_names_subscribe
            )
        elif req.response_nonce:
            if req.response_nonce != st.nonce:
                return  # stale
            st.in_flight = False
            if req.HasField("error_detail"):
                self._registry.nacked(
                    self.node_id, type_url, st.sent_version, req.error_detail.message
                )
            else:
                for name, version in st.pending.items():
                    if version is None:
                        st.held.pop(name, None)
                    else:
                        st.held[name] = version
                self._registry.acked(self.node_id, type_url, st.sent_version)
            st.pending = {}
        subscribe = set(req.resource_names_subscribe) - {_ALL}
        if _ALL in req.resource_names_subscribe:
            st.wildcard = True
        if _ALL in req.resource_names_unsubscribe:
            st.wildcard = False
        st.new_names = st.new_names or bool(subscribe - st.names)
        st.names |= subscribe
        for name in req.resource_names_unsubscribe:
            st.names.discard(name)
            st.held.pop(name, None)

    def responses(self, snap: Snapshot) -> list[DeltaDiscoveryResponse]:
        out = []
        for type_url in TYPE_ORDER:
            st = self._types.get(type_url)
            if st is None or st.in_flight:
                continue
            typed = snap.resources(type_url)
            wanted = set(typed.items) if st.wildcard else st.names & typed.items.keys()
            changed = sorted(n for n in wanted if st.held.get(n) != typed.digests[n])
            removed = sorted(
                n for n in st.held if n not in typed.items and (st.wildcard or n in st.names)
            )
            if not changed and not removed:
                if not st.reported:
                    st.reported = True
                    self._registry.acked(self.node_id, type_url, typed.version, reported=True)
                st.new_names = False
                continue
            if typed.version == self._registry.rejected(self.node_id, type_url) and not (
                st.new_names
            ):
                continue
            nonce = self._nonce()
            out.append(
                DeltaDiscoveryResponse(
                    system_version_info=typed.version,
                    resources=[
                        Resource(name=n, version=typed.digests[n], resource=typed.items[n])
                        for n in changed
                    ],
                    removed_resources=removed,
                    type_url=type_url,
                    nonce=nonce,
                )
            )
            st.pending = {n: typed.digests[n] for n in changed} | dict.fromkeys(removed)
            st.nonce, st.in_flight, st.sent_version = nonce, True, typed.version
            st.reported, st.new_names = True, False
            self._registry.sent(self.node_id, type_url, typed.version)
        return out
