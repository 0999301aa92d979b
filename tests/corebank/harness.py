"""A running core bank and a client that speaks for customers, staff and partners.

The service is the real one (`gateway.corebank.start_corebank`) on a free
loopback port with its SQLite state in the test's directory; requests go over
real TCP with aiohttp's client. Identity comes from the edge's headers
(`trust_identity_headers`), as it does behind a local edge.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import aiohttp

from gateway.corebank import Authenticator, RunningCorebank, start_corebank, trust_identity_headers
from tests.authn.service_harness import Reply

AS_OF = date(2025, 6, 30)
SEED = 42
CUSTOMERS = 30


def customer(subject: str) -> dict[str, str]:
    return {"x-ztgate-subject": subject, "x-ztgate-subject-kind": "customer"}


def staff(subject: str) -> dict[str, str]:
    return {"x-ztgate-subject": subject, "x-ztgate-subject-kind": "staff"}


def partner(client_id: str, customer_id: str, *accounts: str) -> dict[str, str]:
    consent = f"id=cons-1; customer={customer_id}; accounts={','.join(accounts)}"
    return {
        "x-ztgate-subject": client_id,
        "x-ztgate-subject-kind": "partner",
        "x-ztgate-consent": consent,
    }


@dataclass
class Bank:
    state_dir: Path
    customers: int = CUSTOMERS
    service: RunningCorebank | None = None
    session: aiohttp.ClientSession | None = None
    options: dict[str, Any] = field(default_factory=dict)
    authenticate: Authenticator = trust_identity_headers

    async def start(self) -> Bank:
        self.service = await start_corebank(
            self.state_dir,
            authenticate=self.authenticate,
            seed=SEED,
            customers=self.customers,
            as_of=AS_OF,
            **self.options,
        )
        self.session = self.session or aiohttp.ClientSession()
        return self

    async def restart(self) -> None:
        assert self.service is not None
        await self.service.stop()
        await self.start()

    async def close(self) -> None:
        if self.service is not None:
            await self.service.stop()
        if self.session is not None:
            await self.session.close()

    async def request(
        self,
        method: str,
        path: str,
        headers: dict[str, str] | None = None,
        *,
        json_body: Any = None,
        data: bytes | None = None,
    ) -> Reply:
        assert self.service is not None and self.session is not None
        async with self.session.request(
            method, self.service.url + path, headers=headers, json=json_body, data=data
        ) as resp:
            text = await resp.text()
            try:
                body = json.loads(text)
            except ValueError:
                body = None
            return Reply(resp.status, body, dict(resp.headers), text)

    def rows(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        """Read the database directly (a second connection, as an auditor would)."""
        with sqlite3.connect(self.state_dir / "corebank.db") as conn:
            return conn.execute(sql, args).fetchall()

    def customers_with(self, sql_condition: str = "1") -> list[str]:
        return [
            r[0]
            for r in self.rows(
                "SELECT DISTINCT customer_id FROM accounts WHERE "
                + sql_condition
                + " ORDER BY customer_id"
            )
        ]
