"""Worker processes: each serves ext_authz on its own port, revocations reach every
one of them through the shared store, a crashed worker comes back, SIGTERM stops
them all cleanly. Real processes (spawn), real gRPC, real SQLite/PostgreSQL."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from pathlib import Path

import grpc
import pytest
from envoy.service.auth.v3 import external_auth_pb2_grpc
from envoy.service.auth.v3.external_auth_pb2 import CheckResponse

from authn.store import Store, open_store
from authn.tokens import TokenConfig, TokenIssuer
from crypto.keyring import KeyRing
from gateway.agent_config import AgentConfig
from gateway.workers import Supervisor, WorkerStartError
from tests.authn.conftest import POSTGRES_URL
from tests.gateway.doubles import make_components
from tests.gateway.harness import (
    ISSUER,
    PEPPER,
    check_request,
    customer_token,
    free_ports,
    make_config,
    signals,
)

ROOT = Path(__file__).resolve().parents[2]


async def check(port: int, request: object) -> CheckResponse:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = external_auth_pb2_grpc.AuthorizationStub(channel)
        response: CheckResponse = await stub.Check(request, timeout=10)
        return response


def verdict(response: CheckResponse) -> str:
    return str(response.WhichOneof("http_response"))


class Fleet:
    def __init__(self, config: AgentConfig, token_ring: KeyRing) -> None:
        self.config = config
        self.token_ring = token_ring
        self.supervisor = Supervisor(config, make_components, log_level="warning")

    def __enter__(self) -> Fleet:
        self.supervisor.start(timeout=120)
        return self

    def __exit__(self, *_: object) -> None:
        self.supervisor.stop()


@pytest.fixture
def fleet_config(tmp_path: Path) -> Iterator[tuple[AgentConfig, KeyRing]]:
    config, token_ring, _ = make_config(tmp_path)
    yield replace(config, workers=2, base_port=free_ports(2)), token_ring


async def _issuer(store: Store, ring: KeyRing) -> TokenIssuer:
    return TokenIssuer(store, ring, TokenConfig(issuer=ISSUER), refresh_pepper=PEPPER)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
async def shared_store(
    request: pytest.FixtureRequest, fleet_config: tuple[AgentConfig, KeyRing]
) -> AsyncIterator[tuple[AgentConfig, KeyRing, Store]]:
    config, ring = fleet_config
    if request.param == "postgresql":
        schema = f"t_{os.urandom(8).hex()}"
        try:
            store = await open_store(POSTGRES_URL, schema=schema)
        except OSError as exc:
            pytest.fail(f"PostgreSQL is not reachable at 127.0.0.1:5432 ({exc})", pytrace=False)
        config = replace(config, store_url=POSTGRES_URL, store_schema=schema)
    else:
        store = await open_store(config.store_url)  # created and migrated before the workers
    try:
        yield config, ring, store
    finally:
        await store.close()
        if request.param == "postgresql":
            import asyncpg  # type: ignore[import-untyped]

            admin = await asyncpg.connect(POSTGRES_URL)
            try:
                await admin.execute(f'DROP SCHEMA IF EXISTS "{config.store_schema}" CASCADE')
            finally:
                await admin.close()


async def test_a_revoked_token_is_refused_by_every_worker(
    shared_store: tuple[AgentConfig, KeyRing, Store],
) -> None:
    config, ring, store = shared_store
    issuer = await _issuer(store, ring)
    subject, token = await customer_token(store, ring, "alice")
    headers = {"authorization": f"Bearer {token}", "x-device-signals": signals("d1", subject)}
    request = check_request(headers=headers)
    with Fleet(config, ring) as fleet:
        ports = fleet.supervisor.ports
        assert len(ports) == 2 and len(set(fleet.supervisor.pids())) == 2
        for port in ports:  # each worker verifies and caches the token
            assert verdict(await check(port, request)) == "ok_response"
        await issuer.revoke(token)
        pending, deadline = set(ports), time.monotonic() + 10
        while pending:
            assert time.monotonic() < deadline, f"workers on {pending} still accept the token"
            for port in list(pending):
                response = await check(port, request)
                if verdict(response) == "denied_response":
                    assert response.denied_response.status.code == 401
                    pending.discard(port)
            await asyncio.sleep(0.05)
    logs = sorted(p.name for p in config.decision_log_dir.iterdir())
    assert logs == ["decisions-0.jsonl", "decisions-1.jsonl"]  # flushed on shutdown
    assert all((config.decision_log_dir / name).stat().st_size > 0 for name in logs)


async def test_a_crashed_worker_is_restarted_on_its_port(
    fleet_config: tuple[AgentConfig, KeyRing],
) -> None:
    config, ring = fleet_config
    await (await open_store(config.store_url)).close()
    public = check_request(
        path="/products",
        route={"route_id": "products.list", "api_product": "products", "classification": "public"},
    )
    with Fleet(config, ring) as fleet:
        supervisor = fleet.supervisor
        victim = supervisor.pids()[0]
        assert victim is not None
        os.kill(victim, signal.SIGKILL)
        deadline = time.monotonic() + 60
        while not supervisor.supervise_once():
            assert time.monotonic() < deadline, "the dead worker was not restarted"
            await asyncio.sleep(0.1)
        assert supervisor.pids()[0] not in (None, victim) and supervisor.restarts == 1
        while True:
            with contextlib.suppress(grpc.aio.AioRpcError):
                if verdict(await check(supervisor.ports[0], public)) == "ok_response":
                    break
            assert time.monotonic() < deadline, "the restarted worker never served"
            await asyncio.sleep(0.2)
        assert verdict(await check(supervisor.ports[1], public)) == "ok_response"


def test_a_worker_that_cannot_start_fails_the_start(tmp_path: Path) -> None:
    config, _ring, _ = make_config(tmp_path)
    (tmp_path / "token-jwks.json").write_text("{}")  # unusable keys: the worker exits
    supervisor = Supervisor(replace(config, workers=1, base_port=free_ports(1)), make_components)
    with pytest.raises(WorkerStartError, match="worker 0 exited with status 3"):
        supervisor.start(timeout=120)


async def test_sigterm_stops_every_worker_cleanly(
    tmp_path: Path, fleet_config: tuple[AgentConfig, KeyRing]
) -> None:
    config, _ = fleet_config
    await (await open_store(config.store_url)).close()
    toml = tmp_path / "edge.toml"
    toml.write_text(
        "[agent]\n"
        f'store_url = "{config.store_url}"\n'
        f'token_jwks = "{config.token_jwks}"\n'
        f'assertion_keyring = "{config.assertion_keyring}"\n'
        f'decision_log_dir = "{config.decision_log_dir}"\n'
        f"base_port = {config.base_port}\n"
        "workers = 2\n"
    )
    parent = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gateway.workers",
            str(toml),
            "--components",
            "tests.gateway.doubles:make_components",
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    public = check_request(
        path="/products",
        route={"route_id": "products.list", "api_product": "products", "classification": "public"},
    )
    try:
        deadline = time.monotonic() + 120
        for port in config.worker_ports():
            while True:
                assert parent.poll() is None, parent.stderr.read() if parent.stderr else ""
                with contextlib.suppress(grpc.aio.AioRpcError):
                    if verdict(await check(port, public)) == "ok_response":
                        break
                assert time.monotonic() < deadline, "workers never served"
                await asyncio.sleep(0.2)
        parent.send_signal(signal.SIGTERM)
        assert parent.wait(timeout=30) == 0
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()
    for port in config.worker_ports():  # nothing listens any more: the workers are gone
        with socket.socket() as sock:
            assert sock.connect_ex(("127.0.0.1", port)) != 0
    for worker in (0, 1):
        assert (config.decision_log_dir / f"decisions-{worker}.jsonl").stat().st_size > 0
