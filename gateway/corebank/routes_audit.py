"""Audit routes (``/api/audit/...``): an internal auditor reviews what happened to a
customer — their accounts, transfers and the staff actions taken on them.

Served to active staff whose role in the bank's staff records is ``auditor``
(the edge requires the token role ``auditor`` first). The core returns the
identifiers in full; the edge's ``audit`` profile replaces them with
pseudonyms under one audit-wide key, so an auditor can match records across
responses and days without reading a single value (JR/T 0171-2020 §5).
"""

from __future__ import annotations

from typing import Final

from aiohttp import web

from gateway.corebank import views
from gateway.corebank.http import json_ok, not_found, path_id, require_staff, store

AUDITORS: Final = ("auditor",)
MAX_RECORDS: Final = 100
"""Most recent transfers and staff actions per review."""

routes = web.RouteTableDef()


@routes.get("/api/audit/customers/{customer_id}/activity")
async def customer_activity(request: web.Request) -> web.Response:
    await require_staff(request, *AUDITORS)
    customer_id = path_id(request, "customer_id")
    bank = store(request)
    profile = await bank.profile(customer_id)
    if profile is None:
        raise not_found("customer")
    return json_ok(
        views.audit_activity(
            profile,
            await bank.online_access(customer_id),
            await bank.accounts_of(customer_id),
            await bank.transfers_of(customer_id, MAX_RECORDS),
            await bank.staff_actions_of(customer_id, MAX_RECORDS),
        )
    )
