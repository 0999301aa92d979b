"""Response masking: throughput in-process and latency added through ext_proc (issue 7, check 4).

Run: ``.venv/bin/python benchmarks/masking.py [--seconds N] [--concurrency N]``.

Bodies: ~10 KB JSON documents built by the sample core bank's own views
(`gateway.corebank`) from its synthetic data — a transactions page, a customer
profile, a staff customer view — serialised as the core sends them.

1. **In-process**: `gateway.masking.mask_body` on each body under the
   `customer`, `partner` and `staff_restricted` profiles: MB/s and µs per body,
   CPU time beside wall time.
2. **Through ext_proc** over gRPC on loopback (a ``grpc.aio`` server in this
   process; the client in the same event loop): one stream per response, the
   messages Envoy sends for a masked route (response headers with the route
   name and the decision's profile, then the buffered body). Baseline: a
   pass-through processor answering every phase with CONTINUE (what
   `gateway.ext_proc` did before masking), measured in the same run. Printed:
   median and p99 per response, responses/s, and the ratio masking / pass-through.
3. **Through Envoy**, as a client sees it (`benchmarks.masking_envoy`): a real Envoy
   in front of an upstream serving the same bodies, ext_proc with the response body
   BUFFERED to the pass-through and to the masking processor (each in its own
   process), measured in alternating blocks: p50 / p99 per response and the ratios.

A measurement, not a test: exit 0 whatever the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
from collections.abc import AsyncIterator
from datetime import date
from typing import Any

# Run as a script, sys.path[0] is benchmarks/, where benchmarks/crypto.py would shadow
# the `crypto` package: drop it, and put the repository root first.
_HERE = os.path.dirname(os.path.abspath(__file__))
_ROOT = os.path.dirname(_HERE)
sys.path[:] = [_ROOT] + [
    p for p in sys.path if os.path.abspath(p or os.curdir) not in (_HERE, _ROOT)
]

import grpc  # noqa: E402
from envoy.config.core.v3.base_pb2 import HeaderMap, HeaderValue, Metadata  # noqa: E402
from envoy.service.ext_proc.v3 import external_processor_pb2_grpc  # noqa: E402
from envoy.service.ext_proc.v3.external_processor_pb2 import (  # noqa: E402
    BodyMutation,
    BodyResponse,
    CommonResponse,
    HeadersResponse,
    HttpBody,
    HttpHeaders,
    ProcessingRequest,
    ProcessingResponse,
)
from google.protobuf.struct_pb2 import Struct  # noqa: E402

from gateway import ext_proc  # noqa: E402
from gateway.corebank import views  # noqa: E402
from gateway.corebank.synthetic import generate  # noqa: E402
from gateway.masking import MaskingEngine, PseudonymKeys, Request, default_rules, mask_body  # noqa: E402
from gateway.masking.service import EXT_PROC_NAMESPACE, ROUTE_ATTRIBUTE, MaskingSettings  # noqa: E402

TARGET = 10_000


def bodies() -> list[tuple[str, bytes]]:
    bank = generate(42, 20, date(2026, 11, 1))
    c = bank.customers[0]
    accounts = [a for a in bank.accounts if a.customer_id == c.customer_id]
    cards = [k for k in bank.cards if k.customer_id == c.customer_id]
    txns = [t for t in bank.transactions if t.account_id == accounts[0].account_id]
    page: list[Any] = []
    while len(json.dumps({"transactions": page}, ensure_ascii=False).encode()) < TARGET:
        page.append(views.transaction_document(txns[len(page) % len(txns)]))
    profiles = [views.customer_document(x) for x in bank.customers]
    many: list[Any] = []
    while len(json.dumps(many, ensure_ascii=False).encode()) < TARGET:
        many.append(profiles[len(many) % len(profiles)])
    staff = views.staff_customer_view(views.customer_document(c), accounts, cards)
    staff["history"] = page[: len(page) // 2]
    docs = [
        ("accounts.transactions", {"account_id": accounts[0].account_id, "transactions": page}),
        ("customers.profile", {"profiles": many}),
        ("staff.customers.view", staff),
    ]
    return [(r, json.dumps(d, ensure_ascii=False).encode()) for r, d in docs]


def in_process(engine: MaskingEngine, docs: list[tuple[str, bytes]], seconds: float) -> None:
    print("in-process mask_body (route, profile): KB, MB/s, µs per body (wall | CPU)")
    for route, body in docs:
        for profile in ("customer", "partner", "staff_restricted"):
            request = Request(route, profile, "fintech-budgetly")
            mask_body(engine, body, "application/json", request)  # warm the automaton
            n, wall0, cpu0 = 0, time.perf_counter(), time.process_time()
            while time.perf_counter() - wall0 < seconds:
                mask_body(engine, body, "application/json", request)
                n += 1
            wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
            print(
                f"  {route:24} {profile:17} {len(body) / 1000:5.1f}"
                f"  {n * len(body) / wall / 1e6:6.2f} MB/s"
                f"  {wall / n * 1e6:7.0f} µs | {cpu / n * 1e6:7.0f} µs"
            )


class PassThrough(external_processor_pb2_grpc.ExternalProcessorServicer):  # type: ignore[misc]
    """The baseline: every phase answered with CONTINUE."""

    async def Process(self, requests: AsyncIterator[ProcessingRequest], context: Any) -> Any:
        async for request in requests:
            phase = request.WhichOneof("request")
            if phase == "response_headers":
                yield ProcessingResponse(response_headers=HeadersResponse())
            else:
                yield ProcessingResponse(response_body=BodyResponse())


class BodyEcho(external_processor_pb2_grpc.ExternalProcessorServicer):  # type: ignore[misc]
    """A reference, not a baseline: the body sent back unchanged as a body mutation —
    what any processor that rewrites bodies pays before doing anything to them."""

    async def Process(self, requests: AsyncIterator[ProcessingRequest], context: Any) -> Any:
        async for request in requests:
            phase = request.WhichOneof("request")
            if phase == "response_headers":
                yield ProcessingResponse(response_headers=HeadersResponse())
            else:
                body = request.response_body.body
                mutation = CommonResponse(body_mutation=BodyMutation(body=body))
                yield ProcessingResponse(response_body=BodyResponse(response=mutation))


def stream(route: str, body: bytes, profile: str) -> list[ProcessingRequest]:
    metadata = Metadata()
    values = Struct()
    values.update({"mask_profile": profile, "decision_id": "d-1"})
    metadata.filter_metadata[ext_proc.AUTHZ_NAMESPACE].CopyFrom(values)
    headers = HttpHeaders(
        headers=HeaderMap(
            headers=[
                HeaderValue(key=":status", raw_value=b"200"),
                HeaderValue(key="content-type", raw_value=b"application/json"),
                HeaderValue(key="content-length", raw_value=str(len(body)).encode()),
            ]
        )
    )
    first = ProcessingRequest(response_headers=headers, metadata_context=metadata)
    attrs = Struct()
    attrs.update({ROUTE_ATTRIBUTE: route})
    first.attributes[EXT_PROC_NAMESPACE].CopyFrom(attrs)
    return [first, ProcessingRequest(response_body=HttpBody(body=body, end_of_stream=True))]


async def measure(
    servicer: Any, messages: list[list[ProcessingRequest]], seconds: float, concurrency: int
) -> tuple[list[float], float, float]:
    """Latencies of one-response streams to `servicer`, wall and CPU seconds."""
    server = grpc.aio.server()
    external_processor_pb2_grpc.add_ExternalProcessorServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    latencies: list[float] = []
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = external_processor_pb2_grpc.ExternalProcessorStub(channel)

        async def worker(deadline: float) -> None:
            i = 0
            while time.perf_counter() < deadline:
                t0 = time.perf_counter()
                async for _ in stub.Process(iter(messages[i % len(messages)]), timeout=10):
                    pass
                latencies.append(time.perf_counter() - t0)
                i += 1

        await asyncio.gather(*(worker(time.perf_counter() + 1) for _ in range(concurrency)))
        latencies.clear()  # the warm-up second does not count
        wall0, cpu0 = time.perf_counter(), time.process_time()
        await asyncio.gather(*(worker(wall0 + seconds) for _ in range(concurrency)))
        wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    await server.stop(0)
    return latencies, wall, cpu


async def through_ext_proc(
    settings: MaskingSettings, docs: list[tuple[str, bytes]], seconds: float, concurrency: int
) -> None:
    print(f"\nthrough ext_proc over gRPC (concurrency {concurrency}): median / p99 ms, resp/s")
    messages = [stream(r, b, "customer") for r, b in docs]
    results: dict[str, tuple[float, float, float, float]] = {}
    for name, servicer in (("pass-through", PassThrough()),
                           ("masking", ext_proc.ExternalProcessorService(settings))):  # fmt: skip
        latencies, wall, cpu = await measure(servicer, messages, seconds, concurrency)
        latencies.sort()
        n = len(latencies)
        median = statistics.median(latencies) * 1e3
        p99 = latencies[max(0, int(n * 0.99) - 1)] * 1e3
        results[name] = (median, p99, n / wall, cpu / n * 1e6)
        print(
            f"  {name:13} {median:6.2f} / {p99:6.2f} ms  {n / wall:7.0f} resp/s"
            f"  CPU {cpu / n * 1e6:6.0f} µs per response (client + server)"
        )
    base, masked = results["pass-through"], results["masking"]
    print(
        f"  masking / pass-through: median x{masked[0] / base[0]:.2f},"
        f" throughput x{masked[2] / base[2]:.2f}, CPU per response x{masked[3] / base[3]:.2f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument(
        "--envoy-seconds", type=float, default=None, help="through Envoy (default: --seconds x 2)"
    )
    parser.add_argument(
        "--envoy-concurrency",
        type=int,
        default=1,
        help="requests in flight through Envoy (1: latency without queueing)",
    )
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f}, {os.cpu_count()} cores")
    engine = MaskingEngine(default_rules(), PseudonymKeys(b"\x11" * 32))
    docs = bodies()
    in_process(engine, docs, args.seconds)
    asyncio.run(through_ext_proc(MaskingSettings(engine), docs, args.seconds, args.concurrency))
    from benchmarks.masking_envoy import through_envoy

    envoy_seconds = args.envoy_seconds if args.envoy_seconds is not None else 2 * args.seconds
    asyncio.run(through_envoy(docs, envoy_seconds, args.envoy_concurrency))
    print(f"load average after {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
