"""The sandbox bank (``--sandbox``): only the open-banking API, under ``/sandbox``, over
its own random synthetic dataset, every answer marked; a state of one environment is
never opened as the other."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from gateway.corebank import RunningCorebank, start_corebank, trust_identity_headers
from gateway.corebank.app import create_app
from gateway.corebank.seed import StateMismatch
from tests.corebank.harness import AS_OF, SEED, partner

CUSTOMERS = 12


async def sandbox_bank(state: Path, seed: int | None = None) -> RunningCorebank:
    return await start_corebank(
        state, authenticate=trust_identity_headers, seed=seed, customers=CUSTOMERS,
        as_of=AS_OF, environment="sandbox",
    )  # fmt: skip


@pytest.fixture
async def sandbox(tmp_path: Path) -> AsyncIterator[RunningCorebank]:
    running = await sandbox_bank(tmp_path / "sandbox")
    try:
        yield running
    finally:
        await running.stop()


def rows(state: Path, sql: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(state / "corebank.db") as conn:
        return conn.execute(sql).fetchall()


async def get(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], str]:
    async with aiohttp.ClientSession() as session, session.get(url, headers=headers) as resp:
        return resp.status, dict(resp.headers), await resp.text()


async def test_only_the_open_banking_api_under_sandbox_every_answer_marked(
    sandbox: RunningCorebank, tmp_path: Path
) -> None:
    state = tmp_path / "sandbox"
    me, account = rows(state, "SELECT customer_id, account_id FROM accounts ORDER BY 1, 2")[0]
    caller = partner("sandbox-app", str(me), str(account))
    status, headers, text = await get(f"{sandbox.url}/sandbox/open/v1/accounts", caller)
    assert (status, headers["X-Ztgate-Environment"]) == (200, "sandbox"), text
    (listed,) = json.loads(text)["accounts"]
    assert listed["resourceId"] == account
    links = listed["_links"]
    assert links["balances"]["href"] == f"/sandbox/open/v1/accounts/{account}/balances"
    status, headers, _ = await get(f"{sandbox.url}{links['transactions']['href']}", caller)
    assert (status, headers["X-Ztgate-Environment"]) == (200, "sandbox")
    status, headers, _ = await get(f"{sandbox.url}/healthz")
    assert (status, headers["X-Ztgate-Environment"]) == (200, "sandbox")
    # Nothing else: not the production paths, not retail or staff APIs; errors marked too.
    for path in ("/open/v1/accounts", "/api/products", "/api/accounts", "/api/staff/customers",
                 "/sandbox/api/products", "/sandbox/healthz"):  # fmt: skip
        status, headers, text = await get(f"{sandbox.url}{path}", caller)
        assert (status, headers["X-Ztgate-Environment"]) == (404, "sandbox"), path
        assert json.loads(text)["error"] == "not_found", path
    status, _, _ = await get(f"{sandbox.url}/sandbox/open/v1/accounts")  # nobody
    assert status == 401


async def test_a_random_dataset_kept_across_restarts(tmp_path: Path) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    for state in (first, second):
        await (await sandbox_bank(state)).stop()
    meta = [dict(rows(s, "SELECT key, value FROM meta")) for s in (first, second)]
    assert all(m["environment"] == "sandbox" for m in meta)
    assert meta[0]["seed"] != meta[1]["seed"]  # two fresh datasets (2**-31 to collide)
    accounts = rows(first, "SELECT account_id, balance_fen FROM accounts ORDER BY 1")
    await (await sandbox_bank(first)).stop()  # no seed: whatever the state holds
    assert rows(first, "SELECT account_id, balance_fen FROM accounts ORDER BY 1") == accounts
    with pytest.raises(StateMismatch, match="seed"):
        await sandbox_bank(first, seed=int(meta[0]["seed"]) + 1)


async def test_a_state_is_never_opened_as_the_other_environment(tmp_path: Path) -> None:
    await (await sandbox_bank(tmp_path / "sandbox")).stop()
    with pytest.raises(StateMismatch, match="environment"):
        await start_corebank(
            tmp_path / "sandbox", authenticate=trust_identity_headers, seed=None,
            customers=CUSTOMERS, as_of=AS_OF,
        )  # fmt: skip
    production = await start_corebank(
        tmp_path / "production", authenticate=trust_identity_headers, seed=SEED,
        customers=CUSTOMERS, as_of=AS_OF,
    )  # fmt: skip
    await production.stop()
    with pytest.raises(StateMismatch, match="environment"):
        await sandbox_bank(tmp_path / "production", seed=SEED)
    # A production state from before the environment was recorded is production.
    with sqlite3.connect(tmp_path / "production" / "corebank.db") as conn:
        conn.execute("DELETE FROM meta WHERE key = 'environment'")
    with pytest.raises(StateMismatch, match="environment"):
        await sandbox_bank(tmp_path / "production", seed=SEED)
    again = await start_corebank(
        tmp_path / "production", authenticate=trust_identity_headers, seed=SEED,
        customers=CUSTOMERS, as_of=AS_OF,
    )  # fmt: skip
    await again.stop()


async def test_the_production_bank_has_no_sandbox_paths(tmp_path: Path) -> None:
    """A cluster mispointed at the other bank finds nothing: the paths do not overlap."""
    production = await start_corebank(
        tmp_path, authenticate=trust_identity_headers, seed=SEED, customers=CUSTOMERS,
        as_of=AS_OF,
    )  # fmt: skip
    try:
        me, account = rows(tmp_path, "SELECT customer_id, account_id FROM accounts")[0]
        caller = partner("live-app", str(me), str(account))
        status, headers, _ = await get(f"{production.url}/sandbox/open/v1/accounts", caller)
        assert status == 404 and "X-Ztgate-Environment" not in headers
        status, _, _ = await get(f"{production.url}/open/v1/accounts", caller)
        assert status == 200
    finally:
        await production.stop()


def test_an_unknown_environment_is_refused() -> None:
    with pytest.raises(ValueError, match="environment"):
        create_app(None, trust_identity_headers, environment="staging")  # type: ignore[arg-type]


async def test_the_entry_point_reports_a_sandbox(tmp_path: Path) -> None:
    argv = ["-m", "gateway.corebank", "--state-dir", str(tmp_path), "--port", "0"]
    argv += ["--customers", "5", "--trust-identity-headers", "--sandbox"]
    proc = await asyncio.create_subprocess_exec(
        sys.executable, *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL
    )
    try:
        assert proc.stdout is not None
        ready = json.loads(await asyncio.wait_for(proc.stdout.readline(), 60))
        assert ready["environment"] == "sandbox"
        status, headers, _ = await get(ready["url"] + "/healthz")
        assert (status, headers["X-Ztgate-Environment"]) == (200, "sandbox")
    finally:
        proc.terminate()
        assert await asyncio.wait_for(proc.wait(), 30) == 0
