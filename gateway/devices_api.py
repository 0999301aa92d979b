"""The device-management HTTP API: a customer binds, lists, renames and revokes their
devices; the bank revokes any (issue 5: "devices bound to a subject at enrolment
(after a strong factor), listed, renamed, revoked by the customer or the bank").

It is an extension of the authentication service's application (`authn.service.runner`
``extensions``), so the mobile app talks to one origin for logging in and for
enrolling the phone, and the same bearer/DPoP verification, error format and body
limits apply. `ztgate up` installs it; docs/device.md "Device management API" is the
reference.

Binding is of *the device making the request*, assessed exactly as the edge assesses
it (the same `DeviceAssessor`, the same ``x-device-signals`` collector payload,
``User-Agent`` and client hints, or the DPoP key the token is bound to), so the id
bound here is the id the edge sees next. It needs a fresh strong factor: acr at
least `DeviceConfig.bind_min_acr` and ``auth_time`` within `BIND_MAX_AGE` seconds;
otherwise ``401`` with an RFC 9470 ``insufficient_user_authentication`` challenge.
Edge nodes see a binding change within `DeviceConfig.sync_seconds` (their sync
loop reads the registry's audit trail).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Final

from aiohttp import web

from authn.errors import AuthnError, invalid_request
from authn.service.http import client_address, no_store, read_json, string_field
from authn.service.routes_factors import optional_bearer, require_admin
from authn.service.state import AuthnState
from authn.tokens import VerifiedToken
from device_fingerprint.assessment import DeviceObservation
from device_fingerprint.assessor import DeviceAssessor
from device_fingerprint.config import DeviceConfig
from device_fingerprint.registry import Actor, Device, DeviceRegistry, RegistryError, open_registry
from gateway.context import SIGNALS_HEADER, decode_signals

__all__ = ["BIND_MAX_AGE", "devices_extension"]

BIND_MAX_AGE: Final = 300
"""Seconds since the strong factor within which a device may be bound (step-up)."""

_STATUS: Final = {
    "device:unknown": 404,
    "device:already_bound": 409,
    "limit:bound_devices": 409,
    "device:suspicious": 403,
    "actor:not_subject": 403,
    "actor:not_allowed": 403,
    "actor:invalid": 403,
    "name:invalid": 400,
    "reason:invalid": 400,
}

Closer = Callable[[], Awaitable[None]]


@dataclass(frozen=True)
class DevicesService:
    registry: DeviceRegistry
    assessor: DeviceAssessor
    config: DeviceConfig
    state: AuthnState


_SERVICE: Final = web.AppKey("devices", DevicesService)


def devices_extension(
    store_url: str, config: DeviceConfig, *, schema: str | None = None
) -> Callable[[web.Application, AuthnState], Awaitable[Closer]]:
    """An `authn.service.runner` extension serving this API from the device registry
    at `store_url` (the authn store's database: devices and users live together)."""

    async def install(app: web.Application, state: AuthnState) -> Closer:
        registry = await open_registry(store_url, config, schema=schema)
        assessor = DeviceAssessor(registry, config)
        await assessor.start()
        app[_SERVICE] = DevicesService(registry, assessor, config, state)
        app.router.add_get("/v1/devices", list_devices)
        app.router.add_post("/v1/devices", bind_device)
        app.router.add_patch("/v1/devices/{device_id}", rename_device)
        app.router.add_delete("/v1/devices/{device_id}", revoke_device)
        app.router.add_delete("/v1/subjects/{subject}/devices/{device_id}", bank_revoke)

        async def close() -> None:
            await assessor.close()
            await registry.close()

        return close

    return install


# -- helpers ----------------------------------------------------------------------------


def _service(request: web.Request) -> DevicesService:
    return request.app[_SERVICE]


def _registry_error(exc: RegistryError) -> AuthnError:
    return AuthnError(exc.code, "", _STATUS.get(exc.code, 400))


async def _customer(request: web.Request) -> VerifiedToken:
    """The bearer's verified token, if it is an enabled user's (a customer, or a staff
    member enrolling the device they work from; partners' servers have none). The
    registry records such self-service changes with the actor kind ``customer``: the
    device's owner."""
    token = await optional_bearer(request)
    if token is None:
        raise AuthnError(
            "invalid_token", "missing access token", 401, {"WWW-Authenticate": "Bearer"}
        )
    user = await _service(request).state.store.get_user(token.subject)
    if user is None or user.disabled or user.kind not in ("customer", "staff"):
        raise AuthnError("actor:not_allowed", "only users manage their own devices", 403)
    return token


def _step_up(service: DevicesService, scheme: str) -> AuthnError:
    """RFC 9470 §3: the challenge naming the acr and max_age binding needs."""
    acr = service.config.bind_min_acr
    challenge = (
        f'{scheme} error="insufficient_user_authentication", '
        f'error_description="binding a device needs a fresh strong factor", '
        f'acr_values="{acr}", max_age={BIND_MAX_AGE}'
    )
    return AuthnError(
        "insufficient_user_authentication",
        "binding a device needs a fresh strong factor",
        401,
        {"WWW-Authenticate": challenge},
    )


def _view(device: Device) -> dict[str, Any]:
    """What the customer sees of a device: never its signals or graph keys."""
    return {
        "device_id": device.device_id,
        "name": device.name,
        "label": device.label,
        "kind": device.kind,
        "state": device.state,
        "key_bound": device.key_bound,
        "first_seen": int(device.first_seen),
        "last_seen": int(device.last_seen),
        "bound_at": None if device.bound_at is None else int(device.bound_at),
        "revoked_at": None if device.revoked_at is None else int(device.revoked_at),
    }


def _device_id(request: web.Request) -> str:
    device_id = request.match_info["device_id"]
    if not 1 <= len(device_id) <= 256 or not device_id.isprintable():
        raise invalid_request("device_id is malformed")
    return device_id


# -- handlers ---------------------------------------------------------------------------


async def list_devices(request: web.Request) -> web.Response:
    token = await _customer(request)
    devices = await _service(request).registry.list_devices(token.subject)
    return no_store(web.json_response({"devices": [_view(d) for d in devices]}))


async def bind_device(request: web.Request) -> web.Response:
    service = _service(request)
    token = await _customer(request)
    doc = await read_json(request, required=("name",))
    name = string_field(doc, "name", max_length=64)
    cnf = token.cnf or {}
    fresh = token.auth_time is not None and time.time() - token.auth_time <= BIND_MAX_AGE
    if (
        service.config.acr_rank(token.acr) < service.config.acr_rank(service.config.bind_min_acr)
        or not fresh
    ):
        raise _step_up(service, token.token_type)
    headers = request.headers
    seen = await service.assessor.assess(
        DeviceObservation(
            subject=token.subject,
            client_ip=client_address(request),
            signals=decode_signals(headers.get(SIGNALS_HEADER), service.config.max_payload_bytes),
            key_thumbprint=cnf.get("jkt"),
            user_agent=headers.get("User-Agent"),
            client_hints={
                k.lower(): v for k, v in headers.items() if k.lower().startswith("sec-ch-ua")
            },
        )
    )
    if seen.device_id is None:
        raise AuthnError("device:no_signals", "no usable device signals or key proof", 400)
    try:
        device = await service.registry.bind(
            token.subject,
            seen,
            actor=Actor("customer", token.subject),
            acr=token.acr,
            amr=token.amr,
            name=name,
        )
    except RegistryError as exc:
        raise _registry_error(exc) from None
    return no_store(web.json_response(_view(device), status=201))


async def rename_device(request: web.Request) -> web.Response:
    token = await _customer(request)
    device_id = _device_id(request)
    doc = await read_json(request, required=("name",))
    name = string_field(doc, "name", max_length=64)
    actor = Actor("customer", token.subject)
    try:
        await _service(request).registry.rename(token.subject, device_id, name, actor=actor)
    except RegistryError as exc:
        raise _registry_error(exc) from None
    return web.json_response({"device_id": device_id, "name": name})


async def revoke_device(request: web.Request) -> web.Response:
    token = await _customer(request)
    device_id = _device_id(request)
    actor = Actor("customer", token.subject)
    try:
        await _service(request).registry.revoke(token.subject, device_id, actor=actor)
    except RegistryError as exc:
        raise _registry_error(exc) from None
    return web.Response(status=204)


async def bank_revoke(request: web.Request) -> web.Response:
    """The bank's revocation (admin bearer token): e.g. a reported theft. The body may
    give ``{"reason", "staff_id"}``; the audit trail records both."""
    require_admin(request)
    subject = request.match_info["subject"]
    if not 1 <= len(subject) <= 256 or not subject.isprintable():
        raise invalid_request("subject is malformed")
    device_id = _device_id(request)
    doc = await read_json(request) if request.can_read_body else {}
    reason = doc.get("reason", "")
    staff_id = doc.get("staff_id", "bank")
    if not isinstance(reason, str) or not isinstance(staff_id, str) or not staff_id:
        raise invalid_request("reason and staff_id must be strings")
    try:
        await _service(request).registry.revoke(
            subject, device_id, actor=Actor("staff", staff_id), reason=reason
        )
    except RegistryError as exc:
        raise _registry_error(exc) from None
    return web.Response(status=204)
