"""The real pieces of the edge benchmark (benchmarks/edge.py): core-bank processes, the
gateway configuration, a control plane with its Envoy (or the same Envoy configuration
without ext_authz, as a static bootstrap), and the agent's configuration with a
customer, a token and a bound device."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import random
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any, Final

import aiohttp

from authn.store import open_store
from crypto.keyring import KeyRing
from device_fingerprint.assessment import DeviceObservation
from edge_nodes.clusters import build_clusters
from edge_nodes.envoy import EnvoyOptions, LocalEnvoy, bootstrap
from edge_nodes.listeners import build_listener
from edge_nodes.resources import EXT_AUTHZ_CLUSTER, EXT_PROC_CLUSTER
from edge_nodes.routes import build_route_configuration
from edge_nodes.server import ControlPlane, file_loader
from gateway import config as gateway_config
from gateway.agent_config import AgentConfig
from gateway.quotas import DEFAULT_TIERS, QuotaTier
from tests.edge_nodes.harness import free_port
from tests.gateway.harness import customer_token, make_config, signals

NODE = "bench-edge"
MFA = "urn:ztgate:acr:mfa"
AGENT_FILTERS = ("envoy.filters.http.ext_authz", "envoy.filters.http.ext_proc")
DEFAULTS = Path(gateway_config.__file__).parent / "defaults" / "gateway.json"


# -- the core bank -------------------------------------------------------------------


class CoreBanks:
    """`count` ``python -m gateway.corebank`` processes on one state directory (the
    first seeds it; the others start once it is ready)."""

    def __init__(self, state_dir: Path, count: int) -> None:
        self.state_dir = state_dir
        self.count = count
        self.procs: list[subprocess.Popen[bytes]] = []
        self.ports: list[int] = []

    async def __aenter__(self) -> CoreBanks:
        try:
            for _ in range(self.count):
                self.ports.append(await asyncio.to_thread(self._start_one))
        except BaseException:
            self.stop()
            raise
        return self

    def _start_one(self) -> int:
        argv = [sys.executable, "-m", "gateway.corebank", "--state-dir", str(self.state_dir)]
        argv += ["--port", "0", "--trust-identity-headers", "--log-level", "warning"]
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        self.procs.append(proc)
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the core bank exited with {proc.wait()}")
        return int(json.loads(line)["port"])

    def stop(self) -> None:
        for proc in self.procs:
            proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()

    async def __aexit__(self, *_: object) -> None:
        await asyncio.to_thread(self.stop)


# -- the gateway configuration -------------------------------------------------------


def gateway_document(corebank_ports: list[int], agent_ports: list[int]) -> dict[str, Any]:
    """The shipped default configuration with one plain-HTTP loopback listener (port
    chosen at start), the core bank's routes less the mTLS ones (no TLS here), and
    these ports."""
    doc: dict[str, Any] = json.loads(DEFAULTS.read_text())
    doc.pop("secrets", None)
    doc["listeners"] = [{"name": "edge-plain", "address": "127.0.0.1", "port": 0}]
    doc["agent"]["ports"] = agent_ports or [65000]  # unused by the static bootstrap
    bank = doc["clusters"]["corebank"]
    bank["endpoints"] = [{"address": "127.0.0.1", "port": p} for p in corebank_ports]
    doc["clusters"] = {"corebank": bank}
    doc["routes"] = [r for r in doc["routes"] if r["cluster"] == "corebank" and not r.get("mtls")]
    return doc


def _without_agent(cfg: gateway_config.GatewayConfig) -> tuple[dict[str, Any], list[Any]]:
    """The listener (routes inline) and clusters the control plane would send, less the
    ext_authz and ext_proc filters and their clusters: Envoy alone."""
    listener = build_listener(cfg, cfg.listeners[0])
    hcm = listener["filter_chains"][0]["filters"][0]["typed_config"]
    hcm["http_filters"] = [f for f in hcm["http_filters"] if f["name"] not in AGENT_FILTERS]
    routes = build_route_configuration(cfg, cfg.listeners[0])
    for host in routes["virtual_hosts"]:
        for route in host["routes"]:
            for name in AGENT_FILTERS:
                route.get("typed_per_filter_config", {}).pop(name, None)
    del hcm["rds"]
    hcm["route_config"] = routes
    agent = (EXT_AUTHZ_CLUSTER, EXT_PROC_CLUSTER)
    return listener, [c for c in build_clusters(cfg) if c["name"] not in agent]


class StaticEnvoy(LocalEnvoy):
    """`LocalEnvoy` (same binary, options, admin and readiness) on a static bootstrap."""

    def __init__(self, opts: EnvoyOptions, listener: dict[str, Any], clusters: list[Any]):
        super().__init__(opts)
        self._static = {"listeners": [listener], "clusters": clusters}

    async def start(self, timeout: float = 20.0) -> None:
        d = self.opts.work_dir
        d.mkdir(parents=True, exist_ok=True)
        (d / "admin-address").unlink(missing_ok=True)
        doc = bootstrap(self.opts)
        del doc["dynamic_resources"]
        doc["static_resources"] = self._static
        (d / "bootstrap.json").write_text(json.dumps(doc, indent=2))
        self._proc = subprocess.Popen(
            self.command(), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL
        )
        try:
            await self._wait_live(time.monotonic() + timeout)
        except BaseException:
            await self.stop()
            raise


@dataclass(frozen=True)
class Edge:
    port: int
    headers: Mapping[str, str]
    envoy: LocalEnvoy


_runs = 0


@contextlib.asynccontextmanager
async def start_edge(
    tmp: Path,
    doc: dict[str, Any],
    headers: Mapping[str, str],
    concurrency: int,
    *,
    static: bool = False,
) -> AsyncIterator[Edge]:
    """A control plane serving `doc` and an Envoy attached to it (or, `static`, the same
    configuration without the agent and no control plane); yields once Envoy is live."""
    global _runs
    _runs += 1
    doc = json.loads(json.dumps(doc))
    doc["listeners"][0]["port"] = port = free_port()
    path = tmp / f"gateway-{_runs}.json"
    path.write_text(json.dumps(doc))
    work = tmp / f"envoy-{_runs}"
    cp = None
    if static:
        listener, clusters = _without_agent(gateway_config.load(path))
        opts = EnvoyOptions(node_id=NODE, xds_port=1, work_dir=work, concurrency=concurrency)
        envoy: LocalEnvoy = StaticEnvoy(opts, listener, clusters)
    else:
        cp = ControlPlane(file_loader(path), xds_port=0, admin_port=0)
        await cp.start()
        opts = EnvoyOptions(node_id=NODE, xds_port=cp.xds_port, work_dir=work)
        envoy = LocalEnvoy(replace(opts, concurrency=concurrency))
    try:
        await envoy.start()
        yield Edge(port, headers, envoy)
    finally:
        await envoy.stop()
        if cp is not None:
            await cp.stop(0)


async def probe(url: str, headers: Mapping[str, str], timeout: float = 30.0) -> None:
    """Wait until `url` answers 200 (listeners warm, upstream health-checked, agent up)."""
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession(headers=dict(headers)) as session:
        while True:
            try:
                async with session.get(url) as resp:
                    body = await resp.read()
                    if resp.status == 200:
                        return
                    last = f"{resp.status} {body[:200]!r}"
            except aiohttp.ClientError as exc:
                last = repr(exc)
            if time.monotonic() > deadline:
                raise RuntimeError(f"{url} never answered 200 (last: {last})")
            await asyncio.sleep(0.1)


# -- the agent -----------------------------------------------------------------------


def _default(name: str) -> Any:
    return next(f.default for f in fields(AgentConfig) if f.name == name)


UNMETERED: Final = tuple(QuotaTier(t.name, 1_000_000, 60.0) for t in DEFAULT_TIERS)
"""The shipped tiers with room for a benchmark's load from one caller: the quota is
still taken on every check (its cost is measured), it just never refuses."""


def _production_defaults(config: AgentConfig) -> AgentConfig:
    """The test harness's configuration with the shipped timings (deadline, sync rates)
    and quotas that a single benchmark caller cannot exhaust."""
    return replace(
        config,
        quota_tiers=UNMETERED,
        check_timeout=_default("check_timeout"),
        revocation_sync_seconds=_default("revocation_sync_seconds"),
        revocation_max_staleness=_default("revocation_max_staleness"),
        policy_watch_seconds=_default("policy_watch_seconds"),
    )


async def agent_config(tmp: Path, assertion: str = "sm2") -> tuple[AgentConfig, KeyRing]:
    """An agent configuration over fresh keys and store: (config, the token signing keys).
    `assertion`: ``sm2`` (a key ring) or ``hmac-sm3`` (a shared key)."""
    config, token_ring, _ = make_config(tmp)
    if assertion == "hmac-sm3":
        key = tmp / "assertion-hmac.key"
        key.write_bytes(os.urandom(32))
        key.chmod(0o600)
        config = replace(config, assertion_keyring=None, assertion_hmac_key=key)
    return _production_defaults(config), token_ring


async def customer_headers(
    config: AgentConfig, token_ring: KeyRing, name: str, *, real_device: bool
) -> dict[str, str]:
    """A new customer, a fresh valid token for them (tokens live minutes: one per
    scenario) and a device bound to them: the request headers. `real_device`: a
    synthetic browser's collector payload, seen once by the real assessor and bound
    in the device registry (the authn store's database); otherwise the test
    doubles' payload naming the subject it is bound to."""
    store = await open_store(config.store_url)
    try:
        subject, token = await customer_token(store, token_ring, name)
    finally:
        await store.close()
    headers = {"authorization": f"Bearer {token}", "user-agent": "BankApp/8.4.2"}
    if not real_device:
        return headers | {"x-device-signals": signals("dev-" + name, subject)}
    obs = await _bound_device(config, subject)
    encoded = base64.urlsafe_b64encode(obs.signals or b"").rstrip(b"=").decode()
    assert obs.user_agent is not None
    return (
        headers
        | dict(obs.client_hints)
        | {
            "user-agent": obs.user_agent,
            "x-device-signals": encoded,
        }
    )


async def _bound_device(config: AgentConfig, subject: str) -> DeviceObservation:
    from device_fingerprint.assessor import DeviceAssessor
    from device_fingerprint.config import DeviceConfig
    from device_fingerprint.registry import Actor, open_registry
    from device_fingerprint.synthetic import observe, random_device

    device = random_device(random.Random(subject), "windows-chrome")
    # As the edge will see it: loopback client, plain HTTP (no JA4).
    obs = replace(observe(device, subject), client_ip="127.0.0.1", ja4=None)
    registry = await open_registry(
        config.store_url, DeviceConfig(), schema=config.store_schema or None
    )
    assessor = DeviceAssessor(registry, DeviceConfig())
    try:
        await assessor.start()
        seen = await assessor.assess(obs)
        await registry.bind(subject, seen, actor=Actor("customer", subject), acr=MFA, name="bench")
        bound = await assessor.assess(obs)
        if not bound.bound_to_subject:
            raise RuntimeError(f"the device did not bind: {bound}")
    finally:
        await assessor.close()
        await registry.close()
    return obs


def check_decisions(directory: Path) -> str:
    """Proof from the workers' decision logs that the measured checks were full ones:
    the last decision of every worker allows an authenticated customer on a device
    bound to them. Returns a one-line summary; raises when that is not so."""
    seen = []
    for path in sorted(directory.glob("decisions-*.jsonl")):
        lines = path.read_text().splitlines()
        if not lines:
            continue
        event = json.loads(lines[-1])
        device, result = event["input"]["device"], event["result"]
        identity = event["input"].get("identity") or {}
        if not (
            result.get("allow")
            and device.get("bound_to_subject")
            and identity.get("kind") == "customer"
        ):
            raise RuntimeError(f"{path.name}: not an allowed check on a bound device")
        seen.append(f"{path.name}: {len(lines)} decisions, trust {device.get('trust')}")
    if not seen:
        raise RuntimeError(f"no decision log in {directory}")
    return "; ".join(seen)
