"""Transfers: debit one of the payer's accounts, credit the payee, exactly once.

One ``BEGIN IMMEDIATE`` transaction does everything — look up the idempotency
key, check ownership, debit with a conditional ``UPDATE … WHERE balance_fen >=
amount``, credit an in-bank payee, write both ledger entries and the transfer,
and record the response under the key — so concurrent transfers from one
account are serialised by SQLite's write lock and can never overdraw it (the
table's CHECK constraint is the last line of defence).

Idempotency (the ``Idempotency-Key`` header, draft-ietf-httpapi-idempotency-key-header):
keys are scoped to the caller; a repeat of the same request returns the first
response (status and body) without executing again; the same key with a
different request is refused with 422. Business rejections (insufficient funds,
frozen account) are recorded too: a retry cannot turn a decline into a payment.
Requests that fail validation or name an account the caller cannot see are
not recorded.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any, Final

from authn.errors import AuthnError
from crypto import sm3
from gateway.corebank.model import CST
from gateway.corebank.money import CURRENCY, format_fen
from gateway.corebank.store import BankStore, Transfer
from gateway.corebank.synthetic import DEBIT_PRODUCTS, SAVINGS_PREFIX
from storage.base import Executor

OWN_PREFIXES: Final = (*(prefix for prefix, _, _ in DEBIT_PRODUCTS), SAVINGS_PREFIX)
"""Account number prefixes of this bank: a payee under them must exist here."""
MAX_TRANSFER_FEN: Final = 1_000_000_00
"""Per-transfer limit of 1,000,000.00 CNY for the sample bank's retail channel."""


@dataclass(frozen=True)
class TransferRequest:
    from_account_id: str
    to_account_number: str
    amount_fen: int
    memo: str
    payee_name: str | None

    def digest(self) -> str:
        canonical = json.dumps(asdict(self), sort_keys=True, ensure_ascii=False)
        return sm3.digest(canonical.encode()).hex()


@dataclass(frozen=True)
class Payer:
    """Whose money moves, and which of their accounts this caller may debit
    (None: all of the customer's; a partner: only the consented ones)."""

    scope: str  # idempotency scope, e.g. "customer:cst_…" or "partner:client-1"
    customer_id: str
    allowed_accounts: frozenset[str] | None
    channel: str  # "retail" or "open_banking"


@dataclass(frozen=True)
class Outcome:
    status: int
    body: dict[str, Any]
    replayed: bool


Render = Callable[[Transfer], dict[str, Any]]


def _rejection(code: str, description: str) -> dict[str, Any]:
    return {"error": code, "error_description": description}


async def execute_transfer(
    store: BankStore, payer: Payer, key: str, request: TransferRequest, render: Render
) -> Outcome:
    """Run (or replay) one transfer; raises `AuthnError` for requests never recorded."""
    digest = request.digest()
    async with store.db.transaction() as tx:
        rows = await tx.fetch(
            "SELECT request_digest, status, response FROM idempotency"
            " WHERE scope = $1 AND key = $2",
            payer.scope,
            key,
        )
        if rows:
            if rows[0][0] != digest:
                raise AuthnError(
                    "idempotency_key_reused",
                    "this Idempotency-Key was used for a different request",
                    422,
                )
            return Outcome(int(rows[0][1]), json.loads(rows[0][2]), replayed=True)
        status, body = await _transfer(tx, payer, request, render)
        await tx.execute(
            "INSERT INTO idempotency VALUES ($1, $2, $3, $4, $5, $6)",
            payer.scope,
            key,
            digest,
            status,
            json.dumps(body, ensure_ascii=False),
            int(time.time()),
        )
    return Outcome(status, body, replayed=False)


async def _transfer(
    tx: Executor, payer: Payer, request: TransferRequest, render: Render
) -> tuple[int, dict[str, Any]]:
    visible = payer.allowed_accounts is None or request.from_account_id in payer.allowed_accounts
    rows = await tx.fetch(
        "SELECT number, status, balance_fen FROM accounts WHERE account_id = $1"
        " AND customer_id = $2",
        request.from_account_id,
        payer.customer_id,
    )
    if not rows or not visible:
        raise AuthnError("account_not_found", "no such account", 404)
    number, status, balance = rows[0]
    if request.to_account_number == number:
        raise AuthnError("invalid_request", "payer and payee accounts are the same", 400)
    if request.amount_fen > MAX_TRANSFER_FEN:
        return 422, _rejection(
            "limit_exceeded",
            f"amount exceeds the per-transfer limit of {format_fen(MAX_TRANSFER_FEN)} {CURRENCY}",
        )
    if status != "active":
        return 422, _rejection("account_frozen", f"account {number} is frozen")
    payee = await tx.fetch(
        "SELECT account_id, status FROM accounts WHERE number = $1", request.to_account_number
    )
    if not payee and request.to_account_number.startswith(OWN_PREFIXES):
        return 422, _rejection(
            "payee_not_found", f"no account {request.to_account_number} at this bank"
        )
    if payee and payee[0][1] != "active":
        return 422, _rejection(
            "payee_account_frozen", f"payee account {request.to_account_number} cannot receive"
        )
    debited = await tx.fetch(
        "UPDATE accounts SET balance_fen = balance_fen - $1"
        " WHERE account_id = $2 AND balance_fen >= $1 RETURNING balance_fen",
        request.amount_fen,
        request.from_account_id,
    )
    if not debited:
        return 422, _rejection(
            "insufficient_funds",
            f"insufficient funds in account {number}: available {format_fen(balance)} {CURRENCY}",
        )
    now = int(time.time())
    transfer = Transfer(
        transfer_id="trf_" + secrets.token_hex(16),
        initiated_by=payer.scope,
        channel=payer.channel,
        from_account_id=request.from_account_id,
        from_account_number=number,
        to_account_number=request.to_account_number,
        to_account_id=payee[0][0] if payee else None,
        payee_name=request.payee_name,
        amount_fen=request.amount_fen,
        currency=CURRENCY,
        memo=request.memo,
        status="completed",
        created_at=datetime.fromtimestamp(now, CST),
    )
    await _book(tx, transfer, now, int(debited[0][0]))
    return 201, render(transfer)


async def _book(tx: Executor, t: Transfer, now: int, payer_balance: int) -> None:
    await tx.execute(
        "INSERT INTO transfers VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        t.transfer_id, t.initiated_by, t.channel, t.from_account_id, t.to_account_number,
        t.to_account_id, t.payee_name, t.amount_fen, t.currency, t.memo, t.status, now,
    )  # fmt: skip
    payee = t.payee_name
    await _ledger(
        tx, t, t.from_account_id, -t.amount_fen, payer_balance, now,
        f"转账 {payee}" if payee else "转账", payee, t.to_account_number,
    )  # fmt: skip
    if t.to_account_id is not None:
        credited = await tx.fetch(
            "UPDATE accounts SET balance_fen = balance_fen + $1 WHERE account_id = $2"
            " RETURNING balance_fen",
            t.amount_fen,
            t.to_account_id,
        )
        payer = await _holder_name(tx, t.from_account_id)
        await _ledger(
            tx, t, t.to_account_id, t.amount_fen, int(credited[0][0]), now,
            f"转账收入 {payer}", payer, t.from_account_number,
        )  # fmt: skip


async def _ledger(
    tx: Executor,
    t: Transfer,
    account_id: str,
    amount: int,
    balance_after: int,
    now: int,
    description: str,
    counterparty_name: str | None,
    counterparty_account: str,
) -> None:
    """One side of `t` in an account's statement."""
    channel = "mobile_banking" if t.channel == "retail" else "open_banking"
    await tx.execute(
        "INSERT INTO transactions VALUES ($1, $2, $3, $4, $5, $6, $7, NULL, $8, $9, $10, $11)",
        "txn_" + secrets.token_hex(8), account_id, now, amount, balance_after,
        "transfer_out" if amount < 0 else "transfer_in", description, counterparty_name,
        counterparty_account, channel, t.transfer_id,
    )  # fmt: skip


async def _holder_name(tx: Executor, account_id: str) -> str:
    rows = await tx.fetch(
        "SELECT json_extract(c.profile, '$.name') FROM accounts a"
        " JOIN customers c ON c.customer_id = a.customer_id WHERE a.account_id = $1",
        account_id,
    )
    return str(rows[0][0])
