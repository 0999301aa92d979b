"""The consent API (`authn.consents`): partners ask and withdraw, customers authorise,
reject and revoke, the bank revokes. docs/open-banking.md "Consents" is the reference.

Who may do what is decided here from the verified token alone: a partner is a
``client_credentials`` token (acr ``urn:ztgate:acr:client``, ``sub`` = its client id)
with scope ``ob:consents``; a customer is an enabled customer user's token. A consent
that is not the caller's answers ``404 consent:unknown`` — the same as one that does
not exist, so ids cannot be probed. Authorising needs a passkey within the last
300 s (RFC 9470 step-up), the strongest factor the bank has, because it hands a
third party access to the customer's accounts.
"""

from __future__ import annotations

import time
from typing import Final

from aiohttp import web

from authn import acr, stepup
from authn.consents import ConsentError, check_accounts, check_permissions
from authn.errors import AuthnError, invalid_request
from authn.service.http import no_store, read_json
from authn.service.routes_factors import STATE, bearer, require_admin
from authn.service.routes_oauth import is_client_token
from authn.service.state import AuthnState
from authn.tokens import VerifiedToken

routes = web.RouteTableDef()

CONSENT_SCOPE: Final = "ob:consents"
AUTHORISE: Final = stepup.StepUpRequirement(acr=acr.PASSKEY, max_age=300)


def _state(request: web.Request) -> AuthnState:
    return request.app[STATE]


def _error(exc: ConsentError) -> AuthnError:
    return AuthnError(exc.code, "", exc.status)


def _unknown() -> AuthnError:
    return AuthnError("consent:unknown", "", 404)


async def _partner(request: web.Request) -> VerifiedToken:
    token = await bearer(request)
    if not is_client_token(token):
        raise AuthnError("consent:partner_only", "a partner's client token is required", 403)
    if CONSENT_SCOPE not in token.scope:
        raise AuthnError("insufficient_scope", f"scope {CONSENT_SCOPE} is required", 403)
    return token


async def _customer(request: web.Request) -> VerifiedToken:
    token = await bearer(request)
    user = None if is_client_token(token) else await _state(request).store.get_user(token.subject)
    if user is None or user.disabled or user.kind != "customer":
        raise AuthnError("consent:customer_only", "a customer's token is required", 403)
    return token


def _consent_id(request: web.Request) -> str:
    value = request.match_info["consent_id"]
    if not 1 <= len(value) <= 64 or not value.isascii() or not value.isprintable():
        raise _unknown()
    return value


@routes.post("/v1/consents")
async def create_consent(request: web.Request) -> web.Response:
    token = await _partner(request)
    doc = await read_json(request, required=("permissions", "expires_at"))
    expires_at = doc["expires_at"]
    if isinstance(expires_at, bool) or not isinstance(expires_at, int):
        raise invalid_request("expires_at must be an integer (unix seconds)")
    try:
        permissions = check_permissions(doc["permissions"])
        consent = await _state(request).consents.create(token.subject, permissions, expires_at)
    except ConsentError as exc:
        raise _error(exc) from None
    return no_store(web.json_response(consent.to_json(time.time()), status=201))


@routes.get("/v1/consents/{consent_id}")
async def get_consent(request: web.Request) -> web.Response:
    """The partner that asked sees its consent; a customer sees one awaiting an answer
    (the app shows what is asked) or one they answered."""
    token = await bearer(request)
    consent = await _state(request).consents.get(_consent_id(request))
    now = time.time()
    if consent is None:
        raise _unknown()
    if is_client_token(token):
        if consent.client_id != token.subject:
            raise _unknown()
    else:
        await _customer(request)
        mine = consent.customer == token.subject
        if not mine and consent.effective_status(now) != "awaiting_authorisation":
            raise _unknown()
    return no_store(web.json_response(consent.to_json(now)))


@routes.post("/v1/consents/{consent_id}/authorise")
async def authorise_consent(request: web.Request) -> web.Response:
    token = await _customer(request)
    stepup.check(
        AUTHORISE,
        token_acr=token.acr,
        auth_time=token.auth_time,
        now=time.time(),
        scheme=token.token_type,
    )
    doc = await read_json(request, required=("accounts",))
    try:
        accounts = check_accounts(doc["accounts"])
        consent = await _state(request).consents.decide(
            _consent_id(request), token.subject, authorise=True, accounts=accounts
        )
    except ConsentError as exc:
        raise _error(exc) from None
    return no_store(web.json_response(consent.to_json(time.time())))


@routes.post("/v1/consents/{consent_id}/reject")
async def reject_consent(request: web.Request) -> web.Response:
    token = await _customer(request)
    try:
        consent = await _state(request).consents.decide(
            _consent_id(request), token.subject, authorise=False
        )
    except ConsentError as exc:
        raise _error(exc) from None
    return no_store(web.json_response(consent.to_json(time.time())))


@routes.delete("/v1/consents/{consent_id}")
async def revoke_consent(request: web.Request) -> web.Response:
    """The partner withdraws, or the customer revokes, their own consent."""
    token = await bearer(request)
    store = _state(request).consents
    consent = await store.get(_consent_id(request))
    if consent is None:
        raise _unknown()
    if is_client_token(token):
        owner, by = consent.client_id == token.subject, f"partner:{token.subject}"
    else:
        await _customer(request)
        owner, by = consent.customer == token.subject, f"customer:{token.subject}"
    if not owner:
        raise _unknown()
    await store.revoke(consent.consent_id, by=by)
    return web.Response(status=204)


@routes.get("/v1/customer/consents")
async def customer_consents(request: web.Request) -> web.Response:
    token = await _customer(request)
    now = time.time()
    consents = await _state(request).consents.for_customer(token.subject)
    return no_store(web.json_response({"consents": [c.to_json(now) for c in consents]}))


@routes.delete("/v1/admin/consents/{consent_id}")
async def bank_revoke_consent(request: web.Request) -> web.Response:
    """The bank's revocation (admin token): fraud, a partner's licence withdrawn."""
    require_admin(request)
    store = _state(request).consents
    consent = await store.get(_consent_id(request))
    if consent is None:
        raise _unknown()
    await store.revoke(consent.consent_id, by="bank")
    return web.Response(status=204)
