"""Persistence drivers shared by `authn` and `device_fingerprint`.

Both components keep their state in SQL — SQLite for one node, PostgreSQL for a
fleet — and both need the same careful plumbing: WAL and busy timeouts, private
database files, ``$n`` parameters on both dialects, driver errors mapped to one
`IntegrityViolation`, and migrations that concurrent workers can run safely.
This package holds that plumbing once so that neither component imports the
other. It depends on nothing else in the project.

`open_database` takes a URL: ``sqlite:///var/lib/ztgate/authn.db`` (everything
after ``sqlite://`` is the path; ``sqlite://:memory:`` is a throwaway database)
or ``postgresql://user@host:5432/db`` (any libpq-style URL asyncpg accepts;
``schema=`` puts the tables in that PostgreSQL schema, created if missing). It
applies the component's pending migrations (`storage.migrations`) before
returning.
"""

from __future__ import annotations

import re
from typing import Final

from storage.base import SCHEMA_NAME_RE, Database, Dialect, Executor, IntegrityViolation, Row
from storage.migrations import Migration, Migrations, bool_column
from storage.postgres import open_postgres
from storage.sqlite import open_sqlite

__all__ = [
    "SCHEMA_NAME_RE",
    "Database",
    "Dialect",
    "Executor",
    "IntegrityViolation",
    "Migration",
    "Migrations",
    "Row",
    "bool_column",
    "open_database",
]

_SCHEME_RE: Final = re.compile(r"[A-Za-z][A-Za-z0-9+.-]{0,31}")


async def open_database(url: str, migrations: Migrations, *, schema: str | None = None) -> Database:
    """Connect, apply `migrations`, and return a ready `Database` (``await db.close()``).

    Errors never echo the URL (it may carry a password), at most its scheme.
    """
    scheme, sep, rest = url.partition("://")
    scheme = scheme.lower()
    if scheme == "sqlite" and sep:
        if schema is not None:
            raise ValueError("schema= applies to postgresql:// databases only")
        return await open_sqlite(rest, migrations)
    if scheme in ("postgresql", "postgres") and sep:
        if schema is not None and not SCHEMA_NAME_RE.fullmatch(schema):
            raise ValueError("schema must be a plain identifier ([A-Za-z_][A-Za-z0-9_]*)")
        return await open_postgres(url, schema, migrations)
    shown = repr(scheme) if sep and _SCHEME_RE.fullmatch(scheme) else "(none)"
    raise ValueError(f"unsupported database URL scheme {shown}: use sqlite:// or postgresql://")
