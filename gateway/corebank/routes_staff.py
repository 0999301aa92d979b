"""Customer-service routes (``/api/staff/...``): an agent looks a customer up, a
supervisor unlocks a customer's online banking.

Only callers of kind ``staff`` whose id is an active staff member of the bank
are served; the unlock also needs the ``supervisor`` role in the bank's staff
records (the edge has already checked the token's ``csr_supervisor`` role). The
core returns full data; what an agent's screen may show is the edge's masking
profile for staff (JR/T 0171-2020: C2 masked, C3 never) — ``staff_restricted``
for lookups, ``staff_minimal`` (every C2 value removed) for the unlock.
"""

from __future__ import annotations

from typing import Final

from aiohttp import web

from authn.errors import invalid_request
from authn.service.http import read_json
from gateway import pii
from gateway.corebank import views
from gateway.corebank.http import (
    json_ok,
    not_found,
    path_id,
    require_caller,
    require_staff,
    store,
)
from gateway.corebank.routes_retail import text_field

MAX_REASON: Final = 200
UNLOCKERS: Final = ("supervisor",)

routes = web.RouteTableDef()


@routes.get("/api/staff/customers/{customer_id}")
async def customer_view(request: web.Request) -> web.Response:
    await require_caller(request, "staff")
    customer_id = path_id(request, "customer_id")
    bank = store(request)
    profile = await bank.profile(customer_id)
    if profile is None:
        raise not_found("customer")
    accounts = await bank.accounts_of(customer_id)
    cards = await bank.cards_of(customer_id)
    return json_ok(views.staff_customer_view(profile, accounts, cards))


@routes.get("/api/staff/customers")
async def search(request: web.Request) -> web.Response:
    await require_caller(request, "staff")
    mobiles = request.query.getall("mobile", [])
    if len(mobiles) != 1 or not pii.mobile_valid(mobiles[0]):
        raise invalid_request("give exactly one mobile=<11-digit mainland mobile number>")
    found = await store(request).profiles_by_mobile(mobiles[0])
    return json_ok(
        {
            "customers": [
                {"customer_id": p["customer_id"], "name": p["name"], "mobile": p["mobile"]}
                for p in found
            ]
        }
    )


@routes.get("/api/staff/customers/{customer_id}/accounts")
async def customer_accounts(request: web.Request) -> web.Response:
    await require_caller(request, "staff")
    customer_id = path_id(request, "customer_id")
    bank = store(request)
    if await bank.profile(customer_id) is None:
        raise not_found("customer")
    return json_ok(views.staff_accounts_view(customer_id, await bank.accounts_of(customer_id)))


@routes.post("/api/staff/customers/{customer_id}/unlock")
async def unlock(request: web.Request) -> web.Response:
    """Reactivate online banking (e.g. after failed logins): body ``{"reason": "…"}``,
    recorded with the supervisor's id for audit."""
    member = await require_staff(request, *UNLOCKERS)
    customer_id = path_id(request, "customer_id")
    doc = await read_json(request, required=("reason",))
    reason = text_field(doc, "reason", MAX_REASON, required=True) or ""
    bank = store(request)
    profile = await bank.profile(customer_id)
    if profile is None:
        raise not_found("customer")
    action, previous = await bank.unlock(customer_id, member.staff_id, reason)
    accounts = await bank.accounts_of(customer_id)
    return json_ok(views.unlock_document(action, previous, profile, accounts))
