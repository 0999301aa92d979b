"""Masking as a client sees it: a real Envoy in front of an upstream serving the ~10 KB
bodies of `benchmarks.masking`, the response sent through ext_proc (issue 7, check 4).

One Envoy (``.venv/bin/envoy``, static bootstrap, one worker) with three listeners
that differ only in the ext_proc cluster they call:

* **pass-through** — the baseline: a processor answering every phase with CONTINUE
  (`benchmarks.masking.PassThrough`);
* **masking** — `gateway.ext_proc.ExternalProcessorService` with the shipped rules;
* **body echo** — a reference: the body sent back unchanged as a body mutation
  (`benchmarks.masking.BodyEcho`), what any body-rewriting processor pays for
  the 10 KB on the way back before it does anything to them.

Both listeners have the control plane's ext_proc settings (edge_nodes/listeners.py:
response headers sent, response body BUFFERED, the route name as a response
attribute, the ``envoy.filters.http.ext_authz`` metadata forwarded), the same routes
(named after the gateway's route ids, so the masking rules apply) and the same
upstream; a ``set_metadata`` filter stands in for ext_authz and gives every request
the ``customer`` profile. So every processor receives the same headers and the same
buffered body over the same mode; only what it does with it differs.

Each processor and the upstream run in their own Python process (started here with
``python -m benchmarks.masking_envoy --serve ...``), the client in this one. The
listeners are measured in rotating blocks, so that the shared machine's load
drifts over all alike. At the default concurrency of 1 the latency added is the
processor's own work, not a queue in front of it. Printed: p50 / p99 latency per
response as the client sees it, responses/s, the processor's CPU per response (from
/proc), and the ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Final

import aiohttp

from edge_nodes.envoy import EnvoyOptions, LocalEnvoy, bootstrap

_ROOT: Final = Path(__file__).resolve().parent.parent
PROFILE: Final = "customer"
_KINDS: Final = {"pass-through": "pass", "masking": "mask", "body echo": "echo"}
"""Listener (and processor) name → the processor's ``--serve`` kind."""
_HTTP2: Final = {
    "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
        "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
        "explicit_http_config": {"http2_protocol_options": {}},
    }
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _cluster(name: str, port: int, http2: bool) -> dict[str, Any]:
    cluster: dict[str, Any] = {
        "name": name,
        "type": "STATIC",
        "connect_timeout": "1s",
        "load_assignment": {
            "cluster_name": name,
            "endpoints": [
                {
                    "lb_endpoints": [
                        {
                            "endpoint": {
                                "address": {
                                    "socket_address": {"address": "127.0.0.1", "port_value": port}
                                }
                            }
                        }
                    ]
                }
            ],
        },
    }
    if http2:
        cluster["typed_extension_protocol_options"] = _HTTP2
    return cluster


def _listener(name: str, port: int, processor: str, routes: list[str]) -> dict[str, Any]:
    ext_proc = {
        "@type": "type.googleapis.com/envoy.extensions.filters.http.ext_proc.v3.ExternalProcessor",
        "grpc_service": {"envoy_grpc": {"cluster_name": processor}, "timeout": "5s"},
        "failure_mode_allow": False,
        "processing_mode": {
            "request_header_mode": "SKIP",
            "response_header_mode": "SEND",
            "request_body_mode": "NONE",
            "response_body_mode": "BUFFERED",
            "request_trailer_mode": "SKIP",
            "response_trailer_mode": "SKIP",
        },
        "message_timeout": "5s",
        "response_attributes": ["xds.route_name"],
        "metadata_options": {
            "forwarding_namespaces": {"untyped": ["envoy.filters.http.ext_authz"]}
        },
        "stat_prefix": name,
    }
    decision = {
        "@type": "type.googleapis.com/envoy.extensions.filters.http.set_metadata.v3.Config",
        "metadata": [
            {
                "metadata_namespace": "envoy.filters.http.ext_authz",
                "value": {"mask_profile": PROFILE, "decision_id": "d-1"},
            }
        ],
    }
    hcm = {
        "@type": "type.googleapis.com/envoy.extensions.filters.network"
        ".http_connection_manager.v3.HttpConnectionManager",
        "stat_prefix": name,
        "route_config": {
            "name": name,
            "virtual_hosts": [
                {
                    "name": "all",
                    "domains": ["*"],
                    "routes": [
                        {"name": r, "match": {"path": f"/{r}"}, "route": {"cluster": "upstream"}}
                        for r in routes
                    ],
                }
            ],
        },
        "http_filters": [
            {"name": "envoy.filters.http.set_metadata", "typed_config": decision},
            {"name": "envoy.filters.http.ext_proc", "typed_config": ext_proc},
            {
                "name": "envoy.filters.http.router",
                "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"
                },
            },
        ],
    }
    return {
        "name": name,
        "address": {"socket_address": {"address": "127.0.0.1", "port_value": port}},
        "filter_chains": [
            {
                "filters": [
                    {"name": "envoy.filters.network.http_connection_manager", "typed_config": hcm}
                ]
            }
        ],
    }


class _Envoy(LocalEnvoy):
    """`LocalEnvoy` (binary, admin, readiness) on a static bootstrap of our own."""

    def __init__(self, opts: EnvoyOptions, static: dict[str, Any]) -> None:
        super().__init__(opts)
        self._static = static

    async def start(self, timeout: float = 20.0) -> None:
        d = self.opts.work_dir
        d.mkdir(parents=True, exist_ok=True)
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


def _spawn(kind: str, port: int) -> subprocess.Popen[bytes]:
    env = dict(
        os.environ, PYTHONPATH=os.pathsep.join([str(_ROOT), os.environ.get("PYTHONPATH", "")])
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.masking_envoy", "--serve", kind, "--port", str(port)],
        cwd=_ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if line.strip() != b"ready":
        proc.kill()
        raise RuntimeError(f"{kind} server did not start")
    return proc


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _block(
    session: aiohttp.ClientSession, port: int, routes: list[str], seconds: float, concurrency: int
) -> list[float]:
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds

    async def worker(offset: int) -> None:
        i = offset
        while time.perf_counter() < deadline:
            t0 = time.perf_counter()
            async with session.get(f"http://127.0.0.1:{port}/{routes[i % len(routes)]}") as r:
                await r.read()
                if r.status != 200:
                    raise RuntimeError(f"status {r.status}")
            latencies.append(time.perf_counter() - t0)
            i += 1

    await asyncio.gather(*(worker(i) for i in range(concurrency)))
    return latencies


async def through_envoy(
    docs: list[tuple[str, bytes]], seconds: float, concurrency: int, rounds: int = 6
) -> None:
    print(
        f"\nthrough Envoy (ext_proc, response body BUFFERED, profile {PROFILE},"
        f" concurrency {concurrency}): p50 / p99 ms, resp/s, processor CPU per response"
    )
    routes = [r for r, _ in docs]
    ports = {name: free_port() for name in ("upstream", *_KINDS)}
    servers: dict[str, subprocess.Popen[bytes]] = {}
    envoy: _Envoy | None = None
    try:
        servers["upstream"] = _spawn("upstream", ports["upstream"])
        for name, kind in _KINDS.items():
            servers[name] = _spawn(kind, ports[name])
        listen = {name: free_port() for name in _KINDS}
        static = {
            "listeners": [
                _listener(_KINDS[name], listen[name], f"proc_{_KINDS[name]}", routes)
                for name in listen
            ],
            "clusters": [_cluster("upstream", ports["upstream"], http2=False)]
            + [_cluster(f"proc_{_KINDS[n]}", ports[n], http2=True) for n in listen],
        }
        with tempfile.TemporaryDirectory(prefix="ztgate-masking-bench-") as tmp:
            opts = EnvoyOptions(node_id="masking-bench", xds_port=1, work_dir=Path(tmp))
            envoy = _Envoy(opts, static)
            await envoy.start()
            await _measure(envoy, docs, listen, servers, seconds, concurrency, rounds)
    except (OSError, RuntimeError, aiohttp.ClientError, TimeoutError) as e:
        print(f"  not measured: {type(e).__name__}: {e}")
    finally:
        if envoy is not None:
            await envoy.stop()
        for proc in servers.values():
            proc.terminate()
            proc.wait(5)


async def _measure(
    envoy: _Envoy,
    docs: list[tuple[str, bytes]],
    listen: dict[str, int],
    servers: dict[str, subprocess.Popen[bytes]],
    seconds: float,
    concurrency: int,
    rounds: int,
) -> None:
    routes = [r for r, _ in docs]
    originals = dict(docs)
    latencies: dict[str, list[float]] = {name: [] for name in listen}
    cpu: dict[str, float] = dict.fromkeys(listen, 0.0)
    wall: dict[str, float] = dict.fromkeys(listen, 0.0)
    connector = aiohttp.TCPConnector(limit=concurrency * 2)
    async with aiohttp.ClientSession(connector=connector) as session:
        # Readiness, and a check that each listener does what it says.
        for name, port in listen.items():
            for route in routes:
                async with session.get(f"http://127.0.0.1:{port}/{route}") as r:
                    body = await r.read()
                    if r.status != 200:
                        raise RuntimeError(f"{name} {route}: status {r.status}")
                    if (body == originals[route]) != (name != "masking"):
                        raise RuntimeError(f"{name} {route}: the body is not what it should be")
            await _block(session, port, routes, 0.5, concurrency)  # warm-up
        block = seconds / rounds
        names = list(listen)
        for i in range(rounds):
            order = names[i % len(names) :] + names[: i % len(names)]
            for name in order:
                pid = servers[name].pid
                cpu0, wall0 = _cpu_seconds(pid), time.perf_counter()
                latencies[name] += await _block(session, listen[name], routes, block, concurrency)
                cpu[name] += _cpu_seconds(pid) - cpu0
                wall[name] += time.perf_counter() - wall0
    results: dict[str, tuple[float, float, float, float]] = {}
    for name, values in latencies.items():
        values.sort()
        n = len(values)
        p50 = statistics.median(values) * 1e3
        p99 = values[max(0, int(n * 0.99) - 1)] * 1e3
        results[name] = (p50, p99, n / wall[name], cpu[name] / n * 1e6)
        print(
            f"  {name:13} {p50:6.2f} / {p99:6.2f} ms  {n / wall[name]:7.0f} resp/s"
            f"  processor CPU {cpu[name] / n * 1e6:6.0f} µs per response ({n} responses)"
        )
    masked = results["masking"]
    for name in ("pass-through", "body echo"):
        base = results[name]
        print(
            f"  masking / {name}: p50 x{masked[0] / base[0]:.2f} ({masked[0] - base[0]:+.2f} ms),"
            f" p99 x{masked[1] / base[1]:.2f}, throughput x{masked[2] / base[2]:.2f},"
            f" processor CPU x{masked[3] / base[3]:.2f} ({masked[3] - base[3]:+.0f} µs)"
        )


# -- the child processes -----------------------------------------------------------------


async def _serve(kind: str, port: int) -> None:
    from benchmarks.masking import BodyEcho, PassThrough, bodies

    if kind == "upstream":
        from aiohttp import web

        docs = dict(bodies())

        async def handle(request: web.Request) -> web.Response:
            body = docs.get(request.path.lstrip("/"))
            if body is None:
                return web.Response(status=404)
            return web.Response(body=body, content_type="application/json")

        app = web.Application()
        app.router.add_get("/{route}", handle)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
    else:
        import grpc
        from envoy.service.ext_proc.v3 import external_processor_pb2_grpc

        from gateway import ext_proc
        from gateway.masking import MaskingEngine, PseudonymKeys, default_rules
        from gateway.masking.service import MaskingSettings

        servicer: Any = PassThrough() if kind == "pass" else BodyEcho()
        if kind == "mask":
            engine = MaskingEngine(default_rules(), PseudonymKeys(b"\x11" * 32))
            servicer = ext_proc.ExternalProcessorService(MaskingSettings(engine))
        server = grpc.aio.server()
        external_processor_pb2_grpc.add_ExternalProcessorServicer_to_server(servicer, server)
        server.add_insecure_port(f"127.0.0.1:{port}")
        await server.start()
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    await asyncio.Event().wait()


def main() -> None:
    parser = argparse.ArgumentParser(description="a server for benchmarks/masking.py")
    parser.add_argument("--serve", choices=("upstream", *_KINDS.values()), required=True)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(args.serve, args.port))


if __name__ == "__main__":
    main()
