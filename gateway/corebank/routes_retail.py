"""The retail API (``/api/...``) a bank's own mobile app calls through the edge.

Each handler names the caller kinds it serves; ownership is checked against the
caller, and anything not theirs is a 404. The transfer endpoint requires an
``Idempotency-Key`` and answers a replay with the first response (marked
``Idempotent-Replayed: true``).
"""

from __future__ import annotations

import re
from typing import Any, Final

from aiohttp import web

from authn.errors import AuthnError, invalid_request
from authn.service.http import read_json
from gateway.corebank import views
from gateway.corebank.callers import Caller
from gateway.corebank.http import (
    account_number,
    as_of_now,
    encode_cursor,
    idempotency_key,
    json_ok,
    not_found,
    owned_account,
    path_id,
    require_caller,
    store,
    today_cst,
    transaction_window,
)
from gateway.corebank.money import CURRENCY, AmountError, parse_amount
from gateway.corebank.transfers import Outcome, Payer, TransferRequest, execute_transfer

routes = web.RouteTableDef()

MAX_MEMO: Final = 140
MAX_PAYEE_NAME: Final = 64
_CONTROL: Final = re.compile(r"[\x00-\x1f\x7f]")

PRODUCTS: Final = (
    {"product_id": "settlement", "name": "个人结算账户", "kind": "account",
     "interest_rate": "0.10", "currency": CURRENCY},
    {"product_id": "savings", "name": "定活两便储蓄账户", "kind": "account",
     "interest_rate": "0.30", "currency": CURRENCY},
    {"product_id": "debit-classic", "name": "灵通借记卡", "kind": "debit_card",
     "annual_fee": "0.00", "currency": CURRENCY},
    {"product_id": "credit-gold", "name": "信用卡 金卡", "kind": "credit_card",
     "annual_fee": "200.00", "currency": CURRENCY},
)  # fmt: skip
"""Public product information (annual interest rates in percent)."""


@routes.get("/healthz")
async def healthz(request: web.Request) -> web.Response:
    await store(request).meta()  # the database answers
    return json_ok({"status": "ok"})


@routes.get("/api/products")
async def products(request: web.Request) -> web.Response:
    return json_ok({"products": list(PRODUCTS)}, cache="public, max-age=300")


@routes.get("/api/customers/{customer_id}/profile")
async def profile(request: web.Request) -> web.Response:
    caller = await require_caller(request, "customer")
    customer_id = path_id(request, "customer_id")
    doc = await store(request).profile(customer_id) if customer_id == caller.subject else None
    if doc is None:
        raise not_found("customer")
    return json_ok(doc)


@routes.get("/api/accounts")
async def accounts(request: web.Request) -> web.Response:
    caller = await require_caller(request, "customer")
    held = await store(request).accounts_of(caller.subject)
    return json_ok({"accounts": [views.account_document(a) for a in held]})


@routes.get("/api/accounts/{account_id}")
async def account(request: web.Request) -> web.Response:
    caller = await require_caller(request, "customer")
    found = await owned_account(request, caller, path_id(request, "account_id"))
    return json_ok(views.account_document(found))


@routes.get("/api/accounts/{account_id}/balance")
async def balance(request: web.Request) -> web.Response:
    caller = await require_caller(request, "customer")
    found = await owned_account(request, caller, path_id(request, "account_id"))
    return json_ok(views.balance_document(found, as_of_now()))


@routes.get("/api/accounts/{account_id}/transactions")
async def transactions(request: web.Request) -> web.Response:
    caller = await require_caller(request, "customer")
    found = await owned_account(request, caller, path_id(request, "account_id"))
    window = transaction_window(request, today_cst())
    page, position = await store(request).transactions(
        found.account_id,
        since=window.since,
        until=window.until,
        limit=window.limit,
        before=window.before,
    )
    return json_ok(
        {
            "account_id": found.account_id,
            "transactions": [views.transaction_document(t) for t in page],
            "next_cursor": encode_cursor(position) if position else None,
        }
    )


@routes.get("/api/cards")
async def cards(request: web.Request) -> web.Response:
    caller = await require_caller(request, "customer")
    held = await store(request).cards_of(caller.subject)
    return json_ok({"cards": [views.card_summary(c) for c in held]})


@routes.get("/api/cards/{card_id}")
async def card(request: web.Request) -> web.Response:
    caller = await require_caller(request, "customer")
    found = await store(request).card(path_id(request, "card_id"))
    if found is None or found.customer_id != caller.subject:
        raise not_found("card")
    doc = await store(request).profile(caller.subject)
    return json_ok(views.card_detail(found, doc["name"] if doc else ""))


def text_field(doc: dict[str, Any], name: str, limit: int, *, required: bool) -> str | None:
    value = doc.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip() or len(value) > limit:
        raise invalid_request(f"{name} must be a non-empty string of at most {limit} characters")
    if _CONTROL.search(value):
        raise invalid_request(f"{name} must not contain control characters")
    return value


def amount_field(value: object, name: str) -> int:
    if not isinstance(value, str):
        raise invalid_request(f'{name} must be a decimal string like "1234.56", not a number')
    try:
        return parse_amount(value)
    except AmountError as exc:
        raise invalid_request(f"{name}: {exc}") from None


def currency_field(value: object) -> None:
    if value != CURRENCY:
        raise invalid_request(f"currency must be {CURRENCY}")


def outcome_response(outcome: Outcome, location: str | None) -> web.Response:
    response = json_ok(outcome.body, outcome.status)
    if outcome.replayed:
        response.headers["Idempotent-Replayed"] = "true"
    if location and outcome.status == 201:
        response.headers["Location"] = location
    return response


@routes.post("/api/transfers")
async def create_transfer(request: web.Request) -> web.Response:
    caller = await require_caller(request, "customer")
    key = idempotency_key(request)
    doc = await read_json(
        request, required=("from_account_id", "to_account_number", "amount", "currency")
    )
    from_id = doc["from_account_id"]
    if not isinstance(from_id, str):
        raise invalid_request("from_account_id must be a string")
    currency_field(doc["currency"])
    transfer = TransferRequest(
        from_account_id=from_id,
        to_account_number=account_number(doc["to_account_number"], "to_account_number"),
        amount_fen=amount_field(doc["amount"], "amount"),
        memo=text_field(doc, "memo", MAX_MEMO, required=False) or "",
        payee_name=text_field(doc, "payee_name", MAX_PAYEE_NAME, required=False),
    )
    payer = Payer(f"customer:{caller.subject}", caller.subject, None, "retail")
    outcome = await execute_transfer(store(request), payer, key, transfer, views.transfer_document)
    transfer_id = outcome.body.get("transfer_id")
    return outcome_response(outcome, f"/api/transfers/{transfer_id}" if transfer_id else None)


@routes.get("/api/transfers/{transfer_id}")
async def get_transfer(request: web.Request) -> web.Response:
    caller = await require_caller(request, "customer")
    found = await store(request).transfer(path_id(request, "transfer_id"))
    if found is None or not await _owns(request, caller, found.from_account_id):
        raise not_found("transfer")
    return json_ok(views.transfer_document(found))


async def _owns(request: web.Request, caller: Caller, account_id: str) -> bool:
    try:
        await owned_account(request, caller, account_id)
    except AuthnError:
        return False
    return True
