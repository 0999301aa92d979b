"""`ztgate demo`: one customer's walk through a running `ztgate up` stack, every step
through the edge (Envoy → ext_authz → core bank) and checked against what a zero-trust
gateway must answer (issue 6, acceptance check 4).

The walk: a public route passes; a protected one without a token is 401; the customer
(a new authn user for one of the core bank's customers) logs in with a password,
which is too weak for account data; adds TOTP (MFA) and is still refused on a device
that is not bound to them; binds the device (`gateway.devices_api`) and reads their
accounts; a forged ``x-ztgate-subject`` changes nothing; a tampered token is 401; a
staff route is a policy deny; a transfer asks for a passkey step-up (RFC 9470); once
the customer revokes the device, the edge refuses it again.

The device is a synthetic browser (`device_fingerprint.synthetic`): its collector
payload, ``User-Agent`` and client hints are what the served collector would send.
Exit 0 when every step got the expected answer, 1 otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import random
import secrets
import sqlite3
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Final

import aiohttp

from ztgate import config
from ztgate.crypto_cli import CliError
from ztgate.up_plan import Layout

__all__ = ["Demo", "StackUrls", "Step", "register"]

TIMEOUT: Final = aiohttp.ClientTimeout(total=20)
REVOCATION_WAIT: Final = 15.0
"""Seconds the last step waits for the edge to see the revocation (its sync interval
is one second by default; the assessment cache holds a subject at most `cache_ttl`)."""


@dataclass(frozen=True)
class StackUrls:
    edge: str
    authn: str
    admin_token: str
    corebank_db: Path

    @classmethod
    def from_ready_file(cls, path: Path) -> StackUrls:
        try:
            doc = json.loads(path.read_text())
            token = Path(doc["authn_admin_token_file"]).read_text().strip()
            state = Path(doc["state_dir"])
            return cls(doc["edge"], doc["authn"], token, state / "corebank" / "corebank.db")
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise CliError(f"cannot read the ready file {path}: {exc}") from None

    @classmethod
    def from_layout(cls, layout: Layout, state: Path) -> StackUrls:
        try:
            token = (state / "admin-token").read_text().strip()
        except OSError as exc:
            raise CliError(f"no running stack's admin token in {state}: {exc.strerror}") from None
        return cls(
            f"http://localhost:{layout.node(1).http_port}",
            f"http://localhost:{layout.authn_port}",
            token,
            state / "corebank" / "corebank.db",
        )


@dataclass(frozen=True)
class Step:
    name: str
    request: str
    expected: str
    status: int
    detail: str
    ok: bool


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: Any


class Demo:
    """The walk; `run` returns every step, stopping at the first that fails."""

    def __init__(self, urls: StackUrls, *, seed: int | None = None) -> None:
        self.urls = urls
        self.rng = random.Random(seed)  # noqa: S311 - a synthetic device, not a secret
        self.steps: list[Step] = []
        self.device_headers: dict[str, str] = {}
        self.token = ""
        self.subject = ""
        self.accounts: list[str] = []
        self.device_id = ""
        self.username = ""
        self.password = ""

    async def _call(
        self,
        session: aiohttp.ClientSession,
        method: str,
        url: str,
        *,
        headers: dict[str, str] | None = None,
        body: Any = None,
    ) -> Reply:
        data = None if body is None else json.dumps(body)
        hdrs = {"content-type": "application/json"} if data is not None else {}
        async with session.request(
            method, url, data=data, headers={**hdrs, **(headers or {})}
        ) as r:
            raw = await r.read()
            try:
                doc: Any = json.loads(raw) if raw else None
            except ValueError:
                doc = raw[:200].decode("utf-8", "replace")
            return Reply(r.status, {k.lower(): v for k, v in r.headers.items()}, doc)

    def _check(
        self, name: str, request: str, expected: str, reply: Reply, ok: bool, detail: str = ""
    ) -> bool:
        if not detail and isinstance(reply.body, dict):
            detail = ", ".join(str(r) for r in reply.body.get("reason", [])) or str(
                reply.body.get("error", "")
            )
        self.steps.append(Step(name, request, expected, reply.status, detail, ok))
        return ok

    def _auth(self, token: str | None = None) -> dict[str, str]:
        return {"authorization": f"Bearer {token or self.token}", **self.device_headers}

    async def run(self, *, first: int | None = None) -> list[Step]:
        """Walk (only the `first` steps, if given: a test continues from there)."""
        async with aiohttp.ClientSession(timeout=TIMEOUT) as s:
            for step in self._walk()[:first]:
                if not await step(s):
                    break
        return self.steps

    def headers(self) -> dict[str, str]:
        """The customer's request headers so far: bearer token and device signals."""
        return self._auth()

    @property
    def step_count(self) -> int:
        return len(self._walk())

    def _walk(self) -> list[Callable[[aiohttp.ClientSession], Any]]:
        return [
            self._public,
            self._no_token,
            self._enrol_customer,
            self._password_is_too_weak,
            self._add_totp,
            self._unbound_device,
            self._bind_device,
            self._read_accounts,
            self._spoofed_subject,
            self._tampered_token,
            self._staff_route,
            self._transfer_step_up,
            self._revoke_device,
        ]

    # -- the steps ----------------------------------------------------------------------

    async def _public(self, s: aiohttp.ClientSession) -> bool:
        r = await self._call(s, "GET", self.urls.edge + "/api/products")
        ok = r.status == 200 and isinstance(r.body, dict) and bool(r.body.get("products"))
        return self._check("public route", "GET /api/products", "200", r, ok, "products listed")

    async def _no_token(self, s: aiohttp.ClientSession) -> bool:
        r = await self._call(s, "GET", self.urls.edge + "/api/accounts")
        ok = r.status == 401 and "www-authenticate" in r.headers
        return self._check("no token", "GET /api/accounts", "401 + WWW-Authenticate", r, ok)

    async def _enrol_customer(self, s: aiohttp.ClientSession) -> bool:
        self.password = secrets.token_urlsafe(18)
        admin = {"authorization": f"Bearer {self.urls.admin_token}"}
        r = Reply(0, {}, None)
        for customer, accounts in _customers(self.urls.corebank_db).items():
            self.username = f"demo-{secrets.token_hex(4)}"
            body = {"username": self.username, "password": self.password, "subject": customer}
            r = await self._call(s, "POST", self.urls.authn + "/v1/users", headers=admin, body=body)
            if r.status == 201:
                self.subject, self.accounts = customer, accounts
                break
            if r.status != 409:  # 409: an earlier demo took this customer
                break
        detail = f"authn user for core-bank customer {self.subject or '?'}"
        return self._check("enrol", "POST authn /v1/users", "201", r, r.status == 201, detail)

    async def _password_is_too_weak(self, s: aiohttp.ClientSession) -> bool:
        body = {"username": self.username, "password": self.password}
        r = await self._call(s, "POST", self.urls.authn + "/v1/login/password", body=body)
        if r.status != 200:
            return self._check("password login", "POST authn /v1/login/password", "200", r, False)
        self.token = r.body["access_token"]
        device = _synthetic_device(self.rng, self.subject)
        self.device_headers = device
        r = await self._call(s, "GET", self.urls.edge + "/api/accounts", headers=self._auth())
        ok = r.status in (401, 403) and _reasons(r) & {"step_up:acr_too_weak", "acr:too_weak"}
        return self._check("password only", "GET /api/accounts", "401/403 acr", r, bool(ok))

    async def _add_totp(self, s: aiohttp.ClientSession) -> bool:
        from authn.totp import totp_at

        auth = {"authorization": f"Bearer {self.token}"}
        r = await self._call(s, "POST", self.urls.authn + "/v1/totp/enroll", headers=auth, body={})
        if r.status != 200:
            return self._check("TOTP", "POST authn /v1/totp/enroll", "200", r, False)
        query = urllib.parse.urlparse(r.body["otpauth_uri"]).query
        secret_b32 = urllib.parse.parse_qs(query)["secret"][0]
        secret = base64.b32decode(secret_b32 + "=" * (-len(secret_b32) % 8))
        now = time.time()
        code = totp_at(secret, now)
        r = await self._call(
            s, "POST", self.urls.authn + "/v1/totp/confirm", headers=auth, body={"code": code}
        )
        if r.status != 200:
            return self._check("TOTP", "POST authn /v1/totp/confirm", "200", r, False)
        # The confirming step is spent (replay protection): log in with the next one,
        # which the ±1 step window accepts.
        code = totp_at(secret, now + 30)
        url = self.urls.authn + "/v1/login/totp"
        r = await self._call(s, "POST", url, headers=auth, body={"code": code})
        ok = r.status == 200 and r.body.get("acr") == "urn:ztgate:acr:mfa"
        if ok:
            self.token = r.body["access_token"]
        return self._check("TOTP login", "POST authn /v1/login/totp", "200 acr mfa", r, ok, "MFA")

    async def _unbound_device(self, s: aiohttp.ClientSession) -> bool:
        r = await self._call(s, "GET", self.urls.edge + "/api/accounts", headers=self._auth())
        ok = r.status == 403 and "device:not_bound" in _reasons(r)
        return self._check("unbound device", "GET /api/accounts", "403 device:not_bound", r, ok)

    async def _bind_device(self, s: aiohttp.ClientSession) -> bool:
        url = self.urls.authn + "/v1/devices"
        r = await self._call(s, "POST", url, headers=self._auth(), body={"name": "demo browser"})
        ok = r.status == 201 and r.body.get("state") == "bound"
        if ok:
            self.device_id = r.body["device_id"]
        detail = f"device {r.body.get('device_id')}" if ok else ""
        return self._check("bind device", "POST authn /v1/devices", "201 bound", r, ok, detail)

    async def _read_accounts(self, s: aiohttp.ClientSession) -> bool:
        r = await self._until(s, "GET", "/api/accounts", lambda r: r.status == 200)
        accounts = r.body.get("accounts", []) if isinstance(r.body, dict) else []
        ok = r.status == 200 and bool(accounts)
        return self._check("read accounts", "GET /api/accounts", "200", r, ok, f"{len(accounts)}")

    async def _spoofed_subject(self, s: aiohttp.ClientSession) -> bool:
        spoof = {"x-ztgate-subject": "cst_0000000000000000", "x-ztgate-subject-kind": "staff"}
        r = await self._call(
            s, "GET", self.urls.edge + "/api/accounts", headers={**self._auth(), **spoof}
        )
        got = {a.get("account_id") for a in (r.body or {}).get("accounts", [])}
        ok = r.status == 200 and got == set(self.accounts)
        detail = "still only the customer's own accounts" if ok else f"accounts {sorted(got)}"
        return self._check("spoofed subject", "GET /api/accounts", "200 own data", r, ok, detail)

    async def _tampered_token(self, s: aiohttp.ClientSession) -> bool:
        head, payload, sig = self.token.split(".")
        forged = f"{head}.{payload}.{sig[:-4]}{'AAAA' if sig[-4:] != 'AAAA' else 'BBBB'}"
        r = await self._call(s, "GET", self.urls.edge + "/api/accounts", headers=self._auth(forged))
        ok = r.status == 401 and "identity:invalid_token" in _reasons(r)
        return self._check("tampered token", "GET /api/accounts", "401 invalid_token", r, ok)

    async def _staff_route(self, s: aiohttp.ClientSession) -> bool:
        r = await self._call(
            s, "GET", self.urls.edge + "/api/staff/customers?mobile=1", headers=self._auth()
        )
        reasons = _reasons(r)  # the policy judged it: the route is known, the caller is not staff
        ok = r.status == 403 and bool(reasons) and "route:unknown" not in reasons
        return self._check("staff route", "GET /api/staff/customers", "403 policy", r, ok)

    async def _transfer_step_up(self, s: aiohttp.ClientSession) -> bool:
        body = {"from_account_id": "x", "to_account_number": "x", "amount": "1.00"}
        r = await self._call(
            s, "POST", self.urls.edge + "/api/transfers", headers=self._auth(), body=body
        )
        challenge = r.headers.get("www-authenticate", "")
        ok = r.status == 401 and "insufficient_user_authentication" in challenge
        return self._check("transfer", "POST /api/transfers", "401 step-up (RFC 9470)", r, ok)

    async def _revoke_device(self, s: aiohttp.ClientSession) -> bool:
        url = f"{self.urls.authn}/v1/devices/{urllib.parse.quote(self.device_id, safe='')}"
        r = await self._call(s, "DELETE", url, headers=self._auth())
        if r.status != 204:
            return self._check("revoke device", "DELETE authn /v1/devices/…", "204", r, False)
        r = await self._until(s, "GET", "/api/accounts", lambda r: r.status == 403)
        ok = r.status == 403
        return self._check("revoked device", "GET /api/accounts", "403 after revocation", r, ok)

    async def _until(
        self, s: aiohttp.ClientSession, method: str, path: str, done: Callable[[Reply], bool]
    ) -> Reply:
        """Edge nodes learn binding changes from their sync loop: poll briefly."""
        deadline = time.monotonic() + REVOCATION_WAIT
        while True:
            r = await self._call(s, method, self.urls.edge + path, headers=self._auth())
            if done(r) or time.monotonic() > deadline:
                return r
            await asyncio.sleep(0.25)


def _reasons(reply: Reply) -> set[str]:
    body = reply.body
    return set(body.get("reason", [])) if isinstance(body, dict) else set()


def _customers(db: Path) -> dict[str, list[str]]:
    """Core-bank customers → their account ids, read-only from the stack's state (what
    the spoofing step compares the edge's answer with)."""
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
            rows = conn.execute(
                "SELECT customer_id, account_id FROM accounts WHERE customer_id IN"
                " (SELECT DISTINCT customer_id FROM accounts ORDER BY customer_id LIMIT 50)"
            ).fetchall()
    except sqlite3.Error as exc:
        raise CliError(f"cannot read the core bank's customers from {db}: {exc}") from None
    out: dict[str, list[str]] = {}
    for customer, account in sorted(rows):
        out.setdefault(customer, []).append(account)
    return out


def _synthetic_device(rng: random.Random, subject: str) -> dict[str, str]:
    """The headers a real browser with the served collector would send."""
    from device_fingerprint.synthetic import observe, random_device

    obs = observe(random_device(rng, "windows-chrome"), subject)
    encoded = base64.urlsafe_b64encode(obs.signals or b"").rstrip(b"=").decode()
    return {**obs.client_hints, "user-agent": obs.user_agent or "", "x-device-signals": encoded}


# -- the command ---------------------------------------------------------------------------


def cmd_demo(args: argparse.Namespace) -> int:
    if args.ready_file is not None:
        urls = StackUrls.from_ready_file(args.ready_file)
    else:
        cfg = config.load(args.config)
        urls = StackUrls.from_layout(Layout(base_port=args.base_port), cfg.state.dir.resolve())
    demo = Demo(urls, seed=args.seed)
    steps = asyncio.run(demo.run())
    passed = len(steps) == demo.step_count and all(s.ok for s in steps)
    if args.json:
        print(json.dumps({"ok": passed, "steps": [asdict(s) for s in steps]}, indent=2))
    else:
        for n, step in enumerate(steps, 1):
            mark = "ok  " if step.ok else "FAIL"
            print(
                f"{mark} {n:2}. {step.name:<16} {step.request:<28} expected {step.expected:<24}"
                f" got {step.status}  {step.detail}"
            )
        print("demo passed" if passed else "demo FAILED")
    return 0 if passed else 1


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "demo",
        help="walk a customer through a running `ztgate up` stack and check every answer",
        description="Walks one customer through a running `ztgate up` stack, every request "
        "through the edge: public route, no token (401), password only (too weak), TOTP, "
        "unbound device (403), device binding, accounts (200), spoofed subject header, "
        "tampered token (401), staff route (403), transfer step-up (401, RFC 9470), device "
        "revocation (403). Exits 0 when every step got the expected answer.",
    )
    p.add_argument("--ready-file", type=Path, help="the stack's `ztgate up --ready-file`")
    p.add_argument(
        "--base-port", type=int, default=8080, help="the stack's --base-port (default 8080)"
    )
    p.add_argument("--seed", type=int, default=None, help="seed of the synthetic device")
    p.add_argument("--json", action="store_true", help="print the steps as JSON")
    p.set_defaults(func=cmd_demo)
