"""Transfers: money moves once, never beyond the balance, and only the owner's."""

from __future__ import annotations

import asyncio
from typing import Any

from gateway.corebank import start_corebank, trust_identity_headers
from tests.corebank.harness import AS_OF, SEED, Bank, customer, partner

EXTERNAL = "6217001234567890123"  # another bank's card account


def _settlement(bank: Bank, index: int = 0) -> tuple[str, str, str]:
    """(customer, account id, account number) of an active settlement account."""
    rows = bank.rows(
        "SELECT customer_id, account_id, number FROM accounts WHERE status = 'active'"
        " AND kind = 'settlement' ORDER BY customer_id"
    )
    return rows[index]


def _balance(bank: Bank, account: str) -> int:
    return int(bank.rows("SELECT balance_fen FROM accounts WHERE account_id = ?", account)[0][0])


def _set_balance(bank: Bank, account: str, fen: int) -> None:
    bank.rows("UPDATE accounts SET balance_fen = ? WHERE account_id = ?", fen, account)


def _body(account: str, amount: str, to: str = EXTERNAL, **extra: Any) -> dict[str, Any]:
    return {
        "from_account_id": account,
        "to_account_number": to,
        "amount": amount,
        "currency": "CNY",
        **extra,
    }


async def _post(bank: Bank, who: str, key: str, body: dict[str, Any]) -> Any:
    headers = {**customer(who), "Idempotency-Key": key}
    return await bank.request("POST", "/api/transfers", headers, json_body=body)


async def test_transfer_to_another_bank(bank: Bank) -> None:
    me, account, number = _settlement(bank)
    other, _, _ = _settlement(bank, 1)
    _set_balance(bank, account, 100_000)
    reply = await _post(bank, me, "t-1", _body(account, "123.45", memo="房租", payee_name="王芳"))
    assert reply.status == 201, reply.text
    doc = reply.body
    assert doc["status"] == "completed" and doc["amount"] == {"amount": "123.45", "currency": "CNY"}
    assert doc["from_account_number"] == number and doc["to_account_number"] == EXTERNAL
    assert reply.headers["Location"] == f"/api/transfers/{doc['transfer_id']}"
    assert _balance(bank, account) == 100_000 - 12_345
    ledger = bank.rows(
        "SELECT amount_fen, balance_after_fen, kind, counterparty_account FROM transactions"
        " WHERE transfer_id = ?",
        doc["transfer_id"],
    )
    assert ledger == [(-12_345, 100_000 - 12_345, "transfer_out", EXTERNAL)]
    fetched = await bank.request("GET", f"/api/transfers/{doc['transfer_id']}", customer(me))
    assert fetched.body == doc
    theirs = await bank.request("GET", f"/api/transfers/{doc['transfer_id']}", customer(other))
    assert theirs.status == 404


async def test_transfer_within_the_bank_credits_the_payee(bank: Bank) -> None:
    me, account, _ = _settlement(bank)
    payee, payee_account, payee_number = _settlement(bank, 1)
    before = _balance(bank, payee_account)
    _set_balance(bank, account, 50_000)
    reply = await _post(bank, me, "t-2", _body(account, "200", to=payee_number))
    assert reply.status == 201
    assert _balance(bank, account) == 30_000
    assert _balance(bank, payee_account) == before + 20_000
    statement = await bank.request(
        "GET", f"/api/accounts/{payee_account}/transactions?limit=1", customer(payee)
    )
    latest = statement.body["transactions"][0]
    assert latest["kind"] == "transfer_in" and latest["amount"]["amount"] == "200.00"
    assert latest["balance_after"]["amount"] == f"{(before + 20_000) / 100:.2f}"


async def test_insufficient_funds_echoes_the_account_and_moves_nothing(bank: Bank) -> None:
    me, account, number = _settlement(bank)
    _set_balance(bank, account, 1_000)
    reply = await _post(bank, me, "t-3", _body(account, "10.01"))
    assert (reply.status, reply.error) == (422, "insufficient_funds")
    # Real core systems name the account in such errors; the edge must mask it.
    assert number in reply.body["error_description"]
    assert _balance(bank, account) == 1_000
    assert not bank.rows("SELECT * FROM transfers")
    _set_balance(bank, account, 100_000)
    retry = await _post(bank, me, "t-3", _body(account, "10.01"))
    assert (retry.status, retry.body) == (422, reply.body)  # a decline stays a decline
    assert retry.headers["Idempotent-Replayed"] == "true"
    fresh = await _post(bank, me, "t-3b", _body(account, "10.01"))
    assert fresh.status == 201


async def test_idempotent_replay_returns_the_first_result(bank: Bank) -> None:
    me, account, _ = _settlement(bank)
    other, other_account, _ = _settlement(bank, 1)
    _set_balance(bank, account, 100_000)
    first = await _post(bank, me, "pay-rent-2025-06", _body(account, "100.00"))
    again = await _post(bank, me, "pay-rent-2025-06", _body(account, "100.00"))
    assert first.status == again.status == 201
    assert again.body == first.body and again.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert _balance(bank, account) == 90_000
    changed = await _post(bank, me, "pay-rent-2025-06", _body(account, "100.01"))
    assert (changed.status, changed.error) == (422, "idempotency_key_reused")
    # Keys are scoped to the caller: the same key from someone else is a new request.
    _set_balance(bank, other_account, 100_000)
    theirs = await _post(bank, other, "pay-rent-2025-06", _body(other_account, "100.00"))
    assert theirs.status == 201 and theirs.body["transfer_id"] != first.body["transfer_id"]
    assert len(bank.rows("SELECT * FROM transfers")) == 2


async def test_concurrent_transfers_never_overdraw(bank: Bank) -> None:
    me, account, _ = _settlement(bank)
    _set_balance(bank, account, 10_000)  # 100.00
    replies = await asyncio.gather(
        *(_post(bank, me, f"c-{i}", _body(account, "30.00")) for i in range(12))
    )
    statuses = sorted(r.status for r in replies)
    assert statuses == [201] * 3 + [422] * 9
    assert all(r.error == "insufficient_funds" for r in replies if r.status == 422)
    assert _balance(bank, account) == 1_000
    debits = bank.rows(
        "SELECT SUM(amount_fen) FROM transactions WHERE account_id = ? AND transfer_id IS NOT NULL",
        account,
    )
    assert debits == [(-9_000,)]


async def test_concurrent_replays_of_one_key_execute_once(bank: Bank) -> None:
    me, account, _ = _settlement(bank)
    _set_balance(bank, account, 100_000)
    replies = await asyncio.gather(
        *(_post(bank, me, "one-key", _body(account, "10.00")) for _ in range(8))
    )
    assert {r.status for r in replies} == {201}
    assert len({r.body["transfer_id"] for r in replies}) == 1
    assert _balance(bank, account) == 99_000


async def test_two_service_processes_on_one_database_never_overdraw(bank: Bank) -> None:
    """Two edge-facing instances sharing the state: SQLite's write lock serialises them."""
    me, account, _ = _settlement(bank)
    _set_balance(bank, account, 10_000)
    second = await start_corebank(
        bank.state_dir,
        authenticate=trust_identity_headers,
        seed=SEED,
        customers=bank.customers,
        as_of=AS_OF,
    )
    try:
        assert bank.session is not None
        headers = customer(me)

        async def post_to(url: str, key: str) -> int:
            assert bank.session is not None
            async with bank.session.post(
                f"{url}/api/transfers",
                headers={**headers, "Idempotency-Key": key},
                json=_body(account, "30.00"),
            ) as resp:
                return resp.status

        assert bank.service is not None
        urls = [bank.service.url, second.url] * 6
        statuses = await asyncio.gather(*(post_to(u, f"p-{i}") for i, u in enumerate(urls)))
    finally:
        await second.stop()
    assert sorted(statuses) == [201] * 3 + [422] * 9
    assert _balance(bank, account) == 1_000


async def test_business_rejections(bank: Bank) -> None:
    me, account, number = _settlement(bank)
    _set_balance(bank, account, 100_000)
    missing_payee = await _post(bank, me, "r-1", _body(account, "1.00", to="6222080000000000000"))
    assert (missing_payee.status, missing_payee.error) == (422, "payee_not_found")
    over_limit = await _post(bank, me, "r-2", _body(account, "1000000.01"))
    assert (over_limit.status, over_limit.error) == (422, "limit_exceeded")
    bank.rows("UPDATE accounts SET status = 'frozen' WHERE account_id = ?", account)
    frozen = await _post(bank, me, "r-3", _body(account, "1.00"))
    assert (frozen.status, frozen.error) == (422, "account_frozen")
    assert number in frozen.body["error_description"]
    assert _balance(bank, account) == 100_000


async def test_cannot_spend_from_someone_elses_account(bank: Bank) -> None:
    me, _, _ = _settlement(bank)
    _, theirs, _ = _settlement(bank, 1)
    before = _balance(bank, theirs)
    reply = await _post(bank, me, "steal", _body(theirs, "1.00"))
    assert (reply.status, reply.error) == (404, "account_not_found")
    assert _balance(bank, theirs) == before
    assert not bank.rows("SELECT * FROM idempotency")


async def test_partner_payment_under_consent(bank: Bank) -> None:
    holder, account, number = _settlement(bank)
    _set_balance(bank, account, 100_000)
    body = {
        "instructedAmount": {"currency": "CNY", "amount": "88.80"},
        "debtorAccount": {"bban": number},
        "creditorAccount": {"bban": EXTERNAL},
        "creditorName": "李娜",
        "remittanceInformationUnstructured": "订单 20250630-001",
    }
    headers = {**partner("fintech-1", holder, account), "Idempotency-Key": "ob-1"}
    reply = await bank.request("POST", "/open/v1/payments", headers, json_body=body)
    assert reply.status == 201, reply.text
    assert reply.body["transactionStatus"] == "ACSC"
    assert reply.headers["Location"] == reply.body["_links"]["self"]["href"]
    assert _balance(bank, account) == 100_000 - 8_880
    status = await bank.request("GET", reply.body["_links"]["self"]["href"], headers)
    assert status.body == reply.body
    elsewhere = partner("fintech-2", holder, account)
    assert (
        await bank.request("GET", reply.body["_links"]["self"]["href"], elsewhere)
    ).status == 404
    # The debtor account is the customer's, but the consent does not list it.
    unlisted = {**partner("fintech-1", holder, "acc_other"), "Idempotency-Key": "ob-2"}
    denied = await bank.request("POST", "/open/v1/payments", unlisted, json_body=body)
    assert (denied.status, denied.error) == (404, "account_not_found")
    assert _balance(bank, account) == 100_000 - 8_880
    short = {**body, "instructedAmount": {"currency": "CNY", "amount": "5000.00"}}
    poor = await bank.request(
        "POST", "/open/v1/payments", {**headers, "Idempotency-Key": "ob-3"}, json_body=short
    )
    assert (poor.status, poor.error) == (422, "insufficient_funds")
    assert number in poor.body["error_description"]
    bad = await bank.request(
        "POST", "/open/v1/payments", {**headers, "Idempotency-Key": "ob-4"},
        json_body={**body, "instructedAmount": "88.80"},
    )  # fmt: skip
    assert (bad.status, bad.error) == (400, "invalid_request")
