"""The control plane's admin HTTP API (loopback only).

- ``GET /healthz`` → ``{"status": "ok", "generation": n}``
- ``GET /nodes`` → the node registry (what `ztgate nodes` prints)
- ``POST /config/reload`` → re-read and validate the configuration file and its
  secrets; ``200 {"generation", "versions"}``, or ``422 {"error":
  "invalid_config", "key", "problem"}`` with the previous snapshots still served.

Being on loopback is not enough against a browser on the same machine: a
request whose ``Host`` is not a loopback name is refused (DNS rebinding), and so
is a ``POST`` carrying an ``Origin`` header (cross-site form posts).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Final

from aiohttp import web

from gateway.config import GatewayConfigError

if TYPE_CHECKING:
    from edge_nodes.server import ControlPlane

log = logging.getLogger("edge_nodes.admin")

_LOOPBACK_HOSTS: Final = frozenset({"127.0.0.1", "localhost", "[::1]", "::1"})
CONTROL_PLANE: Final = web.AppKey["ControlPlane"]("control_plane")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _error(status: int, error: str, **extra: Any) -> web.Response:
    return web.json_response({"error": error, **extra}, status=status)


@web.middleware
async def _guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    host = (
        request.host.rsplit(":", 1)[0]
        if not request.host.startswith("[")
        else (request.host.split("]", 1)[0] + "]")
    )
    if host.lower() not in _LOOPBACK_HOSTS:
        return _error(403, "forbidden_host")
    if request.method not in ("GET", "HEAD") and "Origin" in request.headers:
        return _error(403, "cross_origin_request")
    try:
        return await handler(request)
    except web.HTTPException as exc:
        return _error(exc.status, exc.reason.lower().replace(" ", "_"))
    except Exception:
        log.exception("admin request failed", extra={"path": request.path})
        return _error(500, "internal_error")


def build_app(control_plane: ControlPlane) -> web.Application:
    app = web.Application(middlewares=[_guard], client_max_size=1024)
    app[CONTROL_PLANE] = control_plane
    app.router.add_get("/healthz", _healthz)
    app.router.add_get("/nodes", _nodes)
    app.router.add_post("/config/reload", _reload)
    return app


def _cp(request: web.Request) -> ControlPlane:
    return request.app[CONTROL_PLANE]


async def _healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok", "generation": _cp(request).cache.generation})


async def _nodes(request: web.Request) -> web.Response:
    cp = _cp(request)
    return web.json_response(
        {
            "generation": cp.cache.generation,
            "now": time.time(),
            "nodes": [status.to_json() for status in cp.registry.status()],
        }
    )


async def _reload(request: web.Request) -> web.Response:
    try:
        result = await _cp(request).reload()
    except GatewayConfigError as exc:
        return _error(422, "invalid_config", key=exc.key, problem=exc.problem)
    return web.json_response({"generation": result.generation, "versions": result.versions})
