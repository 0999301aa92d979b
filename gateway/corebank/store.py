"""The sample bank's state: one SQLite file (``corebank.db``) under the state directory.

Balances, transfers, their ledger entries and idempotency records live here, so
a restart resumes where the bank stopped. First start seeds the file from the
synthetic generator (`gateway.corebank.seed`); later starts find the seed in
``meta`` and refuse a different one rather than serve a mixture.

The driver is `storage.sqlite`'s (one aiosqlite connection behind a
lock, WAL, ``BEGIN IMMEDIATE`` transactions, ``$n`` placeholders). Tables are
STRICT and ``balance_fen`` carries ``CHECK (balance_fen >= 0)``: even a bug in
the transfer logic cannot leave an account overdrawn.
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any, Final

import aiosqlite

from gateway.corebank.model import CST, Account, Card, StaffUser, Transaction
from storage.base import Row
from storage.sqlite import SQLITE_BUSY_TIMEOUT_MS, SqliteDatabase, create_private_file, enable_wal

DB_NAME: Final = "corebank.db"

SCHEMA: Final = (
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) STRICT",
    """CREATE TABLE IF NOT EXISTS customers (
        customer_id TEXT PRIMARY KEY, mobile TEXT NOT NULL, profile TEXT NOT NULL) STRICT""",
    "CREATE INDEX IF NOT EXISTS customers_by_mobile ON customers (mobile)",
    """CREATE TABLE IF NOT EXISTS staff (
        staff_id TEXT PRIMARY KEY, name TEXT NOT NULL, role TEXT NOT NULL, title TEXT NOT NULL,
        branch TEXT NOT NULL, mobile TEXT NOT NULL,
        active INTEGER NOT NULL CHECK (active IN (0, 1))) STRICT""",
    """CREATE TABLE IF NOT EXISTS accounts (
        account_id TEXT PRIMARY KEY,
        customer_id TEXT NOT NULL REFERENCES customers (customer_id),
        number TEXT NOT NULL UNIQUE, kind TEXT NOT NULL, product TEXT NOT NULL,
        currency TEXT NOT NULL, status TEXT NOT NULL, opened_on TEXT NOT NULL,
        branch TEXT NOT NULL, balance_fen INTEGER NOT NULL CHECK (balance_fen >= 0)) STRICT""",
    "CREATE INDEX IF NOT EXISTS accounts_by_customer ON accounts (customer_id)",
    """CREATE TABLE IF NOT EXISTS cards (
        card_id TEXT PRIMARY KEY, customer_id TEXT NOT NULL REFERENCES customers (customer_id),
        account_id TEXT REFERENCES accounts (account_id), number TEXT NOT NULL UNIQUE,
        kind TEXT NOT NULL, product TEXT NOT NULL, expiry_year INTEGER NOT NULL,
        expiry_month INTEGER NOT NULL, cvn TEXT NOT NULL, issued_on TEXT NOT NULL,
        status TEXT NOT NULL, credit_limit_fen INTEGER NOT NULL,
        outstanding_fen INTEGER NOT NULL) STRICT""",
    "CREATE INDEX IF NOT EXISTS cards_by_customer ON cards (customer_id)",
    """CREATE TABLE IF NOT EXISTS transactions (
        txn_id TEXT PRIMARY KEY, account_id TEXT NOT NULL REFERENCES accounts (account_id),
        booked_at INTEGER NOT NULL, amount_fen INTEGER NOT NULL,
        balance_after_fen INTEGER NOT NULL, kind TEXT NOT NULL, description TEXT NOT NULL,
        merchant TEXT, counterparty_name TEXT, counterparty_account TEXT,
        channel TEXT NOT NULL, transfer_id TEXT) STRICT""",
    """CREATE INDEX IF NOT EXISTS transactions_by_account
        ON transactions (account_id, booked_at DESC, txn_id DESC)""",
    """CREATE TABLE IF NOT EXISTS transfers (
        transfer_id TEXT PRIMARY KEY, initiated_by TEXT NOT NULL, channel TEXT NOT NULL,
        from_account_id TEXT NOT NULL REFERENCES accounts (account_id),
        to_account_number TEXT NOT NULL, to_account_id TEXT, payee_name TEXT,
        amount_fen INTEGER NOT NULL CHECK (amount_fen > 0), currency TEXT NOT NULL,
        memo TEXT NOT NULL, status TEXT NOT NULL, created_at INTEGER NOT NULL) STRICT""",
    """CREATE TABLE IF NOT EXISTS idempotency (
        scope TEXT NOT NULL, key TEXT NOT NULL, request_digest TEXT NOT NULL,
        status INTEGER NOT NULL, response TEXT NOT NULL, created_at INTEGER NOT NULL,
        PRIMARY KEY (scope, key)) STRICT""",
    """CREATE TABLE IF NOT EXISTS online_access (
        customer_id TEXT PRIMARY KEY REFERENCES customers (customer_id),
        status TEXT NOT NULL CHECK (status IN ('active', 'locked')),
        failed_logins INTEGER NOT NULL CHECK (failed_logins >= 0),
        changed_at INTEGER NOT NULL) STRICT""",
    """CREATE TABLE IF NOT EXISTS staff_actions (
        action_id TEXT PRIMARY KEY, staff_id TEXT NOT NULL REFERENCES staff (staff_id),
        customer_id TEXT NOT NULL REFERENCES customers (customer_id),
        action TEXT NOT NULL, reason TEXT NOT NULL, at INTEGER NOT NULL) STRICT""",
    """CREATE INDEX IF NOT EXISTS staff_actions_by_customer
        ON staff_actions (customer_id, at DESC, action_id DESC)""",
)

SELECT_ACCOUNTS: Final = (
    "SELECT account_id, customer_id, number, kind, product, currency, status, opened_on,"
    " branch, balance_fen FROM accounts"
)
SELECT_CARDS: Final = (
    "SELECT card_id, customer_id, account_id, number, kind, product, expiry_year, expiry_month,"
    " cvn, issued_on, status, credit_limit_fen, outstanding_fen FROM cards"
)
SELECT_TRANSACTIONS: Final = (
    "SELECT txn_id, account_id, booked_at, amount_fen, balance_after_fen, kind, description,"
    " merchant, counterparty_name, counterparty_account, channel FROM transactions"
)
SELECT_TRANSFERS: Final = (
    "SELECT t.transfer_id, t.initiated_by, t.channel, t.from_account_id, a.number,"
    " t.to_account_number, t.to_account_id, t.payee_name, t.amount_fen, t.currency,"
    " t.memo, t.status, t.created_at FROM transfers t"
    " JOIN accounts a ON a.account_id = t.from_account_id"
)
"""Column lists in dataclass field order; the row mappers below rely on it."""


@dataclass(frozen=True)
class Transfer:
    transfer_id: str
    initiated_by: str
    channel: str
    from_account_id: str
    from_account_number: str
    to_account_number: str
    to_account_id: str | None
    payee_name: str | None
    amount_fen: int
    currency: str
    memo: str
    status: str
    created_at: datetime


def account_row(r: Row) -> Account:
    return Account(r[0], r[1], r[2], r[3], r[4], r[5], r[6], date.fromisoformat(r[7]), r[8], r[9])


def card_row(r: Row) -> Card:
    return Card(
        r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], date.fromisoformat(r[9]),
        r[10], r[11], r[12],
    )  # fmt: skip


@dataclass(frozen=True)
class StaffAction:
    """A staff member's action on a customer (an unlock), kept for audit."""

    action_id: str
    staff_id: str
    staff_name: str
    customer_id: str
    action: str
    reason: str
    at: datetime


def transfer_row(r: Row) -> Transfer:
    created = datetime.fromtimestamp(r[12], CST)
    return Transfer(
        r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9], r[10], r[11], created
    )


def txn_row(r: Row) -> Transaction:
    at = datetime.fromtimestamp(r[2], CST)
    return Transaction(r[0], r[1], at, r[3], r[4], r[5], r[6], r[7], r[8], r[9], r[10])


class BankStore:
    """Read queries; transfers are in `gateway.corebank.transfers`."""

    def __init__(self, db: SqliteDatabase, path: Path) -> None:
        self.db = db
        self.path = path

    async def close(self) -> None:
        await self.db.close()

    async def meta(self) -> dict[str, str]:
        return {r[0]: r[1] for r in await self.db.fetch("SELECT key, value FROM meta")}

    async def profile(self, customer_id: str) -> dict[str, Any] | None:
        rows = await self.db.fetch(
            "SELECT profile FROM customers WHERE customer_id = $1", customer_id
        )
        return json.loads(rows[0][0]) if rows else None

    async def profiles_by_mobile(self, mobile: str) -> list[dict[str, Any]]:
        rows = await self.db.fetch(
            "SELECT profile FROM customers WHERE mobile = $1 ORDER BY customer_id", mobile
        )
        return [json.loads(r[0]) for r in rows]

    async def staff_member(self, staff_id: str) -> StaffUser | None:
        rows = await self.db.fetch(
            "SELECT staff_id, name, role, title, branch, mobile, active FROM staff"
            " WHERE staff_id = $1",
            staff_id,
        )
        if not rows:
            return None
        r = rows[0]
        return StaffUser(r[0], r[1], r[2], r[3], r[4], r[5], bool(r[6]))

    async def accounts_of(self, customer_id: str) -> list[Account]:
        rows = await self.db.fetch(
            f"{SELECT_ACCOUNTS} WHERE customer_id = $1 ORDER BY opened_on, account_id",
            customer_id,
        )
        return [account_row(r) for r in rows]

    async def account(self, account_id: str) -> Account | None:
        rows = await self.db.fetch(f"{SELECT_ACCOUNTS} WHERE account_id = $1", account_id)
        return account_row(rows[0]) if rows else None

    async def account_by_number(self, number: str) -> Account | None:
        rows = await self.db.fetch(f"{SELECT_ACCOUNTS} WHERE number = $1", number)
        return account_row(rows[0]) if rows else None

    async def cards_of(self, customer_id: str) -> list[Card]:
        rows = await self.db.fetch(
            f"{SELECT_CARDS} WHERE customer_id = $1 ORDER BY issued_on, card_id",
            customer_id,
        )
        return [card_row(r) for r in rows]

    async def card(self, card_id: str) -> Card | None:
        rows = await self.db.fetch(f"{SELECT_CARDS} WHERE card_id = $1", card_id)
        return card_row(rows[0]) if rows else None

    async def transactions(
        self,
        account_id: str,
        *,
        since: int,
        until: int,
        limit: int,
        before: tuple[int, str] | None = None,
    ) -> tuple[list[Transaction], tuple[int, str] | None]:
        """Newest first, ``since <= booked_at < until`` (epoch seconds), strictly after
        the `before` position; returns the page and the position to continue from."""
        at, txn = before if before is not None else (until, "")
        rows = await self.db.fetch(
            f"{SELECT_TRANSACTIONS} WHERE account_id = $1 AND booked_at >= $2 AND booked_at < $3"
            " AND (booked_at < $4 OR (booked_at = $4 AND txn_id < $5))"
            " ORDER BY booked_at DESC, txn_id DESC LIMIT $6",
            account_id, since, until, at, txn, limit + 1,
        )  # fmt: skip
        page = [txn_row(r) for r in rows[:limit]]
        more = len(rows) > limit
        last = page[-1] if more else None
        return page, (int(last.booked_at.timestamp()), last.txn_id) if last else None

    async def transfer(self, transfer_id: str) -> Transfer | None:
        rows = await self.db.fetch(f"{SELECT_TRANSFERS} WHERE t.transfer_id = $1", transfer_id)
        return transfer_row(rows[0]) if rows else None

    async def transfers_of(self, customer_id: str, limit: int) -> list[Transfer]:
        """The customer's transfers, paid or received, newest first."""
        rows = await self.db.fetch(
            f"{SELECT_TRANSFERS} WHERE a.customer_id = $1 OR t.to_account_id IN"  # noqa: S608
            " (SELECT account_id FROM accounts WHERE customer_id = $1)"
            " ORDER BY t.created_at DESC, t.transfer_id DESC LIMIT $2",
            customer_id,
            limit,
        )
        return [transfer_row(r) for r in rows]

    async def online_access(self, customer_id: str) -> tuple[str, int]:
        """(status, failed logins) of the customer's online banking; no row: active, 0."""
        rows = await self.db.fetch(
            "SELECT status, failed_logins FROM online_access WHERE customer_id = $1", customer_id
        )
        return (rows[0][0], rows[0][1]) if rows else ("active", 0)

    async def unlock(
        self, customer_id: str, staff_id: str, reason: str
    ) -> tuple[StaffAction, tuple[str, int]]:
        """Reactivate the customer's online banking and clear its failed logins,
        recording who did it and why in the same transaction (no unrecorded unlock);
        returns the action and the (status, failed logins) it replaced."""
        now = int(time.time())
        action_id = "act_" + secrets.token_hex(8)
        async with self.db.transaction() as tx:
            before = await tx.fetch(
                "SELECT status, failed_logins FROM online_access WHERE customer_id = $1",
                customer_id,
            )
            await tx.execute(
                "INSERT INTO online_access VALUES ($1, 'active', 0, $2) ON CONFLICT (customer_id)"
                " DO UPDATE SET status = 'active', failed_logins = 0, changed_at = $2",
                customer_id,
                now,
            )
            await tx.execute(
                "INSERT INTO staff_actions VALUES ($1, $2, $3, 'unlock_online_banking', $4, $5)",
                action_id, staff_id, customer_id, reason, now,
            )  # fmt: skip
            named = await tx.fetch("SELECT name FROM staff WHERE staff_id = $1", staff_id)
        at = datetime.fromtimestamp(now, CST)
        action = StaffAction(
            action_id, staff_id, named[0][0], customer_id, "unlock_online_banking", reason, at
        )
        return action, ((before[0][0], before[0][1]) if before else ("active", 0))

    async def staff_actions_of(self, customer_id: str, limit: int) -> list[StaffAction]:
        rows = await self.db.fetch(
            "SELECT x.action_id, x.staff_id, s.name, x.customer_id, x.action, x.reason, x.at"
            " FROM staff_actions x JOIN staff s ON s.staff_id = x.staff_id"
            " WHERE x.customer_id = $1 ORDER BY x.at DESC, x.action_id DESC LIMIT $2",
            customer_id,
            limit,
        )
        return [
            StaffAction(r[0], r[1], r[2], r[3], r[4], r[5], datetime.fromtimestamp(r[6], CST))
            for r in rows
        ]


async def connect(state_dir: Path) -> tuple[aiosqlite.Connection, Path]:
    """Open (creating 0600) the state directory's database in WAL mode, foreign keys on."""
    path = state_dir / DB_NAME
    create_private_file(path)
    conn = await aiosqlite.connect(path, isolation_level=None)
    try:
        await conn.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        await enable_wal(conn)
        await conn.execute("PRAGMA foreign_keys = ON")
        for statement in SCHEMA:
            await conn.execute(statement)
    except BaseException:
        await conn.close()
        raise
    return conn, path
