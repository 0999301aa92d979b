"""``python -m gateway.corebank``: run the sample core bank until SIGINT/SIGTERM.

When it is ready it prints one JSON line on stdout, e.g.
``{"url": "http://127.0.0.1:41234", "port": 41234, "state_dir": "..."}``, so a
parent process (``ztgate up``, a benchmark) can wait for that line. Logs are JSON
on stderr.

Who is calling is learnt from the edge's signed identity assertion only:
``--assertion-jwks FILE`` names the edge's public assertion keys (SM2 key ring,
`KeyRing.jwks`), ``--assertion-hmac-key FILE`` a shared HMAC-SM3 key instead.
``--trust-identity-headers`` (loopback only) believes the unsigned headers; it
exists for tests.

``--sandbox`` runs a sandbox bank instead: only the open-banking API, under
``/sandbox/open/v1``, over its own synthetic dataset (a random seed on first start
unless ``--seed`` is given), every answer marked ``X-Ztgate-Environment: sandbox``;
a state directory of the other environment is refused.
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

from gateway.assertion import AssertionKeys
from gateway.corebank.callers import Authenticator, trust_identity_headers, verify_signed_assertions
from gateway.corebank.runner import start_corebank
from gateway.corebank.seed import StateMismatch
from gateway.parent_watch import die_with_parent


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m gateway.corebank", description="Run the sample core-banking service."
    )
    p.add_argument("--state-dir", type=Path, required=True, help="where corebank.db lives")
    p.add_argument("--host", default="127.0.0.1", help="listen address (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=0, help="listen port; 0 picks a free one")
    p.add_argument(
        "--seed",
        type=int,
        default=None,
        help="synthetic data seed (first start; default 42, or random with --sandbox)",
    )
    p.add_argument(
        "--sandbox",
        action="store_true",
        help="serve only the open-banking API under /sandbox/open/v1, from a separate"
        " synthetic bank (docs/open-banking.md)",
    )
    p.add_argument("--customers", type=int, default=200, help="customers to generate")
    p.add_argument(
        "--as-of",
        type=date.fromisoformat,
        default=None,
        help="last day of generated transaction histories (default: today, CST)",
    )
    keys = p.add_mutually_exclusive_group()
    keys.add_argument(
        "--assertion-jwks",
        type=Path,
        metavar="FILE",
        help="JWKS of the edge's assertion-signing public keys (verify x-ztgate-assertion)",
    )
    keys.add_argument(
        "--assertion-hmac-key",
        type=Path,
        metavar="FILE",
        help="file holding the HMAC-SM3 key shared with the edge (32+ bytes)",
    )
    keys.add_argument(
        "--trust-identity-headers",
        action="store_true",
        help="believe x-ztgate-subject/-kind/-consent without verifying x-ztgate-assertion"
        " (loopback only; tests only)",
    )
    p.add_argument("--log-level", default="info")
    return p


def _authenticator(args: argparse.Namespace) -> Authenticator:
    """The verifier the flags select; `ValueError`/`OSError` when its keys are unusable."""
    if args.trust_identity_headers:
        return trust_identity_headers
    if args.assertion_jwks is not None:
        text = args.assertion_jwks.read_text(encoding="utf-8")
        try:
            doc = json.loads(text)
        except ValueError:
            raise ValueError(f"{args.assertion_jwks}: not a JSON document") from None
        if not isinstance(doc, dict):
            raise ValueError(f"{args.assertion_jwks}: not a JWKS")
        return verify_signed_assertions(AssertionKeys.from_jwks(doc))
    from gateway.agent import AgentStartError, read_secret

    try:
        key = read_secret(args.assertion_hmac_key, "--assertion-hmac-key")
    except AgentStartError as exc:
        raise ValueError(str(exc)) from None
    return verify_signed_assertions(AssertionKeys.from_hmac(key))


async def _serve(args: argparse.Namespace, authenticate: Authenticator) -> int:
    environment = "sandbox" if args.sandbox else "production"
    running = await start_corebank(
        args.state_dir,
        authenticate=authenticate,
        seed=args.seed if args.sandbox or args.seed is not None else 42,
        environment=environment,
        customers=args.customers,
        host=args.host,
        port=args.port,
        as_of=args.as_of,
    )
    ready = {
        "url": running.url,
        "port": running.port,
        "state_dir": str(args.state_dir),
        "environment": environment,
    }
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
    die_with_parent()
    # The program's entry point, not a library module: it borrows the CLI's JSON
    # log set-up, as `ztgate` subcommands do; nothing else here imports `ztgate`.
    from ztgate import logs

    logs.configure(args.log_level)
    if not (args.trust_identity_headers or args.assertion_jwks or args.assertion_hmac_key):
        print(
            "error: no identity verifier is configured: pass --assertion-jwks FILE or"
            " --assertion-hmac-key FILE (the edge's assertion keys)",
            file=sys.stderr,
        )
        return 2
    if not 1 <= args.customers <= 100_000:
        print("error: --customers must be 1..100000", file=sys.stderr)
        return 2
    try:
        authenticate = _authenticator(args)
        return asyncio.run(_serve(args, authenticate))
    except (StateMismatch, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
