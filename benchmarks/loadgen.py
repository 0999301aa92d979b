"""HTTP load for the edge benchmark: `wrk` for throughput, a fixed-rate generator for latency.

`wrk` (closed loop: each connection sends its next request when the previous one
is answered) finds the throughput ceiling. It cannot hold a rate, and wrk2 is
not packaged for this machine's distribution, so latency at a fixed rate comes
from `fixed_rate`: an aiohttp client in its own process that starts request *i*
at ``t0 + i / rate`` whatever happened before, and measures each latency from
that scheduled instant (so a stall is charged to every request it delayed — no
coordinated omission). It runs alongside the servers on the same cores.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import re
import shutil
import time
from collections.abc import Mapping
from dataclasses import dataclass
from multiprocessing.queues import Queue
from typing import Final

import aiohttp

__all__ = ["Load", "fixed_rate", "percentile", "wrk"]

_UNITS: Final = {"us": 1e-3, "ms": 1.0, "s": 1000.0}
_LATENCY_LINE: Final = re.compile(r"^\s*(50|99)(?:\.0+)?%\s+([\d.]+)(us|ms|s)\s*$", re.M)


@dataclass(frozen=True)
class Load:
    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    failed: int
    """Non-2xx answers and socket errors: a run with any is not a clean measurement."""
    detail: str = ""
    """What failed (fixed rate: status → count), and how late the generator sent."""
    send_lag_p99_ms: float = 0.0
    """Fixed rate: how late the generator itself started requests (its own CPU share)."""


def percentile(ordered: list[float], p: float) -> float:
    return ordered[min(len(ordered) - 1, int(p * len(ordered)))] if ordered else float("nan")


async def wrk(
    url: str,
    headers: Mapping[str, str],
    *,
    seconds: float,
    connections: int = 32,
    threads: int = 2,
) -> Load:
    """One closed-loop `wrk` run; its own figures (requests/s and latency percentiles)."""
    binary = shutil.which("wrk")
    if binary is None:
        raise RuntimeError("wrk is not installed (apt-get install wrk)")
    argv = [binary, f"-t{threads}", f"-c{connections}", f"-d{seconds:g}s", "--latency"]
    for name, value in headers.items():
        argv += ["-H", f"{name}: {value}"]
    proc = await asyncio.create_subprocess_exec(
        *argv, url, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await proc.communicate()
    text = out.decode()
    if proc.returncode != 0:
        raise RuntimeError(f"wrk failed ({proc.returncode}): {err.decode().strip()}")
    return parse_wrk(text)


def parse_wrk(text: str) -> Load:
    rps = re.search(r"^Requests/sec:\s+([\d.]+)", text, re.M)
    total = re.search(r"^\s*(\d+) requests in", text, re.M)
    latency = {int(p): float(v) * _UNITS[u] for p, v, u in _LATENCY_LINE.findall(text)}
    if rps is None or total is None or set(latency) != {50, 99}:
        raise RuntimeError(f"cannot read wrk's output:\n{text}")
    failed = 0
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    if non_2xx:
        failed += int(non_2xx.group(1))
    errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text
    )
    if errors:
        failed += sum(int(g) for g in errors.groups())
    return Load(float(rps.group(1)), latency[50], latency[99], int(total.group(1)), failed)


async def _fixed_rate(
    url: str, headers: dict[str, str], rate: float, seconds: float, warmup: float
) -> tuple[list[float], int, dict[str, int], float]:
    latencies: list[float] = []
    lags: list[float] = []
    failures: dict[str, int] = {}
    connector = aiohttp.TCPConnector(limit=256)
    timeout = aiohttp.ClientTimeout(total=10)

    async def one(session: aiohttp.ClientSession, due: float, counted: bool) -> None:
        lag = time.perf_counter() - due
        try:
            async with session.get(url) as resp:
                await resp.read()
                outcome = "" if 200 <= resp.status < 300 else str(resp.status)
        except (aiohttp.ClientError, TimeoutError) as exc:
            outcome = type(exc).__name__
        if counted:
            latencies.append((time.perf_counter() - due) * 1000.0)
            lags.append(lag * 1000.0)
            if outcome:
                failures[outcome] = failures.get(outcome, 0) + 1

    async with aiohttp.ClientSession(
        connector=connector, headers=headers, timeout=timeout, auto_decompress=False
    ) as session:
        total, skip = int(rate * (warmup + seconds)), int(rate * warmup)
        tasks = []
        t0 = time.perf_counter() + 0.1
        for i in range(total):
            due = t0 + i / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(session, due, i >= skip)))
        await asyncio.gather(*tasks)
    return latencies, total - skip, failures, percentile(sorted(lags), 0.99)


def _fixed_rate_main(
    url: str,
    headers: dict[str, str],
    rate: float,
    seconds: float,
    warmup: float,
    out: Queue[tuple[list[float], int, dict[str, int], float]],
) -> None:
    out.put(asyncio.run(_fixed_rate(url, headers, rate, seconds, warmup)))


async def fixed_rate(
    url: str, headers: Mapping[str, str], *, rate: float, seconds: float, warmup: float = 2.0
) -> Load:
    """`rate` requests/s for `warmup` + `seconds`; percentiles over the counted part."""
    ctx = multiprocessing.get_context("spawn")
    out: Queue[tuple[list[float], int, dict[str, int], float]] = ctx.Queue()
    proc = ctx.Process(
        target=_fixed_rate_main, args=(url, dict(headers), rate, seconds, warmup, out)
    )
    proc.start()
    latencies, sent, failures, lag = await asyncio.to_thread(out.get, True, warmup + seconds + 60)
    await asyncio.to_thread(proc.join, 10)
    ordered = sorted(latencies)
    detail = ", ".join(f"{k}: {v}" for k, v in sorted(failures.items()))
    detail = f"send lag p99 {lag:.1f} ms" + (f"; failed {detail}" if detail else "")
    failed = sum(failures.values())
    p50, p99 = percentile(ordered, 0.50), percentile(ordered, 0.99)
    return Load(sent / seconds, p50, p99, sent, failed, detail, lag)
