"""What `ztgate up` runs where: the port layout and the files it derives from it.

Every port follows from one base port (``--base-port``, default 8080), so a
second stack (a test, a CI job) moves out of the way with one option and scripts
can rely on the defaults:

=====================  ======================  =======================
what                   port                    default (base 8080)
=====================  ======================  =======================
edge node 1, HTTP      base                    8080
edge node i>1, HTTP    base + i                8082, 8083, …
edge node i, HTTPS     base + 362 + i          8443, 8444, …
authn service          base + 1                8081
core bank              base + 10               8090
sandbox core bank      base + 11               8091
policy service         base + 101              8181
agent workers, node i  base + 1111 + (i-1)·W   9191, 9192 (W = workers)
control plane xDS      base + 9920             18000
control plane admin    base + 9921             18001
=====================  ======================  =======================

A node's agent ports are the single source of both sides of the ext_authz hop:
the gateway configuration's ``nodes.<id>.agent_ports`` (what Envoy calls) and the
node's `gateway.agent_config.AgentConfig` (``base_port`` = the first, ``workers``
= how many; what the workers bind) are both built from `NodePlan.agent_ports`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Final

__all__ = ["DEFAULT_BASE_PORT", "Layout", "NodePlan", "agent_toml", "gateway_document"]

DEFAULT_BASE_PORT: Final = 8080
MAX_NODES: Final = 8
MAX_WORKERS: Final = 8
MAX_BASE_PORT: Final = 65535 - 9921
HTTP_LISTENER: Final = "edge-http"
HTTPS_LISTENER: Final = "edge-https"


@dataclass(frozen=True)
class NodePlan:
    node_id: str
    http_port: int
    https_port: int
    agent_ports: tuple[int, ...]


@dataclass(frozen=True)
class Layout:
    """The ports of one ``ztgate up`` stack (see the module docstring)."""

    base_port: int = DEFAULT_BASE_PORT
    nodes: int = 1
    workers: int = 2
    """Agent worker processes per edge node (the embedded gateway default lists two)."""

    def __post_init__(self) -> None:
        if not 1024 <= self.base_port <= MAX_BASE_PORT:
            raise ValueError(f"--base-port: must be between 1024 and {MAX_BASE_PORT}")
        if not 1 <= self.nodes <= MAX_NODES:
            raise ValueError(f"--nodes: must be 1 to {MAX_NODES}")
        if not 1 <= self.workers <= MAX_WORKERS:
            raise ValueError(f"--workers: must be 1 to {MAX_WORKERS}")

    @property
    def authn_port(self) -> int:
        return self.base_port + 1

    @property
    def corebank_port(self) -> int:
        return self.base_port + 10

    @property
    def corebank_sandbox_port(self) -> int:
        """The sandbox core bank's (synthetic data only; the ``corebank-sandbox`` cluster)."""
        return self.base_port + 11

    @property
    def policy_port(self) -> int:
        return self.base_port + 101

    @property
    def xds_port(self) -> int:
        return self.base_port + 9920

    @property
    def admin_port(self) -> int:
        return self.base_port + 9921

    def node(self, number: int) -> NodePlan:
        """Edge node `number` (1-based)."""
        first_agent = self.base_port + 1111 + (number - 1) * self.workers
        return NodePlan(
            node_id=f"edge-{number}",
            http_port=self.base_port if number == 1 else self.base_port + number,
            https_port=self.base_port + 362 + number,
            agent_ports=tuple(range(first_agent, first_agent + self.workers)),
        )

    def node_plans(self) -> tuple[NodePlan, ...]:
        return tuple(self.node(n) for n in range(1, self.nodes + 1))

    def ports(self) -> list[tuple[str, int]]:
        """Every port the stack binds, with what binds it."""
        out = [
            ("authn service", self.authn_port),
            ("core bank", self.corebank_port),
            ("sandbox core bank", self.corebank_sandbox_port),
            ("policy service", self.policy_port),
            ("control plane xDS", self.xds_port),
            ("control plane admin", self.admin_port),
        ]
        for plan in self.node_plans():
            out.append((f"{plan.node_id} HTTP", plan.http_port))
            out.append((f"{plan.node_id} HTTPS", plan.https_port))
            out.extend((f"{plan.node_id} agent", port) for port in plan.agent_ports)
        return out


def gateway_document(layout: Layout) -> dict[str, Any]:
    """The embedded gateway configuration (``gateway/defaults/gateway.json``) moved to
    `layout`'s ports, with a ``nodes`` override per edge node."""
    raw = resources.files("gateway").joinpath("defaults/gateway.json").read_bytes()
    doc: dict[str, Any] = json.loads(raw)
    doc["control_plane"]["xds_port"] = layout.xds_port
    doc["control_plane"]["admin_port"] = layout.admin_port
    first = layout.node(1)
    ports = {HTTP_LISTENER: first.http_port, HTTPS_LISTENER: first.https_port}
    names = {listener["name"] for listener in doc["listeners"]}
    if names != set(ports):
        raise ValueError(f"embedded gateway configuration: expected listeners {sorted(ports)}")
    for listener in doc["listeners"]:
        listener["port"] = ports[listener["name"]]
    doc["agent"]["ports"] = list(first.agent_ports)
    upstreams = {
        "corebank": layout.corebank_port,
        "corebank-sandbox": layout.corebank_sandbox_port,
        "authn": layout.authn_port,
    }
    for name, port in upstreams.items():
        doc["clusters"][name]["endpoints"] = [{"address": "127.0.0.1", "port": port}]
    doc["nodes"] = {
        plan.node_id: {
            "listener_ports": {HTTP_LISTENER: plan.http_port, HTTPS_LISTENER: plan.https_port},
            "agent_ports": list(plan.agent_ports),
        }
        for plan in layout.node_plans()
    }
    return doc


@dataclass(frozen=True)
class AgentFiles:
    """What every node's agent shares: the authn store and keys, and the assertion
    signing key: an SM2 key ring (and its KEK) or a shared HMAC-SM3 key file."""

    store_url: str
    token_jwks: Path
    token_issuer: str
    token_audience: str
    assertion_keyring: Path | None = None
    assertion_kek: Path | None = None
    assertion_hmac_key: Path | None = None
    masking_key_file: Path | None = None
    """The pseudonym master key every node shares (partners' pseudonyms agree)."""
    quota_redis_url: str = ""
    """Redis for quota buckets shared by every node; empty = per worker."""
    response_signing_key_file: Path | None = None
    """The edge's RFC 9421 response-signing key every node shares (one published JWKS)."""


def agent_toml(plan: NodePlan, files: AgentFiles, decision_log_dir: Path) -> str:
    """The ``[agent]`` table (`gateway.agent_config.AgentConfig`) of `plan`'s workers."""
    values: dict[str, str | int] = {
        "node_id": plan.node_id,
        "base_port": plan.agent_ports[0],
        "workers": len(plan.agent_ports),
        "store_url": files.store_url,
        "token_jwks": str(files.token_jwks),
        "token_issuer": files.token_issuer,
        "token_audience": files.token_audience,
        "decision_log_dir": str(decision_log_dir),
    }
    for key in (
        "assertion_keyring",
        "assertion_kek",
        "assertion_hmac_key",
        "masking_key_file",
        "response_signing_key_file",
    ):
        path = getattr(files, key)
        if path is not None:
            values[key] = str(path)
    if files.quota_redis_url:
        values["quota_redis_url"] = files.quota_redis_url
    # A JSON string is a valid TOML basic string for these values (no control chars).
    lines = ["[agent]"] + [f"{key} = {json.dumps(value)}" for key, value in values.items()]
    return "\n".join(lines) + "\n"
