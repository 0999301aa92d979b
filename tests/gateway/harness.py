"""A real edge agent for tests: store, keys, policy, decision log and gRPC server.

Everything is what production runs except the device and risk steps, which are
the deterministic doubles of tests/gateway/doubles.py. The authorization server
is a `TokenIssuer` with its own store connection and its own verifier, as the
authentication service is another process: revocations reach the agent only
through the store.
"""

from __future__ import annotations

import base64
import json
import random
import secrets
import socket
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import quote

import grpc
from cryptography import x509
from envoy.service.auth.v3 import external_auth_pb2_grpc
from envoy.service.auth.v3.external_auth_pb2 import CheckRequest, CheckResponse

from authn.store import Store, open_store
from authn.tokens import TokenConfig, TokenIssuer
from crypto.keyring import KeyRing
from gateway.agent import Agent, open_agent
from gateway.agent_config import AgentConfig
from gateway.assertion import AssertionKeys
from gateway.ext_authz import start_server
from gateway.pipeline import Components
from tests.gateway.doubles import SignalsDevice, TableRisk

ISSUER = "http://localhost:8081"
HOST = "api.bank.example"
CLIENT_ADDRESS = "203.0.113.45"
PEPPER = b"\x07" * 32
ACCOUNT_ROUTE = {
    "route_id": "accounts.balances",
    "api_product": "retail-accounts",
    "classification": "account",
}
TRANSFER_ROUTE = {
    "route_id": "transfers.create",
    "api_product": "retail-payments",
    "classification": "transfer",
}
PUBLIC_ROUTE = {"route_id": "products.list", "api_product": "products", "classification": "public"}
PARTNER_ROUTE = {
    "route_id": "ob.accounts.list",
    "api_product": "open-banking-accounts",
    "classification": "partner",
}


def signals(device_id: str, bound_to: str | None = None, **extra: Any) -> str:
    """An ``x-device-signals`` value: base64url of the collector's JSON."""
    payload = {"device_id": device_id, "bound_to": bound_to, **extra}
    return base64.urlsafe_b64encode(json.dumps(payload).encode()).rstrip(b"=").decode()


def check_request(
    *,
    method: str = "GET",
    path: str = "/accounts/v1/accounts/1/balances",
    host: str = HOST,
    headers: Mapping[str, str] | None = None,
    route: Mapping[str, str] | None = ACCOUNT_ROUTE,
    mtls: bool | None = None,
    certificate_pem: bytes | None = None,
    address: str = CLIENT_ADDRESS,
    scheme: str = "https",
) -> CheckRequest:
    """A CheckRequest shaped as Envoy sends it (lower-case header names, pseudo-headers)."""
    request = CheckRequest()
    attributes = request.attributes
    attributes.source.address.socket_address.address = address
    attributes.source.address.socket_address.port_value = 51234
    if certificate_pem is not None:
        attributes.source.certificate = quote(certificate_pem.decode("ascii"), safe="")
    http = attributes.request.http
    http.method, http.path, http.host, http.scheme = method, path, host, scheme
    http.protocol = "HTTP/2"
    all_headers = {":method": method, ":path": path, ":authority": host, ":scheme": scheme}
    all_headers.update({"user-agent": "BankApp/8.4.2", "accept": "application/json"})
    all_headers.update(headers or {})
    for name, value in all_headers.items():
        http.headers[name] = value
    if route is not None:
        for key, value in route.items():
            attributes.context_extensions[key] = value
    if mtls is not None:
        attributes.context_extensions["mtls"] = "true" if mtls else "false"
    return request


def pem_of(cert_der: bytes) -> bytes:
    from cryptography.hazmat.primitives.serialization import Encoding

    return x509.load_der_x509_certificate(cert_der).public_bytes(Encoding.PEM)


@dataclass
class Denied:
    status: int
    body: dict[str, Any]
    headers: dict[str, str]
    grpc_code: int


@dataclass
class Edge:
    tmp: Path
    config: AgentConfig
    store: Store
    """The authorization server's own connection to the store."""
    token_ring: KeyRing
    issuer: TokenIssuer
    agent: Agent
    server: grpc.aio.Server
    port: int
    channel: grpc.aio.Channel
    stub: Any
    assertion_keys: AssertionKeys
    components: Components
    _users: dict[str, str] = field(default_factory=dict)

    async def check(self, request: CheckRequest) -> CheckResponse:
        response: CheckResponse = await self.stub.Check(request, timeout=10)
        return response

    async def user(self, name: str = "alice", kind: str = "customer") -> str:
        if name not in self._users:
            user = await self.store.create_user(name, name.title(), kind)  # type: ignore[arg-type]
            self._users[name] = user.subject
        return self._users[name]

    async def token(self, subject: str, **overrides: Any) -> str:
        args: dict[str, Any] = {
            "subject": subject,
            "client_id": "ztgate-app",
            "acr": "urn:ztgate:acr:mfa",
            "amr": ["pwd", "otp"],
            "auth_time": int(time.time()) - 5,
            "scope": "accounts:read payments:write",
            "with_refresh": False,
        }
        args.update(overrides)
        return (await self.issuer.issue(**args)).access_token

    async def close(self) -> None:
        await self.channel.close()
        await self.server.stop(0)
        await self.agent.close()
        await self.store.close()


async def customer_token(store: Store, token_ring: KeyRing, username: str) -> tuple[str, str]:
    """A new customer in `store` and an access token for it: (subject, token)."""
    subject = (await store.create_user(username, username.title(), "customer")).subject
    issuer = TokenIssuer(store, token_ring, TokenConfig(issuer=ISSUER), refresh_pepper=PEPPER)
    response = await issuer.issue(
        subject=subject,
        client_id="ztgate-app",
        acr="urn:ztgate:acr:mfa",
        amr=["pwd", "otp"],
        auth_time=int(time.time()),
        scope="accounts:read",
        with_refresh=False,
    )
    return subject, response.access_token


def write_jwks(path: Path, ring: KeyRing) -> Path:
    path.write_text(json.dumps(ring.jwks()))
    return path


def make_config(tmp: Path, **overrides: Any) -> tuple[AgentConfig, KeyRing, KeyRing]:
    """An AgentConfig over fresh keys in `tmp`: (config, token ring, assertion ring)."""
    token_ring = KeyRing()
    token_ring.generate("sm2")
    assertion_ring = KeyRing()
    assertion_ring.generate("sm2")
    assertion_ring.save(tmp / "assertion-keys")
    config = AgentConfig(
        node_id="edge-test",
        store_url=f"sqlite://{tmp / 'authn.db'}",
        token_jwks=write_jwks(tmp / "token-jwks.json", token_ring),
        token_issuer=ISSUER,
        assertion_keyring=tmp / "assertion-keys",
        decision_log_dir=tmp / "decision-logs",
        revocation_sync_seconds=0.2,
        revocation_max_staleness=5.0,
        policy_watch_seconds=60.0,
        check_timeout=2.0,  # generous: two shared cores; the timeout tests set their own
    )
    return replace(config, **overrides), token_ring, assertion_ring


async def start_edge(tmp: Path, components: Components | None = None, **overrides: Any) -> Edge:
    config, token_ring, assertion_ring = make_config(tmp, **overrides)
    store = await open_store(config.store_url)
    issuer = TokenIssuer(
        store,
        token_ring,
        TokenConfig(issuer=ISSUER, audience=config.token_audience),
        refresh_pepper=PEPPER,
    )
    components = components or Components(SignalsDevice(), TableRisk())
    agent = await open_agent(config, components)
    server, port = await start_server(agent.pipeline, "127.0.0.1", 0, signer=agent.response_signer)
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    stub = external_auth_pb2_grpc.AuthorizationStub(channel)
    keys = AssertionKeys.from_jwks(assertion_ring.jwks())
    return Edge(
        tmp, config, store, token_ring, issuer, agent, server, port, channel, stub, keys, components
    )


def denied(response: CheckResponse) -> Denied:
    assert response.WhichOneof("http_response") == "denied_response", response
    denied_response = response.denied_response
    headers = {h.header.key: h.header.value for h in denied_response.headers}
    assert headers["content-type"] == "application/json"
    assert headers["cache-control"] == "no-store"
    return Denied(
        denied_response.status.code,
        json.loads(denied_response.body),
        headers,
        response.status.code,
    )


def allowed(response: CheckResponse) -> tuple[dict[str, str], list[str]]:
    """(headers set upstream, headers removed) of an allow."""
    assert response.WhichOneof("http_response") == "ok_response", response
    assert response.status.code == 0
    ok = response.ok_response
    for option in ok.headers:
        assert option.append_action == option.OVERWRITE_IF_EXISTS_OR_ADD
    return {h.header.key: h.header.value for h in ok.headers}, list(ok.headers_to_remove)


def random_name() -> str:
    return "user-" + secrets.token_hex(4)


def free_ports(count: int) -> int:
    """A base port with `count` consecutive free ports after it."""
    for _ in range(100):
        base = random.randrange(20000, 60000)
        sockets = []
        try:
            for port in range(base, base + count):
                sock = socket.socket()
                sockets.append(sock)
                sock.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for sock in sockets:
                sock.close()
    raise AssertionError("no free port range")
