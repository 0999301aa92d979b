"""`ztgate up`: the whole gateway on one machine, on loopback, until Ctrl-C.

The composition root (docs/running.md). After the crypto self-test it starts,
in this order, and stops in the reverse order:

1. the authentication service, the policy service and the control plane, in this
   process's event loop (each is an aiohttp/grpc.aio server; a child process
   would only add start-up time);
2. the sample core bank, a child process (``python -m gateway.corebank``) that
   trusts only assertions signed by the edge's key ring, and beside it the sandbox
   core bank (``--sandbox``: its own synthetic state under ``<state>/corebank-sandbox``,
   only the open-banking API under ``/sandbox/open/v1``; docs/open-banking.md);
3. per edge node, the agent workers (``python -m gateway.workers``, a supervisor
   and its worker processes) and Envoy (`edge_nodes.envoy.LocalEnvoy`).

It then waits until every piece answers its health check and every edge node
has ACKed its configuration, prints the URLs and a few requests to try, and
writes ``--ready-file`` (atomically: JSON with every URL). SIGINT or SIGTERM
stops everything; so does the death of any child (exit status 1).

Ports: `ztgate.up_plan.Layout`. Files: ``<state>/up/`` (gateway configuration,
agent configuration, the edge's assertion key ring), ``<state>/logs/`` (child
processes' logs), ``<state>/envoy/<node>/`` (Envoy's bootstrap and log).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import signal
import socket
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Final

import aiohttp

from gateway.parent_watch import PARENT_ENV
from ztgate import config
from ztgate.crypto_cli import CliError
from ztgate.partner_cli import DIRECTORY_JWKS, DIRECTORY_KEYS
from ztgate.up_plan import AgentFiles, Layout, agent_toml, gateway_document

log = logging.getLogger("ztgate.up")

COMPONENTS: Final = "gateway.components:build_components"
START_TIMEOUT: Final = 90.0
STOP_TIMEOUT: Final = 10.0
SANDBOX_CUSTOMERS: Final = 50


class ChildExited(RuntimeError):
    """A child process ended while the stack was starting or running."""


@dataclass
class Child:
    """A child process whose stderr goes to a log file."""

    name: str
    process: asyncio.subprocess.Process
    log_path: Path

    @property
    def alive(self) -> bool:
        return self.process.returncode is None

    async def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        if self.alive:
            with contextlib.suppress(ProcessLookupError):
                self.process.terminate()
        try:
            await asyncio.wait_for(self.process.wait(), timeout)
        except TimeoutError:
            log.warning("child did not stop in time; killing it", extra={"child": self.name})
            with contextlib.suppress(ProcessLookupError):
                self.process.kill()
            await self.process.wait()


@dataclass
class Stack:
    layout: Layout
    cfg: config.Config
    components: str = COMPONENTS
    assertion: str = "hmac-sm3"
    """How the edge signs identity assertions for the core bank: ``hmac-sm3`` (a
    shared key) or ``sm2`` (the edge's key ring; the core bank holds its JWKS)."""
    redis_url: str = ""
    """Shared state for every node's agents (quota buckets); empty = per worker."""
    urls: dict[str, Any] = field(default_factory=dict)
    children: list[Child] = field(default_factory=list)
    envoys: list[Any] = field(default_factory=list)
    _stops: list[tuple[str, Callable[[], Awaitable[None]]]] = field(default_factory=list)

    @property
    def state(self) -> Path:
        return self.cfg.state.dir.resolve()

    async def start(self) -> None:
        check_ports_free(self.layout)
        self._check_components()
        for sub in ("up", "logs"):
            (self.state / sub).mkdir(parents=True, exist_ok=True, mode=0o700)
        authn = await self._start_authn()
        await self._start_policy()
        if self.assertion == "sm2":
            ring_dir, jwks = self._edge_assertion_keys()
            signing = {"assertion_keyring": ring_dir, "assertion_kek": self.state / "kek.json"}
            verifier = ("--assertion-jwks", jwks)
        else:
            key = self._edge_assertion_hmac_key()
            signing = {"assertion_hmac_key": key}
            verifier = ("--assertion-hmac-key", key)
        await self._start_corebank(*verifier)
        await self._start_corebank(*verifier, sandbox=True)
        cp = await self._start_control_plane()
        files = AgentFiles(
            store_url=self._store_url(authn.state.config),
            token_jwks=self._write_json(
                self.state / "up" / "token-jwks.json", authn.state.keyring.jwks()
            ),
            token_issuer=authn.url.rstrip("/"),
            token_audience=authn.state.config.audience,
            masking_key_file=self._secret_key("masking.key"),
            quota_redis_url=self.redis_url,
            response_signing_key_file=self._response_signing_key(),
            **signing,
        )
        for plan in self.layout.node_plans():
            await self._start_agent(plan, files)
        for plan in self.layout.node_plans():
            await self._start_envoy(plan.node_id)
        await self._wait_healthy(cp)

    def _check_components(self) -> None:
        from gateway.workers import load_factory

        try:
            load_factory(self.components)
        except (ImportError, AttributeError, ValueError) as exc:
            raise CliError(f"components factory {self.components}: {exc}") from None

    def _store_url(self, authn_cfg: Any) -> str:
        """The authn store's database, which also holds the device registry."""
        return str(authn_cfg.database_url or f"sqlite://{(self.state / 'authn.db').resolve()}")

    async def _start_authn(self) -> Any:
        from authn.service.runner import start_service
        from gateway.catalogue.portal import RESPONSE_JWKS_PATH, portal_extension
        from gateway.devices_api import devices_extension

        port = self.layout.authn_port
        authn_cfg = self.cfg.authn
        if authn_cfg.public_url.rstrip("/") == f"http://localhost:{authn_cfg.port}":
            authn_cfg = replace(authn_cfg, public_url=f"http://localhost:{port}")
        authn_cfg = replace(authn_cfg, host="127.0.0.1", port=port)
        if authn_cfg.directory_jwks is None:  # ztgate up is the local directory too
            authn_cfg = replace(authn_cfg, directory_jwks=self.state / "up" / DIRECTORY_JWKS)
        service = await start_service(
            state_dir=self.state,
            config=authn_cfg,
            signing_algorithm=self.cfg.crypto.signing_algorithm,
            extensions=[
                devices_extension(self._store_url(authn_cfg), self.cfg.device),
                portal_extension(self._response_signer().jwks()),
            ],
        )
        self._stops.append(("authn service", service.stop))
        if authn_cfg.directory_jwks == self.state / "up" / DIRECTORY_JWKS:
            self._sealed_ring(DIRECTORY_KEYS, DIRECTORY_JWKS)
        self.urls["directory_jwks"] = str(authn_cfg.directory_jwks)
        self.urls["authn"] = service.url
        self.urls["authn_jwks"] = service.url.rstrip("/") + "/.well-known/jwks.json"
        self.urls["authn_admin_token_file"] = str(self.state / "admin-token")
        self.urls["portal"] = service.url.rstrip("/") + "/portal/"
        self.urls["response_jwks"] = service.url.rstrip("/") + RESPONSE_JWKS_PATH
        return service

    async def _start_policy(self) -> None:
        from policy.reload import PolicyHolder
        from policy.server import PolicyServerConfig, start_policy_server
        from ztgate.policy_cli import default_bundle

        server_cfg = PolicyServerConfig(port=self.layout.policy_port)
        holder = PolicyHolder(entrypoint=server_cfg.entrypoint)
        result = await holder.load(default_bundle())
        if result is None or not result.ok:
            raise CliError("the default policy bundle does not load")
        running = await start_policy_server(holder, config=server_cfg, admin_token="")

        async def stop() -> None:
            await running.stop()
            await holder.close()

        self._stops.append(("policy service", stop))
        self.urls["policy"] = f"http://127.0.0.1:{self.layout.policy_port}"

    def _edge_assertion_keys(self) -> tuple[Path, Path]:
        """The edge's SM2 assertion key ring and its public JWKS, which the core bank
        trusts."""
        return self._sealed_ring("assertion-keys", "assertion-jwks.json")

    def _sealed_ring(self, name: str, jwks_name: str) -> tuple[Path, Path]:
        """An SM2 key ring under ``<state>/up/<name>`` (sealed with the state's KEK;
        created on first start) and its public JWKS written beside it."""
        from ztgate.partner_cli import load_or_create_ring

        directory = self.state / "up" / name
        ring = load_or_create_ring(directory, self.state / "kek.json")
        return directory, self._write_json(self.state / "up" / jwks_name, ring.jwks())

    def _edge_assertion_hmac_key(self) -> Path:
        """The HMAC-SM3 key the edge and the core bank share for identity assertions
        (32 random bytes, mode 0600; created on first start)."""
        return self._secret_key("assertion-hmac.key")

    def _response_signing_key(self) -> Path:
        """The edge's RFC 9421 response-signing key, ``<state>/up/response-signing.pem``
        (PKCS#8, mode 0600; created on first start): P-256 when the stack signs with
        ``ec-p256``, SM2 otherwise."""
        from crypto import keys

        path = self.state / "up" / "response-signing.pem"
        if not path.exists():
            algorithm: keys.Algorithm = (
                "ec-p256" if self.cfg.crypto.signing_algorithm == "ec-p256" else "sm2"
            )
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(keys.generate(algorithm).private_pem())
        return path

    def _response_signer(self) -> Any:
        """The `gateway.response_signing.ResponseSigner` of `_response_signing_key`."""
        from gateway.response_signing import ResponseSigner

        return ResponseSigner.from_pem(self._response_signing_key().read_bytes())

    def _secret_key(self, name: str) -> Path:
        """``<state>/up/<name>``: 32 random bytes, mode 0600, created on first start."""
        path = self.state / "up" / name
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(os.urandom(32))
        return path

    @staticmethod
    def _write_json(path: Path, doc: Any) -> Path:
        write_atomic(path, json.dumps(doc, indent=2) + "\n")
        return path

    async def _spawn(self, name: str, *argv: str) -> Child:
        log_path = self.state / "logs" / f"{name}.log"
        with open(log_path, "ab") as errors:
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                *argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=errors,
                env={**os.environ, PARENT_ENV: str(os.getpid())},  # gateway.parent_watch
            )
        child = Child(name, process, log_path)
        self.children.append(child)
        self._stops.append((name, child.stop))
        return child

    async def _start_corebank(
        self, assertion_flag: str, assertion_file: Path, *, sandbox: bool = False
    ) -> None:
        """The core bank, or the sandbox one: its own state directory, port and data
        (a random seed and SANDBOX_CUSTOMERS customers on first start)."""
        name = "corebank-sandbox" if sandbox else "corebank"
        port = self.layout.corebank_sandbox_port if sandbox else self.layout.corebank_port
        extra = ("--sandbox", "--customers", str(SANDBOX_CUSTOMERS)) if sandbox else ()
        await self._spawn(
            name,
            "-m",
            "gateway.corebank",
            "--state-dir",
            str(self.state / name),
            "--port",
            str(port),
            assertion_flag,
            str(assertion_file),
            *extra,
        )
        self.urls[name.replace("-", "_")] = f"http://127.0.0.1:{port}"

    async def _start_control_plane(self) -> Any:
        from edge_nodes import pki
        from edge_nodes.server import ControlPlane
        from gateway.config import GatewayConfigError, from_document

        pki.ensure_local_pki(self.state)
        doc = gateway_document(self.layout)
        self._write_json(self.state / "up" / "gateway.json", doc)
        try:
            cp = ControlPlane(lambda: from_document(doc, base_dir=self.state))
        except GatewayConfigError as exc:
            raise CliError(f"gateway configuration: {exc}") from None
        await cp.start()
        self._stops.append(("control plane", cp.stop))
        self.urls["control_plane"] = f"http://127.0.0.1:{cp.admin_port}"
        self.urls["xds"] = f"127.0.0.1:{cp.xds_port}"
        self.urls["ca_certificate"] = str(self.state / "pki" / "ca.crt")
        return cp

    async def _start_agent(self, plan: Any, files: AgentFiles) -> None:
        node_dir = self.state / "up" / plan.node_id
        node_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        toml = node_dir / "agent.toml"
        write_atomic(toml, agent_toml(plan, files, node_dir / "decision-logs"))
        level = "warning" if self.cfg.log.level == "info" else self.cfg.log.level
        await self._spawn(
            f"agent-{plan.node_id}",
            "-m",
            "gateway.workers",
            str(toml),
            "--components",
            self.components,
            "--log-level",
            level,
        )

    async def _start_envoy(self, node_id: str) -> None:
        from edge_nodes.envoy import EnvoyError, EnvoyOptions, LocalEnvoy

        envoy = LocalEnvoy(
            EnvoyOptions(
                node_id=node_id,
                xds_port=self.layout.xds_port,
                work_dir=self.state / "envoy" / node_id,
            )
        )
        try:
            await envoy.start(timeout=START_TIMEOUT)
        except EnvoyError as exc:
            raise CliError(f"{node_id}: {exc}") from None
        self.envoys.append(envoy)
        self._stops.append((f"envoy {node_id}", envoy.stop))

    async def _wait_healthy(self, cp: Any) -> None:
        checks = {
            "authn service": self.urls["authn"].rstrip("/") + "/healthz",
            "policy service": self.urls["policy"] + "/health",
            "core bank": self.urls["corebank"] + "/healthz",
            "sandbox core bank": self.urls["corebank_sandbox"] + "/healthz",
            "control plane": self.urls["control_plane"] + "/healthz",
        }
        node_ids = [plan.node_id for plan in self.layout.node_plans()]
        deadline = time.monotonic() + START_TIMEOUT
        pending: list[str] = []
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as session:
            while True:
                self.raise_if_child_exited()
                pending = [name for name, url in checks.items() if not await _ok(session, url)]
                pending += [f"agent of {n}" for n in node_ids if not self._agent_serving(n)]
                synced = {s.node_id for s in cp.registry.status(node_ids) if s.in_sync}
                pending += [f"{n} (configuration not ACKed)" for n in node_ids if n not in synced]
                if not pending:
                    break
                if time.monotonic() > deadline:
                    raise CliError(f"not healthy in {START_TIMEOUT:.0f}s: {', '.join(pending)}")
                await asyncio.sleep(0.1)
        self.urls["edge_nodes"] = [
            {
                "node_id": plan.node_id,
                "http": f"http://localhost:{plan.http_port}",
                "https": f"https://localhost:{plan.https_port}",
                "envoy_admin": envoy.admin_url,
                "agent_ports": list(plan.agent_ports),
            }
            for plan, envoy in zip(self.layout.node_plans(), self.envoys, strict=True)
        ]
        self.urls["edge"] = self.urls["edge_nodes"][0]["http"]
        self.urls["edge_tls"] = self.urls["edge_nodes"][0]["https"]
        self.urls["admin"] = self.urls["control_plane"]

    def _agent_serving(self, node_id: str) -> bool:
        plan = next(p for p in self.layout.node_plans() if p.node_id == node_id)
        return all(_accepts(port) for port in plan.agent_ports)

    def raise_if_child_exited(self) -> None:
        for child in self.children:
            if not child.alive:
                raise ChildExited(
                    f"{child.name} exited with status {child.process.returncode}; "
                    f"see {child.log_path}"
                )
        for envoy in self.envoys:
            if not envoy.running():
                raise ChildExited(f"envoy {envoy.opts.node_id} exited; see {envoy.log_path}")

    async def stop(self) -> None:
        """Stop everything started, newest first; one failure does not stop the rest."""
        while self._stops:
            name, stop = self._stops.pop()
            try:
                await stop()
            except Exception:
                log.exception("could not stop cleanly", extra={"component": name})


def check_ports_free(layout: Layout) -> None:
    for what, port in layout.ports():
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                raise CliError(
                    f"port {port} ({what}) is in use; stop what holds it or choose --base-port"
                ) from None


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


async def _ok(session: aiohttp.ClientSession, url: str) -> bool:
    try:
        async with session.get(url) as resp:
            return resp.status == 200
    except (aiohttp.ClientError, OSError, TimeoutError):
        return False


def write_atomic(path: Path, text: str) -> None:
    """Write `text` to `path` so a reader sees the old file or the whole new one."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def summary(urls: dict[str, Any], seconds: float) -> str:
    edge, ca = urls["edge"], urls["ca_certificate"]
    lines = [f"ztgate is up ({seconds:.1f}s)", ""]
    for node in urls["edge_nodes"]:
        lines.append(f"  edge {node['node_id']:<8} {node['http']}  {node['https']}")
    lines += [
        f"  authn service  {urls['authn']}",
        f"  policy service {urls['policy']}",
        f"  API portal     {urls['portal']}  (partner API catalogue, OpenAPI 3.1)",
        f"  response keys  {urls['response_jwks']}  (edge's RFC 9421 response-signing JWKS)",
        f"  core bank      {urls['corebank']}  (reachable directly only with an edge assertion)",
        f"  sandbox bank   {urls['corebank_sandbox']}  (synthetic data; edge routes"
        " /sandbox/open/v1, sandbox partners only)",
        f"  control plane  {urls['control_plane']}  (xDS {urls['xds']})",
        "",
        "Try:",
        f"  curl -s {edge}/api/products                 # public route through the edge",
        f"  curl -si -X POST {edge}/api/transfers       # no token: 401 with a reason",
        f"  curl -s --cacert {ca} {urls['edge_tls']}/api/products",
        f"  curl -s {urls['authn_jwks']}",
        f"  ztgate nodes --control-plane {urls['control_plane']}",
        "",
        "Ctrl-C stops everything.",
    ]
    return "\n".join(lines)


async def run(stack: Stack, ready_file: Path | None) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    began = time.monotonic()
    starting = asyncio.create_task(stack.start())
    stopping = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait({starting, stopping}, return_when=asyncio.FIRST_COMPLETED)
        if not starting.done():
            starting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await starting
            return 130
        starting.result()  # raises what start raised
        stack.urls["pid"] = os.getpid()
        stack.urls["state_dir"] = str(stack.state)
        print(summary(stack.urls, time.monotonic() - began), flush=True)
        if ready_file is not None:
            write_atomic(ready_file, json.dumps(stack.urls, indent=2) + "\n")
        log.info("ztgate up", extra={"event": "up.ready", "seconds": time.monotonic() - began})
        while not stop.is_set():
            stack.raise_if_child_exited()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.5)
        return 0
    except ChildExited as exc:
        print(f"ztgate: {exc}", file=sys.stderr)
        return 1
    finally:
        stopping.cancel()
        await stack.stop()
        if ready_file is not None:
            ready_file.unlink(missing_ok=True)


def cmd_up(args: argparse.Namespace) -> int:
    from crypto import selftest

    cfg: config.Config = args.cfg
    if cfg.crypto.selftest_on_start:
        failed = [c.name for c in selftest.run() if not c.ok]
        if failed:
            raise CliError(f"crypto self-test failed, refusing to start: {', '.join(failed)}")
    try:
        layout = Layout(base_port=args.base_port, nodes=args.nodes, workers=args.workers)
    except ValueError as exc:
        raise CliError(str(exc)) from None
    stack = Stack(
        layout, cfg, components=args.components, assertion=args.assertion, redis_url=args.redis
    )
    return asyncio.run(run(stack, args.ready_file))


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "up",
        help="run the whole gateway on loopback until Ctrl-C: control plane, edge node(s), "
        "authn, policy service, sample core bank and its sandbox",
        description="Run the crypto self-test, then start on loopback the control plane, "
        "--nodes edge nodes (agent workers + Envoy), the authentication service, the "
        "policy service, the sample core bank and the sandbox core bank (synthetic data "
        "for sandbox partners, behind the edge's /sandbox/open/v1 routes); wait until all "
        "are healthy, print the URLs and example requests, and stop everything on "
        "Ctrl-C/SIGTERM. Ports follow --base-port (default 8080: edge "
        "http://localhost:8080 and https://localhost:8443, authn 8081, core bank 8090, "
        "sandbox core bank 8091, policy 8181, control plane 18000/18001); see "
        "docs/running.md.",
    )
    p.add_argument("--nodes", type=int, default=1, metavar="N", help="edge nodes (default 1)")
    p.add_argument(
        "--base-port",
        type=int,
        default=8080,
        metavar="PORT",
        help="first edge node's HTTP port; every other port follows from it (default 8080)",
    )
    p.add_argument(
        "--workers", type=int, default=2, metavar="N", help="agent workers per node (default 2)"
    )
    p.add_argument(
        "--ready-file",
        type=Path,
        metavar="PATH",
        help="once all is healthy, write a JSON object with every URL here (removed on exit)",
    )
    p.add_argument(
        "--components",
        default=COMPONENTS,
        metavar="MODULE:FACTORY",
        help=f"the edge agent's device assessor and risk scorer (default {COMPONENTS})",
    )
    p.add_argument(
        "--redis",
        metavar="URL",
        default="",
        help="Redis shared by every node's agents for quota buckets (e.g. "
        "redis://127.0.0.1:6379/0); default: each agent worker keeps its own",
    )
    p.add_argument(
        "--assertion",
        choices=("hmac-sm3", "sm2"),
        default="hmac-sm3",
        help="how the edge signs identity assertions for the core bank: HMAC-SM3 with a "
        "shared key (default; ~15 us a request) or SM2 (the core bank holds only the "
        "public JWKS; ~0.7 ms a request); see docs/edge-agent.md",
    )
    p.set_defaults(func=cmd_up)
