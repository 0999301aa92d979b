"""Start and stop the authentication service (used by `ztgate authn serve` and tests)."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import socket
import ssl
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web

from authn.config import AuthnConfig
from authn.service.app import create_app
from authn.service.state import AuthnState, open_state

log = logging.getLogger("ztgate.authn")

Extension = Callable[[web.Application, AuthnState], Awaitable[Callable[[], Awaitable[None]]]]
"""Adds routes to the service's application before it starts serving (e.g. the device
API, `gateway.devices_api`) and returns what closes its resources. It lets a layer
above authn serve on the same origin without authn importing it."""


@dataclass
class RunningService:
    url: str
    port: int
    admin_token: str
    runner: web.AppRunner
    state: AuthnState
    closers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)

    async def stop(self) -> None:
        await self.runner.cleanup()
        for close in reversed(self.closers):
            await close()
        await self.state.close()


MAX_HEADER = 64 * 1024
"""Header limit at Envoy's default (60 KiB of headers), so that anything the edge
forwards gets the service's JSON errors rather than the HTTP parser's plain-text 400."""


def tls_context(config: AuthnConfig) -> ssl.SSLContext | None:
    """The server's TLS context, or None for plain HTTP (loopback development only).

    Client certificates are optional at the handshake (only partners using
    mTLS present one) but, when presented, must chain to `tls_client_ca`.
    """
    if config.tls_cert is None or config.tls_key is None:  # paired by AuthnConfig
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(config.tls_cert, config.tls_key)
    if config.tls_client_ca is not None:
        context.load_verify_locations(cafile=config.tls_client_ca)
        context.verify_mode = ssl.CERT_OPTIONAL
    return context


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


async def start_service(
    *,
    state_dir: Path,
    database_url: str = "",
    port: int = 0,
    origins: tuple[str, ...] | None = None,
    config: AuthnConfig | None = None,
    schema: str | None = None,
    signing_algorithm: str = "sm2",
    extensions: Sequence[Extension] = (),
) -> RunningService:
    """Open the state, bind loopback (IPv4, and IPv6 when available), serve.

    With ``port=0`` a free port is chosen; the public URL is then
    ``http://localhost:<port>`` (browsers accept ``localhost`` as a WebAuthn RP
    id, never an IP address).
    """
    base = config or AuthnConfig()
    port = port or (base.port if config else free_port(base.host))
    if config is None:
        base = dataclasses.replace(
            base,
            port=port,
            public_url=f"http://localhost:{port}",
            database_url=database_url,
            origins=origins or (),
        )
    context = tls_context(base)
    state = await open_state(base, state_dir, schema=schema, signing_algorithm=signing_algorithm)
    app = create_app(state)
    closers = []
    try:
        for extend in extensions:
            closers.append(await extend(app, state))
    except BaseException:
        for close in reversed(closers):
            await close()
        await state.close()
        raise
    runner = web.AppRunner(
        app, access_log=None, max_line_size=MAX_HEADER, max_field_size=MAX_HEADER
    )
    await runner.setup()
    await web.TCPSite(runner, base.host, base.port, ssl_context=context).start()
    if base.host in ("127.0.0.1", "localhost"):
        with contextlib.suppress(OSError):  # IPv6 loopback is optional
            await web.TCPSite(runner, "::1", base.port, ssl_context=context).start()
    state.start_background()
    log.info("authn service listening", extra={"url": base.public_url})
    return RunningService(base.public_url, base.port, state.admin_token, runner, state, closers)
