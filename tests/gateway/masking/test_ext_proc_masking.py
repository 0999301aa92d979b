"""Masking through the ext_proc stream, over a real grpc.aio server.

The processor is the production `ExternalProcessorService` with the shipped rules
and a fixed pseudonym key; requests are the messages Envoy sends for a masked
route (the route name as the ``xds.route_name`` attribute, the decision's profile
as ext_authz dynamic metadata).
"""

from __future__ import annotations

import json
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
    ProcessingRequest,
    ProcessingResponse,
)
from google.protobuf.struct_pb2 import Struct

from gateway import ext_proc, pii
from gateway.ext_proc import AUTHZ_NAMESPACE
from gateway.masking.engine import MaskingEngine
from gateway.masking.maskers import PseudonymKeys
from gateway.masking.rules import RulesError, default_rules
from gateway.masking.service import EXT_PROC_NAMESPACE, ROUTE_ATTRIBUTE, MaskingSettings

CARD = pii.card_number("622208", "123456789012", 19)
CARD_DETAIL = {
    "card_id": "crd_1",
    "card_number": CARD,
    "cardholder_name": "王芳",
    "expiry": "09/29",
    "cvn": "123",
}
SETTINGS = MaskingSettings(MaskingEngine(default_rules(), PseudonymKeys(b"\x04" * 32)))


@pytest.fixture
async def port() -> AsyncIterator[int]:
    server = grpc.aio.server()
    ext_proc.add_to_server(server, SETTINGS)
    bound = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    yield bound
    await server.stop(0)


def _metadata(**fields: Any) -> Metadata:
    metadata = Metadata()
    values = Struct()
    values.update(fields)
    metadata.filter_metadata[AUTHZ_NAMESPACE].CopyFrom(values)
    return metadata


def _stream(
    route: str | None,
    body: bytes | None,
    *,
    content_type: str = "application/json",
    status: str = "200",
    **decision: Any,
) -> list[ProcessingRequest]:
    headers = HttpHeaders(
        headers=HeaderMap(
            headers=[
                HeaderValue(key=":status", raw_value=status.encode()),
                HeaderValue(key="content-type", raw_value=content_type.encode()),
            ]
        ),
        end_of_stream=body is None,
    )
    first = ProcessingRequest(response_headers=headers, metadata_context=_metadata(**decision))
    if route is not None:
        attrs = Struct()
        attrs.update({ROUTE_ATTRIBUTE: route})
        first.attributes[EXT_PROC_NAMESPACE].CopyFrom(attrs)
    if body is None:
        return [first]
    return [first, ProcessingRequest(response_body=HttpBody(body=body, end_of_stream=True))]


async def _process(port: int, requests: list[ProcessingRequest]) -> list[ProcessingResponse]:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = external_processor_pb2_grpc.ExternalProcessorStub(channel)
        return [r async for r in stub.Process(iter(requests), timeout=10)]


def _masked(responses: list[ProcessingResponse]) -> Any:
    headers, body = responses
    assert list(headers.response_headers.response.header_mutation.remove_headers) == [
        "content-length"
    ]
    return json.loads(body.response_body.response.body_mutation.body)


def _blocked(responses: list[ProcessingResponse]) -> str:
    immediate = responses[-1].immediate_response
    assert immediate.status.code == 502
    assert {h.header.key for h in immediate.headers.set_headers} >= {"content-type"}
    return str(json.loads(immediate.body)["reason"])


async def test_the_card_detail_is_masked_for_the_customer(port: int) -> None:
    body = json.dumps(CARD_DETAIL).encode()
    out = _masked(await _process(port, _stream("cards.detail", body, mask_profile="customer")))
    assert out == {
        "card_id": "crd_1",
        "card_number": "622208*********" + CARD[-4:],
        "cardholder_name": "王*",
    }


async def test_a_stream_without_a_profile_is_strict(port: int) -> None:
    body = json.dumps(CARD_DETAIL).encode()
    assert _masked(await _process(port, _stream("cards.detail", body))) == {"card_id": "crd_1"}
    odd = _stream("cards.detail", body, mask_profile="not a profile!")
    assert _masked(await _process(port, odd)) == {"card_id": "crd_1"}


async def test_partners_pseudonyms_follow_the_decisions_client_id(port: int) -> None:
    body = json.dumps({"account": {"bban": CARD, "currency": "CNY"}}).encode()

    async def bban(**decision: Any) -> Any:
        stream = _stream("ob.accounts.balances", body, mask_profile="partner", **decision)
        return _masked(await _process(port, stream))["account"].get("bban")

    a = await bban(client_id="fintech-budgetly")
    assert a.startswith("pn_") and a == await bban(client_id="fintech-budgetly")
    assert a != await bban(client_id="insurer-harbourshield")
    assert await bban() is None  # no partner to scope the pseudonym: removed


async def test_error_bodies_are_masked_too(port: int) -> None:
    error = {"error": "account_frozen", "error_description": f"account {CARD} is frozen"}
    stream = _stream("transfers.view", json.dumps(error).encode(), status="422",
                     mask_profile="customer")  # fmt: skip
    out = _masked(await _process(port, stream))
    assert out["error_description"] == f"account 622208*********{CARD[-4:]} is frozen"


async def test_unparseable_and_non_json_bodies_are_blocked(port: int) -> None:
    truncated = json.dumps(CARD_DETAIL).encode()[:-5]
    responses = await _process(port, _stream("cards.detail", truncated, mask_profile="customer"))
    assert _blocked(responses) == "masking:unparseable_body"
    html = _stream("cards.detail", f"<p>{CARD}</p>".encode(), content_type="text/html")
    responses = await _process(port, html)
    assert len(responses) == 1  # blocked on the headers, before the body is read
    assert _blocked(responses) == "masking:content_type_not_allowed"


async def test_a_response_without_a_body_passes(port: int) -> None:
    responses = await _process(port, _stream("cards.detail", None, content_type="", status="204"))
    assert [r.WhichOneof("response") for r in responses] == ["response_headers"]
    assert not responses[0].response_headers.HasField("response")


async def test_without_a_route_name_the_global_rules_apply(port: int) -> None:
    body = json.dumps(CARD_DETAIL).encode()
    out = _masked(await _process(port, _stream(None, body, mask_profile="customer")))
    assert "cvn" not in out and "expiry" not in out and out["card_number"].startswith("622208***")


def test_settings_come_from_the_agent_configuration(tmp_path: Path) -> None:
    key = tmp_path / "masking.key"
    key.write_bytes(b"\x06" * 32)
    key.chmod(0o600)
    settings = MaskingSettings.from_config(key_file=key, text_types=("text/plain", " text/csv"))
    assert settings.text_types == {"text/plain", "text/csv"}
    assert settings.engine.keys.for_scope("a") == PseudonymKeys(b"\x06" * 32).for_scope("a")
    key.chmod(0o644)
    with pytest.raises(ValueError, match="group or others"):
        MaskingSettings.from_config(key_file=key)


def test_a_broken_rules_file_stops_the_processor_from_being_registered(tmp_path: Path) -> None:
    rules = tmp_path / "rules.json"
    doc = json.loads(
        (Path(__file__).parents[3] / "gateway/masking/rules/default.json").read_text("utf-8")
    )
    doc["global"][0]["select"] = "$.cvn[?(@)]"
    rules.write_text(json.dumps(doc), "utf-8")
    with pytest.raises(
        RulesError, match=r"global\[0\] \(\$\.cvn\[\?\(@\)\]\): unsupported bracket"
    ):
        MaskingSettings.from_config(rules_path=rules)
