"""The core-banking aiohttp application: routes, error handling, body limits.

A production bank serves every API at its own path. A sandbox bank (``environment
= "sandbox"``, docs/open-banking.md "Sandbox") serves only the open-banking API,
under `SANDBOX_PREFIX` (``/sandbox/open/v1/...``, the paths of the edge's sandbox
routes), from its own synthetic state, and says so on every answer
(`ENVIRONMENT_HEADER`); retail and staff APIs are not there at all.
"""

from __future__ import annotations

from typing import Final

from aiohttp import web

from authn.service.http import errors_middleware
from gateway.corebank import routes_audit, routes_open, routes_retail, routes_staff
from gateway.corebank.callers import Authenticator
from gateway.corebank.http import AUTHENTICATE, STORE
from gateway.corebank.store import BankStore

__all__ = ["ENVIRONMENTS", "ENVIRONMENT_HEADER", "MAX_BODY", "SANDBOX_PREFIX", "create_app"]

MAX_BODY: Final = 16 * 1024
"""Request bodies above this are refused with 413: a transfer is a few hundred bytes."""
ENVIRONMENTS: Final = ("production", "sandbox")
SANDBOX_PREFIX: Final = "/sandbox"
ENVIRONMENT_HEADER: Final = "X-Ztgate-Environment"
"""On every answer of a sandbox bank (errors and health checks included): ``sandbox``."""


def create_app(
    store: BankStore,
    authenticate: Authenticator,
    *,
    max_body: int = MAX_BODY,
    environment: str = "production",
) -> web.Application:
    """The application; `authenticate` decides who each request comes from
    (`gateway.corebank.callers`)."""
    if environment not in ENVIRONMENTS:
        raise ValueError(f"environment: one of {', '.join(ENVIRONMENTS)}")
    app = web.Application(client_max_size=max_body, middlewares=[errors_middleware])
    app[STORE] = store
    app[AUTHENTICATE] = authenticate
    if environment == "production":
        app.add_routes(routes_retail.routes)
        app.add_routes(routes_staff.routes)
        app.add_routes(routes_open.routes)
        app.add_routes(routes_audit.routes)
        return app
    app.router.add_get("/healthz", routes_retail.healthz)
    sandbox = web.Application(client_max_size=max_body)
    sandbox[STORE] = store
    sandbox[AUTHENTICATE] = authenticate
    sandbox[routes_open.LINK_BASE] = SANDBOX_PREFIX + routes_open.BASE
    sandbox.add_routes(routes_open.routes)
    app.add_subapp(SANDBOX_PREFIX, sandbox)
    app.on_response_prepare.append(_mark_sandbox)
    return app


async def _mark_sandbox(request: web.Request, response: web.StreamResponse) -> None:
    response.headers[ENVIRONMENT_HEADER] = "sandbox"
