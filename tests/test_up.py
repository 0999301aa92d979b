"""`ztgate up` as a user runs it: a real subprocess, real Envoy, real agent workers,
the real core bank, on ports of its own (``--base-port``), then SIGTERM.

One stack with two edge nodes serves every check, so the module starts Envoy
twice, not once per test.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import json
import os
import random
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

from crypto import jose, keys
from risk.config import RiskConfig
from ztgate.demo import Demo, StackUrls
from ztgate.up_plan import Layout

START_TIMEOUT = 180.0  # a loaded 2-core CI machine: the self-test and bundle tests run first


def _free(layout: Layout) -> bool:
    for _, port in layout.ports():
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                return False
    return True


def _layout() -> Layout:
    rng = random.Random()
    for _ in range(50):
        layout = Layout(base_port=rng.randrange(20000, 45000), nodes=2, workers=1)
        if _free(layout):
            return layout
    raise AssertionError("no free port layout")


def _descendants(pid: int) -> set[int]:
    """Every live process below `pid` (from /proc)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    out: set[int] = set()
    frontier = {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - out
        out |= frontier
    return out


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@dataclass
class Up:
    proc: subprocess.Popen[bytes]
    urls: dict[str, Any]
    ready_file: Path
    seconds: float
    tmp: Path


@contextlib.contextmanager
def run_stack(tmp: Path, *extra: str) -> Iterator[Up]:
    """`ztgate up` with two edge nodes (one agent worker each) on a free port layout,
    its state under `tmp`, until the block ends."""
    (tmp / "ztgate.toml").write_text(f'[state]\ndir = "{tmp / "state"}"\n')
    ready = tmp / "ready.json"
    layout = _layout()
    argv = [sys.executable, "-m", "ztgate", "--config", str(tmp / "ztgate.toml"), "up"]
    argv += ["--base-port", str(layout.base_port), "--nodes", "2", "--workers", "1"]
    argv += ["--ready-file", str(ready), *extra]
    began = time.monotonic()
    with open(tmp / "stdout", "wb") as out, open(tmp / "stderr", "wb") as err:
        proc = subprocess.Popen(argv, stdout=out, stderr=err, cwd=Path(__file__).parent.parent)
    try:
        while not ready.exists():
            if proc.poll() is not None or time.monotonic() - began > START_TIMEOUT:
                raise AssertionError(
                    f"ztgate up not ready (exit {proc.returncode}): "
                    + (tmp / "stderr").read_text()[-3000:]
                )
            time.sleep(0.1)
        urls = json.loads(ready.read_text())
        yield Up(proc, urls, ready, time.monotonic() - began, tmp)
    finally:
        _stop_stack(proc)


def _stop_stack(proc: subprocess.Popen[bytes]) -> None:
    """Stop `ztgate up` as an operator would (SIGTERM: it stops every child first);
    SIGKILL, for it and whatever it left, only if that does not end it. Killing the
    parent alone would orphan its core banks, agents and Envoys."""
    children = _descendants(proc.pid)
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    for pid in children:
        if _running(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


@pytest.fixture(scope="module")
def up(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Up]:
    with run_stack(tmp_path_factory.mktemp("up")) as stack:
        yield stack


def request(
    url: str,
    path: str,
    method: str = "GET",
    headers: dict[str, str] | None = None,
    body: bytes | None = None,
) -> tuple[int, dict[str, str], bytes]:
    host, port = url.removeprefix("http://").rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        if body is None and method == "POST":
            body = b"{}"
        hdrs = {"content-type": "application/json", **(headers or {})}
        conn.request(method, path, body=body, headers=hdrs)
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def test_ready_file_names_every_url(up: Up) -> None:
    urls = up.urls
    for key in (
        "edge", "edge_tls", "control_plane", "authn", "policy", "corebank", "corebank_sandbox",
        "admin",
    ):  # fmt: skip
        assert str(urls[key]).startswith(("http://", "https://")), key
    assert [n["node_id"] for n in urls["edge_nodes"]] == ["edge-1", "edge-2"]
    assert urls["edge"] == urls["edge_nodes"][0]["http"]
    assert Path(urls["ca_certificate"]).is_file()
    printed = (up.tmp / "stdout").read_text()
    assert urls["edge"] + "/api/products" in printed  # the ready-to-paste examples


def test_a_public_route_passes_through_every_node(up: Up) -> None:
    for node in up.urls["edge_nodes"]:
        status, headers, body = request(node["http"], "/api/products")
        assert status == 200, body
        assert json.loads(body)["products"]
        assert headers["server"] == "ztgate"
        # The quota's fields (draft-ietf-httpapi-ratelimit-headers) reach the client.
        assert headers["ratelimit-policy"] == '"public";q=600;w=60'
        assert headers["ratelimit"].startswith('"public";r=')


def test_an_account_route_without_a_token_is_401_with_a_reason(up: Up) -> None:
    status, headers, body = request(up.urls["edge"], "/api/transfers", "POST")
    assert status == 401, body
    doc = json.loads(body)
    assert doc["error"] and doc["reason"], doc
    assert headers["www-authenticate"].lower().startswith(("bearer", "dpop"))


def test_a_masked_account_route_without_a_token_is_401(up: Up) -> None:
    status, _, body = request(up.urls["edge"], "/api/accounts")
    assert status == 401, body


def test_a_spoofed_subject_does_not_help(up: Up) -> None:
    customer = {"x-ztgate-subject": "cst_0000000000000001", "x-ztgate-subject-kind": "customer"}
    status, _, body = request(up.urls["edge"], "/api/transfers", "POST", customer)
    assert status == 401, body
    # Nor straight at the core bank: it believes only the edge's signed assertion.
    status, _, body = request(up.urls["corebank"], "/api/accounts", headers=customer)
    assert status == 401, body
    assert json.loads(body)["error"] == "unauthenticated"


def test_both_nodes_have_acked_their_configuration(up: Up) -> None:
    run = subprocess.run(
        [sys.executable, "-m", "ztgate", "nodes", "--json", "--control-plane", up.urls["admin"]],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    nodes = {n["node_id"]: n for n in json.loads(run.stdout)["nodes"]}
    assert set(nodes) == {"edge-1", "edge-2"}
    for node in nodes.values():
        assert node["connected"] and node["in_sync"], node
        assert node["acked_version"] == node["snapshot_version"]


def test_a_partner_registers_with_a_statement_from_the_local_directory(up: Up) -> None:
    """RFC 7591 against the running stack: `ztgate partner statement` signs with the
    directory key `ztgate up` created, authn registers the partner, and the partner
    authenticates with private_key_jwt."""
    argv = [sys.executable, "-m", "ztgate", "--config", str(up.tmp / "ztgate.toml")]
    argv += ["partner", "statement", "--software-id", "budgetly", "--name", "Budgetly"]
    argv += ["--redirect-uri", "https://budgetly.example/cb"]
    run = subprocess.run(
        argv,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        cwd=Path(__file__).parent.parent,
    )
    key = keys.generate("sm2")
    doc = {
        "software_statement": run.stdout.strip(),
        "token_endpoint_auth_method": "private_key_jwt",
        "jwks": {"keys": [{**key.public_key().to_jwk(), "kid": "k1"}]},
    }
    status, _, body = post_json(up.urls["authn"], "/v1/register", doc)
    assert status == 201, body
    client_id = json.loads(body)["client_id"]
    now = int(time.time())
    signed = jose.encode_jwt(
        {"iss": client_id, "sub": client_id, "aud": up.urls["authn"], "iat": now}
        | {"exp": now + 60, "jti": secrets.token_urlsafe(12)},
        key,
        kid="k1",
    )
    form = {
        "grant_type": "client_credentials",
        "scope": "ob:consents",
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_assertion": signed,
    }
    status, _, body = post_form(up.urls["authn"], "/v1/token", form)
    assert status == 200, body
    assert json.loads(body)["scope"] == "ob:consents"
    status, _, body = post_json(up.urls["authn"], "/v1/register", doc)
    assert status == 400 and json.loads(body)["error"] == "invalid_software_statement"


def post_json(url: str, path: str, doc: Any) -> tuple[int, dict[str, str], bytes]:
    return _post(url, path, json.dumps(doc).encode(), "application/json")


def post_form(url: str, path: str, form: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
    return _post(url, path, urlencode(form).encode(), "application/x-www-form-urlencoded")


def _post(url: str, path: str, body: bytes, kind: str) -> tuple[int, dict[str, str], bytes]:
    host, port = url.removeprefix("http://").rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        conn.request("POST", path, body=body, headers={"content-type": kind})
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def test_the_developer_portal_is_on_the_authn_origin(up: Up) -> None:
    """Issue 7's catalogue: printed, served with its CSP, the document beside it."""
    portal = up.urls["portal"]
    assert portal == up.urls["authn"].rstrip("/") + "/portal/"
    assert portal in (up.tmp / "stdout").read_text()
    status, headers, body = request(up.urls["authn"], "/portal/")
    assert status == 200 and b"static/portal.js" in body
    assert "default-src 'self'" in headers["content-security-policy"]
    status, _, body = request(up.urls["authn"], "/portal/openapi.json")
    assert status == 200 and json.loads(body)["openapi"].startswith("3.1.")


def test_ztgate_demo_completes_against_the_stack(up: Up) -> None:
    """Issue 6, checks 1 and 4 through real Envoy: authorised, no token, password
    only, unbound device, tampered token, policy deny, spoofed subject, step-up,
    revoked device — each with the right status and reason."""
    run = subprocess.run(
        [sys.executable, "-m", "ztgate", "demo", "--json", "--ready-file", str(up.ready_file)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=Path(__file__).parent.parent,
    )
    doc = json.loads(run.stdout)
    failed = [s for s in doc["steps"] if not s["ok"]]
    assert run.returncode == 0 and doc["ok"] and not failed, (failed, run.stderr[-2000:])
    steps = {s["name"]: s for s in doc["steps"]}
    assert steps["read accounts"]["status"] == 200
    assert steps["unbound device"]["status"] == 403
    assert "device:not_bound" in steps["unbound device"]["detail"]
    assert steps["tampered token"]["status"] == 401
    assert steps["staff route"]["status"] == 403
    assert steps["spoofed subject"]["status"] == 200  # and only the customer's own accounts
    assert steps["revoked device"]["status"] == 403


def test_forged_tokens_make_their_address_high_risk(up: Up) -> None:
    """A burst of forged tokens from one address (token stuffing) raises that address's
    risk: the next request, with a valid token on a bound device, is refused with
    ``risk:too_high``. Last before SIGTERM: the address stays risky for the failure
    window."""
    demo = Demo(StackUrls.from_ready_file(up.ready_file))
    steps = asyncio.run(demo.run(first=8))  # up to reading accounts on a bound device
    assert [s.ok for s in steps] == [True] * 8, steps
    headers = demo.headers()
    status, _, body = request(up.urls["edge"], "/api/accounts", headers=headers)
    assert status == 200, body
    forged = {**headers, "authorization": headers["authorization"][:-6] + "AAAAAA"}
    for _ in range(2 * RiskConfig().rate.ip_failures):  # full strength at twice the start
        status, _, body = request(up.urls["edge"], "/api/accounts", headers=forged)
        assert status == 401, body
        assert json.loads(body)["reason"] == ["identity:invalid_token"]
    status, _, body = request(up.urls["edge"], "/api/accounts", headers=headers)
    assert status == 403, body
    assert json.loads(body)["reason"] == ["risk:too_high"]


def test_sigterm_stops_everything(up: Up) -> None:
    children = _descendants(up.proc.pid)
    names = {Path(f"/proc/{pid}/exe").resolve().name for pid in children if _running(pid)}
    assert "envoy" in names  # Envoy, the core bank and the workers are all below it
    assert len(children) >= 2 + 2 * 2  # core bank, per node: Envoy, supervisor, worker
    up.proc.send_signal(signal.SIGTERM)
    assert up.proc.wait(timeout=30) == 0
    deadline = time.monotonic() + 5
    while any(_running(pid) for pid in children) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [pid for pid in children if _running(pid)]
    assert not up.ready_file.exists()
    for node in up.urls["edge_nodes"]:
        with pytest.raises(OSError):
            request(node["http"], "/api/products")


def test_children_end_when_up_is_killed_outright(tmp_path: Path) -> None:
    """SIGKILL gives ``ztgate up`` no chance to stop its children: they must end anyway
    (gateway.parent_watch), not run on orphaned holding their ports."""
    with run_stack(tmp_path) as stack:
        children = _descendants(stack.proc.pid)
        python_children = [
            pid
            for pid in children
            if _running(pid) and Path(f"/proc/{pid}/exe").resolve().name.startswith("python")
        ]
        assert len(python_children) >= 3  # core banks, agent supervisors and workers
        stack.proc.kill()
        stack.proc.wait()
        deadline = time.monotonic() + 30
        while any(_running(pid) for pid in python_children) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not [pid for pid in python_children if _running(pid)]
