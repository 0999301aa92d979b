"""A running authentication service and an HTTP client for it, for the service tests.

The service is the real one (`authn.service.runner.start_service`) on a free
loopback port, talking to the parametrized database (SQLite or PostgreSQL,
see conftest.py); requests go over real TCP with aiohttp's client.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp

from authn.service.runner import RunningService, start_service


@dataclass(frozen=True)
class Reply:
    status: int
    body: Any
    headers: dict[str, str]
    text: str

    @property
    def error(self) -> str | None:
        return self.body.get("error") if isinstance(self.body, dict) else None


@dataclass
class Api:
    """The service plus a client session; `restart` keeps the state directory and database."""

    state_dir: Path
    database_url: str
    schema: str | None
    service: RunningService | None = None
    session: aiohttp.ClientSession | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    async def start(self) -> Api:
        self.service = await start_service(
            state_dir=self.state_dir,
            database_url=self.database_url,
            schema=self.schema,
            **self.extra,
        )
        self.session = self.session or aiohttp.ClientSession()
        return self

    async def stop(self) -> None:
        if self.service is not None:
            await self.service.stop()
            self.service = None

    async def close(self) -> None:
        await self.stop()
        if self.session is not None:
            await self.session.close()

    async def restart(self) -> None:
        """A new process's view: everything in memory is rebuilt from disk and database.

        The port is kept, so the issuer (and WebAuthn origin) stays the same."""
        assert self.service is not None
        port = self.service.port
        await self.stop()
        from authn.config import AuthnConfig

        self.extra["config"] = AuthnConfig(
            port=port,
            public_url=f"http://localhost:{port}",
            database_url=self.database_url,
            revocation_sync_seconds=0.2,
        )
        await self.start()

    @property
    def url(self) -> str:
        assert self.service is not None
        return self.service.url

    @property
    def admin(self) -> str:
        assert self.service is not None
        return self.service.admin_token

    async def call(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        form: dict[str, str] | None = None,
        data: bytes | None = None,
        token: str | None = None,
        headers: dict[str, str] | None = None,
        scheme: str = "Bearer",
    ) -> Reply:
        assert self.session is not None
        sent = dict(headers or {})
        if token is not None:
            sent["Authorization"] = f"{scheme} {token}"
        kwargs: dict[str, Any] = {"headers": sent}
        if json_body is not None:
            kwargs["json"] = json_body
        elif form is not None:
            kwargs["data"] = form
        elif data is not None:
            kwargs["data"] = data
        async with self.session.request(method, self.url + path, **kwargs) as response:
            text = await response.text()
            try:
                body = json.loads(text) if text else None
            except ValueError:
                body = None
            return Reply(response.status, body, dict(response.headers), text)

    async def create_user(self, username: str, password: str | None = None) -> str:
        doc: dict[str, Any] = {"username": username, "display_name": username.title()}
        if password is not None:
            doc["password"] = password
        reply = await self.call("POST", "/v1/users", json_body=doc, token=self.admin)
        assert reply.status == 201, reply
        subject: str = reply.body["subject"]
        return subject

    async def login(self, username: str, password: str, **kwargs: Any) -> Reply:
        body = {"username": username, "password": password}
        return await self.call("POST", "/v1/login/password", json_body=body, **kwargs)


def claims(token: str) -> dict[str, Any]:
    """The JWT's payload, unverified (the tests check what the service put in it)."""
    payload = token.split(".")[1]
    decoded: dict[str, Any] = json.loads(
        base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    )
    return decoded


def totp_secret(uri: str) -> bytes:
    query = parse_qs(urlsplit(uri).query)
    secret = query["secret"][0]
    return base64.b32decode(secret + "=" * (-len(secret) % 8))
