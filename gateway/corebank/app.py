"""The core-banking aiohttp application: routes, error handling, body limits."""

from __future__ import annotations

from typing import Final

from aiohttp import web

from authn.service.http import errors_middleware
from gateway.corebank import routes_audit, routes_open, routes_retail, routes_staff
from gateway.corebank.callers import Authenticator
from gateway.corebank.http import AUTHENTICATE, STORE
from gateway.corebank.store import BankStore

MAX_BODY: Final = 16 * 1024
"""Request bodies above this are refused with 413: a transfer is a few hundred bytes."""


def create_app(
    store: BankStore, authenticate: Authenticator, *, max_body: int = MAX_BODY
) -> web.Application:
    """The application; `authenticate` decides who each request comes from
    (`gateway.corebank.callers`)."""
    app = web.Application(client_max_size=max_body, middlewares=[errors_middleware])
    app[STORE] = store
    app[AUTHENTICATE] = authenticate
    app.add_routes(routes_retail.routes)
    app.add_routes(routes_staff.routes)
    app.add_routes(routes_open.routes)
    app.add_routes(routes_audit.routes)
    return app
