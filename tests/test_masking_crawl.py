"""Issue 7, acceptance check 1, through the edge: crawl the sample core bank's routes via
real Envoy as a customer (profile ``customer``), as remote customer-service staff
(``staff_restricted``), as a supervisor unlocking online banking (``staff_minimal``), as
an auditor (``audit``) and anonymously (``public``), successes and errors, and find no
C2 value of any customer in the clear and no C3 field at all. (Partners: the walkthrough,
tests/test_partner_walkthrough.py, reads through the ``partner`` profile.)
"""

from __future__ import annotations

import asyncio
import base64
import json
import random
import sqlite3
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from authn.totp import totp_at
from device_fingerprint.synthetic import observe, random_device
from tests.test_up import Up, request, run_stack
from ztgate.demo import Demo, StackUrls

C3_FIELDS = {"cvn", "cvv", "cvv2", "cvc", "pin", "password", "expiry", "expiry_year"}
C3_FIELDS |= {"expiry_month", "expiry_date", "card_expiry", "track_data", "biometric_template"}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Up]:
    with run_stack(tmp_path_factory.mktemp("crawl")) as running:
        yield running


def _db(state: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{state / 'corebank' / 'corebank.db'}?mode=ro", uri=True)


def sensitive_values(state: Path) -> set[str]:
    """Every C2 value of the bank that must never leave in the clear."""
    values: set[str] = set()
    with _db(state) as db:
        for mobile, profile in db.execute("SELECT mobile, profile FROM customers"):
            doc = json.loads(profile)
            values |= {mobile, doc["id_document"]["number"], doc["email"]}
            values.add(doc["address"]["full"])
            if len(doc["name"]) >= 3:  # two-character names occur inside ordinary words
                values.add(doc["name"])
        values |= {n for (n,) in db.execute("SELECT number FROM accounts")}
        values |= {n for (n,) in db.execute("SELECT number FROM cards")}
        for (mobile,) in db.execute("SELECT mobile FROM staff"):
            values.add(mobile)
    return values


def c3_fields(doc: Any) -> set[str]:
    found: set[str] = set()
    if isinstance(doc, dict):
        for key, value in doc.items():
            if key.lower() in C3_FIELDS:
                found.add(key)
            found |= c3_fields(value)
    elif isinstance(doc, list):
        for item in doc:
            found |= c3_fields(item)
    return found


def staff_headers(
    stack: Up, username: str = "csr-1", roles: tuple[str, ...] = ("csr",), bank_role: str = "%"
) -> dict[str, str]:
    """A staff member of the bank (its staff records' role like `bank_role`) with token
    `roles`: password + TOTP, a bound device."""
    import http.client

    urls, state = stack.urls, Path(stack.urls["state_dir"])
    admin = (state / "admin-token").read_text().strip()
    with _db(state) as db:
        staff_id = db.execute(
            "SELECT staff_id FROM staff WHERE active = 1 AND role LIKE ? LIMIT 1", (bank_role,)
        ).fetchone()[0]
    host, port = (
        urllib.parse.urlsplit(urls["authn"]).hostname,
        urllib.parse.urlsplit(urls["authn"]).port,
    )

    def call(method: str, path: str, body: Any, token: str | None = None, **extra: str) -> Any:
        conn = http.client.HTTPConnection(host or "", port, timeout=15)
        headers = {"content-type": "application/json", **extra}
        if token:
            headers["authorization"] = f"Bearer {token}"
        conn.request(method, path, body=json.dumps(body), headers=headers)
        resp = conn.getresponse()
        out = resp.status, json.loads(resp.read() or b"null")
        conn.close()
        return out

    user = {"username": username, "password": "a long staff passphrase 1", "kind": "staff"}
    user |= {"subject": staff_id, "roles": list(roles)}
    status, body = call("POST", "/v1/users", user, admin)
    assert status == 201 and body["roles"] == list(roles), body
    status, login = call(
        "POST", "/v1/login/password", {"username": username, "password": user["password"]}
    )
    token = login["access_token"]
    status, enrolled = call("POST", "/v1/totp/enroll", {}, token)
    query = urllib.parse.urlparse(enrolled["otpauth_uri"]).query
    secret_b32 = urllib.parse.parse_qs(query)["secret"][0]
    secret = base64.b32decode(secret_b32 + "=" * (-len(secret_b32) % 8))
    now = time.time()
    call("POST", "/v1/totp/confirm", {"code": totp_at(secret, now)}, token)
    status, mfa = call("POST", "/v1/login/totp", {"code": totp_at(secret, now + 30)}, token)
    assert status == 200, mfa
    token = mfa["access_token"]
    obs = observe(random_device(random.Random(username), "windows-chrome"), staff_id)
    device = {**obs.client_hints, "user-agent": obs.user_agent or ""}
    device["x-device-signals"] = base64.urlsafe_b64encode(obs.signals or b"").rstrip(b"=").decode()
    status, bound = call("POST", "/v1/devices", {"name": "desk"}, token, **device)
    assert status == 201, bound
    return {"authorization": f"Bearer {token}", **device}


def test_no_c2_in_the_clear_and_no_c3_through_the_edge(stack: Up) -> None:
    state = Path(stack.urls["state_dir"])
    secrets_ = sensitive_values(state)
    demo = Demo(StackUrls.from_ready_file(stack.ready_file))
    steps = asyncio.run(demo.run(first=8))  # a customer with MFA and a bound device
    assert all(s.ok for s in steps), steps
    customer = demo.headers()
    cid = demo.subject
    with _db(state) as db:
        accounts = [
            a
            for (a,) in db.execute("SELECT account_id FROM accounts WHERE customer_id = ?", (cid,))
        ]
        cards = [
            c for (c,) in db.execute("SELECT card_id FROM cards WHERE customer_id = ?", (cid,))
        ]
        other = db.execute(
            "SELECT account_id FROM accounts WHERE customer_id <> ? LIMIT 1", (cid,)
        ).fetchone()[0]
        mobile = db.execute(
            "SELECT mobile FROM customers WHERE customer_id = ?", (cid,)
        ).fetchone()[0]
    crawl: list[tuple[str, str, dict[str, str]]] = [
        ("GET", f"/api/customers/{cid}/profile", customer),
        ("GET", "/api/accounts", customer),
        ("GET", "/api/cards", customer),
        ("GET", f"/api/accounts/{other}", customer),  # another's account: an error body
        ("GET", "/api/transfers/trf_does_not_exist", customer),
        ("GET", "/api/products", {}),
    ]
    for account in accounts:
        crawl += [
            ("GET", f"/api/accounts/{account}", customer),
            ("GET", f"/api/accounts/{account}/balance", customer),
            ("GET", f"/api/accounts/{account}/transactions", customer),
        ]
    crawl += [("GET", f"/api/cards/{card}", customer) for card in cards]
    staff = staff_headers(stack)
    crawl += [
        ("GET", f"/api/staff/customers/{cid}", staff),
        ("GET", f"/api/staff/customers?mobile={mobile}", staff),
        ("GET", f"/api/staff/customers/{cid}/accounts", staff),
        ("GET", "/api/staff/customers/cst_0000000000000000", staff),  # an error body
        ("GET", "/api/staff/customers/cst_0000000000000000/accounts", staff),
    ]
    answered: dict[int, int] = {}
    for method, path, headers in crawl:
        status, _, body = request(stack.urls["edge"], path, method, headers)
        answered[status] = answered.get(status, 0) + 1
        assert_nothing_leaks(path, status, body, secrets_)
    # The crawl reached data, not only refusals: most answers are 200, some errors.
    assert answered.get(200, 0) >= len(crawl) - 6, answered
    assert set(answered) - {200}, answered
    staff_tasks(stack, cid, mobile, secrets_)


def assert_nothing_leaks(path: str, status: int, body: bytes, secrets_: set[str]) -> None:
    text = body.decode("utf-8", "replace")
    leaked = sorted(v for v in secrets_ if v in text)
    assert not leaked, (path, status, leaked[:3])
    if body.strip().startswith((b"{", b"[")):
        assert not c3_fields(json.loads(body)), (path, c3_fields(json.loads(body)))


def staff_tasks(stack: Up, cid: str, mobile: str, secrets_: set[str]) -> None:
    """A supervisor's unlock (``staff_minimal``: every C2 value removed) and an auditor's
    review (``audit``: pseudonyms that match up across responses, never the values)."""
    edge = stack.urls["edge"]
    boss = staff_headers(stack, "csr-boss", ("csr_supervisor",), "supervisor")
    auditor = staff_headers(stack, "auditor-1", ("auditor",), "auditor")

    def call(method: str, path: str, headers: dict[str, str], body: Any = None) -> Any:
        raw = None if body is None else json.dumps(body, ensure_ascii=False).encode()
        status, _, answer = request(edge, path, method, headers, raw)
        assert_nothing_leaks(path, status, answer, secrets_)
        return status, json.loads(answer) if answer.strip() else None

    reason = {"reason": f"locked out after failed logins; called from {mobile}"}
    status, unlocked = call("POST", f"/api/staff/customers/{cid}/unlock", boss, reason)
    assert status == 200, unlocked
    assert unlocked["online_banking"]["status"] == "active"
    echoed = unlocked["customer"]  # the record the task does not need: nothing personal left
    assert echoed["customer_id"] == cid
    assert not {"name", "mobile", "email", "address", "birth_date", "kyc"} & set(echoed)
    assert all("account_number" not in a for a in unlocked["accounts"])
    assert "name" not in unlocked["unlocked_by"]
    for path, body, expected in (
        ("/api/staff/customers/cst_0000000000000000/unlock", reason, 404),
        (f"/api/staff/customers/{cid}/unlock", {"reason": ""}, 400),
        (f"/api/staff/customers/{cid}/unlock", {}, 400),
    ):
        status, error = call("POST", path, boss, body)
        assert status == expected and error["error"], (path, status, error)
    # An agent without the supervisor role is refused at the edge.
    status, _ = call("POST", f"/api/staff/customers/{cid}/unlock", auditor, reason)
    assert status == 403

    path = f"/api/audit/customers/{cid}/activity"
    reviews = [call("GET", path, auditor) for _ in range(2)]
    assert [s for s, _ in reviews] == [200, 200], reviews
    first, second = (doc for _, doc in reviews)
    with _db(Path(stack.urls["state_dir"])) as db:
        numbers = {
            n for (n,) in db.execute("SELECT number FROM accounts WHERE customer_id = ?", (cid,))
        }
    seen = [a["account_number"] for a in first["accounts"]]
    assert len(seen) == len(numbers) and not set(seen) & numbers
    # Correlatable: the same values give the same pseudonyms in a second response.
    for field in ("resident_id", "mobile"):
        assert first["customer"][field] == second["customer"][field], field
        assert first["customer"][field] not in secrets_
    pseudonym = first["customer"]["mobile"]
    assert pseudonym != mobile and pseudonym.startswith("pn_"), pseudonym
    assert seen == [a["account_number"] for a in second["accounts"]]
    [action] = [a for a in first["staff_actions"] if a["action"] == "unlock_online_banking"]
    # The mobile number typed into the reason is found and shown as the same pseudonym.
    assert action["reason"] == f"locked out after failed logins; called from {pseudonym}"
    for denied_path, headers, expected in (
        ("/api/audit/customers/cst_0000000000000000/activity", auditor, 404),
        (path, boss, 403),  # a supervisor is no auditor
        (path, {}, 401),
    ):
        status, error = call("GET", denied_path, headers)
        assert status == expected and error["error"], (denied_path, status, error)
