"""Bad input of every kind gets a 4xx JSON error naming the problem, never a crash."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.corebank.harness import Bank, Reply, customer


def _assert_json_error(reply: Reply, status: int, error: str | None = None) -> None:
    assert reply.status == status, reply.text
    assert reply.headers["Content-Type"].startswith("application/json")
    assert isinstance(reply.body, dict) and isinstance(reply.body["error"], str)
    if error is not None:
        assert reply.body["error"] == error, reply.body
    assert "Traceback" not in reply.text and 'File "' not in reply.text


def _payer(bank: Bank) -> tuple[str, str]:
    row = bank.rows(
        "SELECT customer_id, account_id FROM accounts WHERE status = 'active' AND kind ="
        " 'settlement' ORDER BY customer_id LIMIT 1"
    )[0]
    return row[0], row[1]


async def test_unknown_routes_and_methods(bank: Bank) -> None:
    _assert_json_error(await bank.request("GET", "/nowhere"), 404, "not_found")
    _assert_json_error(await bank.request("GET", "/api/accounts/a/b/c"), 404, "not_found")
    _assert_json_error(await bank.request("DELETE", "/api/accounts"), 405, "method_not_allowed")
    _assert_json_error(await bank.request("PUT", "/api/transfers"), 405, "method_not_allowed")


@pytest.mark.parametrize(
    ("content_type", "data", "status", "error"),
    [
        ("text/plain", b"{}", 415, "unsupported_media_type"),
        ("application/json", b"{not json", 400, "invalid_request"),
        ("application/json", b"\xff\xfe", 400, "invalid_request"),
        ("application/json", b"[1, 2]", 400, "invalid_request"),
        ("application/json", b"[" * 5000 + b"]" * 5000, 400, "invalid_request"),
        ("application/json", json.dumps({"memo": "x" * 20_000}).encode(), 413, None),
    ],
)
async def test_malformed_and_oversized_bodies(
    bank: Bank, content_type: str, data: bytes, status: int, error: str | None
) -> None:
    me, _ = _payer(bank)
    headers = {**customer(me), "Content-Type": content_type, "Idempotency-Key": "k-1"}
    _assert_json_error(
        await bank.request("POST", "/api/transfers", headers, data=data), status, error
    )


def _transfer(account: str, **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "from_account_id": account,
        "to_account_number": "6217001234567890123",
        "amount": "10.00",
        "currency": "CNY",
        "memo": "房租",
    }
    body.update(changes)
    return {k: v for k, v in body.items() if v is not None}


@pytest.mark.parametrize(
    "changes",
    [
        {"amount": 10.5},
        {"amount": "10.001"},
        {"amount": "-5.00"},
        {"amount": "0.00"},
        {"amount": "1e3"},
        {"amount": None},
        {"currency": "USD"},
        {"currency": None},
        {"to_account_number": "not-a-number"},
        {"to_account_number": 6217001234567890123},
        {"to_account_number": "123"},
        {"memo": "line\nbreak"},
        {"memo": ""},
        {"memo": "长" * 141},
        {"payee_name": 5},
        {"from_account_id": 17},
    ],
)
async def test_invalid_transfer_fields(bank: Bank, changes: dict[str, Any]) -> None:
    me, account = _payer(bank)
    headers = {**customer(me), "Idempotency-Key": "k-2"}
    reply = await bank.request(
        "POST", "/api/transfers", headers, json_body=_transfer(account, **changes)
    )
    _assert_json_error(reply, 400, "invalid_request")
    assert not bank.rows("SELECT * FROM idempotency")  # invalid requests leave no trace


async def test_idempotency_key_is_required_and_well_formed(bank: Bank) -> None:
    me, account = _payer(bank)
    body = _transfer(account)
    reply = await bank.request("POST", "/api/transfers", customer(me), json_body=body)
    _assert_json_error(reply, 400, "idempotency_key_required")
    for key in ("", "has space", "x" * 129, "ключ"):
        headers = {**customer(me), "Idempotency-Key": key}
        reply = await bank.request("POST", "/api/transfers", headers, json_body=body)
        _assert_json_error(reply, 400, "invalid_request")


async def test_transfer_to_the_same_account(bank: Bank) -> None:
    me, account = _payer(bank)
    number = bank.rows("SELECT number FROM accounts WHERE account_id = ?", account)[0][0]
    headers = {**customer(me), "Idempotency-Key": "same"}
    body = _transfer(account, to_account_number=number)
    _assert_json_error(await bank.request("POST", "/api/transfers", headers, json_body=body), 400)


@pytest.mark.parametrize(
    "query",
    [
        "cursor=%%%",
        "cursor=bm90LWEtY3Vyc29y",  # base64 of "not-a-cursor"
        "cursor=OTk5OTk5OTk5OTk5OTk5OTk5OnR4bl8w",  # wrong shape inside
        "limit=0",
        "limit=201",
        "limit=abc",
        "limit=" + "9" * 5000,
        "limit=-1",
        "from=2025-06-30&to=2025-06-01",
        "from=2025-02-30",
        "from=2025-W01-1",
        "from=20250101",
        "to=yesterday",
        "limit=5&limit=6",
    ],
)
async def test_bad_transaction_queries(bank: Bank, query: str) -> None:
    me, account = _payer(bank)
    reply = await bank.request("GET", f"/api/accounts/{account}/transactions?{query}", customer(me))
    _assert_json_error(reply, 400, "invalid_request")


@pytest.mark.parametrize(
    "account_id", ["x" * 300, "acc%00zz", "..%2F..%2Fetc", "acc'--", "%E4%B8%AD"]
)
async def test_odd_path_ids_are_plain_404s(bank: Bank, account_id: str) -> None:
    me, _ = _payer(bank)
    _assert_json_error(await bank.request("GET", f"/api/accounts/{account_id}", customer(me)), 404)
