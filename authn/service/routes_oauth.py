"""OAuth endpoints: token (refresh, client_credentials), revocation, introspection,
JWKS and authorization-server metadata.

Form-encoded requests and RFC 6749 §5.2 errors (``invalid_client`` is 401,
the rest 400). Partner clients authenticate with ``private_key_jwt`` (RFC 7523)
or mutual TLS (RFC 8705); their tokens are certificate-bound when a client
certificate was presented, DPoP-bound when a DPoP proof was.
"""

from __future__ import annotations

import ssl
import time

from aiohttp import web

from authn import clients
from authn.consents import scopes_for
from authn.dpop import DPoPCheck, verify_proof
from authn.errors import AuthnError, invalid_grant, invalid_request
from authn.service.http import no_store, read_form, read_json
from authn.service.routes_factors import FIRST_PARTY_CLIENT, STATE, public_url, require_admin
from authn.service.state import AuthnState
from authn.tokens import VerifiedToken

routes = web.RouteTableDef()
CLIENT_ACR = "urn:ztgate:acr:client"
"""acr of client_credentials tokens: the client authenticated, no user did."""


def is_client_token(token: VerifiedToken) -> bool:
    """A partner's own token (``client_credentials``): no user behind it."""
    return token.acr == CLIENT_ACR and token.client_id == token.subject


def _state(request: web.Request) -> AuthnState:
    return request.app[STATE]


def _base(request: web.Request) -> str:
    return _state(request).config.public_url.rstrip("/")


def peer_certificate(request: web.Request) -> tuple[bytes | None, bool]:
    """(DER of the TLS client certificate, whether the handshake verified it).

    The service's TLS context verifies client certificates against the
    configured CA (CERT_OPTIONAL), so a certificate that reached us chained to it.
    """
    transport = request.transport
    ssl_object = transport.get_extra_info("ssl_object") if transport else None
    if not isinstance(ssl_object, ssl.SSLObject):
        return None, False
    der = ssl_object.getpeercert(binary_form=True)
    return (der, True) if der else (None, False)


async def _dpop_jkt(request: web.Request) -> str | None:
    proof = request.headers.get("DPoP")
    if proof is None:
        return None
    check = DPoPCheck(proof, request.method, public_url(request))
    return await verify_proof(check, store=_state(request).store, now=time.time())


async def _authenticate_client(
    request: web.Request, form: dict[str, str]
) -> clients.AuthenticatedClient:
    der, verified = peer_certificate(request)
    return await clients.authenticate_client(
        _state(request).store,
        form=form,
        token_endpoint=_base(request) + "/v1/token",
        issuer=_base(request),
        now=time.time(),
        peer_cert_der=der,
        trusted_ca_verified=verified,
    )


async def _consent_scope(state: AuthnState, client_id: str, consent_id: str, scope: str) -> str:
    """The scope of a token acting under `consent_id`: what the client asked for (or is
    registered for) narrowed to the consent's permissions. Only the client that asked
    for the consent, and only while it is authorised (`authn.consents`)."""
    consent = await state.consents.get(consent_id)
    if consent is None or consent.client_id != client_id or not consent.usable(time.time()):
        raise invalid_grant("consent_id is unknown, not this client's, or not authorised")
    allowed = set(scopes_for(consent.permissions))
    narrowed = [s for s in scope.split(" ") if s in allowed]
    if not narrowed:
        raise AuthnError("invalid_scope", "no requested scope is covered by the consent", 400)
    return " ".join(narrowed)


@routes.post("/v1/token")
async def token(request: web.Request) -> web.Response:
    state = _state(request)
    form = await read_form(request)
    grant_type = form.get("grant_type")
    if grant_type == "refresh_token":
        refresh_token = form.get("refresh_token")
        if not refresh_token:
            raise invalid_request("refresh_token is required")
        response = await state.issuer.refresh(
            refresh_token,
            client_id=form.get("client_id", FIRST_PARTY_CLIENT),
            dpop_jkt=await _dpop_jkt(request),
        )
        return no_store(web.json_response(response.to_json()))
    if grant_type == "client_credentials":
        client = await _authenticate_client(request, form)
        scope = clients.grant_scopes(client.client, form.get("scope"))
        extra: dict[str, str] = {}
        if form.get("consent_id"):
            scope = await _consent_scope(state, client.client.client_id, form["consent_id"], scope)
            extra["consent_id"] = form["consent_id"]
        jkt = await _dpop_jkt(request)
        cnf: dict[str, str] | None = None
        if client.cert_sha256:
            cnf = {"x5t#S256": client.cert_sha256}
        elif jkt:
            cnf = {"jkt": jkt}
        response = await state.issuer.issue(
            subject=client.client.client_id,
            client_id=client.client.client_id,
            acr=CLIENT_ACR,
            amr=["pop"],
            auth_time=int(time.time()),
            scope=scope,
            cnf=cnf,
            with_refresh=False,
            extra=extra,
        )
        return no_store(web.json_response(response.to_json()))
    if grant_type is None:
        raise invalid_request("grant_type is required")
    raise AuthnError("unsupported_grant_type", f"grant_type {grant_type[:40]!r} not supported")


@routes.post("/v1/revoke")
async def revoke(request: web.Request) -> web.Response:
    """RFC 7009 §2.2: 200 whether or not the token was valid or known."""
    form = await read_form(request)
    value = form.get("token")
    if not value:
        raise invalid_request("token is required")
    await _state(request).issuer.revoke(value, form.get("token_type_hint"))
    return no_store(web.json_response({}))


@routes.post("/v1/introspect")
async def introspect(request: web.Request) -> web.Response:
    """RFC 7662 §2: only authenticated clients may ask; inactive → {"active": false}."""
    form = await read_form(request)
    await _authenticate_client(request, form)
    value = form.get("token")
    if not value:
        raise invalid_request("token is required")
    return no_store(web.json_response(await _state(request).issuer.introspect(value)))


@routes.get("/.well-known/jwks.json")
async def jwks(request: web.Request) -> web.Response:
    response = web.json_response(_state(request).keyring.jwks())
    response.headers["Cache-Control"] = "public, max-age=60"
    return response


@routes.get("/.well-known/oauth-authorization-server")
async def metadata(request: web.Request) -> web.Response:
    """RFC 8414 §2 metadata."""
    base = _base(request)
    return web.json_response(
        {
            "issuer": base,
            "token_endpoint": base + "/v1/token",
            "revocation_endpoint": base + "/v1/revoke",
            "introspection_endpoint": base + "/v1/introspect",
            "jwks_uri": base + "/.well-known/jwks.json",
            "grant_types_supported": ["refresh_token", "client_credentials"],
            "token_endpoint_auth_methods_supported": [
                "private_key_jwt",
                "tls_client_auth",
                "self_signed_tls_client_auth",
            ],
            "token_endpoint_auth_signing_alg_values_supported": ["SM2SM3", "ES256", "EdDSA"],
            "dpop_signing_alg_values_supported": ["SM2SM3", "ES256", "EdDSA"],
            "tls_client_certificate_bound_access_tokens": True,
            "acr_values_supported": [
                "urn:ztgate:acr:pwd",
                "urn:ztgate:acr:mfa",
                "urn:ztgate:acr:passkey",
            ],
        }
    )


@routes.get("/healthz")
async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


@routes.post("/v1/clients")
async def register_client(request: web.Request) -> web.Response:
    """Register a partner client (admin; RFC 7591 §2 metadata subset, §3.2.2 errors)."""
    state = require_admin(request)
    doc = await read_json(request, required=("name", "auth_method", "scopes"))
    client = await clients.register_client(
        state.store,
        name=doc["name"],
        auth_method=doc["auth_method"],
        jwks=doc.get("jwks"),
        tls_subject_dn=doc.get("tls_subject_dn"),
        tls_cert_pem=doc.get("tls_cert_pem"),
        scopes=doc["scopes"],
    )
    body = {
        "client_id": client.client_id,
        "name": client.name,
        "token_endpoint_auth_method": client.auth_method,
        "scope": " ".join(client.scopes),
    }
    return no_store(web.json_response(body, status=201))
