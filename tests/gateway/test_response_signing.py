"""Response signatures (RFC 9421 §2.4) through the ext_proc stream, over a real
grpc.aio server: the response to a signed request verifies with the edge's
published JWKS over exactly the documented components, after masking; tampering
with the status, the body or the request it is bound to breaks it; an unsigned
request's response carries no signature; and a response that cannot be signed is
blocked, never sent unsigned."""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import grpc
import pytest
from envoy.service.auth.v3.external_auth_pb2 import CheckResponse
from envoy.service.ext_proc.v3.external_processor_pb2 import ProcessingResponse

from authn.rfc9421 import (
    HTTPRequest,
    HTTPResponse,
    SignatureError,
    sign_request,
    verify_response,
)
from authn.rfc9530 import content_digest
from crypto import keys
from gateway import ext_proc
from gateway.agent import AgentStartError, load_response_signer
from gateway.pipeline import Allow
from gateway.response_signing import (
    METADATA_KEYS,
    ResponseSigner,
    SignedRequest,
    signed_request_from_metadata,
)
from gateway.responses import check_response
from tests.gateway.harness import make_config
from tests.gateway.masking.test_ext_proc_masking import SETTINGS, _process, _stream

ROUTE = "ob.payments.create"
TARGET = "https://api.bank.example/open/v1/payments"
EXPECTED = (
    '"@status"',
    '"content-digest"',
    '"content-type"',
    '"@method";req',
    '"@target-uri";req',
    '"signature";req;key="sig1"',
)
"""What a partner requires a response signature to cover (docs/http-signatures.md)."""
BBAN = "6222080717708933540"
PAID = {
    "paymentId": "trf_1",
    "transactionStatus": "ACSC",
    "debtorAccount": {"bban": BBAN},
    "creditorName": "王芳",
}


def partner_request(body: bytes = b'{"amount":"1.00"}') -> HTTPRequest:
    """A payment request signed by a partner's key, as the edge verified it."""
    key = keys.generate("ec-p256")
    headers = (
        ("authorization", "Bearer t"),
        ("content-type", "application/json"),
        ("content-digest", content_digest(body)),
    )
    request = HTTPRequest("POST", TARGET, headers, body)
    fields = sign_request(
        request, key=key, keyid="p1", created=int(time.time()), nonce=secrets.token_urlsafe(9)
    )
    return replace(request, headers=(*headers, *fields.as_headers()))


def signed_of(request: HTTPRequest) -> SignedRequest:
    signature = next(v for k, v in request.headers if k.lower() == "signature")
    return SignedRequest("sig1", signature, request.method, request.target_uri)


def received(
    responses: list[ProcessingResponse], status: int, body: bytes, content_type: str
) -> HTTPResponse:
    """The response as the partner gets it: the upstream's with every mutation applied."""
    headers: dict[str, str] = {"content-type": content_type}
    for phase in responses:
        which = phase.WhichOneof("response")
        assert which in ("response_headers", "response_body"), phase
        common = getattr(phase, which).response
        for option in common.header_mutation.set_headers:
            assert option.append_action == option.OVERWRITE_IF_EXISTS_OR_ADD
            headers[option.header.key] = option.header.raw_value.decode()
        if common.HasField("body_mutation"):
            body = common.body_mutation.body
    return HTTPResponse(status, tuple(headers.items()), body)


@pytest.fixture(params=["sm2", "ec-p256"])
def signer(request: pytest.FixtureRequest) -> ResponseSigner:
    return ResponseSigner.from_key(keys.generate(request.param))


@pytest.fixture
async def serve() -> AsyncIterator[Callable[[ResponseSigner | None], Any]]:
    servers: list[grpc.aio.Server] = []

    async def start(signer: ResponseSigner | None) -> int:
        server = grpc.aio.server()
        ext_proc.add_to_server(server, SETTINGS, signer)
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        servers.append(server)
        return port

    yield start
    for server in servers:
        await server.stop(0)


def decision(signed: SignedRequest | None, **extra: str) -> dict[str, str]:
    out = {"mask_profile": "partner", "client_id": "cli_budgetly", **extra}
    if signed is not None:
        out |= dict(signed.metadata())
    return out


async def test_a_signed_payment_s_response_verifies_after_masking(
    serve: Any, signer: ResponseSigner
) -> None:
    port = await serve(signer)
    request = partner_request()
    body = json.dumps(PAID, ensure_ascii=False).encode()
    responses = await _process(
        port, _stream(ROUTE, body, status="201", **decision(signed_of(request)))
    )
    response = received(responses, 201, body, "application/json")
    assert BBAN.encode() not in response.body  # masked first, then signed
    jwks = json.loads(json.dumps(signer.jwks()))  # as a partner fetches it
    verified = await verify_response(
        response, jwks=jwks, now=time.time(), request=request, expected_components=EXPECTED
    )
    assert verified.components == EXPECTED
    assert verified.keyid == signer.keyid
    assert (
        verified.algorithm
        == {"sm2": "sm2-sm3", "ec-p256": "ecdsa-p256-sha256"}[signer.key.algorithm]
    )
    assert jwks["keys"][0]["alg"] == keys.JWS_ALG[signer.key.algorithm]
    assert "d" not in jwks["keys"][0]
    fields = dict(response.headers)
    assert fields["content-digest"] == content_digest(response.body)
    assert ';alg="' in fields["signature-input"] and ";created=" in fields["signature-input"]


async def test_tampering_breaks_the_response_signature(serve: Any, signer: ResponseSigner) -> None:
    port = await serve(signer)
    request = partner_request()
    body = json.dumps(PAID).encode()
    responses = await _process(
        port, _stream(ROUTE, body, status="201", **decision(signed_of(request)))
    )
    response = received(responses, 201, body, "application/json")
    jwks, now = signer.jwks(), time.time()

    async def refused(resp: HTTPResponse, req: HTTPRequest, code: str) -> None:
        with pytest.raises(SignatureError) as caught:
            await verify_response(
                resp, jwks=jwks, now=now, request=req, expected_components=EXPECTED
            )
        assert caught.value.code == code

    await refused(replace(response, status=200), request, "invalid_signature")
    tampered_body = response.body.replace(b"ACSC", b"RJCT")
    await refused(replace(response, body=tampered_body), request, "digest_mismatch")
    swapped = tuple(
        (k, content_digest(tampered_body) if k == "content-digest" else v)
        for k, v in response.headers
    )
    await refused(
        replace(response, headers=swapped, body=tampered_body), request, "invalid_signature"
    )
    # Bound to its request: another signed request, another target, another method.
    await refused(response, partner_request(), "invalid_signature")
    await refused(response, replace(request, target_uri=TARGET + "?x=1"), "invalid_signature")
    await refused(response, replace(request, method="PUT"), "invalid_signature")
    # Another key (a key of the same kind that is not the edge's).
    other = ResponseSigner.from_key(keys.generate(signer.key.algorithm))
    foreign = {"keys": [{**other.jwks()["keys"][0], "kid": signer.keyid}]}
    with pytest.raises(SignatureError):
        await verify_response(response, jwks=foreign, now=now, request=request)


async def test_an_unsigned_request_s_response_carries_no_signature(
    serve: Any, signer: ResponseSigner
) -> None:
    port = await serve(signer)
    body = json.dumps(PAID).encode()
    responses = await _process(port, _stream(ROUTE, body, status="201", **decision(None)))
    response = received(responses, 201, body, "application/json")
    names = {k for k, _ in response.headers}
    assert names.isdisjoint({"signature", "signature-input", "content-digest"})
    assert BBAN.encode() not in response.body  # masked all the same


async def test_a_response_without_a_body_is_signed_in_the_headers_phase(
    serve: Any, signer: ResponseSigner
) -> None:
    port = await serve(signer)
    request = partner_request()
    responses = await _process(
        port, _stream(ROUTE, None, status="204", **decision(signed_of(request)))
    )
    assert len(responses) == 1
    response = received(responses, 204, b"", "application/json")
    await verify_response(
        response, jwks=signer.jwks(), now=time.time(), request=request, expected_components=EXPECTED
    )


async def test_an_error_response_is_signed_too(serve: Any, signer: ResponseSigner) -> None:
    port = await serve(signer)
    request = partner_request()
    body = b'{"error":"insufficient_funds","error_description":"balance too low"}'
    responses = await _process(
        port, _stream(ROUTE, body, status="422", **decision(signed_of(request)))
    )
    response = received(responses, 422, body, "application/json")
    await verify_response(
        response, jwks=signer.jwks(), now=time.time(), request=request, expected_components=EXPECTED
    )


async def test_what_cannot_be_signed_is_blocked(serve: Any, signer: ResponseSigner) -> None:
    request = partner_request()
    body = json.dumps(PAID).encode()

    def reason(responses: list[ProcessingResponse]) -> str:
        immediate = responses[-1].immediate_response
        assert immediate.status.code == 502
        assert not any(h.header.key.startswith("signature") for h in immediate.headers.set_headers)
        return str(json.loads(immediate.body)["reason"])

    # No signing key on this agent.
    unkeyed = await serve(None)
    out = await _process(unkeyed, _stream(ROUTE, body, **decision(signed_of(request))))
    assert reason(out) == "signature:unavailable"
    out = await _process(unkeyed, _stream(ROUTE, None, **decision(signed_of(request))))
    assert reason(out) == "signature:unavailable"
    # Metadata that is incomplete or does not parse.
    keyed = await serve(signer)
    meta = decision(signed_of(request))
    for broken in (
        {k: v for k, v in meta.items() if k != METADATA_KEYS[1]},
        meta | {"rfc9421_label": "Not A Key"},
        meta | {"rfc9421_method": "post\r\n"},
        meta | {"rfc9421_target": "https://x/\n"},
    ):
        out = await _process(keyed, _stream(ROUTE, body, **broken))
        assert reason(out) == "signature:bad_metadata", broken
    # A label the request's Signature field does not have.
    out = await _process(keyed, _stream(ROUTE, body, **(meta | {"rfc9421_label": "sig9"})))
    assert reason(out) == "signature:signing_failed"
    # Masking's own block stays masking's (an unparseable body): not signed, not passed.
    out = await _process(keyed, _stream(ROUTE, b'{"bban": "6222', **meta))
    assert json.loads(out[-1].immediate_response.body)["reason"] == "masking:unparseable_body"


def _write(path: Path, data: bytes, mode: int = 0o600) -> Path:
    path.write_bytes(data)
    path.chmod(mode)
    return path


def test_the_agent_loads_its_response_signing_key(tmp_path: Path) -> None:
    config, _, _ = make_config(tmp_path)
    assert load_response_signer(config) is None
    key = keys.generate("sm2")
    good = _write(tmp_path / "rs.pem", key.private_pem())
    signer = load_response_signer(replace(config, response_signing_key_file=good))
    assert signer is not None and signer.keyid == key.public_key().thumbprint()
    for path, message in (
        (_write(tmp_path / "open.pem", key.private_pem(), 0o640), "group or others"),
        (_write(tmp_path / "junk.pem", b"x" * 100), "not a readable private key"),
        (_write(tmp_path / "ed.pem", keys.generate("ed25519").private_pem()), "SM2 or P-256"),
        (tmp_path / "missing.pem", "cannot read"),
    ):
        with pytest.raises(AgentStartError) as caught:
            load_response_signer(replace(config, response_signing_key_file=path))
        assert str(caught.value).startswith("response_signing_key_file: "), caught.value
        assert message in str(caught.value)


def test_the_allow_hands_the_signed_request_to_ext_proc() -> None:
    """ext_authz's dynamic metadata carries it; ext_proc reads back the same value."""
    signed = signed_of(partner_request())
    allow = Allow("dec_1", (), "partner", client_id="cli_1", signed_request=signed)
    fields = CheckResponse.FromString(check_response(allow)).dynamic_metadata.fields
    assert signed_request_from_metadata(fields) == signed
    plain = CheckResponse.FromString(
        check_response(replace(allow, signed_request=None))
    ).dynamic_metadata.fields
    assert signed_request_from_metadata(plain) is None
    assert not set(METADATA_KEYS) & set(plain)
