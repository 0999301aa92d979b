"""The response processor (ext_proc): the stream over gRPC, and masking behind a real Envoy.

Envoy, the control plane and the recording upstream are those of
tests/edge_nodes; the agent is the real one of tests/gateway/harness.py (its
ext_authz and ext_proc share one gRPC server, as in a worker).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from envoy.config.core.v3.base_pb2 import HeaderMap, HeaderValue, Metadata
from envoy.service.ext_proc.v3 import external_processor_pb2_grpc
from envoy.service.ext_proc.v3.external_processor_pb2 import (
    HttpBody,
    HttpHeaders,
    HttpTrailers,
    ProcessingRequest,
)
from google.protobuf.struct_pb2 import Struct
from hypothesis import given
from hypothesis import strategies as st

from edge_nodes.envoy import EnvoyOptions, LocalEnvoy
from gateway.ext_proc import AUTHZ_NAMESPACE, DEFAULT_PROFILE, response_context
from tests.edge_nodes.harness import (
    ControlPlaneThread,
    RecordingUpstream,
    base_config,
    free_port,
    http_request,
    wait_for,
    write_config,
)
from tests.gateway.harness import Edge, signals, start_edge

NODE = "edge-ext-proc"
BALANCE = "/api/accounts/acc-1/balance"
MASKED_ROUTE = {
    "id": "accounts.balances",
    "template": "/api/accounts/{account_id}/balance",
    "methods": ["GET"],
    "cluster": "bank",
    "api_product": "retail-accounts",
    "classification": "account",
    "masking": True,
}


def _metadata(**fields: Any) -> Metadata:
    metadata = Metadata()
    values = Struct()
    values.update(fields)
    metadata.filter_metadata[AUTHZ_NAMESPACE].CopyFrom(values)
    return metadata


def _headers(*pairs: tuple[str, str], end: bool = False) -> HttpHeaders:
    return HttpHeaders(
        headers=HeaderMap(headers=[HeaderValue(key=k, raw_value=v.encode()) for k, v in pairs]),
        end_of_stream=end,
    )


# -- the stream, over gRPC --------------------------------------------------------------


@pytest.fixture
async def agent(tmp_path: Path) -> AsyncIterator[Edge]:
    running = await start_edge(tmp_path)
    yield running
    await running.close()


async def _process(port: int, requests: list[ProcessingRequest]) -> list[str]:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = external_processor_pb2_grpc.ExternalProcessorStub(channel)
        call = stub.Process(iter(requests), timeout=10)
        return [response.WhichOneof("response") async for response in call]


async def test_every_phase_is_answered_with_its_own_continue(agent: Edge) -> None:
    metadata = _metadata(mask_profile="customer", decision_id="d-1")
    requests = [
        ProcessingRequest(request_headers=HttpHeaders(), metadata_context=metadata),
        ProcessingRequest(request_body=HttpBody(body=b"{}", end_of_stream=True)),
        ProcessingRequest(request_trailers=HttpTrailers()),
        ProcessingRequest(response_headers=_headers(("content-type", "application/json"))),
        ProcessingRequest(response_body=HttpBody(body=b'{"a":1}', end_of_stream=True)),
        ProcessingRequest(response_trailers=HttpTrailers()),
    ]
    phases = [r.WhichOneof("request") for r in requests]
    assert await _process(agent.port, requests) == phases


async def test_a_message_without_a_phase_ends_the_stream_with_an_error(agent: Edge) -> None:
    json_headers = _headers(("content-type", "application/json"))
    requests = [ProcessingRequest(response_headers=json_headers), ProcessingRequest()]
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await _process(agent.port, requests)
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_bytes_that_are_not_a_processing_request_end_the_stream(agent: Edge) -> None:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{agent.port}") as channel:
        call = channel.stream_stream("/envoy.service.ext_proc.v3.ExternalProcessor/Process")
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            async for _ in call(iter([b"\xff\xff\xff"]), timeout=10):
                pass
    assert raised.value.code() != grpc.StatusCode.OK


def test_the_profile_is_the_decisions_when_well_formed() -> None:
    request = ProcessingRequest(metadata_context=_metadata(mask_profile="staff_minimal"))
    ctx = response_context(request)
    assert (ctx.mask_profile, ctx.from_decision) == ("staff_minimal", True)
    assert response_context(ProcessingRequest()).mask_profile == DEFAULT_PROFILE


@given(
    st.one_of(st.none(), st.text(max_size=80), st.integers(), st.booleans()),
    st.one_of(st.none(), st.text(max_size=200), st.floats(allow_nan=False)),
)
def test_any_metadata_gives_a_profile_in_the_policys_syntax(profile: Any, decision: Any) -> None:
    ctx = response_context(
        ProcessingRequest(metadata_context=_metadata(mask_profile=profile, decision_id=decision))
    )
    assert ctx.mask_profile == profile if ctx.from_decision else ctx.mask_profile == "strict"
    assert len(ctx.mask_profile) <= 64 and all(c.isascii() for c in ctx.mask_profile)
    assert ctx.decision_id is None or ctx.decision_id == decision


# -- behind Envoy ---------------------------------------------------------------------


async def test_a_masking_route_passes_the_body_through_and_fails_closed_without_the_agent(
    agent: Edge, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="ztgate.gateway.ext_proc")
    caplog.set_level(logging.DEBUG, logger="ztgate.gateway.masking")
    upstream = RecordingUpstream()
    plain = free_port()
    doc = base_config(
        upstream_port=upstream.port,
        agent_ports=[agent.port],
        plain_port=plain,
        tls_port=0,
        routes=[MASKED_ROUTE],
    )
    cp = ControlPlaneThread(write_config(tmp_path / "gateway.json", doc))
    envoy = LocalEnvoy(EnvoyOptions(node_id=NODE, xds_port=cp.xds_port, work_dir=tmp_path / "e"))
    try:
        await envoy.start()
        subject = await agent.user()
        token = await agent.token(subject, scope="accounts:read")
        headers = {"authorization": f"Bearer {token}", "x-device-signals": signals("d", subject)}

        def get() -> tuple[int, dict[str, str], bytes]:
            return http_request(plain, BALANCE, headers=headers)

        # Until the node is in sync and the upstream healthy, Envoy answers 404/503.
        status, _, body = await asyncio.to_thread(
            wait_for, lambda: (r := get())[0] == 200 and r, 20
        )
        # The mobile number sits in a field no rule labels: the detector finds it, and the
        # customer profile shows it 3 + 4.
        expected = {"ok": True, "path": BALANCE, "customer": {"phone": "138****5678"}}
        assert json.loads(body) == expected

        stats = await envoy.stats("")
        started = [v for k, v in stats.items() if "ext_proc" in k and k.endswith("streams_started")]
        assert started and sum(started) >= 1, "the response did not go through ext_proc"
        streams = [
            r for r in caplog.records if getattr(r, "event", "") == "gateway.ext_proc_stream"
        ]
        decision_ids = upstream.seen[-1].header("x-ztgate-decision-id")
        assert any(
            getattr(r, "mask_profile", None) == "customer"
            and getattr(r, "from_decision", None) is True
            and [getattr(r, "decision_id", None)] == decision_ids
            for r in streams
        ), "the decision's mask profile did not reach the processor"
        masked = [r for r in caplog.records if getattr(r, "event", "") == "gateway.masking_applied"]
        assert any(getattr(r, "route", None) == "accounts.balances" for r in masked), (
            "Envoy did not send the route name (xds.route_name)"
        )

        await agent.server.stop(0)
        upstream.clear()
        status, _, body = await asyncio.to_thread(get)
        assert status == 503
        assert json.loads(body) == {"error": "unavailable"}
        assert upstream.seen == []
    finally:
        await envoy.stop()
        cp.stop()
        upstream.stop()
