"""The control plane process: the ADS gRPC server, the admin HTTP API, the secret
watcher — one event loop.

A configuration change reaches every connected node without restarting
anything: `reload` re-reads and validates the file and its secrets, builds a
consistent snapshot for every known node, and only then swaps it in; a bad file
is refused with the offending key named, and the previous snapshots keep
serving. The secret watcher re-reads the PEM files every ``secret_poll_ms`` and
pushes changed secrets over SDS (Envoy applies them to new TLS handshakes;
established connections are untouched).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import grpc
from aiohttp import web
from envoy.service.discovery.v3 import ads_pb2_grpc

from edge_nodes import secrets as secret_files
from edge_nodes.admin import build_app
from edge_nodes.ads import AggregatedDiscovery
from edge_nodes.cache import SnapshotCache
from edge_nodes.registry import Registry
from edge_nodes.resources import SecretMaterial
from edge_nodes.snapshot import SnapshotError
from gateway.config import GatewayConfig, GatewayConfigError

log = logging.getLogger("edge_nodes.server")

Loader = Callable[[], GatewayConfig]


@dataclass(frozen=True)
class ReloadResult:
    generation: int
    versions: dict[str, str]


class ControlPlane:
    """`loader` reads and validates the configuration (a file, or the embedded
    default); it is called again on every reload."""

    def __init__(
        self, loader: Loader, *, xds_port: int | None = None, admin_port: int | None = None
    ):
        self._loader = loader
        cfg, material = self._read()
        self.registry = Registry()
        self.cache = SnapshotCache(cfg, material, self.registry)
        self._xds_port = cfg.control_plane.xds_port if xds_port is None else xds_port
        self._admin_port = cfg.control_plane.admin_port if admin_port is None else admin_port
        self._address = cfg.control_plane.address
        self._secret_digest = secret_files.fingerprint(material)
        self._secret_problem = ""
        self._grpc: grpc.aio.Server | None = None
        self._runner: web.AppRunner | None = None
        self._poller: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        self.xds_port = 0
        self.admin_port = 0

    def _read(self) -> tuple[GatewayConfig, dict[str, SecretMaterial]]:
        cfg = self._loader()
        return cfg, secret_files.read_secrets(cfg)

    async def start(self) -> None:
        server = grpc.aio.server(
            options=[
                ("grpc.so_reuseport", 0),  # a second control plane must not share the port
                ("grpc.keepalive_time_ms", 30_000),
                ("grpc.max_receive_message_length", 4 * 1024 * 1024),
            ]
        )
        ads_pb2_grpc.add_AggregatedDiscoveryServiceServicer_to_server(
            AggregatedDiscovery(self.cache, self.registry), server
        )
        self.xds_port = server.add_insecure_port(f"{self._address}:{self._xds_port}")
        if self.xds_port == 0:
            raise OSError(f"cannot listen on {self._address}:{self._xds_port}")
        await server.start()
        self._grpc = server
        self._runner = web.AppRunner(build_app(self), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._address, self._admin_port, reuse_port=False)
        await site.start()
        self.admin_port = self._bound_port(site)
        self._poller = asyncio.create_task(self._poll_secrets())
        log.info(
            "control plane started",
            extra={"xds_port": self.xds_port, "admin_port": self.admin_port},
        )

    @staticmethod
    def _bound_port(site: web.TCPSite) -> int:
        server = site._server  # aiohttp keeps the asyncio server here
        assert isinstance(server, asyncio.base_events.Server)
        return int(server.sockets[0].getsockname()[1])

    async def stop(self, grace: float = 0.5) -> None:
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poller
        if self._grpc is not None:
            await self._grpc.stop(grace)
        if self._runner is not None:
            await self._runner.cleanup()

    async def reload(self) -> ReloadResult:
        """Re-read the configuration and its secrets; apply them everywhere or not at
        all. Raises `GatewayConfigError`."""
        async with self._lock:
            cfg, material = await asyncio.to_thread(self._read)
            running = self.cache.config.control_plane
            for key in ("address", "xds_port", "admin_port"):
                if getattr(cfg.control_plane, key) != getattr(running, key):
                    raise GatewayConfigError(
                        f"control_plane.{key}",
                        "cannot change while running; restart the control plane",
                    )
            return self._apply(cfg, material)

    def _apply(self, cfg: GatewayConfig, material: dict[str, SecretMaterial]) -> ReloadResult:
        try:
            versions = self.cache.update(cfg, material)
        except SnapshotError as exc:
            raise GatewayConfigError("", f"inconsistent snapshot: {exc}") from None
        self._secret_digest = secret_files.fingerprint(material)
        return ReloadResult(self.cache.generation, versions)

    async def _poll_secrets(self) -> None:
        while True:
            interval = self.cache.config.control_plane.secret_poll_ms
            await asyncio.sleep(interval / 1000 if interval else 5.0)
            if not interval:
                continue
            try:
                await self._check_secrets()
            except Exception:  # keep watching: one bad round must not end rotation
                log.exception("secret check failed")

    async def _check_secrets(self) -> None:
        async with self._lock:
            cfg = self.cache.config
            try:
                material = await asyncio.to_thread(secret_files.read_secrets, cfg)
            except GatewayConfigError as exc:
                if str(exc) != self._secret_problem:  # say it once, not every poll
                    log.warning(
                        "secret files refused", extra={"key": exc.key, "problem": exc.problem}
                    )
                    self._secret_problem = str(exc)
                return
            self._secret_problem = ""
            if secret_files.fingerprint(material) == self._secret_digest:
                return
            try:
                result = self._apply(cfg, material)
            except GatewayConfigError as exc:
                log.warning("rotated secrets refused", extra={"problem": str(exc)})
                return
            log.info("secrets rotated", extra={"generation": result.generation})


def file_loader(path: Path) -> Loader:
    from gateway.config import load

    return lambda: load(path)


def default_loader(state_dir: Path) -> Loader:
    from gateway.config import load_default

    return lambda: load_default(state_dir)
