"""HTTP plumbing shared by the authentication service's handlers.

The rules every response obeys: errors are JSON ``{"error", "error_description"}``
with a 4xx status (RFC 6749 §5.2 names where they exist); an unexpected
exception becomes ``500 {"error": "server_error"}`` with the details only in
the log — never a stack trace to the client. Bodies are capped (64 KiB by
default) and must carry the content type the endpoint expects. Token
responses are never cached (RFC 6749 §5.1).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from aiohttp import web

from authn.errors import AuthnError, invalid_request

log = logging.getLogger("ztgate.authn.http")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
MAX_JSON_DEPTH = 32

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}


def error_response(
    status: int, code: str, description: str = "", headers: Mapping[str, str] | None = None
) -> web.Response:
    body: dict[str, str] = {"error": code}
    if description:
        body["error_description"] = description
    resp = web.json_response(body, status=status, headers=dict(headers or {}))
    resp.headers["Cache-Control"] = "no-store"
    return resp


@web.middleware
async def errors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        response = await handler(request)
    except AuthnError as exc:
        if exc.status >= 500:
            log.error("authn error", extra={"code": exc.code, "path": request.path})
        response = error_response(exc.status, exc.code, exc.description, exc.headers)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code = {
            404: "not_found",
            405: "method_not_allowed",
            413: "request_too_large",
            415: "unsupported_media_type",
        }.get(exc.status, "invalid_request")
        response = error_response(exc.status, code, exc.reason)
    except Exception:
        log.exception("unhandled error", extra={"path": request.path, "method": request.method})
        response = error_response(500, "server_error", "internal error")
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response


def _depth(value: Any, level: int = 0) -> int:
    if level > MAX_JSON_DEPTH:
        return level
    if isinstance(value, dict):
        return max((_depth(v, level + 1) for v in value.values()), default=level + 1)
    if isinstance(value, list):
        return max((_depth(v, level + 1) for v in value), default=level + 1)
    return level


async def read_json(request: web.Request, *, required: tuple[str, ...] = ()) -> dict[str, Any]:
    """The request's JSON object, or a 4xx naming what is wrong with it."""
    if request.content_type != "application/json":
        raise AuthnError("unsupported_media_type", "expected application/json", 415)
    raw = await request.read()  # bounded by the application's client_max_size
    try:
        doc = json.loads(raw) if raw else {}
    except (ValueError, UnicodeDecodeError):
        raise invalid_request("body is not valid JSON") from None
    except RecursionError:  # the decoder recursed past Python's limit: ~1000 '['
        raise invalid_request("JSON nested too deeply") from None
    if not isinstance(doc, dict):
        raise invalid_request("body must be a JSON object")
    if _depth(doc) > MAX_JSON_DEPTH:
        raise invalid_request("JSON nested too deeply")
    missing = [name for name in required if name not in doc]
    if missing:
        raise invalid_request(f"missing field(s): {', '.join(missing)}")
    return doc


def string_field(doc: Mapping[str, Any], name: str, *, max_length: int = 1024) -> str:
    value = doc.get(name)
    if not isinstance(value, str) or not value or len(value) > max_length:
        raise invalid_request(f"{name} must be a non-empty string of at most {max_length} chars")
    return value


async def read_form(request: web.Request) -> dict[str, str]:
    """An ``application/x-www-form-urlencoded`` body (RFC 6749 §3.2); repeated
    parameters are refused (RFC 6749 §3.1)."""
    if request.content_type != "application/x-www-form-urlencoded":
        raise AuthnError(
            "unsupported_media_type", "expected application/x-www-form-urlencoded", 415
        )
    form = await request.post()
    out: dict[str, str] = {}
    for key in form:
        values = form.getall(key)
        if len(values) != 1 or not isinstance(values[0], str):
            raise invalid_request(f"parameter {key} must appear once")
        out[key] = values[0]
    return out


def no_store(response: web.Response) -> web.Response:
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"
    return response


def client_address(request: web.Request) -> str:
    """The peer address. Proxies' forwarding headers are not trusted here: the
    edge (Envoy) passes the verified client address to the agent instead."""
    peer = request.remote
    return peer or "unknown"
