"""Open-banking partner routes (``/open/v1/...``): the same accounts, partner-shaped.

The shapes follow the Berlin Group NextGenPSD2 XS2A conventions partners know
(``resourceId``, ``balanceAmount``, ``transactions.booked``, ``instructedAmount``,
``transactionStatus`` ``ACSC``), with ``bban`` carrying the domestic account
number (China has no IBAN). A partner sees only the accounts its consent lists
for the consenting customer (`gateway.corebank.callers`); anything else is 404.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from authn.errors import invalid_request
from authn.service.http import read_json
from gateway.corebank import views
from gateway.corebank.callers import Caller
from gateway.corebank.http import (
    account_number,
    encode_cursor,
    idempotency_key,
    json_ok,
    not_found,
    owned_account,
    owner_of,
    path_id,
    require_caller,
    store,
    today_cst,
    transaction_window,
)
from gateway.corebank.model import Account, Transaction
from gateway.corebank.routes_retail import (
    MAX_MEMO,
    MAX_PAYEE_NAME,
    amount_field,
    currency_field,
    outcome_response,
    text_field,
)
from gateway.corebank.store import Transfer
from gateway.corebank.transfers import Payer, TransferRequest, execute_transfer

routes = web.RouteTableDef()
BASE = "/open/v1"
LINK_BASE: web.AppKey[str] = web.AppKey("open_banking_link_base", str)
"""Where the API is mounted, for the links in answers (a sandbox bank's is under
``/sandbox``); absent: `BASE`."""


def _base(request: web.Request) -> str:
    return request.config_dict.get(LINK_BASE, BASE)


def _account(a: Account, owner_name: str, base: str = BASE) -> dict[str, Any]:
    return {
        "resourceId": a.account_id,
        "bban": a.number,
        "currency": a.currency,
        "name": a.product,
        "product": a.product,
        "cashAccountType": "SVGS" if a.kind == "savings" else "CACC",
        "status": "enabled" if a.status == "active" else "blocked",
        "ownerName": owner_name,
        "_links": {
            "balances": {"href": f"{base}/accounts/{a.account_id}/balances"},
            "transactions": {"href": f"{base}/accounts/{a.account_id}/transactions"},
        },
    }


def _transaction(t: Transaction) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "transactionId": t.txn_id,
        "bookingDate": t.booked_at.date().isoformat(),
        "valueDate": t.booked_at.date().isoformat(),
        "transactionAmount": views.money(t.amount_fen),
        "balanceAfterTransaction": {
            "balanceType": "interimBooked",
            "balanceAmount": views.money(t.balance_after_fen),
        },
        "remittanceInformationUnstructured": t.description,
        "proprietaryBankTransactionCode": t.kind,
    }
    party = "creditor" if t.amount_fen < 0 else "debtor"
    name = t.merchant or t.counterparty_name
    if name:
        doc[f"{party}Name"] = name
    if t.counterparty_account:
        doc[f"{party}Account"] = {"bban": t.counterparty_account}
    return doc


def _payment(t: Transfer, base: str = BASE) -> dict[str, Any]:
    return {
        "paymentId": t.transfer_id,
        "transactionStatus": "ACSC" if t.status == "completed" else "RJCT",
        "instructedAmount": views.money(t.amount_fen),
        "debtorAccount": {"bban": t.from_account_number},
        "creditorAccount": {"bban": t.to_account_number},
        "creditorName": t.payee_name,
        "remittanceInformationUnstructured": t.memo,
        "_links": {"self": {"href": f"{base}/payments/{t.transfer_id}"}},
    }


async def _owner_name(request: web.Request, caller: Caller) -> str:
    doc = await store(request).profile(owner_of(caller))
    return str(doc["name"]) if doc else ""


@routes.get(f"{BASE}/accounts")
async def accounts(request: web.Request) -> web.Response:
    caller = await require_caller(request, "partner")
    held = await store(request).accounts_of(owner_of(caller))
    listed = caller.consent.account_ids if caller.consent else frozenset()
    name = await _owner_name(request, caller)
    base = _base(request)
    return json_ok({"accounts": [_account(a, name, base) for a in held if a.account_id in listed]})


@routes.get(f"{BASE}/accounts/{{account_id}}/balances")
async def balances(request: web.Request) -> web.Response:
    caller = await require_caller(request, "partner")
    found = await owned_account(request, caller, path_id(request, "account_id"))
    today = today_cst().isoformat()
    available = found.balance_fen if found.status == "active" else 0
    return json_ok(
        {
            "account": {"bban": found.number, "currency": found.currency},
            "balances": [
                {
                    "balanceType": "interimAvailable",
                    "balanceAmount": views.money(available),
                    "referenceDate": today,
                },
                {
                    "balanceType": "interimBooked",
                    "balanceAmount": views.money(found.balance_fen),
                    "referenceDate": today,
                },
            ],
        }
    )


@routes.get(f"{BASE}/accounts/{{account_id}}/transactions")
async def transactions(request: web.Request) -> web.Response:
    caller = await require_caller(request, "partner")
    found = await owned_account(request, caller, path_id(request, "account_id"))
    window = transaction_window(request, today_cst(), start="dateFrom", end="dateTo")
    page, position = await store(request).transactions(
        found.account_id,
        since=window.since,
        until=window.until,
        limit=window.limit,
        before=window.before,
    )
    base = _base(request)
    links: dict[str, Any] = {"account": {"href": f"{base}/accounts/{found.account_id}"}}
    if position:  # same window and page size, from where this page stopped
        query = urlencode({**request.query, "cursor": encode_cursor(position)})
        links["next"] = {"href": f"{base}/accounts/{found.account_id}/transactions?{query}"}
    return json_ok(
        {
            "account": {"bban": found.number, "currency": found.currency},
            "transactions": {"booked": [_transaction(t) for t in page], "_links": links},
        }
    )


@routes.post(f"{BASE}/payments")
async def initiate_payment(request: web.Request) -> web.Response:
    caller = await require_caller(request, "partner")
    key = idempotency_key(request)
    doc = await read_json(
        request, required=("instructedAmount", "debtorAccount", "creditorAccount")
    )
    amount, debtor, creditor = (
        doc["instructedAmount"], doc["debtorAccount"], doc["creditorAccount"],
    )  # fmt: skip
    if not all(isinstance(part, dict) for part in (amount, debtor, creditor)):
        raise invalid_request("instructedAmount, debtorAccount and creditorAccount are objects")
    currency_field(amount.get("currency"))
    debtor_number = account_number(debtor.get("bban"), "debtorAccount.bban")
    payer_account = await store(request).account_by_number(debtor_number)
    owner = owner_of(caller)
    if payer_account is None or payer_account.customer_id != owner:
        raise not_found("account")
    transfer = TransferRequest(
        from_account_id=payer_account.account_id,
        to_account_number=account_number(creditor.get("bban"), "creditorAccount.bban"),
        amount_fen=amount_field(amount.get("amount"), "instructedAmount.amount"),
        memo=text_field(doc, "remittanceInformationUnstructured", MAX_MEMO, required=False) or "",
        payee_name=text_field(doc, "creditorName", MAX_PAYEE_NAME, required=False),
    )
    listed = caller.consent.account_ids if caller.consent else frozenset()
    payer = Payer(f"partner:{caller.subject}", owner, listed, "open_banking")
    base = _base(request)
    outcome = await execute_transfer(
        store(request), payer, key, transfer, lambda t: _payment(t, base)
    )
    payment_id = outcome.body.get("paymentId")
    return outcome_response(outcome, f"{base}/payments/{payment_id}" if payment_id else None)


@routes.get(f"{BASE}/payments/{{payment_id}}")
async def payment_status(request: web.Request) -> web.Response:
    caller = await require_caller(request, "partner")
    found = await store(request).transfer(path_id(request, "payment_id"))
    if found is None or found.initiated_by != f"partner:{caller.subject}":
        raise not_found("payment")
    return json_ok(_payment(found, _base(request)))
