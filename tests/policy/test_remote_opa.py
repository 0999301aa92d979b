"""The remote OPA engine (`policy.remote_opa`) against real HTTP servers: ztgate's own
OPA-compatible policy service, and small aiohttp peers that misbehave (slow, 5xx,
garbage, wrong shape, refusing connections). A failure is always a deny with a
reason — never an exception, never an allow."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from aiohttp import web
from hypothesis import given, settings
from hypothesis import strategies as st

from policy.contract import example_input
from policy.decision import Decision
from policy.reload import PolicyHolder
from policy.remote_opa import (
    REASON_CIRCUIT_OPEN,
    REASON_REMOTE_ERROR,
    REASON_REMOTE_TIMEOUT,
    CircuitBreaker,
    RemoteOpaEngine,
    RemoteOpaError,
)
from policy.server import PolicyServerConfig, RunningPolicyServer, start_policy_server
from tests.policy.server_harness import mini_bundle, route_input

Respond = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Peer:
    """A misbehaving 'OPA': every request gets `respond`'s answer; requests are counted."""

    def __init__(self, respond: Respond) -> None:
        self.respond = respond
        self.requests = 0
        self.runner: web.AppRunner | None = None
        self.url = ""

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.requests += 1
        await request.read()
        return await self.respond(request)

    async def start(self) -> Peer:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self.runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{self.runner.addresses[0][1]}"
        return self

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()


def answer(status: int = 200, body: bytes | str = b"{}") -> Respond:
    async def respond(request: web.Request) -> web.StreamResponse:
        data = body.encode() if isinstance(body, str) else body
        return web.Response(status=status, body=data, content_type="application/json")

    return respond


async def hang(request: web.Request) -> web.StreamResponse:
    await asyncio.Event().wait()  # never answers; cancelled when the peer stops
    raise AssertionError("unreachable")


@pytest.fixture
async def peers() -> AsyncIterator[Callable[[Respond], Awaitable[Peer]]]:
    started: list[Peer] = []

    async def make(respond: Respond) -> Peer:
        peer = await Peer(respond).start()
        started.append(peer)
        return peer

    yield make
    for peer in started:
        await peer.stop()


@pytest.fixture
async def ztgate_opa() -> AsyncIterator[tuple[RunningPolicyServer, PolicyHolder]]:
    holder = PolicyHolder()
    assert (await holder.load(mini_bundle())).ok
    running = await start_policy_server(holder, config=PolicyServerConfig(port=0))
    yield running, holder
    await running.stop()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _is_deny(decision: Decision, reason: str) -> bool:
    return (
        not decision.allow
        and decision.reasons == (reason,)
        and decision.obligations.audit == "full"
    )


# -- against ztgate's own OPA-compatible server ---------------------------------------------


async def test_remote_decisions_equal_the_embedded_engine(
    ztgate_opa: tuple[RunningPolicyServer, PolicyHolder],
) -> None:
    running, holder = ztgate_opa
    embedded = holder.engine
    assert embedded is not None
    remote = RemoteOpaEngine(running.url, timeout=5.0)
    try:
        assert remote.revision == ""
        for doc in (
            route_input("public"),
            route_input("account"),
            route_input("account", risk=80),
            route_input("transfer"),  # allow + step-up → refused with the challenge
            route_input("staff"),
            route_input("public", route_id="boom"),  # evaluation error
            {"version": "1"},  # malformed: refused locally, as the embedded engine does
        ):
            assert await remote.decide(doc) == embedded.evaluate(doc)
        assert remote.revision == embedded.revision == "mini-1"
        assert remote.breaker.state == "closed"
    finally:
        await remote.close()


async def test_unserialisable_or_huge_input_is_denied_locally(
    ztgate_opa: tuple[RunningPolicyServer, PolicyHolder],
) -> None:
    running, _ = ztgate_opa
    remote = RemoteOpaEngine(running.url)
    try:
        doc = example_input()
        doc["request"]["headers"]["x-blob"] = "x" * (2 * 1024 * 1024)
        decision = await remote.decide(doc)
        assert not decision.allow and decision.reasons[0].startswith("input:")
    finally:
        await remote.close()


async def test_policy_administration(ztgate_opa: tuple[RunningPolicyServer, PolicyHolder]) -> None:
    running, holder = ztgate_opa
    admin = RemoteOpaEngine(running.url, token=running.admin_token)
    anonymous = RemoteOpaEngine(running.url)
    try:
        assert await admin.health() and await admin.health(bundles=True)
        assert "ztgate/main.rego" in await admin.list_policies()
        await admin.put_policy("ztgate/extra.rego", "package ztgate.extra\n\nanswer := 42\n")
        assert (
            await admin.get_policy("ztgate/extra.rego") == "package ztgate.extra\n\nanswer := 42\n"
        )
        assert holder.revision.startswith("mini-1+api.")
        with pytest.raises(RemoteOpaError) as broken:
            await admin.put_policy("ztgate/extra.rego", "package ztgate.extra\n\nanswer := \n")
        assert broken.value.status == 400 and broken.value.code == "invalid_parameter"
        assert broken.value.errors[0]["location"]["file"] == "ztgate/extra.rego"
        with pytest.raises(RemoteOpaError) as denied:
            await anonymous.put_policy("ztgate/x.rego", "package ztgate.x\n")
        assert (denied.value.status, denied.value.code) == (401, "unauthorized")
        await admin.delete_policy("ztgate/extra.rego")
        with pytest.raises(RemoteOpaError) as gone:
            await admin.get_policy("ztgate/extra.rego")
        assert gone.value.status == 404
        with pytest.raises(ValueError):
            await admin.put_policy("../escape.rego", "package x\n")
    finally:
        await admin.close()
        await anonymous.close()


async def test_health_of_an_unreachable_opa_is_false() -> None:
    remote = RemoteOpaEngine(f"http://127.0.0.1:{_free_port()}", admin_timeout=2.0)
    try:
        assert await remote.health() is False
        with pytest.raises(RemoteOpaError) as unreachable:
            await remote.list_policies()
        assert unreachable.value.status == 0
    finally:
        await remote.close()


# -- misbehaving peers: each failure is a deny with its reason --------------------------------


@pytest.mark.parametrize(
    ("respond", "reason"),
    [
        (answer(500, '{"code": "internal_error", "message": "boom"}'), REASON_REMOTE_ERROR),
        (answer(404, "{}"), REASON_REMOTE_ERROR),
        (answer(200, b"\x00garbage{"), REASON_REMOTE_ERROR),
        (answer(200, "[1, 2, 3]"), REASON_REMOTE_ERROR),
        (answer(200, '{"result": {"allow": NaN}}'), REASON_REMOTE_ERROR),
        (answer(200, b"{" + b" " * (2 * 1024 * 1024) + b"}"), REASON_REMOTE_ERROR),
        (answer(200, '{"result": "yes"}'), "policy:malformed_result"),
        (answer(200, '{"result": {"allow": "true"}}'), "policy:malformed_result:allow"),
        (answer(200, "{}"), "policy:undefined_result"),
        (hang, REASON_REMOTE_TIMEOUT),
    ],
)
async def test_misbehaving_opa_means_deny(
    peers: Callable[[Respond], Awaitable[Peer]], respond: Respond, reason: str
) -> None:
    peer = await peers(respond)
    remote = RemoteOpaEngine(peer.url, timeout=0.2)
    try:
        assert _is_deny(await remote.decide(example_input()), reason)
        assert peer.requests == 1
    finally:
        await remote.close()


async def test_connection_refused_means_deny() -> None:
    remote = RemoteOpaEngine(f"http://127.0.0.1:{_free_port()}")
    try:
        assert _is_deny(await remote.decide(example_input()), REASON_REMOTE_ERROR)
    finally:
        await remote.close()


async def test_an_allow_needs_a_well_formed_200(
    peers: Callable[[Respond], Awaitable[Peer]],
) -> None:
    good = {
        "result": {"allow": True, "reasons": ["ok"]},
        "provenance": {"bundles": {"b": {"revision": "r9"}}},
    }
    peer = await peers(answer(200, json.dumps(good)))
    remote = RemoteOpaEngine(peer.url, timeout=2.0)
    try:
        decision = await remote.decide(example_input())
        assert decision.allow and decision.revision == "r9" and remote.revision == "r9"
    finally:
        await remote.close()


@settings(max_examples=60, deadline=None)
@given(
    status=st.sampled_from([200, 201, 204, 301, 400, 401, 404, 500, 502, 503]),
    body=st.binary(max_size=200),
)
def test_any_answer_but_a_valid_allow_is_a_deny(status: int, body: bytes) -> None:
    async def run() -> Decision:
        peer = await Peer(answer(status, body)).start()
        remote = RemoteOpaEngine(peer.url, timeout=2.0)
        try:
            return await remote.decide(example_input())
        finally:
            await remote.close()
            await peer.stop()

    decision = asyncio.run(run())
    assert not decision.allow
    assert decision.reasons


# -- the circuit breaker ---------------------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_breaker_opens_after_consecutive_failures_within_the_window() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(failure_threshold=3, failure_window=10.0, cooldown=5.0, clock=clock)
    for _ in range(2):
        assert breaker.allow()
        breaker.record_failure()
    breaker.record_success()  # a success resets the streak
    for _ in range(2):
        breaker.record_failure()
        clock.now += 11  # spread beyond the window: never three within it
    assert breaker.state == "closed"
    for _ in range(3):
        breaker.record_failure()
    assert breaker.state == "open" and not breaker.allow()
    clock.now += 5.0
    assert breaker.state == "half_open"
    assert breaker.allow()  # the one probe
    assert not breaker.allow()  # no second request while it is out
    breaker.record_failure()
    assert breaker.state == "open"
    clock.now += 5.0
    assert breaker.allow()
    breaker.release()  # probe cancelled: another may go
    assert breaker.allow()
    breaker.record_success()
    assert breaker.state == "closed" and breaker.allow()


def test_breaker_rejects_nonsense_settings() -> None:
    with pytest.raises(ValueError):
        CircuitBreaker(failure_threshold=0)
    with pytest.raises(ValueError):
        RemoteOpaEngine("ftp://opa")


async def test_open_circuit_stops_calling_until_a_probe_succeeds(
    peers: Callable[[Respond], Awaitable[Peer]],
) -> None:
    healthy = {"result": {"allow": True, "reasons": ["ok"]}}
    state = {"respond": answer(500, "{}")}

    async def switchable(request: web.Request) -> web.StreamResponse:
        return await state["respond"](request)

    peer = await peers(switchable)
    clock = FakeClock()
    breaker = CircuitBreaker(failure_threshold=3, failure_window=60, cooldown=30, clock=clock)
    remote = RemoteOpaEngine(peer.url, timeout=2.0, breaker=breaker)
    doc = example_input()
    try:
        for _ in range(3):
            assert _is_deny(await remote.decide(doc), REASON_REMOTE_ERROR)
        assert breaker.state == "open"
        for _ in range(5):
            assert _is_deny(await remote.decide(doc), REASON_CIRCUIT_OPEN)
        assert peer.requests == 3  # an open circuit costs the remote nothing
        clock.now += 30
        assert _is_deny(await remote.decide(doc), REASON_REMOTE_ERROR)  # failed probe
        assert breaker.state == "open" and peer.requests == 4
        clock.now += 30
        state["respond"] = answer(200, json.dumps(healthy))
        assert (await remote.decide(doc)).allow  # successful probe closes the circuit
        assert breaker.state == "closed"
        assert all(d.allow for d in await asyncio.gather(*(remote.decide(doc) for _ in range(20))))
    finally:
        await remote.close()


async def test_timeouts_trip_the_breaker_and_in_flight_requests_stay_denies(
    peers: Callable[[Respond], Awaitable[Peer]],
) -> None:
    peer = await peers(hang)
    clock = FakeClock()
    breaker = CircuitBreaker(failure_threshold=5, failure_window=60, cooldown=30, clock=clock)
    remote = RemoteOpaEngine(peer.url, timeout=0.1, breaker=breaker)
    try:
        decisions = await asyncio.gather(*(remote.decide(example_input()) for _ in range(20)))
        assert all(_is_deny(d, REASON_REMOTE_TIMEOUT) for d in decisions)
        assert breaker.state == "open"
        assert _is_deny(await remote.decide(example_input()), REASON_CIRCUIT_OPEN)
    finally:
        await remote.close()


async def test_a_cancelled_probe_frees_the_half_open_slot(
    peers: Callable[[Respond], Awaitable[Peer]],
) -> None:
    peer = await peers(hang)
    clock = FakeClock()
    breaker = CircuitBreaker(failure_threshold=1, failure_window=60, cooldown=30, clock=clock)
    breaker.record_failure()
    clock.now += 30
    remote = RemoteOpaEngine(peer.url, timeout=30.0, breaker=breaker)
    try:
        probe = asyncio.create_task(remote.decide(example_input()))
        while peer.requests == 0:
            await asyncio.sleep(0.01)
        assert _is_deny(await remote.decide(example_input()), REASON_CIRCUIT_OPEN)
        probe.cancel()
        with pytest.raises(asyncio.CancelledError):
            await probe
        assert breaker.allow()  # the slot is free again
    finally:
        await remote.close()
