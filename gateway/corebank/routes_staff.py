"""Customer-service routes (``/api/staff/...``): an agent looks a customer up.

Only callers of kind ``staff`` whose id is an active staff member of the bank
are served. The core returns full data; what an agent's screen may show is the
edge's masking profile for staff (JR/T 0171-2020: C2 masked, C3 never).
"""

from __future__ import annotations

from aiohttp import web

from authn.errors import invalid_request
from gateway import pii
from gateway.corebank import views
from gateway.corebank.http import json_ok, not_found, path_id, require_caller, store

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
