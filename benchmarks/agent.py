"""Edge agent ext_authz throughput and latency, through gRPC on loopback.

Run: ``.venv/bin/python benchmarks/agent.py [--seconds N] [--workers N] [--clients N]
[--concurrency N] [--json]``.

Handlers, each served by 1 worker process and by N (default: one per core):

- ``always-allow``: a ``grpc.aio`` Authorization server whose Check returns one
  prepared OK CheckResponse — the floor: gRPC, protobuf parsing and the Python hop;
- ``pipeline (SM2)``: the real agent (`gateway.workers.Supervisor`): SQLite
  store, token verification with a cached valid token, the default policy
  bundle on the embedded engine, decision log to disk, SM2-signed assertion;
- ``pipeline (HMAC-SM3)``: the same with HMAC-SM3 assertions.

Device and risk are the deterministic test doubles (tests/gateway/doubles.py):
the real assessors are not part of this measurement. Load: `--clients` client
processes, each keeping `--concurrency` calls in flight over one channel per
worker port (round-robin; Envoy balances by least request), sending a pre-serialised
CheckRequest (bearer token, device signals, account-balance route). Each run
warms up for 1 s, then counts for `--seconds`. Latency is the client's view
of one call. The clients run on the same cores as the workers: on a 2-core
machine the N-worker figure is bounded by that.

Ratios printed, all from this run: pipeline / always-allow at the same worker
count, and N workers / 1 worker for each handler.

A measurement, not a test: exit 0 whatever the figures; 3 when it cannot
measure (a handler does not answer as expected).
"""

from __future__ import annotations

import argparse
import array
import asyncio
import json
import multiprocessing
import os
import platform
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, replace
from multiprocessing.process import BaseProcess
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Event
from pathlib import Path
from typing import Any

_HERE = os.path.dirname(os.path.abspath(__file__))
_ROOT = os.path.dirname(_HERE)
sys.path[:] = [_ROOT] + [
    p for p in sys.path if os.path.abspath(p or os.curdir) not in (_HERE, _ROOT)
]

import grpc  # noqa: E402
from envoy.service.auth.v3 import external_auth_pb2_grpc  # noqa: E402
from envoy.service.auth.v3.external_auth_pb2 import CheckResponse, OkHttpResponse  # noqa: E402
from google.rpc import code_pb2, status_pb2  # noqa: E402

from gateway.quotas import DEFAULT_TIERS, QuotaTier  # noqa: E402

UNMETERED = tuple(QuotaTier(t.name, 1_000_000, 60.0) for t in DEFAULT_TIERS)
"""Quotas still taken on every check, never exhausted by the one benchmark caller."""

METHOD = "/envoy.service.auth.v3.Authorization/Check"
WARMUP = 1.0


@dataclass
class Row:
    handler: str
    workers: int
    rps: float
    p50_us: float
    p99_us: float
    requests: int


# -- servers ------------------------------------------------------------------------------


class _AllowAll(external_auth_pb2_grpc.AuthorizationServicer):  # type: ignore[misc]
    def __init__(self) -> None:
        self.response = CheckResponse(
            status=status_pb2.Status(code=code_pb2.OK), ok_response=OkHttpResponse()
        )

    async def Check(self, request: Any, context: Any) -> CheckResponse:
        return self.response


async def _serve_allow_all(port: int, ready: Event, stop: Event) -> None:
    server = grpc.aio.server()
    external_auth_pb2_grpc.add_AuthorizationServicer_to_server(_AllowAll(), server)
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    ready.set()
    while not stop.is_set():
        await asyncio.sleep(0.1)
    await server.stop(0)


def _allow_all_main(port: int, ready: Event, stop: Event) -> None:
    asyncio.run(_serve_allow_all(port, ready, stop))


class AllowAllFleet:
    def __init__(self, ports: tuple[int, ...]) -> None:
        self.ports = ports
        ctx = multiprocessing.get_context("spawn")
        self._stop = ctx.Event()
        self._procs: list[BaseProcess] = []
        readies = []
        for port in ports:
            ready = ctx.Event()
            proc = ctx.Process(target=_allow_all_main, args=(port, ready, self._stop))
            proc.start()
            self._procs.append(proc)
            readies.append(ready)
        for ready in readies:
            if not ready.wait(60):
                raise RuntimeError("always-allow server did not start")

    def pids(self) -> list[int | None]:
        return [proc.pid for proc in self._procs]

    def stop(self) -> None:
        self._stop.set()
        for proc in self._procs:
            proc.join(10)


# -- load ---------------------------------------------------------------------------------


async def _load(
    ports: tuple[int, ...], payload: bytes, concurrency: int, start: float, seconds: float
) -> tuple[int, float, bytes]:
    channels = [grpc.aio.insecure_channel(f"127.0.0.1:{port}") for port in ports]
    calls = [ch.unary_unary(METHOD) for ch in channels]  # bytes in, bytes out: no client churn
    samples = array.array("q")
    counting = False
    count = 0

    async def worker(index: int) -> None:
        nonlocal count
        i = index
        while True:
            call = calls[i % len(calls)]
            i += 1
            t0 = time.perf_counter_ns()
            await call(payload, timeout=30)
            if counting:
                samples.append(time.perf_counter_ns() - t0)
                count += 1

    await asyncio.sleep(max(0.0, start - time.time()))
    tasks = [asyncio.create_task(worker(i)) for i in range(concurrency)]
    await asyncio.sleep(WARMUP)
    counting, began = True, time.perf_counter()
    await asyncio.sleep(seconds)
    counting, elapsed = False, time.perf_counter() - began
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    for ch in channels:
        await ch.close()
    return count, elapsed, samples.tobytes()


def _client_main(
    ports: tuple[int, ...],
    payload: bytes,
    concurrency: int,
    start: float,
    seconds: float,
    out: Queue[tuple[int, float, bytes]],
) -> None:
    out.put(asyncio.run(_load(ports, payload, concurrency, start, seconds)))


def measure(
    handler: str, workers: int, ports: tuple[int, ...], payload: bytes, args: argparse.Namespace
) -> Row:
    ctx = multiprocessing.get_context("spawn")
    out: Queue[tuple[int, float, bytes]] = ctx.Queue()
    start = time.time() + 3.0  # every client imports and connects before this instant
    procs = [
        ctx.Process(
            target=_client_main, args=(ports, payload, args.concurrency, start, args.seconds, out)
        )
        for _ in range(args.clients)
    ]
    for proc in procs:
        proc.start()
    results = [out.get(timeout=args.seconds + 120) for _ in procs]
    for proc in procs:
        proc.join(10)
    samples = array.array("q")
    total, rps = 0, 0.0
    for count, elapsed, raw in results:
        part = array.array("q")
        part.frombytes(raw)
        samples.extend(part)
        total += count
        rps += count / elapsed
    ordered = sorted(samples)

    def pct(p: float) -> float:
        return ordered[min(len(ordered) - 1, int(p * len(ordered)))] / 1000 if ordered else 0.0

    return Row(handler, workers, rps, pct(0.50), pct(0.99), total)


# -- the pipeline under test ----------------------------------------------------------------


async def _prepare_pipeline(tmp: Path) -> tuple[Any, bytes]:
    """An AgentConfig over fresh keys and store, and the serialised CheckRequest."""
    from authn.store import open_store
    from tests.gateway.harness import check_request, customer_token, make_config, signals

    config, token_ring, _ = make_config(
        tmp, check_timeout=1.0, policy_watch_seconds=60.0, quota_tiers=UNMETERED
    )
    store = await open_store(config.store_url)
    try:
        subject, token = await customer_token(store, token_ring, "bench")
    finally:
        await store.close()
    headers = {"authorization": f"Bearer {token}", "x-device-signals": signals("dev-1", subject)}
    return config, check_request(headers=headers).SerializeToString()


async def _expect(port: int, payload: bytes, allowed: bool) -> None:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        raw = await channel.unary_unary(METHOD)(payload, timeout=30)
    response = CheckResponse.FromString(raw)
    if (response.WhichOneof("http_response") == "ok_response") != allowed:
        raise RuntimeError(f"unexpected answer from port {port}: {response}")


def _free_base(count: int) -> int:
    from tests.gateway.harness import free_ports

    return free_ports(count)


def run(args: argparse.Namespace) -> list[Row]:
    from gateway.workers import Supervisor
    from tests.gateway.doubles import make_components

    rows: list[Row] = []
    counts = sorted({1, args.workers})
    with tempfile.TemporaryDirectory(prefix="ztgate-bench-agent-") as tmp:
        config, payload = asyncio.run(_prepare_pipeline(Path(tmp)))
        hmac_key = Path(tmp) / "assertion-hmac.key"
        hmac_key.write_bytes(os.urandom(32))
        hmac_key.chmod(0o600)
        for n in counts:
            base = _free_base(n)
            ports = tuple(base + i for i in range(n))
            print(f"  always-allow, {n} worker(s) ...", file=sys.stderr, flush=True)
            fleet = AllowAllFleet(ports)
            try:
                asyncio.run(_expect(ports[0], payload, True))
                rows.append(measure("always-allow", n, ports, payload, args))
            finally:
                fleet.stop()
        variants = [
            ("pipeline (SM2)", {}),
            ("pipeline (HMAC-SM3)", {"assertion_keyring": None, "assertion_hmac_key": hmac_key}),
        ]
        for name, overrides in variants:
            for n in counts:
                print(f"  {name}, {n} worker(s) ...", file=sys.stderr, flush=True)
                cfg = replace(config, workers=n, base_port=_free_base(n), **overrides)
                supervisor = Supervisor(cfg, make_components, log_level="error")
                supervisor.start(timeout=120)
                try:
                    for port in supervisor.ports:  # every worker caches the token now
                        asyncio.run(_expect(port, payload, True))
                    rows.append(measure(name, n, supervisor.ports, payload, args))
                finally:
                    supervisor.stop()
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--seconds", type=float, default=5.0, help="counted seconds per run")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="N (default: cores)")
    ap.add_argument("--clients", type=int, default=2, help="client processes (default 2)")
    ap.add_argument("--concurrency", type=int, default=16, help="calls in flight per client")
    ap.add_argument("--json", action="store_true", help="print a JSON object instead of a table")
    args = ap.parse_args(argv)
    try:
        rows = run(args)
    except Exception as exc:
        print(f"error: cannot measure: {exc!r}", file=sys.stderr)
        return 3
    by = {(r.handler, r.workers): r for r in rows}
    n = args.workers
    ratios: dict[str, float | None] = {}
    for handler in ("pipeline (SM2)", "pipeline (HMAC-SM3)"):
        for workers in sorted({1, n}):
            floor, row = by.get(("always-allow", workers)), by.get((handler, workers))
            if floor and row and floor.rps:
                ratios[f"{handler} / always-allow @{workers}w"] = row.rps / floor.rps
    if n != 1:
        for handler in ("always-allow", "pipeline (SM2)", "pipeline (HMAC-SM3)"):
            one, many = by.get((handler, 1)), by.get((handler, n))
            if one and many and one.rps:
                ratios[f"{handler}: {n}w / 1w"] = many.rps / one.rps
    meta = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}",
        "grpcio": grpc.__version__,
        "load": f"{args.clients} client processes x {args.concurrency} in flight, "
        f"{WARMUP:.0f} s warm-up, {args.seconds:g} s counted",
    }
    if args.json:
        print(json.dumps({**meta, "rows": [asdict(r) for r in rows], "ratios": ratios}, indent=2))
        return 0
    print("\n".join(f"{k}: {v}" for k, v in meta.items()) + "\n")
    head = f"{'handler':<22}{'workers':>8}{'checks/s':>11}{'p50 us':>10}{'p99 us':>10}"
    print(head + "\n" + "-" * len(head))
    for r in rows:
        print(f"{r.handler:<22}{r.workers:>8}{r.rps:>11,.0f}{r.p50_us:>10,.0f}{r.p99_us:>10,.0f}")
    print()
    for name, value in ratios.items():
        print(f"{name:<44}{value:>8.2f}" if value is not None else f"{name:<44}     n/a")
    return 0


if __name__ == "__main__":
    sys.exit(main())
