"""Envoy resources for one edge node, built from the gateway configuration.

Resources are written as Envoy's JSON form (the shape every Envoy operator
reads in its docs) and converted to protobuf with `json_format.ParseDict`,
which refuses an unknown field or a wrong type — a generator bug fails here,
not on the node. The JSON form is kept beside the message: the snapshot's
consistency check walks it and its canonical encoding gives content versions.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

# Imported for their side effect: registering the message types that typed_config
# members name, so ParseDict can pack them into google.protobuf.Any.
from envoy.config.cluster.v3 import cluster_pb2  # noqa: F401
from envoy.config.listener.v3 import listener_pb2  # noqa: F401
from envoy.config.route.v3 import route_pb2  # noqa: F401
from envoy.extensions.filters.http.buffer.v3 import buffer_pb2  # noqa: F401
from envoy.extensions.filters.http.ext_authz.v3 import ext_authz_pb2  # noqa: F401
from envoy.extensions.filters.http.ext_proc.v3 import ext_proc_pb2  # noqa: F401
from envoy.extensions.filters.http.header_mutation.v3 import header_mutation_pb2  # noqa: F401
from envoy.extensions.filters.http.local_ratelimit.v3 import local_rate_limit_pb2  # noqa: F401
from envoy.extensions.filters.http.router.v3 import router_pb2  # noqa: F401
from envoy.extensions.filters.listener.tls_inspector.v3 import tls_inspector_pb2  # noqa: F401
from envoy.extensions.filters.network.http_connection_manager.v3 import (  # noqa: F401
    http_connection_manager_pb2,
)
from envoy.extensions.path.match.uri_template.v3 import uri_template_match_pb2  # noqa: F401
from envoy.extensions.transport_sockets.tls.v3 import secret_pb2, tls_pb2  # noqa: F401
from envoy.extensions.upstreams.http.v3 import http_protocol_options_pb2  # noqa: F401
from google.protobuf import any_pb2, json_format

_PREFIX: Final = "type.googleapis.com/"
LISTENER: Final = _PREFIX + "envoy.config.listener.v3.Listener"
ROUTE: Final = _PREFIX + "envoy.config.route.v3.RouteConfiguration"
CLUSTER: Final = _PREFIX + "envoy.config.cluster.v3.Cluster"
SECRET: Final = _PREFIX + "envoy.extensions.transport_sockets.tls.v3.Secret"
ENDPOINT: Final = _PREFIX + "envoy.config.endpoint.v3.ClusterLoadAssignment"
TYPE_ORDER: Final = (SECRET, CLUSTER, LISTENER, ROUTE)
"""Push order (make before break): what a listener or route refers to goes first."""
SHORT_NAMES: Final = {SECRET: "sds", CLUSTER: "cds", LISTENER: "lds", ROUTE: "rds", ENDPOINT: "eds"}

HCM: Final = (
    _PREFIX
    + "envoy.extensions.filters.network.http_connection_manager.v3."
    + ("HttpConnectionManager")
)
HEADER_MUTATION: Final = _PREFIX + "envoy.extensions.filters.http.header_mutation.v3.HeaderMutation"
EXT_AUTHZ: Final = _PREFIX + "envoy.extensions.filters.http.ext_authz.v3.ExtAuthz"
EXT_AUTHZ_PER_ROUTE: Final = _PREFIX + "envoy.extensions.filters.http.ext_authz.v3.ExtAuthzPerRoute"
EXT_PROC: Final = _PREFIX + "envoy.extensions.filters.http.ext_proc.v3.ExternalProcessor"
EXT_PROC_PER_ROUTE: Final = _PREFIX + "envoy.extensions.filters.http.ext_proc.v3.ExtProcPerRoute"
BUFFER: Final = _PREFIX + "envoy.extensions.filters.http.buffer.v3.Buffer"
BUFFER_PER_ROUTE: Final = _PREFIX + "envoy.extensions.filters.http.buffer.v3.BufferPerRoute"
ROUTER: Final = _PREFIX + "envoy.extensions.filters.http.router.v3.Router"
LOCAL_RATE_LIMIT: Final = (
    _PREFIX + "envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit"
)
TLS_INSPECTOR: Final = _PREFIX + "envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector"
DOWNSTREAM_TLS: Final = _PREFIX + "envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext"
UPSTREAM_HTTP_OPTIONS: Final = _PREFIX + "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
URI_TEMPLATE: Final = _PREFIX + "envoy.extensions.path.match.uri_template.v3.UriTemplateMatchConfig"

EXT_AUTHZ_CLUSTER: Final = "ztgate_ext_authz"
EXT_PROC_CLUSTER: Final = "ztgate_ext_proc"
ADS_SOURCE: Final = {"ads": {}, "resource_api_version": "V3"}


@dataclass(frozen=True)
class SecretMaterial:
    """PEM bytes of one SDS secret, read from the files the configuration names."""

    name: str
    certificate_chain: bytes = b""
    private_key: bytes = b""
    trusted_ca: bytes = b""

    def __repr__(self) -> str:  # never print key material
        return f"SecretMaterial({self.name!r})"


Resources = dict[str, dict[str, dict[str, Any]]]
"""type URL → resource name → Envoy JSON form."""


def millis(ms: int) -> str:
    """A protobuf Duration in JSON form."""
    return f"{ms // 1000}.{ms % 1000:03d}s"


def to_any(type_url: str, resource: Mapping[str, Any]) -> any_pb2.Any:
    """Pack `resource` (Envoy JSON form) into an Any of `type_url`; raises
    `json_format.ParseError` for an unknown field or a wrong type."""
    msg = any_pb2.Any()
    json_format.ParseDict({"@type": type_url, **resource}, msg)
    return msg
