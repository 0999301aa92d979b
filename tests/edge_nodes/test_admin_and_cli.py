"""The control plane's admin API refuses what a browser could smuggle in, answers
errors as JSON; `ztgate nodes` reports an unreachable control plane clearly and
prints what the registry holds; the local CA's certificates are what TLS peers
(OpenSSL) accept."""

from __future__ import annotations

import http.client
import json
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID

from edge_nodes import pki
from tests.edge_nodes.harness import (
    ControlPlaneThread,
    base_config,
    free_port,
    make_pki,
    write_config,
)
from ztgate.nodes_cli import render_table


def _raw(
    cp: ControlPlaneThread, method: str, path: str, headers: dict[str, str]
) -> tuple[int, dict[str, str]]:
    conn = http.client.HTTPConnection("127.0.0.1", cp.cp.admin_port, timeout=10)
    try:
        conn.request(method, path, headers=headers)
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read())
    finally:
        conn.close()


def test_health_and_empty_registry(cp: ControlPlaneThread) -> None:
    status, body = cp.request("GET", "/healthz")
    assert status == 200 and body["status"] == "ok" and body["generation"] >= 1
    status, body = cp.request("GET", "/nodes")
    assert status == 200 and body["nodes"] == []


@pytest.mark.parametrize(
    ("method", "path", "headers", "expected"),
    [
        ("GET", "/nodes", {"Host": "evil.example"}, (403, "forbidden_host")),
        ("GET", "/nodes", {"Host": "127.0.0.1.evil.example:80"}, (403, "forbidden_host")),
        (
            "POST",
            "/config/reload",
            {"Origin": "https://evil.example"},
            (403, "cross_origin_request"),
        ),
        ("GET", "/config/reload", {}, (405, "method_not_allowed")),
        ("GET", "/secrets", {}, (404, "not_found")),
    ],
)
def test_admin_api_refusals_are_json(
    cp: ControlPlaneThread,
    method: str,
    path: str,
    headers: dict[str, str],
    expected: tuple[int, str],
) -> None:
    status, body = _raw(cp, method, path, headers)
    assert (status, body["error"]) == expected


def test_loopback_host_names_are_accepted(cp: ControlPlaneThread) -> None:
    for host in ("localhost:1", "127.0.0.1", "[::1]:18001"):
        assert _raw(cp, "GET", "/healthz", {"Host": host})[0] == 200


def _ztgate(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ztgate", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_nodes_command_reports_an_unreachable_control_plane() -> None:
    proc = _ztgate("nodes", "--control-plane", f"http://127.0.0.1:{free_port()}")
    assert proc.returncode == 2
    assert proc.stderr.startswith("ztgate: cannot reach the control plane at http://127.0.0.1:")
    proc = _ztgate("nodes", "--control-plane", "file:///etc/passwd")
    assert proc.returncode == 2 and "is not an http(s) URL" in proc.stderr


def test_nodes_command_on_an_empty_registry(cp: ControlPlaneThread) -> None:
    proc = _ztgate("nodes", "--control-plane", cp.admin)
    assert proc.returncode == 0, proc.stderr
    assert "(no node has connected)" in proc.stdout


def test_table_rendering_keeps_node_text_on_one_line() -> None:
    doc = {
        "now": 1000.0,
        "nodes": [
            {
                "node_id": "edge-1",
                "connected": False,
                "snapshot_version": "abc",
                "acked_version": "abd",
                "in_sync": False,
                "last_seen": 400.0,
                "error_current": True,
                "last_error": {
                    "type": "rds",
                    "version": "0123456789abcdef",
                    "message": "bad\nregex\x1b[31m " + "x" * 300,
                    "at": 990.0,
                },
            }
        ],
    }
    lines = render_table(doc).splitlines()
    assert len(lines) == 2
    assert "disconnected" in lines[1] and "10m ago" in lines[1]
    assert "rds 01234567 rejected 10s ago (current): bad regex" in lines[1]
    assert "\x1b" not in lines[1] and lines[1].endswith("…")


def test_local_pki(tmp_path: Path, ossl) -> None:  # type: ignore[no-untyped-def]
    ca, server = pki.ensure_local_pki(tmp_path)
    again = pki.ensure_local_pki(tmp_path)
    assert (
        again == (ca, server) and ca.certificate.read_bytes() == again[0].certificate.read_bytes()
    )
    for issued in (ca, server):
        assert stat.S_IMODE(issued.private_key.stat().st_mode) == 0o600
    cert = x509.load_pem_x509_certificate(server.certificate.read_bytes())
    assert isinstance(cert.public_key(), ec.EllipticCurvePublicKey)
    assert cert.public_key().curve.name == "secp256r1"  # type: ignore[union-attr]
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["localhost"]
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.SERVER_AUTH]
    client = pki.issue_client_certificate(ca, tmp_path / "pki", "partner", "partner-a")
    ossl("verify", "-CAfile", ca.certificate, "-purpose", "sslserver", server.certificate)
    ossl("verify", "-CAfile", ca.certificate, "-purpose", "sslclient", client.certificate)
    wrong = ossl(
        "verify", "-CAfile", ca.certificate, "-purpose", "sslserver", client.certificate, ok=False
    )
    assert wrong.returncode != 0


def _line(proc: subprocess.Popen[str]) -> dict[str, object]:
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line, proc.stderr.read() if proc.stderr else "no output"
    doc: dict[str, object] = json.loads(line)
    return doc


def _alive(pid: int) -> bool:
    import os

    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_control_plane_and_edge_envoy_commands(tmp_path: Path) -> None:
    from tests.edge_nodes.harness import wait_for

    make_pki(tmp_path)
    doc = base_config(
        upstream_port=free_port(), agent_ports=[9], plain_port=free_port(), tls_port=free_port()
    )
    config = write_config(tmp_path / "gateway.json", doc)
    base = [sys.executable, "-m", "ztgate"]
    cp = subprocess.Popen(
        [
            *base,
            "control-plane",
            "--gateway-config",
            str(config),
            "--xds-port",
            "0",
            "--admin-port",
            "0",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    envoy = None
    try:
        ports = _line(cp)
        envoy = subprocess.Popen(
            [
                *base,
                "edge-envoy",
                "--node-id",
                "cli-node",
                "--xds-port",
                str(ports["xds_port"]),
                "--work-dir",
                str(tmp_path / "envoy"),
                "--concurrency",
                "1",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        started = _line(envoy)
        envoy_pid = int(str(started["envoy_pid"]))
        table = _ztgate("nodes", "--control-plane", f"http://127.0.0.1:{ports['admin_port']}")
        assert "cli-node" in table.stdout and "connected" in table.stdout
        envoy.send_signal(__import__("signal").SIGTERM)
        assert envoy.wait(15) == 0
        wait_for(lambda: not _alive(envoy_pid), timeout=10)  # Envoy went with it
        cp.send_signal(__import__("signal").SIGTERM)
        assert cp.wait(15) == 0
    finally:
        for proc in (envoy, cp):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait()


def test_control_plane_refuses_a_bad_file_naming_the_key(tmp_path: Path) -> None:
    config = write_config(tmp_path / "gateway.json", {"version": 1, "listeners": []})
    proc = _ztgate("control-plane", "--gateway-config", str(config), "--xds-port", "0")
    assert proc.returncode == 2
    assert proc.stderr.strip() == "ztgate: gateway configuration: clusters: is required"
