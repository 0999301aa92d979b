"""Real pieces around a real Envoy: the control plane on its own event loop, an
upstream that records what reaches it, and an ext_authz (+ pass-through ext_proc)
server that records what Envoy asks and allows, setting ``x-ztgate-subject``.

Everything listens on loopback ports the kernel picks, so runs in parallel do
not collide.
"""

from __future__ import annotations

import asyncio
import copy
import http.client
import json
import socket
import threading
import time
from collections.abc import Callable, Coroutine, Iterator, Mapping
from concurrent import futures
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeVar

import grpc
from envoy.config.core.v3.base_pb2 import HeaderValue, HeaderValueOption
from envoy.service.auth.v3 import external_auth_pb2, external_auth_pb2_grpc
from envoy.service.ext_proc.v3 import external_processor_pb2, external_processor_pb2_grpc
from envoy.type.v3.http_status_pb2 import HttpStatus
from google.rpc import status_pb2

from edge_nodes import pki
from edge_nodes.envoy import EnvoyOptions, LocalEnvoy
from edge_nodes.server import ControlPlane, file_loader

T = TypeVar("T")
SUBJECT = "cust-7d3f9a20"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(predicate: Callable[[], T], timeout: float = 10.0, interval: float = 0.02) -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(interval)


# --- the control plane, on a loop of its own ---------------------------------------


class ControlPlaneThread:
    def __init__(
        self,
        config_path: Path,
        xds_port: int = 0,
        admin_port: int = 0,
        base: dict[str, Any] | None = None,
    ) -> None:
        self.config_path = config_path
        self.base = base or {}
        """The document the control plane started on (tests restore it)."""
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self.cp = self.run(self._make(xds_port, admin_port))

    async def _make(self, xds_port: int, admin_port: int) -> ControlPlane:
        cp = ControlPlane(file_loader(self.config_path), xds_port=xds_port, admin_port=admin_port)
        await cp.start()
        return cp

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    @property
    def xds_port(self) -> int:
        return self.cp.xds_port

    @property
    def admin(self) -> str:
        return f"http://127.0.0.1:{self.cp.admin_port}"

    def request(self, method: str, path: str) -> tuple[int, dict[str, Any]]:
        conn = http.client.HTTPConnection("127.0.0.1", self.cp.admin_port, timeout=10)
        try:
            conn.request(method, path)
            resp = conn.getresponse()
            return resp.status, json.loads(resp.read())
        finally:
            conn.close()

    def reload(self) -> tuple[int, dict[str, Any]]:
        return self.request("POST", "/config/reload")

    def node(self, node_id: str) -> dict[str, Any]:
        _, doc = self.request("GET", "/nodes")
        for node in doc["nodes"]:
            if node["node_id"] == node_id:
                return dict(node)
        raise AssertionError(f"node {node_id} not in the registry")

    def stop(self) -> None:
        self.run(self.cp.stop(0))
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()


# --- an upstream that records --------------------------------------------------------


@dataclass(frozen=True)
class Seen:
    method: str
    path: str
    headers: list[tuple[str, str]]

    def header(self, name: str) -> list[str]:
        return [v for k, v in self.headers if k.lower() == name]


class RecordingUpstream:
    def __init__(self) -> None:
        self.seen: list[Seen] = []
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _answer(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                if length:
                    self.rfile.read(length)
                if self.path != "/healthz":
                    recorder.seen.append(Seen(self.command, self.path, list(self.headers.items())))
                body = json.dumps(
                    {"ok": True, "path": self.path, "customer": {"phone": "13812345678"}}
                ).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_HEAD = do_PUT = do_DELETE = _answer

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = int(self._server.server_address[1])
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def clear(self) -> None:
        self.seen.clear()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


# --- the edge agent's stand-in: ext_authz + pass-through ext_proc --------------------


@dataclass
class AuthzRecord:
    path: str
    method: str
    headers: dict[str, str]
    context: dict[str, str]
    certificate: str


@dataclass
class RecordingAuthz:
    """Allows every request (unless `deny` or `delay` say otherwise), setting
    ``x-ztgate-subject`` and ordering the removal of any other ``x-ztgate-*``
    header it was sent — what the real agent does."""

    checks: list[AuthzRecord] = field(default_factory=list)
    processed: list[str] = field(default_factory=list)
    deny: bool = False
    delay: float = 0.0
    port: int = 0
    _server: Any = None

    def start(self, port: int = 0) -> RecordingAuthz:
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
        external_auth_pb2_grpc.add_AuthorizationServicer_to_server(_Authz(self), server)
        external_processor_pb2_grpc.add_ExternalProcessorServicer_to_server(_Proc(self), server)
        self.port = server.add_insecure_port(f"127.0.0.1:{port}")
        server.start()
        self._server = server
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop(0).wait()
            self._server = None


class _Authz(external_auth_pb2_grpc.AuthorizationServicer):  # type: ignore[misc]
    def __init__(self, rec: RecordingAuthz) -> None:
        self.rec = rec

    def Check(self, request: Any, context: Any) -> Any:
        attrs = request.attributes
        http = attrs.request.http
        self.rec.checks.append(
            AuthzRecord(
                http.path,
                http.method,
                dict(http.headers),
                dict(attrs.context_extensions),
                attrs.source.certificate,
            )
        )
        if self.rec.delay:
            time.sleep(self.rec.delay)
        if self.rec.deny:
            return external_auth_pb2.CheckResponse(
                status=status_pb2.Status(code=7),
                denied_response=external_auth_pb2.DeniedHttpResponse(
                    status=HttpStatus(code=403), body='{"error":"denied"}'
                ),
            )
        keep = ("x-ztgate-subject", "x-ztgate-ja4")
        stale = [h for h in http.headers if h.startswith("x-ztgate-") and h not in keep]
        ok = [
            HeaderValueOption(
                header=HeaderValue(key="x-ztgate-subject", value=SUBJECT),
                append_action=HeaderValueOption.OVERWRITE_IF_EXISTS_OR_ADD,
            )
        ]
        # "Bearer partner:<id>" stands for a partner's token: the allow names the
        # partner in x-ztgate-client, as the agent does.
        token = http.headers.get("authorization", "")
        if token.startswith("Bearer partner:"):
            ok.append(
                HeaderValueOption(
                    header=HeaderValue(
                        key="x-ztgate-client", value=token.removeprefix("Bearer partner:")
                    ),
                    append_action=HeaderValueOption.OVERWRITE_IF_EXISTS_OR_ADD,
                )
            )
        return external_auth_pb2.CheckResponse(
            status=status_pb2.Status(code=0),
            ok_response=external_auth_pb2.OkHttpResponse(headers=ok, headers_to_remove=stale),
        )


class _Proc(external_processor_pb2_grpc.ExternalProcessorServicer):  # type: ignore[misc]
    """Pass-through: answers each message with an empty (no-change) response."""

    def __init__(self, rec: RecordingAuthz) -> None:
        self.rec = rec

    def Process(self, request_iterator: Iterator[Any], context: Any) -> Iterator[Any]:
        pb = external_processor_pb2
        for req in request_iterator:
            kind = req.WhichOneof("request")
            self.rec.processed.append(kind)
            if kind == "response_headers":
                yield pb.ProcessingResponse(response_headers=pb.HeadersResponse())
            elif kind == "response_body":
                yield pb.ProcessingResponse(response_body=pb.BodyResponse())
            elif kind == "request_headers":
                yield pb.ProcessingResponse(request_headers=pb.HeadersResponse())
            elif kind == "request_body":
                yield pb.ProcessingResponse(request_body=pb.BodyResponse())


# --- configuration files for the tests ----------------------------------------------


def make_pki(directory: Path) -> tuple[pki.Issued, pki.Issued, pki.Issued]:
    """CA, server certificate and one partner client certificate."""
    ca, server = pki.ensure_local_pki(directory)
    client = pki.issue_client_certificate(ca, directory / "pki", "partner", "partner-fintech")
    return ca, server, client


def base_config(
    *,
    upstream_port: int,
    agent_ports: list[int],
    plain_port: int,
    tls_port: int,
    routes: list[Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    listeners: list[dict[str, Any]] = [
        {"name": "plain", "address": "127.0.0.1", "port": plain_port}
    ]
    doc: dict[str, Any] = {
        "version": 1,
        "control_plane": {"secret_poll_ms": 200},
        "listeners": listeners,
        "agent": {"address": "127.0.0.1", "ports": agent_ports, "timeout_ms": 250},
        "clusters": {
            "bank": {
                "endpoints": [{"address": "127.0.0.1", "port": upstream_port}],
                "health_check": {"path": "/healthz", "interval_ms": 1000},
            }
        },
        "routes": copy.deepcopy(list(routes or DEFAULT_ROUTES)),
    }
    if tls_port:
        listeners.append(
            {
                "name": "tls",
                "address": "127.0.0.1",
                "port": tls_port,
                "tls": {"certificate": "edge-server", "client_ca": "client-ca"},
            }
        )
        doc["secrets"] = {
            "certificates": {
                "edge-server": {
                    "certificate_chain": "pki/edge-server.crt",
                    "private_key": "pki/edge-server.key",
                }
            },
            "trusted_cas": {"client-ca": {"file": "pki/ca.crt"}},
        }
    return doc


DEFAULT_ROUTES: list[dict[str, Any]] = [
    {
        "id": "public.info",
        "prefix": "/public/",
        "cluster": "bank",
        "api_product": "products",
        "classification": "public",
    },
    {
        "id": "accounts.balance",
        "template": "/accounts/{account_id}/balance",
        "methods": ["GET"],
        "cluster": "bank",
        "api_product": "retail-accounts",
        "classification": "account",
        "masking": True,
    },
    {
        "id": "admin.ops",
        "prefix": "/admin/",
        "cluster": "bank",
        "api_product": "remote-service",
        "classification": "staff",
    },
    {
        "id": "partner.accounts",
        "prefix": "/partner/",
        "cluster": "bank",
        "api_product": "open-banking-accounts",
        "classification": "partner",
        "mtls": True,
    },
]


def write_config(path: Path, doc: Mapping[str, Any]) -> Path:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(doc, indent=2))
    tmp.replace(path)
    return path


def start_envoy(work_dir: Path, node_id: str, xds_port: int, *, delta: bool = False) -> LocalEnvoy:
    envoy = LocalEnvoy(
        EnvoyOptions(node_id=node_id, xds_port=xds_port, work_dir=work_dir, delta=delta)
    )
    asyncio.run(envoy.start())
    return envoy


def envoy_stats(envoy: LocalEnvoy, prefix: str = "") -> dict[str, int]:
    return asyncio.run(envoy.stats(prefix))


def stop_envoy(envoy: LocalEnvoy) -> None:
    asyncio.run(envoy.stop())


def http_request(
    port: int,
    path: str,
    *,
    method: str = "GET",
    headers: Mapping[str, str] | None = None,
    body: bytes | None = None,
) -> tuple[int, dict[str, str], bytes]:
    """One HTTP/1.1 request with the path sent exactly as given (no client-side
    normalisation)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        conn.putheader("host", "edge.test")
        for k, v in (headers or {}).items():
            conn.putheader(k, v)
        if body is not None:
            conn.putheader("content-length", str(len(body)))
        conn.endheaders(body)
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()
