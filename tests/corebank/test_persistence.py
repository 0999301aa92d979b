"""State survives restarts; the entry point starts, reports its URL and stops cleanly."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import stat
import sys
import urllib.request
from pathlib import Path

import pytest

from gateway.corebank import start_corebank, trust_identity_headers
from gateway.corebank.seed import StateMismatch
from tests.corebank.harness import AS_OF, SEED, Bank, customer


async def test_restart_keeps_balances_transfers_and_idempotency(bank: Bank) -> None:
    me, account = bank.rows(
        "SELECT customer_id, account_id FROM accounts WHERE status = 'active' ORDER BY customer_id"
    )[0]
    bank.rows("UPDATE accounts SET balance_fen = 50000 WHERE account_id = ?", account)
    headers = {**customer(me), "Idempotency-Key": "before-restart"}
    body = {
        "from_account_id": account,
        "to_account_number": "6228481234567890123",
        "amount": "12.34",
        "currency": "CNY",
    }
    first = await bank.request("POST", "/api/transfers", headers, json_body=body)
    assert first.status == 201
    profile_before = await bank.request("GET", f"/api/customers/{me}/profile", customer(me))

    await bank.restart()

    balance = await bank.request("GET", f"/api/accounts/{account}/balance", customer(me))
    assert balance.body["ledger"]["amount"] == "487.66"
    transfer = first.body["transfer_id"]
    fetched = await bank.request("GET", f"/api/transfers/{transfer}", customer(me))
    assert fetched.body == first.body
    replay = await bank.request("POST", "/api/transfers", headers, json_body=body)
    assert replay.body == first.body and replay.headers["Idempotent-Replayed"] == "true"
    after = await bank.request("GET", f"/api/customers/{me}/profile", customer(me))
    assert after.body == profile_before.body  # not re-seeded
    assert len(bank.rows("SELECT * FROM customers")) == bank.customers


async def test_database_file_is_private(bank: Bank) -> None:
    mode = stat.S_IMODE(os.stat(bank.state_dir / "corebank.db").st_mode)
    assert mode == 0o600


async def test_state_seeded_differently_is_refused(bank: Bank) -> None:
    with pytest.raises(StateMismatch, match="seed"):
        await start_corebank(
            bank.state_dir,
            authenticate=trust_identity_headers,
            seed=SEED + 1,
            customers=bank.customers,
            as_of=AS_OF,
        )


async def test_header_trust_is_loopback_only(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="loopback"):
        await start_corebank(tmp_path, authenticate=trust_identity_headers, host="0.0.0.0")
    assert not (tmp_path / "corebank.db").exists()


def _module(*args: str) -> list[str]:
    return [sys.executable, "-m", "gateway.corebank", *args]


async def test_entry_point_prints_url_serves_and_stops(tmp_path: Path) -> None:
    state = tmp_path / "bank"
    args = ["--port", "0", "--state-dir", str(state), "--seed", "42", "--customers", "20"]
    proc = await asyncio.create_subprocess_exec(
        *_module(*args, "--trust-identity-headers", "--as-of", "2025-06-30"),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), timeout=60)
        ready = json.loads(line)
        assert ready["url"] == f"http://127.0.0.1:{ready['port']}"
        health = await asyncio.to_thread(
            lambda: urllib.request.urlopen(ready["url"] + "/healthz", timeout=10).read()
        )
        assert json.loads(health) == {"status": "ok"}
    finally:
        proc.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.wait_for(proc.communicate(), timeout=30)
    assert proc.returncode == 0, stderr
    logged = [json.loads(x) for x in stderr.decode().splitlines() if x.startswith("{")]
    assert any(entry["msg"] == "corebank listening" for entry in logged)

    # Without a way to know who calls, it does not start at all.
    refused = await asyncio.create_subprocess_exec(
        *_module(*args), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(refused.communicate(), timeout=60)
    assert refused.returncode == 2 and not out and b"--assertion-jwks" in err

    # Other parameters on the same state are refused, naming the parameter.
    other = await asyncio.create_subprocess_exec(
        *_module(*args[:-2], "--customers", "21", "--trust-identity-headers"),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(other.communicate(), timeout=60)
    assert other.returncode == 2 and not out and b"customers" in err and b"Traceback" not in err
