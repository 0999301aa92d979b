"""Staff roles (``csr``, ``csr_supervisor``, ``auditor``…): what a staff member may do, which the
edge policy checks as ``identity.roles``.

Kept in a table of their own (``staff_roles``, versions in ``roles_schema_version``)
beside authn's, not as a column of ``users``: authn's schema stays the previous
release's, so a worker still on that release opens the database as its own.
"""

from __future__ import annotations

import json
import re
from typing import Final

from storage import Database, Migration, Migrations, open_database

__all__ = ["MAX_ROLES", "RoleStore", "check_roles", "open_roles"]

MAX_ROLES: Final = 16
_ROLE: Final = re.compile(r"[a-z][a-z0-9_-]{0,63}")

MIGRATIONS: Final = Migrations(
    "roles",
    (
        Migration(
            1,
            "staff roles",
            (
                """CREATE TABLE staff_roles (
                    subject TEXT PRIMARY KEY,
                    roles TEXT NOT NULL
                ){STRICT}""",
            ),
        ),
    ),
)


def check_roles(value: object) -> tuple[str, ...] | None:
    """The roles as given (``[a-z][a-z0-9_-]{0,63}``, at most 16), or None if malformed."""
    if not isinstance(value, list) or len(value) > MAX_ROLES:
        return None
    if any(not isinstance(r, str) or _ROLE.fullmatch(r) is None for r in value):
        return None
    return tuple(dict.fromkeys(value))


class RoleStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def close(self) -> None:
        await self._db.close()

    async def set(self, subject: str, roles: tuple[str, ...]) -> None:
        await self._db.execute(
            "INSERT INTO staff_roles (subject, roles) VALUES ($1, $2)"
            " ON CONFLICT (subject) DO UPDATE SET roles = excluded.roles",
            subject,
            json.dumps(list(roles)),
        )

    async def get(self, subject: str) -> tuple[str, ...]:
        rows = await self._db.fetch("SELECT roles FROM staff_roles WHERE subject = $1", subject)
        return tuple(json.loads(rows[0][0])) if rows else ()


async def open_roles(url: str, *, schema: str | None = None) -> RoleStore:
    """Open (and migrate) the roles table at `url` (the authn database)."""
    return RoleStore(await open_database(url, MIGRATIONS, schema=schema))
