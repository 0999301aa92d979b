"""``python -m gateway.corebank``: run the sample core bank until SIGINT/SIGTERM.

When it is ready it prints one JSON line on stdout, e.g.
``{"url": "http://127.0.0.1:41234", "port": 41234, "state_dir": "..."}``, so a
parent process (``ztgate up``, a benchmark) can wait for that line. Logs are JSON
on stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
from collections.abc import Sequence
from datetime import date
from pathlib import Path

from gateway.corebank.callers import trust_identity_headers
from gateway.corebank.runner import start_corebank
from gateway.corebank.seed import StateMismatch


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m gateway.corebank", description="Run the sample core-banking service."
    )
    p.add_argument("--state-dir", type=Path, required=True, help="where corebank.db lives")
    p.add_argument("--host", default="127.0.0.1", help="listen address (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=0, help="listen port; 0 picks a free one")
    p.add_argument("--seed", type=int, default=42, help="synthetic data seed (first start)")
    p.add_argument("--customers", type=int, default=200, help="customers to generate")
    p.add_argument(
        "--as-of",
        type=date.fromisoformat,
        default=None,
        help="last day of generated transaction histories (default: today, CST)",
    )
    p.add_argument(
        "--trust-identity-headers",
        action="store_true",
        help="believe x-ztgate-subject/-kind/-consent without verifying x-ztgate-assertion"
        " (loopback only; tests and local development)",
    )
    p.add_argument("--log-level", default="info")
    return p


async def _serve(args: argparse.Namespace) -> int:
    running = await start_corebank(
        args.state_dir,
        authenticate=trust_identity_headers,
        seed=args.seed,
        customers=args.customers,
        host=args.host,
        port=args.port,
        as_of=args.as_of,
    )
    ready = {"url": running.url, "port": running.port, "state_dir": str(args.state_dir)}
    print(json.dumps(ready), flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await running.stop()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    # The program's entry point, not a library module: it borrows the CLI's JSON
    # log set-up, as `ztgate` subcommands do; nothing else here imports `ztgate`.
    from ztgate import logs

    logs.configure(args.log_level)
    if not args.trust_identity_headers:
        print(
            "error: no identity verifier is configured: pass --trust-identity-headers"
            " (loopback only) to accept the edge's unsigned identity headers",
            file=sys.stderr,
        )
        return 2
    if not 1 <= args.customers <= 100_000:
        print("error: --customers must be 1..100000", file=sys.stderr)
        return 2
    try:
        return asyncio.run(_serve(args))
    except (StateMismatch, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
