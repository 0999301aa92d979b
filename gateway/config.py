"""The gateway configuration: one JSON file every edge node is configured from.

It says what the edge serves — listeners and their TLS, routes to upstream
clusters with each route's API product and data classification, upstream
health checks, timeouts and limits, the edge agent's ports, TLS secrets and
per-node overrides. The control plane (`edge_nodes`) turns it into Envoy
resources; the edge agent reads the agent section.

`load` checks a file in three steps and stops at the first problem, raising a
`GatewayConfigError` that names the offending key by path
(``routes[2].cluster: unknown cluster 'corebank'``):

1. JSON syntax: size ≤ 1 MiB, no duplicate keys, no NaN/Infinity;
2. the JSON Schema ``gateway/schema/gateway-v1.json``, interpreted directly;
3. what a schema cannot say (`gateway.config_checks`): references between
   sections (routes → clusters, listeners → secrets), unique names and ports,
   routes shadowed by an earlier route, path templates Envoy would refuse.

Secret *files* are read by the control plane (`edge_nodes.secrets`), which
reports a bad file with the same kind of key path.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, Final, Literal

from gateway.config_checks import check_references, check_template
from gateway.config_schema import GatewayConfigError, check_schema, validate

__all__ = [
    "MATCH_KINDS",
    "MAX_FILE",
    "SCHEMA_PATH",
    "AgentConfig",
    "CertificateSecret",
    "Cluster",
    "ControlPlaneConfig",
    "Endpoint",
    "GatewayConfig",
    "GatewayConfigError",
    "HealthCheck",
    "HttpLimits",
    "Listener",
    "ListenerTls",
    "NodeOverride",
    "OutlierDetection",
    "Route",
    "TrustedCa",
    "from_document",
    "load",
    "load_default",
    "loads",
    "schema",
]

SCHEMA_PATH: Final = Path(__file__).parent / "schema" / "gateway-v1.json"
MAX_FILE: Final = 1024 * 1024

MatchKind = Literal["path", "prefix", "template", "regex"]
MATCH_KINDS: Final[tuple[MatchKind, ...]] = ("path", "prefix", "template", "regex")


@dataclass(frozen=True)
class ControlPlaneConfig:
    address: str = "127.0.0.1"
    xds_port: int = 18000
    admin_port: int = 18001
    secret_poll_ms: int = 2000


@dataclass(frozen=True)
class ListenerTls:
    certificate: str
    client_ca: str | None = None
    min_version: Literal["TLSv1_2", "TLSv1_3"] = "TLSv1_2"


@dataclass(frozen=True)
class Listener:
    name: str
    port: int
    address: str = "127.0.0.1"
    tls: ListenerTls | None = None


@dataclass(frozen=True)
class HttpLimits:
    max_request_bytes: int = 1024 * 1024
    max_request_headers_kb: int = 32
    max_headers_count: int = 100
    request_headers_timeout_ms: int = 10_000
    request_timeout_ms: int = 60_000
    stream_idle_timeout_ms: int = 30_000
    idle_timeout_ms: int = 300_000
    max_connection_duration_ms: int | None = None


@dataclass(frozen=True)
class AgentConfig:
    """The local edge agent: one loopback port per worker process."""

    address: str = "127.0.0.1"
    ports: tuple[int, ...] = (9191,)
    timeout_ms: int = 250
    """ext_authz deadline; a late answer is a deny."""
    ext_proc_timeout_ms: int = 1000


@dataclass(frozen=True)
class CertificateSecret:
    certificate_chain: Path
    private_key: Path


@dataclass(frozen=True)
class TrustedCa:
    file: Path


@dataclass(frozen=True)
class Endpoint:
    address: str
    port: int


@dataclass(frozen=True)
class HealthCheck:
    path: str
    interval_ms: int = 5000
    timeout_ms: int = 1000
    healthy_threshold: int = 1
    unhealthy_threshold: int = 3


@dataclass(frozen=True)
class OutlierDetection:
    consecutive_5xx: int = 5
    consecutive_gateway_failure: int = 3
    interval_ms: int = 10_000
    base_ejection_time_ms: int = 30_000
    max_ejection_percent: int = 50


@dataclass(frozen=True)
class Cluster:
    name: str
    endpoints: tuple[Endpoint, ...]
    connect_timeout_ms: int = 1000
    http2: bool = False
    health_check: HealthCheck | None = None
    outlier_detection: OutlierDetection | None = field(default_factory=OutlierDetection)
    max_connections: int = 1024
    max_pending_requests: int = 1024
    max_requests: int = 1024


@dataclass(frozen=True)
class LocalRateLimit:
    requests: int
    """Tokens in the bucket: requests allowed per `seconds` on one node, bursts included."""
    seconds: int = 1


@dataclass(frozen=True)
class Route:
    id: str
    match_kind: MatchKind
    match: str
    cluster: str
    api_product: str
    classification: Literal["public", "account", "transfer", "partner", "staff"]
    methods: tuple[str, ...] | None = None
    mtls: bool = False
    masking: bool = False
    signed: bool = False
    """Requests must carry an RFC 9421 signature by the partner's registered key
    (the agent gets the body to check its Content-Digest)."""
    local_rate_limit: LocalRateLimit | None = None
    """Envoy's own token bucket for this route on each node, before the agent is
    asked: a flood guard beside the agent's per-caller quotas."""
    partner_rate_limit: LocalRateLimit | None = None
    """Envoy's token bucket per partner (the allow's ``x-ztgate-client``) for this
    route on each node, after the agent allowed: one partner cannot drain another's
    share of the node."""
    timeout_ms: int = 15_000
    max_request_bytes: int | None = None
    environment: Literal["production", "sandbox"] = "production"
    """Which data the route serves: ``sandbox`` routes lead to a sandbox cluster (synthetic
    data) and only sandbox partners pass the policy there; production ones the reverse."""


@dataclass(frozen=True)
class NodeOverride:
    listener_ports: Mapping[str, int] = field(default_factory=dict)
    agent_ports: tuple[int, ...] | None = None


@dataclass(frozen=True)
class GatewayConfig:
    listeners: tuple[Listener, ...]
    clusters: Mapping[str, Cluster]
    routes: tuple[Route, ...]
    control_plane: ControlPlaneConfig = field(default_factory=ControlPlaneConfig)
    http: HttpLimits = field(default_factory=HttpLimits)
    agent: AgentConfig = field(default_factory=AgentConfig)
    certificates: Mapping[str, CertificateSecret] = field(default_factory=dict)
    trusted_cas: Mapping[str, TrustedCa] = field(default_factory=dict)
    nodes: Mapping[str, NodeOverride] = field(default_factory=dict)

    def for_node(self, node_id: str) -> GatewayConfig:
        """This configuration with `node_id`'s overrides applied (ports)."""
        override = self.nodes.get(node_id)
        if override is None:
            return self
        listeners = tuple(
            Listener(li.name, override.listener_ports.get(li.name, li.port), li.address, li.tls)
            for li in self.listeners
        )
        agent = self.agent
        if override.agent_ports is not None:
            agent = AgentConfig(
                agent.address, override.agent_ports, agent.timeout_ms, agent.ext_proc_timeout_ms
            )
        return GatewayConfig(
            listeners,
            self.clusters,
            self.routes,
            self.control_plane,
            self.http,
            agent,
            self.certificates,
            self.trusted_cas,
            {},
        )


@cache
def schema() -> dict[str, Any]:
    """The gateway configuration's JSON Schema (checked to use only supported keywords)."""
    doc: dict[str, Any] = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    check_schema(doc)
    return doc


def load(path: Path) -> GatewayConfig:
    """Read and validate the file at `path`; relative secret paths are taken from its
    directory."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise GatewayConfigError("", f"cannot read {path}: {exc.strerror}") from None
    return loads(raw, base_dir=path.resolve().parent, source=str(path))


def load_default(base_dir: Path) -> GatewayConfig:
    """The embedded default (package data), secret paths taken from `base_dir` (the
    state directory holding ``pki/``)."""
    raw = resources.files("gateway").joinpath("defaults/gateway.json").read_bytes()
    return loads(raw, base_dir=base_dir, source="embedded default")


def loads(raw: bytes | str, *, base_dir: Path, source: str = "configuration") -> GatewayConfig:
    """Validate a JSON document (bytes or text) and build the configuration."""
    data = raw.encode("utf-8") if isinstance(raw, str) else raw
    if len(data) > MAX_FILE:
        raise GatewayConfigError("", f"{source} is larger than {MAX_FILE} bytes")
    try:
        doc = json.loads(
            data.decode("utf-8"), object_pairs_hook=_no_duplicates, parse_constant=_no_constant
        )
    except _DuplicateKey as exc:
        raise GatewayConfigError("", f"{source}: duplicate key {exc.args[0]!r}") from None
    except (UnicodeDecodeError, json.JSONDecodeError, ValueError) as exc:
        raise GatewayConfigError("", f"{source} is not valid JSON: {exc}") from None
    except RecursionError:
        raise GatewayConfigError("", f"{source} is nested too deeply") from None
    return from_document(doc, base_dir=base_dir)


def from_document(doc: object, *, base_dir: Path) -> GatewayConfig:
    """Build the configuration from a parsed JSON document (steps 2 and 3)."""
    try:
        validate(doc, schema())
    except RecursionError:
        raise GatewayConfigError("", "nested too deeply") from None
    assert isinstance(doc, dict)
    cfg = _build(doc, base_dir)
    check_references(cfg)
    return cfg


class _DuplicateKey(ValueError):
    pass


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _DuplicateKey(key[:64])
        out[key] = value
    return out


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _ints(values: list[Any]) -> tuple[int, ...]:
    return tuple(int(v) for v in values)


def _pick(doc: Mapping[str, Any], names: tuple[str, ...]) -> dict[str, Any]:
    """The members of `doc` named in `names`, integral floats as ints."""
    return {
        n: int(doc[n]) if isinstance(doc[n], float) and doc[n].is_integer() else doc[n]
        for n in names
        if n in doc
    }


def _build(doc: dict[str, Any], base_dir: Path) -> GatewayConfig:
    def file(value: str) -> Path:
        p = Path(value)
        return p if p.is_absolute() else base_dir / p

    cp = ControlPlaneConfig(
        **_pick(
            doc.get("control_plane", {}), ("address", "xds_port", "admin_port", "secret_poll_ms")
        )
    )
    listeners = []
    for item in doc["listeners"]:
        tls_doc = item.get("tls")
        tls = None
        if tls_doc is not None:
            tls = ListenerTls(**_pick(tls_doc, ("certificate", "client_ca", "min_version")))
        listeners.append(Listener(tls=tls, **_pick(item, ("name", "port", "address"))))
    http = HttpLimits(**_pick(doc.get("http", {}), _fields(HttpLimits)))
    agent_doc = doc.get("agent", {})
    agent = AgentConfig(**_pick(agent_doc, ("address", "timeout_ms", "ext_proc_timeout_ms")))
    if "ports" in agent_doc:
        agent = AgentConfig(
            agent.address, _ints(agent_doc["ports"]), agent.timeout_ms, agent.ext_proc_timeout_ms
        )
    secrets = doc.get("secrets", {})
    certificates = {
        name: CertificateSecret(file(s["certificate_chain"]), file(s["private_key"]))
        for name, s in secrets.get("certificates", {}).items()
    }
    trusted_cas = {
        name: TrustedCa(file(s["file"])) for name, s in secrets.get("trusted_cas", {}).items()
    }
    clusters = {name: _cluster(name, c) for name, c in doc["clusters"].items()}
    routes = tuple(_route(i, r) for i, r in enumerate(doc["routes"]))
    nodes = {
        node_id: NodeOverride(
            {k: int(v) for k, v in n.get("listener_ports", {}).items()},
            _ints(n["agent_ports"]) if "agent_ports" in n else None,
        )
        for node_id, n in doc.get("nodes", {}).items()
    }
    return GatewayConfig(
        tuple(listeners), clusters, routes, cp, http, agent, certificates, trusted_cas, nodes
    )


def _cluster(name: str, doc: Mapping[str, Any]) -> Cluster:
    endpoints = tuple(Endpoint(e["address"], int(e["port"])) for e in doc["endpoints"])
    hc_doc = doc.get("health_check")
    od_doc = doc.get("outlier_detection", {})
    scalars = _pick(
        doc,
        ("connect_timeout_ms", "http2", "max_connections", "max_pending_requests", "max_requests"),
    )
    return Cluster(
        name,
        endpoints,
        health_check=None if hc_doc is None else HealthCheck(**_pick(hc_doc, _fields(HealthCheck))),
        outlier_detection=(
            None if od_doc is None else OutlierDetection(**_pick(od_doc, _fields(OutlierDetection)))
        ),
        **scalars,
    )


def _fields(cls: type[Any]) -> tuple[str, ...]:
    return tuple(cls.__dataclass_fields__)


def _route(index: int, doc: Mapping[str, Any]) -> Route:
    where = f"routes[{index}]"
    kinds = [k for k in MATCH_KINDS if k in doc]
    if len(kinds) != 1:
        raise GatewayConfigError(where, f"needs exactly one of {', '.join(MATCH_KINDS)}")
    kind = kinds[0]
    value: str = doc[kind]
    if kind == "template":
        check_template(f"{where}.template", value)
    elif kind == "regex":
        try:
            re.compile(value)
        except re.error as exc:
            raise GatewayConfigError(f"{where}.regex", f"not a regular expression: {exc}") from None
    methods = tuple(doc["methods"]) if "methods" in doc else None
    limit = doc.get("local_rate_limit")
    partner_limit = doc.get("partner_rate_limit")
    return Route(
        match_kind=kind,
        match=value,
        methods=methods,
        local_rate_limit=None if limit is None else LocalRateLimit(**limit),
        partner_rate_limit=None if partner_limit is None else LocalRateLimit(**partner_limit),
        **_pick(
            doc,
            (
                "id",
                "cluster",
                "api_product",
                "classification",
                "mtls",
                "masking",
                "signed",
                "timeout_ms",
                "max_request_bytes",
                "environment",
            ),
        ),
    )
