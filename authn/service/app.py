"""The authentication service's aiohttp application (HTTP API in docs/authn-api.md)."""

from __future__ import annotations

from importlib import resources

from aiohttp import web

from authn.service import routes_consents, routes_factors, routes_oauth, routes_registration
from authn.service.http import errors_middleware
from authn.service.routes_factors import STATE
from authn.service.state import AuthnState

_PAGE_CSP = (
    "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'unsafe-inline'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


def _static(name: str, content_type: str) -> web.Response:
    body = resources.files("authn.service").joinpath("static", name).read_bytes()
    response = web.Response(body=body, content_type=content_type)
    response.headers["Content-Security-Policy"] = _PAGE_CSP
    response.headers["Cache-Control"] = "no-cache"
    return response


async def passkey_page(request: web.Request) -> web.Response:
    return _static("passkey.html", "text/html")


async def passkey_script(request: web.Request) -> web.Response:
    return _static("passkey.js", "application/javascript")


def create_app(state: AuthnState) -> web.Application:
    app = web.Application(client_max_size=state.config.max_body, middlewares=[errors_middleware])
    app[STATE] = state
    app.add_routes(routes_factors.routes)
    app.add_routes(routes_oauth.routes)
    app.add_routes(routes_consents.routes)
    app.add_routes(routes_registration.routes)
    app.router.add_get("/passkey", passkey_page)
    app.router.add_get("/static/passkey.js", passkey_script)
    return app
