"""Users and their factors over HTTP: passwords, TOTP, WebAuthn passkeys.

Every successful factor ends in a token response whose ``acr``/``amr`` say
what was proven (`authn.acr`). A factor performed while presenting a token
(step-up, RFC 9470) merges with that token's factors for the same subject.
DPoP (RFC 9449 §5): a login request carrying a ``DPoP`` proof gets tokens
bound to the proof's key; step-ups keep the binding of the presented token.
"""

from __future__ import annotations

import base64
import binascii
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from authn import acr, passwords, stepup, throttle, totp, webauthn
from authn.dpop import DPoPCheck, verify_proof
from authn.errors import AuthnError, invalid_request, invalid_token
from authn.roles import MAX_ROLES, check_roles
from authn.service.http import (
    client_address,
    no_store,
    read_json,
    string_field,
)
from authn.service.state import AuthnState
from authn.store import User
from authn.store.base import SUBJECT_PATTERN
from authn.tokens import VerifiedToken

FIRST_PARTY_CLIENT = "ztgate-app"
"""client_id of tokens issued to the bank's own (mobile) app."""
STEP_UP_FOR_CREDENTIAL_CHANGES = stepup.StepUpRequirement(acr=acr.PASSKEY, max_age=300)

STATE: web.AppKey[AuthnState] = web.AppKey("authn_state", AuthnState)
routes = web.RouteTableDef()


def _state(request: web.Request) -> AuthnState:
    return request.app[STATE]


def public_url(request: web.Request) -> str:
    """The URL the client used, as DPoP's ``htu`` must match (RFC 9449 §4.3)."""
    return _state(request).config.public_url.rstrip("/") + request.rel_url.path


async def optional_bearer(request: web.Request) -> VerifiedToken | None:
    """The request's access token, verified (with its DPoP proof if bound); None if absent."""
    header = request.headers.get("Authorization", "")
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    state = _state(request)
    check = None
    if scheme.lower() == "dpop":
        proof = request.headers.get("DPoP", "")
        check = DPoPCheck(proof, request.method, public_url(request), token.strip())
    elif scheme.lower() != "bearer":
        raise invalid_token("unsupported authorization scheme")
    return await state.verifier.verify(token.strip(), audience=state.config.audience, dpop=check)


async def bearer(request: web.Request) -> VerifiedToken:
    """The request's access token, verified; 401 ``invalid_token`` when absent."""
    token = await optional_bearer(request)
    if token is None:
        raise invalid_token("missing access token")
    return token


async def _throttled(
    state: AuthnState,
    *,
    account_key: str,
    source: str,
    now: float,
    failure: str,
    attempt: Callable[[], Awaitable[None]],
) -> None:
    """Run `attempt` under the account/source back-off (`authn.throttle`): refused while
    backing off; an `AuthnError` with code `failure` counts against both; success
    clears the account's count."""
    limits = state.throttle
    await throttle.check(
        state.store, account_key=account_key, source=source, now=now, policy=limits
    )
    try:
        await attempt()
    except AuthnError as exc:
        if exc.code == failure:  # the back-off runs from when the failure was known
            await throttle.record_failure(
                state.store, account_key=account_key, source=source, now=time.time(), policy=limits
            )
        raise
    await throttle.record_success(state.store, account_key=account_key)


async def _dpop_binding(request: web.Request) -> dict[str, str] | None:
    proof = request.headers.get("DPoP")
    if proof is None:
        return None
    check = DPoPCheck(proof, request.method, public_url(request))
    jkt = await verify_proof(check, store=_state(request).store, now=time.time())
    return {"jkt": jkt}


async def _issue(
    request: web.Request,
    user: User,
    methods: list[str],
    previous: VerifiedToken | None,
) -> web.Response:
    """Tokens for `user` having just proven `methods` (merged with `previous`)."""
    state = _state(request)
    if previous is not None and previous.subject != user.subject:
        raise AuthnError("subject_mismatch", "the factor belongs to another user", 403)
    amr = acr.amr_for([*methods, *(previous.amr if previous else [])])
    cnf = dict(previous.cnf) if previous and previous.cnf else await _dpop_binding(request)
    cfg = state.config
    scopes = cfg.customer_scopes if user.kind == "customer" else cfg.staff_scopes
    response = await state.issuer.issue(
        subject=user.subject,
        client_id=FIRST_PARTY_CLIENT,
        acr=acr.from_amr(amr) or acr.PWD,
        amr=amr,
        auth_time=int(time.time()),
        scope=" ".join(scopes),
        cnf=cnf,
    )
    return no_store(web.json_response(response.to_json()))


async def _user_of(state: AuthnState, token: VerifiedToken) -> User:
    user = await state.store.get_user(token.subject)
    if user is None or user.disabled:
        raise invalid_token("unknown or disabled subject")
    return user


# -- users (admin) --------------------------------------------------------------


def require_admin(request: web.Request) -> AuthnState:
    """The state, if the request carries the admin bearer token (compared in constant time)."""
    state = _state(request)
    scheme, _, presented = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not state.is_admin(presented.strip()):
        raise AuthnError(
            "unauthorized", "admin token required", 401, {"WWW-Authenticate": "Bearer"}
        )
    return state


@routes.post("/v1/users")
async def create_user(request: web.Request) -> web.Response:
    state = require_admin(request)
    doc = await read_json(request, required=("username",))
    username = string_field(doc, "username", max_length=64)
    if not username.isprintable() or username != username.strip():
        raise invalid_request("username must be printable without surrounding spaces")
    display_name = str(doc.get("display_name") or username)[:128]
    kind = doc.get("kind", "customer")
    if kind not in ("customer", "staff"):
        raise invalid_request("kind must be 'customer' or 'staff'")
    subject = None
    if doc.get("subject") is not None:
        subject = string_field(doc, "subject", max_length=64)
        if SUBJECT_PATTERN.fullmatch(subject) is None:
            raise invalid_request(
                "subject must be 1-64 characters of [A-Za-z0-9._:-], starting alphanumeric"
            )
    password = doc.get("password")
    if password is not None:
        passwords.normalize_password(string_field(doc, "password", max_length=256), state.passwords)
    roles = _roles(doc.get("roles", []), kind)
    user = await state.store.create_user(username, display_name, kind, subject=subject)
    if password is not None:
        await passwords.set_user_password(state.store, user.subject, password, state.passwords)
    if roles:
        await state.roles.set(user.subject, roles)
    body = {"subject": user.subject, "username": user.username, "roles": list(roles)}
    return web.json_response(body, status=201)


def _roles(value: object, kind: str) -> tuple[str, ...]:
    """Staff roles (the edge policy's ``identity.roles``); customers hold none."""
    roles = check_roles(value)
    if roles is None:
        raise invalid_request(f"roles must be a list of at most {MAX_ROLES} [a-z][a-z0-9_-] names")
    if roles and kind != "staff":
        raise invalid_request("only staff users hold roles")
    return roles


@routes.put("/v1/users/{subject}/roles")
async def set_roles(request: web.Request) -> web.Response:
    """Replace a staff user's roles (admin); effective at the edge within its user cache."""
    state = require_admin(request)
    subject = request.match_info["subject"]
    user = await state.store.get_user(subject) if len(subject) <= 64 else None
    if user is None:
        raise AuthnError("not_found", "no such user", 404)
    doc = await read_json(request, required=("roles",))
    roles = _roles(doc["roles"], user.kind)
    await state.roles.set(subject, roles)
    return web.json_response({"subject": subject, "roles": list(roles)})


# -- password -----------------------------------------------------------------------


@routes.post("/v1/login/password")
async def login_password(request: web.Request) -> web.Response:
    state = _state(request)
    doc = await read_json(request, required=("username", "password"))
    username = string_field(doc, "username", max_length=64)
    password = string_field(doc, "password", max_length=1024)
    user = await state.store.get_user_by_username(username)

    async def attempt() -> None:
        if not await passwords.verify_user_password(state.store, user, password, state.passwords):
            raise AuthnError("invalid_credentials", "invalid username or password", 401)

    await _throttled(
        state,
        account_key=user.subject if user else username,
        source=client_address(request),
        now=time.time(),
        failure="invalid_credentials",
        attempt=attempt,
    )
    assert user is not None  # verify_user_password is False for an unknown user
    return await _issue(request, user, ["pwd"], None)


# -- TOTP ---------------------------------------------------------------------------------


@routes.post("/v1/totp/enroll")
async def totp_enroll(request: web.Request) -> web.Response:
    state = _state(request)
    token = await bearer(request)
    await read_json(request)  # `{}`: no parameters, but a body must be well-formed
    user = await _user_of(state, token)
    # The label's account name is display only; ':' separates issuer and account there.
    label = user.username.replace(":", "_")
    uri = await totp.enroll(state.store, state.kek, subject=user.subject, account_name=label)
    return no_store(web.json_response({"otpauth_uri": uri}))


@routes.post("/v1/totp/confirm")
async def totp_confirm(request: web.Request) -> web.Response:
    state = _state(request)
    token = await bearer(request)
    doc = await read_json(request, required=("code",))
    code = string_field(doc, "code", max_length=16)
    await totp.confirm(state.store, state.kek, subject=token.subject, code=code, now=time.time())
    return web.json_response({"confirmed": True})


@routes.post("/v1/login/totp")
async def login_totp(request: web.Request) -> web.Response:
    state = _state(request)
    token = await bearer(request)
    user = await _user_of(state, token)
    doc = await read_json(request, required=("code",))
    code = string_field(doc, "code", max_length=16)
    now = time.time()

    async def attempt() -> None:
        await totp.verify(state.store, state.kek, subject=user.subject, code=code, now=now)

    # A stolen password-level token must not buy unlimited guesses at a 6-digit code.
    await _throttled(
        state,
        account_key="otp:" + user.subject,
        source=client_address(request),
        now=now,
        failure="invalid_otp",
        attempt=attempt,
    )
    return await _issue(request, user, ["otp"], token)


# -- WebAuthn -------------------------------------------------------------------------------


@routes.post("/v1/webauthn/register/options")
async def register_options(request: web.Request) -> web.Response:
    state = _state(request)
    token = await bearer(request)
    await read_json(request)  # `{}`: no parameters, but a body must be well-formed
    user = await _user_of(state, token)
    if await state.store.list_credentials(user.subject):
        # Adding a passkey to an account that has one is a credential change.
        stepup.check(
            STEP_UP_FOR_CREDENTIAL_CHANGES,
            token_acr=token.acr,
            auth_time=token.auth_time,
            now=time.time(),
            scheme=_scheme(token),
        )
    challenge_id, options = await webauthn.registration_options(
        state.store, state.webauthn, user=user, now=time.time()
    )
    return no_store(web.json_response({"challenge_id": challenge_id, "publicKey": options}))


@routes.post("/v1/webauthn/register/verify")
async def register_verify(request: web.Request) -> web.Response:
    state = _state(request)
    token = await bearer(request)
    user = await _user_of(state, token)
    doc = await read_json(request, required=("challenge_id", "credential"))
    credential = await webauthn.verify_registration(
        state.store,
        state.webauthn,
        user=user,
        challenge_id=string_field(doc, "challenge_id", max_length=128),
        credential=_credential_field(doc),
        now=time.time(),
        name=str(doc.get("name") or "")[:64],
    )
    body = {"credential_id": _b64u(credential.credential_id)}
    return web.json_response(body, status=201)


@routes.post("/v1/webauthn/authenticate/options")
async def authenticate_options(request: web.Request) -> web.Response:
    state = _state(request)
    doc = await read_json(request)
    user = None
    if doc.get("username") is not None:
        user = await state.store.get_user_by_username(string_field(doc, "username", max_length=64))
        # An unknown username gets discoverable options: the answer must not
        # reveal whether the account exists.
    challenge_id, options = await webauthn.authentication_options(
        state.store, state.webauthn, user=user, now=time.time()
    )
    return no_store(web.json_response({"challenge_id": challenge_id, "publicKey": options}))


@routes.post("/v1/webauthn/authenticate/verify")
async def authenticate_verify(request: web.Request) -> web.Response:
    state = _state(request)
    previous = await optional_bearer(request)
    doc = await read_json(request, required=("challenge_id", "credential"))
    result = await webauthn.verify_authentication(
        state.store,
        state.webauthn,
        challenge_id=string_field(doc, "challenge_id", max_length=128),
        credential=_credential_field(doc),
        now=time.time(),
    )
    user = await state.store.get_user(result.subject)
    if user is None or user.disabled:
        raise AuthnError("invalid_assertion", "unknown or disabled user", 401)
    methods = ["hwk", "user"] if result.user_verified else ["hwk"]
    return await _issue(request, user, methods, previous)


@routes.get("/v1/webauthn/credentials")
async def list_credentials(request: web.Request) -> web.Response:
    state = _state(request)
    token = await bearer(request)
    creds = await state.store.list_credentials(token.subject)
    return web.json_response(
        {
            "credentials": [
                {
                    "credential_id": _b64u(c.credential_id),
                    "name": c.name,
                    "created_at": c.created_at,
                    "last_used_at": c.last_used_at,
                    "flagged": c.flagged,
                }
                for c in creds
            ]
        }
    )


@routes.delete("/v1/webauthn/credentials/{credential_id}")
async def delete_credential(request: web.Request) -> web.Response:
    state = _state(request)
    token = await bearer(request)
    stepup.check(
        STEP_UP_FOR_CREDENTIAL_CHANGES,
        token_acr=token.acr,
        auth_time=token.auth_time,
        now=time.time(),
        scheme=_scheme(token),
    )
    credential_id = _unb64u(request.match_info["credential_id"])
    if not await webauthn.remove_credential(
        state.store, subject=token.subject, credential_id=credential_id
    ):
        raise AuthnError("not_found", "no such credential", 404)
    return web.Response(status=204)


def _scheme(token: VerifiedToken) -> str:
    return "DPoP" if token.cnf and "jkt" in token.cnf else "Bearer"


def _credential_field(doc: dict[str, Any]) -> dict[str, Any]:
    credential = doc.get("credential")
    if not isinstance(credential, dict):
        raise invalid_request("credential must be a JSON object")
    return credential


def _b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64u(text: str) -> bytes:
    if len(text) > 1024:
        raise invalid_request("credential id too long")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise invalid_request("credential id is not base64url") from None
