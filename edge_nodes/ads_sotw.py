"""State-of-the-world xDS over one ADS stream: what to send, and when.

The protocol facts this follows (Envoy's xDS docs; STANDARDS.md, measured with
Envoy 1.40): an ACK repeats the sent ``version_info`` and nonce; a NACK carries
the *previous* ``version_info``, the rejected nonce and ``error_detail`` — Envoy
keeps serving its last good configuration. A request whose nonce is not the last
one sent on the stream is stale and ignored.

Rules of this server:
- a type is answered only after the node subscribed to it, one response in
  flight per type (the next waits for the ACK/NACK);
- a version the node NACKed is not sent to it again (on this stream or, via the
  registry, after a reconnection) until that type's content changes — no loop;
- on a new stream, a wildcard type (listeners, clusters) whose version the node
  already holds is not resent; named types (routes, secrets) are answered once,
  since the node may have subscribed to a name the previous control plane never
  answered. Envoy recognises unchanged resources by hash and does not disturb them.
"""

from __future__ import annotations

import itertools
import secrets
from dataclasses import dataclass
from typing import Final

from envoy.service.discovery.v3.discovery_pb2 import DiscoveryRequest, DiscoveryResponse

from edge_nodes.registry import Registry
from edge_nodes.resources import CLUSTER, LISTENER, TYPE_ORDER
from edge_nodes.snapshot import Snapshot

WILDCARD_TYPES: Final = frozenset({LISTENER, CLUSTER})
MAX_NAMES: Final = 10_000


class ProtocolError(ValueError):
    pass


@dataclass
class _TypeState:
    names: frozenset[str] | None = None
    """Subscribed names; None = wildcard."""
    held_version: str = ""
    """Version the node reports holding (ACKed, or stated on its first request)."""
    answered: bool = False
    nonce: str = ""
    in_flight: bool = False
    sent_version: str = ""
    sent_names: frozenset[str] | None = None


class StreamBase:
    """What both stream kinds keep: the node, the registry, and nonces unique to the
    stream (a random prefix, then a counter) so a nonce from another stream or an
    earlier control plane is never mistaken for a current one."""

    def __init__(self, node_id: str, registry: Registry) -> None:
        self.node_id = node_id
        self._registry = registry
        self._prefix = secrets.token_hex(4)
        self._counter = itertools.count(1)

    def _nonce(self) -> str:
        return f"{self._prefix}-{next(self._counter)}"


class SotwStream(StreamBase):
    def __init__(self, node_id: str, registry: Registry) -> None:
        super().__init__(node_id, registry)
        self._types: dict[str, _TypeState] = {}

    def on_request(self, req: DiscoveryRequest) -> None:
        """Record a subscription, an ACK or a NACK."""
        type_url = req.type_url
        if type_url not in TYPE_ORDER:
            return  # a type this server does not serve: never answered
        if len(req.resource_names) > MAX_NAMES:
            raise ProtocolError(f"more than {MAX_NAMES} resource names")
        names = frozenset(req.resource_names)
        wildcard = type_url in WILDCARD_TYPES and (not names or "*" in names)
        st = self._types.get(type_url)
        if st is None:
            st = self._types[type_url] = _TypeState()
            # First request for this type on this stream: the node says what it holds.
            st.held_version = req.version_info
            if req.version_info:
                self._registry.acked(self.node_id, type_url, req.version_info, reported=True)
        elif req.response_nonce:
            if req.response_nonce != st.nonce:
                return  # stale: answers an earlier response
            st.in_flight = False
            if req.HasField("error_detail"):
                self._registry.nacked(
                    self.node_id, type_url, st.sent_version, req.error_detail.message
                )
            else:
                st.held_version = req.version_info
                self._registry.acked(self.node_id, type_url, req.version_info)
        st.names = None if wildcard else names

    def responses(self, snap: Snapshot) -> list[DiscoveryResponse]:
        """What to send now, in make-before-break order."""
        out = []
        for type_url in TYPE_ORDER:
            st = self._types.get(type_url)
            if st is None or st.in_flight:
                continue
            resources = snap.resources(type_url)
            if not self._should_send(type_url, st, resources.version):
                continue
            wanted = (
                sorted(resources.items)
                if st.names is None
                else sorted(st.names & resources.items.keys())
            )
            nonce = self._nonce()
            out.append(
                DiscoveryResponse(
                    version_info=resources.version,
                    resources=[resources.items[n] for n in wanted],
                    type_url=type_url,
                    nonce=nonce,
                )
            )
            st.nonce, st.in_flight, st.answered = nonce, True, True
            st.sent_version, st.sent_names = resources.version, st.names
            self._registry.sent(self.node_id, type_url, resources.version)
        return out

    def _should_send(self, type_url: str, st: _TypeState, version: str) -> bool:
        rejected = version == self._registry.rejected(self.node_id, type_url)
        if not st.answered:
            if rejected and st.held_version:
                return False  # the node runs on its last good version; don't offer it again
            return version != st.held_version or st.names is not None
        names_changed = st.names != st.sent_names
        if rejected:
            return names_changed  # a new subscription set is worth one more try, once
        return version != st.held_version or names_changed
