"""What crosses the edge: client-supplied internal headers never reach the agent or
the upstream; the agent gets only the headers it needs plus the route's facts,
the JA4 fingerprint and the validated client certificate; ext_proc runs on masking
routes only; and the edge fails closed when the agent is gone, slow or says no."""

from __future__ import annotations

import http.client
import re
import ssl
import time
import urllib.parse

import pytest
from cryptography import x509

from edge_nodes.listeners import JA4_HEADER
from tests.edge_nodes.conftest import Edge
from tests.edge_nodes.harness import SUBJECT, http_request, wait_for

JA4 = re.compile(r"t1[23][di]\d{4}[0-9a-z]{2}_[0-9a-f]{12}_[0-9a-f]{12}")
"""JA4_a (protocol, TLS version, SNI, cipher and extension counts, ALPN) _ JA4_b _ JA4_c."""


def _tls(edge: Edge, path: str, *, client_cert: bool, headers: dict[str, str] | None = None) -> int:
    ctx = ssl.create_default_context(cafile=str(edge.ca.certificate))
    if client_cert:
        ctx.load_cert_chain(str(edge.client.certificate), str(edge.client.private_key))
    conn = http.client.HTTPSConnection("localhost", edge.tls, context=ctx, timeout=10)
    try:
        conn.request("GET", path, headers=headers or {})
        resp = conn.getresponse()
        resp.read()
        return resp.status
    finally:
        conn.close()


def test_client_supplied_internal_headers_never_pass(edge: Edge) -> None:
    edge.clear()
    status, _, _ = http_request(
        edge.plain,
        "/public/x",
        headers={
            "X-Ztgate-Subject": "admin",
            "x-ztgate-subject": "root",
            "X-ZTGATE-ROLES": "csr_supervisor",
            "x-ztgate-ja4": "t13d_forged",
            "x-ztgate-assertion": "forged",
        },
    )
    assert status == 200
    (check,) = edge.authz.checks
    assert not [h for h in check.headers if h.startswith("x-ztgate-")]
    (seen,) = edge.upstream.seen
    internal = [(k.lower(), v) for k, v in seen.headers if k.lower().startswith("x-ztgate-")]
    assert internal == [("x-ztgate-subject", SUBJECT)]


def test_underscore_variants_are_refused(edge: Edge) -> None:
    """``x_ztgate_subject`` is X-Ztgate-Subject to a CGI/WSGI upstream."""
    edge.clear()
    try:
        status, _, _ = http_request(edge.plain, "/public/x", headers={"x_ztgate_subject": "admin"})
    except http.client.RemoteDisconnected:
        status = 400  # HTTP/1 codec error: Envoy closes the connection
    assert status == 400
    assert not edge.authz.checks and not edge.upstream.seen


def test_agent_gets_only_the_headers_it_needs_and_the_route_facts(edge: Edge) -> None:
    edge.clear()
    sent = {
        "authorization": "DPoP eyJ.x.y",
        "dpop": "eyJ.dpop.proof",
        "user-agent": "BankApp/8.4.2",
        "sec-ch-ua": '"Chromium";v="130"',
        "sec-ch-ua-platform": '"Android"',
        "x-device-signals": "eyJzaWduYWxzIjp7fX0",
        "content-type": "application/json",
        "cookie": "session=abc",
        "x-api-key": "k-123",
        "accept-language": "zh-CN",
        "x-forwarded-for": "198.51.100.7",
    }
    status, _, _ = http_request(edge.plain, "/accounts/6222020200112233445/balance", headers=sent)
    assert status == 200
    (check,) = edge.authz.checks
    forwarded = {
        k for k in sent if k not in ("cookie", "x-api-key", "accept-language", "x-forwarded-for")
    }
    assert forwarded <= set(check.headers)
    assert set(check.headers) - forwarded <= {"x-request-id"}
    assert check.path == "/accounts/6222020200112233445/balance" and check.method == "GET"
    assert check.context == {
        "route_id": "accounts.balance",
        "api_product": "retail-accounts",
        "classification": "account",
        "mtls": "false",
        "path_template": "/accounts/{account_id}/balance",
    }
    assert check.certificate == ""


def test_tls_listener_sends_ja4_and_the_client_certificate(edge: Edge) -> None:
    edge.clear()
    assert _tls(edge, "/partner/accounts", client_cert=True, headers={JA4_HEADER: "forged"}) == 200
    (check,) = edge.authz.checks
    assert JA4.fullmatch(check.headers[JA4_HEADER]), check.headers[JA4_HEADER]
    assert check.context["mtls"] == "true" and check.context["route_id"] == "partner.accounts"
    presented = x509.load_pem_x509_certificate(edge.client.certificate.read_bytes())
    # Envoy sends the peer certificate as URL-encoded PEM.
    received = x509.load_pem_x509_certificate(urllib.parse.unquote(check.certificate).encode())
    assert received == presented
    (seen,) = edge.upstream.seen
    assert seen.header(JA4_HEADER) == [check.headers[JA4_HEADER]]

    edge.clear()
    assert _tls(edge, "/partner/accounts", client_cert=False) == 200
    assert edge.authz.checks[0].certificate == ""  # the agent denies mTLS routes on this


def test_client_certificate_from_another_ca_fails_the_handshake(edge: Edge, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from edge_nodes import pki

    rogue_ca = pki.create_ca(tmp_path / "rogue", "rogue CA")
    rogue = pki.issue_client_certificate(rogue_ca, tmp_path / "rogue", "rogue", "partner-fintech")
    ctx = ssl.create_default_context(cafile=str(edge.ca.certificate))
    ctx.load_cert_chain(str(rogue.certificate), str(rogue.private_key))
    conn = http.client.HTTPSConnection("localhost", edge.tls, context=ctx, timeout=10)
    edge.clear()
    with pytest.raises((ssl.SSLError, ConnectionResetError, http.client.RemoteDisconnected)):
        conn.request("GET", "/partner/accounts")
        conn.getresponse().read()
    conn.close()
    assert not edge.authz.checks and not edge.upstream.seen


def test_mtls_routes_are_not_served_where_no_client_ca_is(edge: Edge) -> None:
    edge.clear()
    assert http_request(edge.plain, "/partner/accounts")[0] == 404
    assert not edge.authz.checks and not edge.upstream.seen


def test_response_processing_runs_on_masking_routes_only(edge: Edge) -> None:
    edge.clear()
    assert http_request(edge.plain, "/public/x")[0] == 200
    assert edge.authz.processed == []
    status, _, body = http_request(edge.plain, "/accounts/1/balance")
    assert status == 200 and b"13812345678" in body  # pass-through seam: unchanged
    assert edge.authz.processed == ["response_headers", "response_body"]


def test_unknown_paths_get_404_without_asking_the_agent(edge: Edge) -> None:
    edge.clear()
    status, headers, body = http_request(edge.plain, "/nowhere")
    assert (status, body.strip()) == (404, b'{"error":"not_found"}')
    assert headers["content-type"] == "application/json"
    assert not edge.authz.checks and not edge.upstream.seen


def test_agent_denial_is_passed_to_the_client(edge: Edge) -> None:
    edge.clear()
    edge.authz.deny = True
    try:
        status, _, body = http_request(edge.plain, "/public/x")
    finally:
        edge.authz.deny = False
    assert (status, body) == (403, b'{"error":"denied"}')
    assert not edge.upstream.seen


def test_slow_agent_is_a_deny(edge: Edge) -> None:
    edge.clear()
    edge.authz.delay = 1.0
    try:
        started = time.monotonic()
        status, _, body = http_request(edge.plain, "/public/x")
        elapsed = time.monotonic() - started
    finally:
        edge.authz.delay = 0.0
    assert status == 503 and b"unavailable" in body
    assert elapsed < 0.9  # the 250 ms deadline, not the agent, ended it
    assert not edge.upstream.seen


def test_killed_agent_makes_the_edge_fail_closed(edge: Edge) -> None:
    port = edge.authz.port
    edge.authz.stop()
    edge.clear()
    try:
        for path in ("/public/x", "/accounts/1/balance", "/admin/x"):
            status, _, body = http_request(edge.plain, path)
            assert status == 503, (path, status)
            assert b'"error":"unavailable"' in body
        assert not edge.upstream.seen
    finally:
        edge.authz.start(port)
    wait_for(lambda: http_request(edge.plain, "/public/x")[0] == 200, timeout=15, interval=0.2)


def test_request_body_over_the_limit_is_refused(edge: Edge) -> None:
    edge.clear()
    limit = 1024 * 1024  # the http.max_request_bytes default
    status, headers, body = http_request(
        edge.plain, "/public/upload", method="POST", body=b"x" * (limit + 1)
    )
    assert (status, body.strip()) == (413, b'{"error":"request_too_large"}')
    assert headers["content-type"] == "application/json"
    assert not edge.upstream.seen
    assert http_request(edge.plain, "/public/upload", method="POST", body=b"x" * 1000)[0] == 200


def test_headers_over_the_limit_are_refused(edge: Edge) -> None:
    edge.clear()
    try:
        status = http_request(edge.plain, "/public/x", headers={"x-big": "y" * 40_000})[0]
    except http.client.RemoteDisconnected:
        status = 431
    assert status == 431
    many = {f"x-h{i}": "1" for i in range(120)}  # over max_headers_count (100)
    try:
        status = http_request(edge.plain, "/public/x", headers=many)[0]
    except http.client.RemoteDisconnected:
        status = 431
    assert status == 431
    assert not edge.upstream.seen and not edge.authz.checks
