"""`ztgate authn …`: run the authentication service."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal

from crypto import selftest
from ztgate import config
from ztgate.crypto_cli import CliError


async def _serve(cfg: config.Config) -> None:
    from authn.service.runner import start_service  # the service's imports only when serving

    service = await start_service(
        state_dir=cfg.state.dir,
        config=cfg.authn,
        signing_algorithm=cfg.crypto.signing_algorithm,
    )
    print(f"authn service on {service.url} (admin token in {cfg.state.dir / 'admin-token'})")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await service.stop()


def cmd_serve(args: argparse.Namespace) -> int:
    cfg: config.Config = args.cfg
    if cfg.crypto.selftest_on_start:
        failed = [c.name for c in selftest.run() if not c.ok]
        if failed:
            raise CliError(f"crypto self-test failed, refusing to start: {', '.join(failed)}")
    asyncio.run(_serve(cfg))
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "authn",
        help="the authentication service (passkeys, TOTP, passwords, tokens)",
        description="Authentication service: users and factors, SM2-signed tokens, "
        "partner clients. HTTP API: docs/authn-api.md.",
    )
    cmds = parser.add_subparsers(dest="authn_command", required=True, metavar="COMMAND")
    p = cmds.add_parser(
        "serve",
        help="run the service until Ctrl-C (settings: [authn] in the config file)",
        description="Run the authentication service on [authn] host/port with state in "
        "[state] dir; runs the crypto self-test first.",
    )
    p.set_defaults(func=cmd_serve)
