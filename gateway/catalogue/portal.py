"""The developer portal: the partner-API catalogue served as a page that renders it.

Issue 7 ("Open-banking exposure"): "an API catalogue: OpenAPI 3.1 for the partner
APIs …, served with a developer-portal page that renders it (assets shipped with
the package, no CDN)". Fixed resources under ``/portal/``: the page, its
script, stylesheet and icon (``static/``), and the OpenAPI document itself
(``/portal/openapi.json``, for partners' tooling). Everything is read from the
installed package once; nothing is fetched from anywhere else.

Beside the catalogue, ``/portal/response-jwks.json`` publishes the public key the
edge signs its responses to signed requests with (RFC 9421 §2.4,
`gateway.response_signing`; docs/http-signatures.md), when the server is given it.

The page's Content-Security-Policy admits only this origin's own script and
style (no inline code, no ``eval``), no frames, no forms, and requires Trusted
Types, so even a mistaken HTML-parsing sink in the renderer would throw instead
of interpreting text from the document as markup.

`ztgate up` serves it on the authentication service's origin through
`portal_extension` (an `authn.service.runner` extension); `add_portal` puts it on
any aiohttp application.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from functools import cache
from importlib import resources
from typing import Any, Final

from aiohttp import web

from authn.service.state import AuthnState

__all__ = [
    "PORTAL_CSP",
    "PREFIX",
    "RESPONSE_JWKS_PATH",
    "add_portal",
    "openapi_document",
    "portal_extension",
]

PREFIX: Final = "/portal"
RESPONSE_JWKS_PATH: Final = PREFIX + "/response-jwks.json"

PORTAL_CSP: Final = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'none'; "
    "require-trusted-types-for 'script'; trusted-types 'none'"
)

_HEADERS: Final = {
    "Content-Security-Policy": PORTAL_CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-cache",
}

# path under PREFIX -> (file in the package, content type)
_FILES: Final = {
    "/": ("static/index.html", "text/html"),
    "/openapi.json": ("openapi.json", "application/json"),
    "/static/portal.js": ("static/portal.js", "text/javascript"),
    "/static/portal.css": ("static/portal.css", "text/css"),
    "/static/favicon.png": ("static/favicon.png", "image/png"),
}

Closer = Callable[[], Awaitable[None]]


@cache
def _read(name: str) -> bytes:
    return resources.files("gateway.catalogue").joinpath(name).read_bytes()


def openapi_document() -> dict[str, Any]:
    """The catalogue (a fresh copy: callers may change it)."""
    doc: dict[str, Any] = json.loads(_read("openapi.json"))
    return doc


def _handler(name: str, content_type: str) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def serve(request: web.Request) -> web.Response:
        charset = None if content_type.startswith("image/") else "utf-8"
        response = web.Response(body=_read(name), content_type=content_type, charset=charset)
        response.headers.update(_HEADERS)
        return response

    return serve


async def _to_index(request: web.Request) -> web.Response:
    # The page loads its script, style and document by relative URL, so it must be
    # addressed with the trailing slash.
    raise web.HTTPPermanentRedirect(f"{PREFIX}/")


def _jwks_handler(jwks: dict[str, Any]) -> Callable[[web.Request], Awaitable[web.Response]]:
    body = json.dumps(jwks, separators=(",", ":")).encode()

    async def serve(request: web.Request) -> web.Response:
        response = web.Response(body=body, content_type="application/jwk-set+json")
        response.headers.update(_HEADERS)
        return response

    return serve


def add_portal(app: web.Application, response_jwks: dict[str, Any] | None = None) -> None:
    """Serve the portal under `PREFIX` on `app` (GET and HEAD), and `response_jwks`
    (the edge's public response-signing keys) at `RESPONSE_JWKS_PATH` when given."""
    app.router.add_get(PREFIX, _to_index)
    for path, (name, content_type) in _FILES.items():
        app.router.add_get(PREFIX + path, _handler(name, content_type))
    if response_jwks is not None:
        if any("d" in key for key in response_jwks.get("keys", ())):
            raise ValueError("the response JWKS must hold public keys only")
        app.router.add_get(RESPONSE_JWKS_PATH, _jwks_handler(response_jwks))


def portal_extension(
    response_jwks: dict[str, Any] | None = None,
) -> Callable[[web.Application, AuthnState], Awaitable[Closer]]:
    """An `authn.service.runner` extension serving the portal on the authentication
    service's origin, where partners also find the token and consent endpoints, and
    the edge's response-signing JWKS beside it."""

    async def install(app: web.Application, state: AuthnState) -> Closer:
        add_portal(app, response_jwks)

        async def close() -> None:
            return None

        return close

    return install
