"""Start and stop the core-banking service (for `python -m gateway.corebank`, tests,
benchmarks and `ztgate up`)."""

from __future__ import annotations

import ipaddress
import logging
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from aiohttp import web

from authn.service.runner import MAX_HEADER
from gateway.corebank.app import MAX_BODY, create_app
from gateway.corebank.callers import Authenticator, trust_identity_headers
from gateway.corebank.http import today_cst
from gateway.corebank.seed import open_bank
from gateway.corebank.store import BankStore

log = logging.getLogger("ztgate.corebank")


@dataclass
class RunningCorebank:
    url: str
    port: int
    runner: web.AppRunner
    store: BankStore

    async def stop(self) -> None:
        await self.runner.cleanup()
        await self.store.close()


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


async def start_corebank(
    state_dir: Path,
    *,
    authenticate: Authenticator,
    seed: int | None = 42,
    customers: int = 200,
    host: str = "127.0.0.1",
    port: int = 0,
    as_of: date | None = None,
    max_body: int = MAX_BODY,
    environment: str = "production",
) -> RunningCorebank:
    """Open (seeding on first start) the bank in `state_dir` and serve it on host:port
    (port 0: any free port; the bound one is in the result). A ``sandbox`` bank serves
    only the open-banking API, under ``/sandbox`` (`gateway.corebank.app`); its
    `seed` None means a random one on first start.

    `trust_identity_headers` believes unsigned identity headers, so it is refused
    unless the service listens on loopback only.
    """
    if authenticate is trust_identity_headers and not is_loopback(host):
        raise ValueError(
            f"host: {host} is not a loopback address; unverified identity headers"
            " are only accepted on loopback"
        )
    state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    store = await open_bank(
        state_dir,
        seed=seed,
        customers=customers,
        as_of=as_of or today_cst(),
        environment=environment,
    )
    runner = web.AppRunner(
        create_app(store, authenticate, max_body=max_body, environment=environment),
        access_log=None,
        max_line_size=MAX_HEADER,
        max_field_size=MAX_HEADER,
    )
    try:
        await runner.setup()
        site = web.TCPSite(runner, host, port)
        await site.start()
    except BaseException:
        await runner.cleanup()
        await store.close()
        raise
    bound = _bound_port(runner)
    shown = f"[{host}]" if ":" in host else host
    url = f"http://{shown}:{bound}"
    log.info(
        "corebank listening",
        extra={"url": url, "customers": customers, "environment": environment},
    )
    return RunningCorebank(url, bound, runner, store)


def _bound_port(runner: web.AppRunner) -> int:
    for address in runner.addresses:
        if isinstance(address, tuple):
            return int(address[1])
    raise RuntimeError("the corebank site bound no TCP address")
