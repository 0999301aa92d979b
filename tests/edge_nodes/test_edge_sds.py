"""Secrets rotate through SDS: a new server certificate written over the old files
reaches Envoy without a reload or restart, new handshakes get it, and a connection
established before the rotation keeps working on the same socket."""

from __future__ import annotations

import socket
import ssl

from cryptography import x509

from edge_nodes import pki
from tests.edge_nodes.conftest import NODE, Edge
from tests.edge_nodes.harness import wait_for


def _connect(edge: Edge) -> ssl.SSLSocket:
    ctx = ssl.create_default_context(cafile=str(edge.ca.certificate))
    raw = socket.create_connection(("127.0.0.1", edge.tls), timeout=10)
    return ctx.wrap_socket(raw, server_hostname="localhost")


def _serial(sock: ssl.SSLSocket) -> int:
    der = sock.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der).serial_number


def _get(sock: ssl.SSLSocket, path: str) -> int:
    """One HTTP/1.1 request on an open connection (kept alive); returns the status."""
    sock.sendall(f"GET {path} HTTP/1.1\r\nhost: edge.test\r\n\r\n".encode())
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, "connection closed"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    length = next(
        int(v) for k, _, v in (h.partition(": ") for h in lines[1:]) if k == "content-length"
    )
    while len(body) < length:
        body += sock.recv(65536)
    return int(lines[0].split()[1])


def _new_serial(edge: Edge) -> int:
    with _connect(edge) as sock:
        return _serial(sock)


def test_server_certificate_rotates_without_dropping_connections(edge: Edge) -> None:
    old = _connect(edge)
    try:
        old_serial = _serial(old)
        assert _get(old, "/public/before") == 200
        sds_before = edge.cp.node(NODE)["types"]["sds"]["acked_version"]

        pki.issue_server_certificate(edge.ca, edge.dir / "pki")  # overwrites edge-server.*
        new_serial = wait_for(lambda: (s := _new_serial(edge)) != old_serial and s, timeout=10)

        node = edge.wait_in_sync()
        assert node["types"]["sds"]["acked_version"] != sds_before
        # The connection made before the rotation still serves requests.
        assert _get(old, "/public/after") == 200
        assert _serial(old) == old_serial != new_serial
        assert [s.path for s in edge.upstream.seen[-2:]] == ["/public/before", "/public/after"]
    finally:
        old.close()


def test_a_broken_rotation_is_refused_and_the_current_certificate_stays(edge: Edge) -> None:
    serial = _new_serial(edge)
    version = edge.cp.node(NODE)["acked_version"]
    key = edge.dir / "pki" / "edge-server.key"
    good = key.read_bytes()
    other = pki.issue_client_certificate(edge.ca, edge.dir / "pki", "unrelated", "unrelated")
    key.write_bytes(other.private_key.read_bytes())  # a key that does not match the cert
    try:
        status, body = edge.cp.reload()
        assert status == 422
        assert body["key"] == "secrets.certificates.edge-server.private_key"
        assert "does not match" in body["problem"]
        assert _new_serial(edge) == serial
        assert edge.cp.node(NODE)["snapshot_version"] == version
    finally:
        key.write_bytes(good)
