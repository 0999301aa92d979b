"""The driver-neutral vocabulary: `Executor`, `Database`, `Row`, `IntegrityViolation`.

Components write their SQL once, in PostgreSQL's ``$1`` placeholder style, against
these protocols; the SQLite driver rewrites the placeholders (`storage.sqlite`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any, Final, Literal, Protocol

Dialect = Literal["sqlite", "postgresql"]
Row = tuple[Any, ...]

SCHEMA_NAME_RE: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")
"""PostgreSQL schema (and our table) names we accept: a plain identifier, so quoting is
trivial and nothing from a URL or a config file can smuggle SQL in."""


class IntegrityViolation(ValueError):
    """A write broke a key, CHECK or reference constraint (driver-neutral)."""

    def __init__(self, message: str, *, foreign_key: bool = False) -> None:
        super().__init__(message)
        self.foreign_key = foreign_key


class Executor(Protocol):
    """What components and migrations need of a connection; SQL uses ``$n`` params."""

    async def fetch(self, sql: str, *args: Any) -> list[Row]: ...

    async def execute(self, sql: str, *args: Any) -> int:
        """Run one statement; return the number of rows it changed."""
        ...

    async def execute_many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        """Run one statement once per parameter row, in one driver round trip (batched
        write-behind, e.g. `device_fingerprint.registry`); use inside a transaction."""
        ...


class Database(Executor, Protocol):
    """A driver: autocommit statements plus explicit transactions."""

    dialect: Dialect

    def transaction(self) -> AbstractAsyncContextManager[Executor]: ...

    async def close(self) -> None: ...
