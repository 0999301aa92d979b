"""The allow ``CheckResponse`` as `gateway.responses` writes it, wire format by hand,
against the same message built with the protobuf library."""

from __future__ import annotations

from envoy.config.core.v3.base_pb2 import HeaderValueOption
from envoy.service.auth.v3.external_auth_pb2 import CheckResponse
from hypothesis import given
from hypothesis import strategies as st

from gateway.pipeline import Allow, Deny
from gateway.response_signing import SignedRequest
from gateway.responses import check_response, deny_response

_OVERWRITE = HeaderValueOption.OVERWRITE_IF_EXISTS_OR_ADD
_TEXT = st.text(max_size=300)  # non-ASCII and lengths past one varint byte (127) included
_NAMES = st.sampled_from(["x-ztgate-subject", "x-ztgate-risk", "x-ztgate-other", "accept"])
_PAIRS = st.lists(st.tuples(_NAMES | _TEXT, _TEXT), max_size=8)


def _reference(outcome: Allow, received: list[str]) -> CheckResponse:
    """The message as the protobuf library builds it."""
    response = CheckResponse()
    response.status.SetInParent()
    ok = response.ok_response
    ok.SetInParent()
    for name, value in outcome.headers:
        option = ok.headers.add()
        option.header.key, option.header.value = name, value
        option.append_action = _OVERWRITE
    for name, value in outcome.response_headers:
        option = ok.response_headers_to_add.add()
        option.header.key, option.header.value = name, value
        option.append_action = _OVERWRITE
    set_here = {name for name, _ in outcome.headers}
    ok.headers_to_remove.extend(
        n for n in received if n.startswith("x-ztgate-") and n not in set_here
    )
    fields = response.dynamic_metadata.fields
    fields["mask_profile"].string_value = outcome.mask_profile
    fields["decision_id"].string_value = outcome.decision_id
    if outcome.client_id is not None:
        fields["client_id"].string_value = outcome.client_id
    if outcome.signed_request is not None:
        for key, value in outcome.signed_request.metadata():
            fields[key].string_value = value
    return response


@given(
    headers=_PAIRS,
    response_headers=_PAIRS,
    received=st.lists(_NAMES | _TEXT, max_size=6),
    profile=_TEXT,
    decision_id=_TEXT,
    client_id=st.none() | _TEXT,
    signed=st.none() | st.tuples(_TEXT, _TEXT, _TEXT, _TEXT),
)
def test_the_hand_written_allow_is_the_library_message(
    headers: list[tuple[str, str]],
    response_headers: list[tuple[str, str]],
    received: list[str],
    profile: str,
    decision_id: str,
    client_id: str | None,
    signed: tuple[str, str, str, str] | None,
) -> None:
    allow = Allow(
        decision_id,
        tuple(headers),
        profile,
        tuple(response_headers),
        client_id=client_id,
        signed_request=None if signed is None else SignedRequest(*signed),
    )
    parsed = CheckResponse.FromString(check_response(allow, received))
    assert parsed == _reference(allow, received)
    assert parsed.WhichOneof("http_response") == "ok_response"
    assert parsed.HasField("status") and parsed.status.code == 0


def test_a_deny_is_the_library_message_serialised() -> None:
    deny = Deny(401, "invalid_token", ("identity:invalid_token",), "d-1", 'Bearer realm="x"')
    assert CheckResponse.FromString(check_response(deny)) == deny_response(deny)
