"""Parsing CheckRequests, and the policy input built from them: whatever Envoy
forwards, the parser either refuses it with a reason or yields a context whose
policy input document the contract accepts."""

from __future__ import annotations

import base64
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from device_fingerprint.assessment import DeviceAssessment, TrustLevel
from gateway.context import (
    RequestRejected,
    decode_signals,
    parse_check_request,
    parse_query,
)
from gateway.identity import ANONYMOUS
from gateway.policy_input import device_member, document, request_member, route_member
from policy.contract import TRUST_LEVELS, check_input
from risk.assessment import RiskAssessment
from tests.authn.token_harness import make_cert
from tests.gateway.harness import ACCOUNT_ROUTE, check_request, pem_of

NOW = 1_767_225_600.0


def _document(request: object) -> dict[str, object]:
    ctx = parse_check_request(request)
    member = request_member(ctx)
    assert member is not None
    device = DeviceAssessment("dev-1", True, True, TrustLevel.BOUND)
    return document(member, route_member(ctx), ANONYMOUS, device, RiskAssessment(5), NOW)


def test_a_typical_request_becomes_a_valid_policy_input() -> None:
    cert = make_cert("partner")
    request = check_request(
        path="/accounts/v1/accounts/1/balances?currency=CNY&include=a&include=b#frag",
        host="API.Bank.Example:8443",
        headers={
            "authorization": "Bearer secret",
            "dpop": "proof",
            "cookie": "s=1",
            "x-device-signals": "e30",
            "x-ztgate-ja4": "t13d1516h2_8daaf6152771_e5627efa2ab1",
            "x-ztgate-subject": "spoof",
            "sec-ch-ua-platform": '"Android"',
        },
        mtls=True,
        certificate_pem=pem_of(cert),
    )
    ctx = parse_check_request(request)
    assert (ctx.path, ctx.query, ctx.host) == (
        "/accounts/v1/accounts/1/balances",
        "currency=CNY&include=a&include=b",
        "api.bank.example:8443",
    )
    assert ctx.route.mtls and ctx.client_cert_der == cert
    assert ctx.url == "https://api.bank.example:8443/accounts/v1/accounts/1/balances"
    assert ctx.client_hints() == {"sec-ch-ua-platform": '"Android"'}
    assert sorted(ctx.internal_headers()) == ["x-ztgate-ja4", "x-ztgate-subject"]
    doc = _document(request)
    assert check_input(doc) is None
    headers = doc["request"]["headers"]  # type: ignore[index]
    assert not {"authorization", "dpop", "cookie", "x-device-signals"} & set(headers)
    assert not any(name.startswith(("x-ztgate-", ":")) for name in headers)
    assert doc["request"]["query"] == {"currency": ["CNY"], "include": ["a", "b"]}  # type: ignore[index]
    assert doc["request"]["tls"]["ja4"] == "t13d1516h2_8daaf6152771_e5627efa2ab1"  # type: ignore[index]
    assert len(doc["request"]["tls"]["client_cert_sha256"]) == 64  # type: ignore[index]


def test_an_implausible_ja4_is_dropped_and_an_unknown_scheme_is_https() -> None:
    ctx = parse_check_request(check_request(headers={"x-ztgate-ja4": "x;y"}, scheme="ftp"))
    assert ctx.ja4 is None and ctx.scheme == "https"


def test_device_trust_reaches_the_policy_as_the_trust_level_itself() -> None:
    assert {level.value for level in TrustLevel} == set(TRUST_LEVELS)
    for level in TrustLevel:
        member = device_member(DeviceAssessment("d", True, True, level))
        assert member["trust"] == level.value
        assert type(member["trust"]) is str


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        ("", None),
        (base64.urlsafe_b64encode(b'{"a":1}').decode(), b'{"a":1}'),
        (base64.urlsafe_b64encode(b'{"a":1}').decode().rstrip("="), b'{"a":1}'),
        ("not base64!", None),
        ("a", None),
        ("A" * 100, None),  # decodes to more than max_bytes
    ],
)
def test_device_signals_decoding(value: str | None, expected: bytes | None) -> None:
    assert decode_signals(value, 64) == expected


@given(st.text(max_size=400))
def test_signals_decoding_never_raises(value: str) -> None:
    result = decode_signals(value, 256)
    assert result is None or len(result) <= 256 + 3


@given(st.text(max_size=600))
def test_query_parsing_never_raises_and_respects_the_contract(query: str) -> None:
    parsed = parse_query(query)
    if parsed is not None:
        assert len(parsed) <= 64
        for key, values in parsed.items():
            assert len(key) <= 256 and len(values) <= 32 and all(len(v) <= 2048 for v in values)


_TEXT = st.text(st.characters(codec="utf-8"), max_size=80)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(
    method=st.sampled_from(["GET", "POST", "DELETE", "PATCH", "PUT", "get"]),
    path=st.one_of(st.from_regex(r"/[a-z0-9/._%?&=#-]{0,60}", fullmatch=True), _TEXT),
    host=st.one_of(st.from_regex(r"[a-zA-Z0-9.-]{1,30}(:[0-9]{1,5})?", fullmatch=True), _TEXT),
    address=st.one_of(st.ip_addresses().map(str), _TEXT),
    headers=st.dictionaries(
        st.text(st.characters(codec="ascii"), min_size=1, max_size=20), _TEXT, max_size=12
    ),
    extensions=st.one_of(
        st.just(ACCOUNT_ROUTE),
        st.dictionaries(
            st.sampled_from(["route_id", "api_product", "classification", "mtls"]), _TEXT
        ),
    ),
    certificate=st.one_of(st.none(), _TEXT),
)
def test_any_check_request_is_refused_with_a_reason_or_yields_a_valid_input(
    method: str,
    path: str,
    host: str,
    address: str,
    headers: dict[str, str],
    extensions: dict[str, str],
    certificate: str | None,
) -> None:
    request = check_request(
        method=method, path=path, host=host, address=address, headers=headers, route=extensions
    )
    if certificate:
        request.attributes.source.certificate = quote(certificate)
    try:
        ctx = parse_check_request(request)
    except RequestRejected as rejected:
        assert rejected.reason.split(":")[0] in ("route", "request", "tls")
        return
    member = request_member(ctx)
    if member is None:
        return
    device = DeviceAssessment(None, False, False, TrustLevel.NEW)
    doc = document(member, route_member(ctx), ANONYMOUS, device, RiskAssessment(0), NOW)
    assert check_input(doc) is None


def test_valid_route_facts_are_required() -> None:
    with pytest.raises(RequestRejected, match="route:missing"):
        parse_check_request(check_request(route={**ACCOUNT_ROUTE, "route_id": ""}))
    with pytest.raises(RequestRejected, match="route:invalid"):
        parse_check_request(check_request(route={**ACCOUNT_ROUTE, "mtls": "yes"}))
    with pytest.raises(RequestRejected, match="tls:client_certificate_required"):
        parse_check_request(check_request(mtls=True))


def test_route_params_come_from_the_uri_template() -> None:
    from gateway.policy_input import template_params

    template = "/open/v1/accounts/{account_id}/balances"
    assert template_params(template, "/open/v1/accounts/acc_1/balances") == {"account_id": "acc_1"}
    assert template_params(template, "/open/v1/accounts/acc_1/transactions") == {}
    assert template_params(template, "/open/v1/accounts/acc_1/balances/x") == {}
    assert template_params(template, "/open/v1/accounts//balances") == {}
    assert template_params(template, "/open/v1/accounts/" + "a" * 257 + "/balances") == {}
