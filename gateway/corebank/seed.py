"""Open the bank's state, seeding it from the synthetic generator on first start.

Seeding runs inside one ``BEGIN IMMEDIATE`` transaction that first reads
``meta``: two processes starting on an empty directory serialise, and the second
finds the first's data. A state directory seeded with other parameters is
refused with an error naming the parameter, never silently mixed; so is a state of
the other environment (production or sandbox, ``meta.environment``).
"""

from __future__ import annotations

import contextlib
import json
import secrets
import sqlite3
from datetime import date
from pathlib import Path
from typing import Final

import aiosqlite

from gateway.corebank.model import Bank
from gateway.corebank.store import BankStore, connect
from gateway.corebank.synthetic import generate
from gateway.corebank.views import customer_document
from storage.sqlite import SqliteDatabase

SCHEMA_VERSION: Final = "1"


class StateMismatch(ValueError):
    """The state directory holds a bank generated with different parameters."""


async def open_bank(
    state_dir: Path,
    *,
    seed: int | None,
    customers: int,
    as_of: date,
    environment: str = "production",
) -> BankStore:
    """The bank in `state_dir`, created from ``generate(seed, customers, as_of)`` if new.

    `as_of` only matters on first start (the day transaction histories end). A None
    `seed` is a fresh random one on first start and whatever the state holds later
    (a sandbox's own dataset). `environment` (``production``, ``sandbox``) is recorded
    on first start and checked later: a production state is never served as a sandbox,
    nor the reverse (a state from before the field existed is production).
    """
    conn, path = await connect(state_dir)
    try:
        await conn.execute("BEGIN IMMEDIATE")
        try:
            rows = await conn.execute_fetchall("SELECT key, value FROM meta")
            meta = {r[0]: r[1] for r in rows}
            if not meta:
                chosen = secrets.randbelow(2**31) if seed is None else seed
                await _insert(conn, generate(chosen, customers, as_of), environment)
            else:
                wanted = {"customers": str(customers), "environment": environment}
                if seed is not None:
                    wanted["seed"] = str(seed)
                _check({"environment": "production", **meta}, wanted, state_dir)
            await conn.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(sqlite3.OperationalError):
                await conn.execute("ROLLBACK")
            raise
    except BaseException:
        await conn.close()
        raise
    return BankStore(SqliteDatabase(conn), path)


def _check(meta: dict[str, str], wanted: dict[str, str], state_dir: Path) -> None:
    if meta.get("schema_version") != SCHEMA_VERSION:
        raise StateMismatch(
            f"{state_dir / 'corebank.db'}: schema_version {meta.get('schema_version')!r},"
            f" this build reads {SCHEMA_VERSION!r}"
        )
    for key, value in wanted.items():
        if meta.get(key) != value:
            raise StateMismatch(
                f"{key}: the state in {state_dir} was seeded with {key}={meta.get(key)},"
                f" not {value}; use another --state-dir or the original {key}"
            )


async def _insert(conn: aiosqlite.Connection, bank: Bank, environment: str) -> None:
    meta = {
        "schema_version": SCHEMA_VERSION,
        "seed": str(bank.seed),
        "customers": str(len(bank.customers)),
        "as_of": bank.as_of.isoformat(),
        "environment": environment,
    }
    await conn.executemany("INSERT INTO meta VALUES (?, ?)", meta.items())
    await conn.executemany(
        "INSERT INTO customers VALUES (?, ?, ?)",
        [
            (c.customer_id, c.mobile, json.dumps(customer_document(c), ensure_ascii=False))
            for c in bank.customers
        ],
    )
    await conn.executemany(
        "INSERT INTO staff VALUES (?, ?, ?, ?, ?, ?, ?)",
        [
            (s.staff_id, s.name, s.role, s.title, s.branch, s.mobile, int(s.active))
            for s in bank.staff
        ],
    )
    await conn.executemany(
        "INSERT INTO accounts VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (a.account_id, a.customer_id, a.number, a.kind, a.product, a.currency, a.status,
             a.opened_on.isoformat(), a.branch, a.balance_fen)
            for a in bank.accounts
        ],
    )  # fmt: skip
    await conn.executemany(
        "INSERT INTO cards VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (c.card_id, c.customer_id, c.account_id, c.number, c.kind, c.product, c.expiry_year,
             c.expiry_month, c.cvn, c.issued_on.isoformat(), c.status, c.credit_limit_fen,
             c.outstanding_fen)
            for c in bank.cards
        ],
    )  # fmt: skip
    await conn.executemany(
        "INSERT INTO transactions VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL)",
        [
            (t.txn_id, t.account_id, int(t.booked_at.timestamp()), t.amount_fen,
             t.balance_after_fen, t.kind, t.description, t.merchant, t.counterparty_name,
             t.counterparty_account, t.channel)
            for t in bank.transactions
        ],
    )  # fmt: skip
