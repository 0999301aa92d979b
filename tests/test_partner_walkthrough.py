"""Issue 7, acceptance check 2: a partner's whole journey through real Envoy, on two
edge nodes whose agents share Redis for quotas.

Register by DCR with a statement from the local directory; obtain tokens with
private_key_jwt; create a consent; the customer approves it with a passkey step-up
(a software authenticator); read accounts through the edge over mutual TLS (masked
for the partner); initiate a payment signed with RFC 9421 and check the edge's
signature on the answer with the bank's published JWKS; get rate-limited across
both nodes; the customer revokes the consent and both nodes refuse the next request.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import secrets
import sqlite3
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from authn.rfc9421 import HTTPRequest, HTTPResponse, SignatureError, sign_request, verify_response
from authn.rfc9530 import content_digest
from crypto import jose, keys
from edge_nodes.pki import Issued, issue_client_certificate
from tests.authn.soft_authenticator import SoftAuthenticator
from tests.test_masking_crawl import c3_fields, sensitive_values
from tests.test_up import Up, post_form, post_json, request, run_stack

REDIS = "redis://127.0.0.1:6379/0"
TRIAL_LIMIT = 20  # gateway.quotas DEFAULT_TIERS partner-trial, per minute
ROOT = Path(__file__).parent.parent
RESPONSE_COMPONENTS = (
    '"@status"',
    '"content-digest"',
    '"content-type"',
    '"@method";req',
    '"@target-uri";req',
    '"signature";req;key="sig1"',
)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Up]:
    with run_stack(tmp_path_factory.mktemp("partner"), "--redis", REDIS) as running:
        yield running


def call(
    url: str, method: str, path: str, *, body: Any = None, token: str | None = None
) -> tuple[int, Any]:
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=15)
    headers = {"content-type": "application/json"}
    if token is not None:
        headers["authorization"] = f"Bearer {token}"
    try:
        data = None if body is None else json.dumps(body)
        conn.request(method, path, body=data, headers=headers)
        resp = conn.getresponse()
        raw = resp.read()
        return resp.status, (json.loads(raw) if raw else None)
    finally:
        conn.close()


class Edge:
    """One edge node's HTTPS listener, with the partner's client certificate."""

    def __init__(self, url: str, ca: Path, cert: Issued) -> None:
        parts = urlsplit(url)
        self.host, self.port = parts.hostname or "localhost", parts.port or 443
        self.authority = f"{self.host}:{self.port}"
        self.context = ssl.create_default_context(cafile=str(ca))
        self.context.load_cert_chain(str(cert.certificate), str(cert.private_key))

    def exchange(
        self, method: str, path: str, headers: dict[str, str], body: bytes = b""
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        """(status, header fields in order, body bytes) as received."""
        conn = http.client.HTTPSConnection(self.host, self.port, context=self.context, timeout=15)
        try:
            conn.request(method, path, body=body or None, headers=headers)
            resp = conn.getresponse()
            return resp.status, resp.getheaders(), resp.read()
        finally:
            conn.close()

    def send(
        self, method: str, path: str, headers: dict[str, str], body: bytes = b""
    ) -> tuple[int, dict[str, str], Any]:
        status, fields, raw = self.exchange(method, path, headers, body)
        try:
            doc = json.loads(raw) if raw else None
        except ValueError:
            doc = raw
        return status, {k.lower(): v for k, v in fields}, doc


def customer_accounts(state: Path) -> tuple[str, list[tuple[str, str]]]:
    """A core-bank customer with two active accounts: (customer id, [(id, number)])."""
    with sqlite3.connect(f"file:{state / 'corebank' / 'corebank.db'}?mode=ro", uri=True) as db:
        rows = db.execute(
            "SELECT customer_id, account_id, number FROM accounts WHERE status = 'active'"
            " ORDER BY customer_id, account_id"
        ).fetchall()
    by_customer: dict[str, list[tuple[str, str]]] = {}
    for customer, account, number in rows:
        by_customer.setdefault(customer, []).append((account, number))
    customer = next(c for c, accounts in by_customer.items() if len(accounts) >= 2)
    return customer, by_customer[customer]


def client_assertion(authn: str, client_id: str, key: keys.PrivateKey) -> dict[str, str]:
    now = int(time.time())
    claims = {"iss": client_id, "sub": client_id, "aud": authn, "iat": now, "exp": now + 60}
    signed = jose.encode_jwt(claims | {"jti": secrets.token_urlsafe(12)}, key, kid="k1")
    return {
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_assertion": signed,
    }


def register_partner(stack: Up, key: keys.PrivateKey, *statement_args: str) -> str:
    """Onboarding: a statement from the stack's directory (`ztgate partner statement`
    with `statement_args`), then dynamic registration with `key` as ``k1``; the client id."""
    argv = [sys.executable, "-m", "ztgate", "--config", str(stack.tmp / "ztgate.toml")]
    argv += ["partner", "statement", *statement_args]
    statement = subprocess.run(
        argv, capture_output=True, text=True, timeout=60, check=True, cwd=ROOT
    ).stdout.strip()
    registration = {
        "software_statement": statement,
        "token_endpoint_auth_method": "private_key_jwt",
        "jwks": {"keys": [{**key.public_key().to_jwk(), "kid": "k1"}]},
    }
    status, _, body = post_json(stack.urls["authn"], "/v1/register", registration)
    assert status == 201, body
    return str(json.loads(body)["client_id"])


def create_consent(authn: str, client_id: str, key: keys.PrivateKey) -> str:
    """A consent request (accounts, transactions, payments; an hour), with a token for
    managing consents; its id."""
    form = {"grant_type": "client_credentials", "scope": "ob:consents"}
    status, _, body = post_form(authn, "/v1/token", form | client_assertion(authn, client_id, key))
    assert status == 200, body
    consent_token = json.loads(body)["access_token"]
    ask = {
        "permissions": ["accounts:read", "transactions:read", "payments:write"],
        "expires_at": int(time.time()) + 3600,
    }
    status, consent = call(authn, "POST", "/v1/consents", body=ask, token=consent_token)
    assert status == 201, consent
    return str(consent["consent_id"])


def approve_consent(
    authn: str, admin: str, customer: str, consent_id: str, accounts: list[str]
) -> str:
    """The customer (a new user of `customer`) approves `accounts` in the app, which needs
    a passkey step-up (refused before it); the stepped-up access token."""
    password = secrets.token_urlsafe(16)
    user = {"username": f"walk-{secrets.token_hex(3)}", "password": password, "subject": customer}
    status, body = call(authn, "POST", "/v1/users", body=user, token=admin)
    assert status == 201, body
    status, login = call(
        authn,
        "POST",
        "/v1/login/password",
        body={"username": user["username"], "password": password},
    )
    assert status == 200, login
    phone = SoftAuthenticator(origin=authn.rstrip("/"))
    status, options = call(
        authn, "POST", "/v1/webauthn/register/options", body={}, token=login["access_token"]
    )
    assert status == 200, options
    created = phone.create(options["publicKey"], fmt="packed")
    reg = {"challenge_id": options["challenge_id"], "credential": created, "name": "phone"}
    status, body = call(
        authn, "POST", "/v1/webauthn/register/verify", body=reg, token=login["access_token"]
    )
    assert status == 201, body
    approve = {"accounts": accounts}
    status, refused = call(
        authn, "POST", f"/v1/consents/{consent_id}/authorise", body=approve,
        token=login["access_token"],
    )  # fmt: skip
    assert (status, refused["error"]) == (401, "insufficient_user_authentication")
    status, options = call(authn, "POST", "/v1/webauthn/authenticate/options", body={})
    assertion = {
        "challenge_id": options["challenge_id"],
        "credential": phone.get(options["publicKey"]),
    }
    status, stepped = call(
        authn, "POST", "/v1/webauthn/authenticate/verify", body=assertion,
        token=login["access_token"],
    )  # fmt: skip
    assert status == 200 and stepped["acr"] == "urn:ztgate:acr:passkey", stepped
    status, authorised = call(
        authn, "POST", f"/v1/consents/{consent_id}/authorise", body=approve,
        token=stepped["access_token"],
    )  # fmt: skip
    assert status == 200 and authorised["status"] == "authorised", authorised
    return str(stepped["access_token"])


def consent_token(authn: str, client_id: str, key: keys.PrivateKey, consent_id: str) -> str:
    """An access token acting under the consent (client credentials, private_key_jwt)."""
    form = {"grant_type": "client_credentials", "consent_id": consent_id}
    status, _, body = post_form(authn, "/v1/token", form | client_assertion(authn, client_id, key))
    assert status == 200, body
    return str(json.loads(body)["access_token"])


def partner_certificate(stack: Up, name: str) -> Issued:
    """A client certificate from the stack's CA, for mTLS to the edge."""
    state = Path(stack.urls["state_dir"])
    (stack.tmp / f"{name}-pki").mkdir(mode=0o700)
    return issue_client_certificate(
        Issued(state / "pki" / "ca.crt", state / "pki" / "ca.key"),
        stack.tmp / f"{name}-pki", name, f"{name}.partner.example",
    )  # fmt: skip


def signed_request(
    node: Edge, path: str, token: str, key: keys.PrivateKey, raw: bytes
) -> dict[str, str]:
    """The headers of a POST of `raw` to `path` signed with RFC 9421 by `key` (``k1``):
    over ``@method``, ``@target-uri``, ``content-digest``, ``authorization``, with a
    fresh ``created``, ``nonce`` and ``Idempotency-Key``."""
    fields = {
        "authorization": f"Bearer {token}",
        "content-type": "application/json",
        "content-digest": content_digest(raw),
        "idempotency-key": secrets.token_hex(8),
    }
    message = HTTPRequest("POST", f"https://{node.authority}{path}", tuple(fields.items()), raw)
    sig = sign_request(
        message, key=key, keyid="k1", created=int(time.time()), nonce=secrets.token_urlsafe(12)
    )
    return fields | {"signature-input": sig.signature_input, "signature": sig.signature}


def test_the_partner_walkthrough(stack: Up) -> None:
    urls, state = stack.urls, Path(stack.urls["state_dir"])
    authn = urls["authn"]
    admin = (state / "admin-token").read_text().strip()

    # 1. Onboarding: a statement from the directory, dynamic registration.
    key = keys.generate("sm2")
    client_id = register_partner(
        stack, key, "--software-id", "budgetly", "--name", "Budgetly",
        "--allowed-network", "127.0.0.0/8", "--rate-limit-tier", "partner-trial",
    )  # fmt: skip

    # 2. A consent request, with a token for managing consents.
    consent_id = create_consent(authn, client_id, key)

    # 3. The customer approves in the app, with a passkey step-up.
    customer, accounts = customer_accounts(state)
    (chosen_id, chosen_number), (other_id, _) = accounts[0], accounts[1]
    stepped = approve_consent(authn, admin, customer, consent_id, [chosen_id])

    # 4. Tokens acting under the consent; the partner's certificate for mTLS.
    token = consent_token(authn, client_id, key, consent_id)
    cert = partner_certificate(stack, "budgetly")
    nodes = [Edge(n["https"], state / "pki" / "ca.crt", cert) for n in urls["edge_nodes"]]
    bearer = {"authorization": f"Bearer {token}", "accept": "application/json"}

    # 5. Accounts through the edge: only the consented one, masked for the partner.
    status, headers, listing = nodes[0].send("GET", "/open/v1/accounts", bearer)
    assert status == 200, listing
    assert [a["resourceId"] for a in listing["accounts"]] == [chosen_id]
    assert chosen_number not in json.dumps(listing)  # the account number is masked
    assert headers["ratelimit-policy"] == f'"partner-trial";q={TRIAL_LIMIT};w=60'
    status, _, hidden = nodes[1].send("GET", f"/open/v1/accounts/{other_id}/balances", bearer)
    assert status == 403 and "consent:resource_not_covered" in hidden["reason"], hidden

    # 6. A payment signed with RFC 9421 (the partner's registered SM2 key).
    payment = {
        "instructedAmount": {"amount": "1.00", "currency": "CNY"},
        "debtorAccount": {"bban": chosen_number},
        "creditorAccount": {"bban": "6222020200000000000"},
        "creditorName": "测试收款人",
    }
    raw = json.dumps(payment, ensure_ascii=False).encode()

    def signed_payment(node: Edge) -> dict[str, str]:
        return signed_request(node, "/open/v1/payments", token, key, raw)

    status, fields, body = nodes[0].send("POST", "/open/v1/payments", bearer, raw)
    assert status == 401 and body["reason"] == ["signature:missing_signature"], body
    assert "signature" not in fields  # what was not signed is not answered signed
    signed = signed_payment(nodes[0])
    paid_status, answer_fields, answer = nodes[0].exchange("POST", "/open/v1/payments", signed, raw)
    paid = json.loads(answer)
    assert paid_status in (200, 201), paid
    # The answer is signed by the edge, bound to this request (RFC 9421 §2.4), over
    # the body as received (masked): verified with the JWKS the bank publishes.
    status, edge_jwks = call(urls["response_jwks"], "GET", urlsplit(urls["response_jwks"]).path)
    assert status == 200 and edge_jwks["keys"][0]["alg"] == "SM2SM3", edge_jwks
    sent = HTTPRequest(
        "POST", f"https://{nodes[0].authority}/open/v1/payments", tuple(signed.items()), raw
    )
    verified = asyncio.run(
        verify_response(
            HTTPResponse(paid_status, tuple(answer_fields), answer),
            jwks=edge_jwks,
            now=time.time(),
            request=sent,
            expected_components=RESPONSE_COMPONENTS,
        )
    )
    assert verified.algorithm == "sm2-sm3" and chosen_number.encode() not in answer
    with pytest.raises(SignatureError):  # another request's answer it is not
        asyncio.run(
            verify_response(
                HTTPResponse(paid_status, tuple(answer_fields), answer),
                jwks=edge_jwks,
                now=time.time(),
                request=HTTPRequest(
                    "POST", sent.target_uri, tuple(signed_payment(nodes[0]).items()), raw
                ),
            )
        )
    status, _, replayed = nodes[0].send("POST", "/open/v1/payments", signed, raw)
    assert status == 401 and replayed["reason"] == ["signature:replayed"], replayed

    # Every partner route answers through the partner profile: no C2 in the clear, no C3
    # (issue 7, check 1, for the partner).
    secret_values = sensitive_values(state)
    for path in (
        f"/open/v1/accounts/{chosen_id}/balances",
        f"/open/v1/accounts/{chosen_id}/transactions",
        f"/open/v1/payments/{paid['paymentId']}",
        paid_body := "/open/v1/payments/pay_does_not_exist",
    ):
        status, _, doc = nodes[1].send("GET", path, bearer)
        assert status in (200, 404), (path, doc)
        text = json.dumps(doc, ensure_ascii=False)
        assert not [v for v in secret_values if v in text], path
        assert not c3_fields(doc), path
    assert paid_body

    # 7. Rate-limited, the bucket shared by both nodes through Redis.
    seen: list[int] = []
    for i in range(2 * TRIAL_LIMIT):
        status, headers, _ = nodes[i % 2].send("GET", "/open/v1/accounts", bearer)
        seen.append(status)
        if status == 429:
            assert int(headers["retry-after"]) >= 1
            assert headers["ratelimit"].startswith('"partner-trial";r=0;')
            break
    assert seen[-1] == 429, seen
    assert seen.count(200) < TRIAL_LIMIT  # the earlier calls counted, on either node

    # 8. The customer revokes: both nodes refuse at once (no consent cache).
    status, _ = call(authn, "DELETE", f"/v1/consents/{consent_id}", token=stepped)
    assert status == 204
    for node in nodes:
        status, _, body = node.send("GET", "/open/v1/accounts", bearer)
        # The policy refuses before the quota is even consulted.
        assert status == 403 and "consent:inactive" in body["reason"], body


def test_plain_http_never_reaches_partner_routes(stack: Up) -> None:
    """Partner routes exist only on the mTLS listener."""
    status, _, _ = request(stack.urls["edge"], "/open/v1/accounts")
    assert status == 404
