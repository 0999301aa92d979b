"""Open the `authn` store named by a URL: SQLite for one node, PostgreSQL for a fleet.

``sqlite:///var/lib/ztgate/authn.db`` (everything after ``sqlite://`` is the
path; ``sqlite://:memory:`` is a throwaway database) or
``postgresql://user@host:5432/db`` (any libpq-style URL asyncpg accepts;
``schema=`` puts the tables in that PostgreSQL schema, created if missing).
Opening applies pending migrations (`authn.store.schema`).

The drivers `SqlStore` runs on live in `storage`, shared with
`device_fingerprint`; they turn driver constraint errors into
`IntegrityViolation` so no asyncpg or sqlite3 exception type leaks into callers.
"""

from __future__ import annotations

from authn.store.base import (
    Challenge,
    OAuthClient,
    RefreshRecord,
    Store,
    TotpRecord,
    User,
    WebAuthnCredential,
)
from authn.store.schema import MIGRATIONS
from authn.store.sql import SqlStore
from storage import IntegrityViolation, open_database

__all__ = [
    "Challenge",
    "IntegrityViolation",
    "OAuthClient",
    "RefreshRecord",
    "SqlStore",
    "Store",
    "TotpRecord",
    "User",
    "WebAuthnCredential",
    "open_store",
]


async def open_store(url: str, *, schema: str | None = None) -> Store:
    """Connect, migrate, and return a ready `Store`; close it with ``await store.close()``.

    Errors never echo the URL (it may carry a password), at most its scheme.
    """
    return SqlStore(await open_database(url, MIGRATIONS, schema=schema))
