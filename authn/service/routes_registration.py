"""``POST /v1/register``: dynamic client registration (RFC 7591 §3) — see `authn.rfc7591`.

Off unless `AuthnConfig.directory_jwks` names the bank's directory keys (read on each
registration, so the directory rotates its keys without a restart); then the
software statement is the only credential (no initial access token): it is the
directory's approval of the software. Errors are RFC 7591 §3.2.2's JSON
(``invalid_software_statement``, ``invalid_redirect_uri``, ``invalid_client_metadata``)
with the field named in ``error_description``.
"""

from __future__ import annotations

import logging

from aiohttp import web

from authn.errors import AuthnError
from authn.rfc7591 import Directory, register
from authn.service.http import no_store, read_json
from authn.service.routes_factors import STATE
from crypto.errors import CryptoError

routes = web.RouteTableDef()
log = logging.getLogger("ztgate.authn.registration")


@routes.post("/v1/register")
async def register_client(request: web.Request) -> web.Response:
    state = request.app[STATE]
    path = state.config.directory_jwks
    if path is None:
        raise AuthnError(
            "unapproved_software_statement", "dynamic registration is not enabled", 400
        )
    doc = await read_json(request, required=("software_statement",))
    try:
        directory = Directory.from_jwks_file(path, state.config.directory_issuer)
    except (OSError, ValueError, CryptoError):
        log.error("directory keys unreadable", extra={"path": str(path)})
        raise AuthnError("temporarily_unavailable", "registration is unavailable", 503) from None
    body = await register(state.store, state.registrations, doc, directory=directory)
    return no_store(web.json_response(body, status=201))
