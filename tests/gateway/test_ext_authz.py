"""The ext_authz server end to end: a real gRPC client sends CheckRequests to the
real agent (store, token verifier, default policy bundle, decision log, SM2
assertions); only device and risk are the deterministic doubles."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from authn.dpop import make_proof
from authn.tokens import ACCESS_TOKEN_TYP, TokenConfig, TokenIssuer
from crypto import keys
from gateway.assertion import verify_assertion
from gateway.pipeline import Components
from tests.authn.token_harness import make_cert, sign_raw
from tests.gateway.doubles import BrokenDevice, SignalsDevice, SlowRisk, TableRisk
from tests.gateway.harness import (
    ISSUER,
    PEPPER,
    PUBLIC_ROUTE,
    TRANSFER_ROUTE,
    Edge,
    allowed,
    check_request,
    denied,
    pem_of,
    signals,
    start_edge,
)

PATH = "/accounts/v1/accounts/1/balances"


@pytest.fixture
async def edge(tmp_path: Path) -> AsyncIterator[Edge]:
    running = await start_edge(tmp_path)
    yield running
    await running.close()


async def _customer(edge: Edge, **token: object) -> tuple[str, str]:
    subject = await edge.user()
    return subject, await edge.token(subject, **token)


def _headers(token: str, subject: str | None, **extra: str) -> dict[str, str]:
    headers = {"authorization": f"Bearer {token}", **extra}
    if subject is not None:
        headers["x-device-signals"] = signals("dev-1", subject)
    return headers


# -- allowed ----------------------------------------------------------------------------


async def test_authorised_request_passes_with_identity_headers_and_a_verifiable_assertion(
    edge: Edge,
) -> None:
    subject, token = await _customer(edge)
    response = await edge.check(check_request(headers=_headers(token, subject)))
    upstream, removed = allowed(response)
    assert upstream["x-ztgate-subject"] == subject
    assert upstream["x-ztgate-acr"] == "urn:ztgate:acr:mfa"
    assert upstream["x-ztgate-device"] == "dev-1"
    assert upstream["x-ztgate-risk"] == "10"
    assert upstream["x-ztgate-mask-profile"] == "customer"
    assert upstream["x-ztgate-classification"] == "account"  # a policy obligation header
    decision_id = upstream["x-ztgate-decision-id"]
    metadata = dict(response.dynamic_metadata.fields)
    assert metadata["mask_profile"].string_value == "customer"
    assert metadata["decision_id"].string_value == decision_id
    assert removed == []

    claims = verify_assertion(
        upstream["x-ztgate-assertion"],
        expected_method="GET",
        expected_path=PATH + "?currency=CNY",
        keys=edge.assertion_keys,
        issuer="edge-test",
    )
    assert (claims.subject, claims.kind, claims.acr) == (
        subject,
        "customer",
        upstream["x-ztgate-acr"],
    )
    assert (claims.device, claims.risk, claims.decision_id) == ("dev-1", 10, decision_id)
    assert (claims.route_id, claims.method, claims.path) == ("accounts.balances", "GET", PATH)
    assert claims.expires_at - claims.issued_at == 30
    with pytest.raises(ValueError, match="wrong_path"):
        verify_assertion(
            upstream["x-ztgate-assertion"],
            expected_method="GET",
            expected_path="/accounts/v1/accounts/2/balances",
            keys=edge.assertion_keys,
        )


async def test_public_route_admits_anonymous_callers_without_identity_headers(edge: Edge) -> None:
    response = await edge.check(
        check_request(path="/products", route=PUBLIC_ROUTE, headers={"x-ztgate-subject": "alice"})
    )
    upstream, removed = allowed(response)
    assert "x-ztgate-subject" not in upstream and "x-ztgate-acr" not in upstream
    assert removed == ["x-ztgate-subject"]  # the spoofed identity never reaches upstream
    claims = verify_assertion(
        upstream["x-ztgate-assertion"],
        expected_method="GET",
        expected_path="/products",
        keys=edge.assertion_keys,
    )
    assert (claims.subject, claims.kind, claims.acr) == (None, "anonymous", None)


async def test_spoofed_internal_headers_are_overwritten_or_removed(edge: Edge) -> None:
    subject, token = await _customer(edge)
    spoofed = {
        "x-ztgate-subject": "u-someone-else",
        "x-ztgate-risk": "0",
        "x-ztgate-roles": "admin",
        "x-ztgate-ja4": "t13d1516h2_8daaf6152771_e5627efa2ab1",
    }
    upstream, removed = allowed(
        await edge.check(check_request(headers=_headers(token, subject, **spoofed)))
    )
    assert upstream["x-ztgate-subject"] == subject
    assert upstream["x-ztgate-risk"] == "10"
    assert sorted(removed) == ["x-ztgate-ja4", "x-ztgate-roles"]


# -- identity ----------------------------------------------------------------------------


async def test_no_token_on_a_protected_route_is_401_with_a_bearer_challenge(edge: Edge) -> None:
    result = denied(await edge.check(check_request()))
    assert result.status == 401 and result.grpc_code == 16
    assert result.body["error"] == "unauthorized"
    assert "identity:not_customer" in result.body["reason"]
    assert result.headers["www-authenticate"] == 'Bearer realm="ztgate"'
    assert set(result.body) == {"error", "reason", "decision_id"}


def _other_issuer(edge: Edge, **config: object) -> TokenIssuer:
    settings: dict[str, object] = {"issuer": ISSUER, "audience": "ztgate"}
    settings.update(config)
    clock = settings.pop("clock", time.time)
    return TokenIssuer(
        edge.store,
        edge.token_ring,
        TokenConfig(**settings),  # type: ignore[arg-type]
        refresh_pepper=PEPPER,
        clock=clock,  # type: ignore[arg-type]
    )


async def _bad_token(edge: Edge, kind: str, subject: str) -> str:
    kid, key = edge.token_ring.signing_key()
    now = int(time.time())
    claims = {
        "iss": ISSUER,
        "sub": subject,
        "aud": "ztgate",
        "exp": now + 300,
        "iat": now,
        "jti": f"j-{kind}",
        "client_id": "ztgate-app",
        "scope": "accounts:read",
        "acr": "urn:ztgate:acr:mfa",
    }
    header = {"alg": "SM2SM3", "typ": ACCESS_TOKEN_TYP, "kid": kid}
    if kind == "forged":
        return sign_raw(header, claims, keys.generate("sm2"))
    if kind == "tampered":
        good = sign_raw(header, claims, key)
        evil = sign_raw(header, {**claims, "scope": "accounts:read payments:write"}, key)
        return ".".join(evil.split(".")[:2] + good.split(".")[2:])
    if kind == "expired":
        issuer = _other_issuer(edge, clock=lambda: time.time() - 400)
        return (
            await issuer.issue(
                subject=subject,
                client_id="ztgate-app",
                acr="a",
                amr=["pwd"],
                auth_time=now,
                with_refresh=False,
            )
        ).access_token
    if kind == "wrong_audience":
        return await edge.token(subject, audience="another-service")
    if kind == "alg_none":
        return sign_raw({**header, "alg": "none"}, claims, None)
    if kind == "alg_hs256":  # the public key used as an HMAC secret
        import hashlib
        import hmac as std_hmac

        from tests.authn.token_harness import b64u

        public = edge.token_ring.public_key(kid).public_pem()
        head = {**header, "alg": "HS256"}
        signing_input = sign_raw(head, claims, None).rsplit(".", 1)[0]
        mac = std_hmac.new(public, signing_input.encode(), hashlib.sha256).digest()
        return f"{signing_input}.{b64u(mac)}"
    if kind == "unknown_kid":
        return sign_raw({**header, "kid": "nope"}, claims, key)
    raise AssertionError(kind)


@pytest.mark.parametrize(
    ("kind", "description"),
    [
        ("forged", "invalid signature"),
        ("tampered", "invalid signature"),
        ("expired", "token expired"),
        ("wrong_audience", "wrong audience"),
        ("alg_none", "alg none: unsigned tokens are refused"),
        ("alg_hs256", "symmetric alg refused (algorithm confusion)"),
        ("unknown_kid", "unknown kid"),
    ],
)
async def test_bad_tokens_are_401_invalid_token(edge: Edge, kind: str, description: str) -> None:
    subject = await edge.user()
    token = await _bad_token(edge, kind, subject)
    result = denied(await edge.check(check_request(headers=_headers(token, subject))))
    assert result.status == 401
    assert result.body["error"] == "invalid_token"
    assert result.body["reason"] == ["identity:invalid_token"]
    assert result.headers["www-authenticate"] == (
        f'Bearer error="invalid_token", error_description="{description}"'
    )


async def test_unsupported_schemes_and_staff_tokens_are_refused(edge: Edge) -> None:
    _, token = await _customer(edge)
    result = denied(await edge.check(check_request(headers={"authorization": f"Basic {token}"})))
    assert (result.status, result.body["reason"]) == (401, ["identity:invalid_token"])
    staff = await edge.user("bob", kind="staff")
    staff_token = await edge.token(staff)
    result = denied(await edge.check(check_request(headers=_headers(staff_token, staff))))
    assert result.status == 403 and "identity:not_customer" in result.body["reason"]


# -- device, risk, policy ---------------------------------------------------------------


async def test_unbound_device_is_403(edge: Edge) -> None:
    _, token = await _customer(edge)
    headers = _headers(token, None, **{"x-device-signals": signals("dev-9", "u-someone-else")})
    result = denied(await edge.check(check_request(headers=headers)))
    assert (result.status, result.body["error"]) == (403, "access_denied")
    assert "device:not_bound" in result.body["reason"]


async def test_high_risk_is_403(tmp_path: Path) -> None:
    risk = TableRisk()
    edge = await start_edge(tmp_path, Components(SignalsDevice(), risk))
    try:
        subject, token = await _customer(edge)
        risk.scores[subject] = 85
        result = denied(await edge.check(check_request(headers=_headers(token, subject))))
        assert (result.status, result.body["reason"]) == (403, ["risk:too_high"])
    finally:
        await edge.close()


async def test_policy_deny_is_403_with_its_reasons(edge: Edge) -> None:
    subject, token = await _customer(edge, scope="profile:read")
    result = denied(await edge.check(check_request(headers=_headers(token, subject))))
    assert (result.status, result.body["reason"]) == (403, ["identity:missing_scope"])


async def test_step_up_is_401_with_the_rfc_9470_challenge(edge: Edge) -> None:
    subject, token = await _customer(edge)
    request = check_request(
        method="POST",
        path="/payments/v1/transfers",
        route=TRANSFER_ROUTE,
        headers=_headers(token, subject),
    )
    result = denied(await edge.check(request))
    assert result.status == 401
    assert result.body["error"] == "insufficient_user_authentication"
    assert result.body["reason"] == ["step_up:acr_too_weak"]
    assert result.headers["www-authenticate"] == (
        'Bearer error="insufficient_user_authentication", '
        'error_description="a stronger or more recent authentication is required", '
        'acr_values="urn:ztgate:acr:passkey", max_age=300'
    )


# -- sender-constrained tokens ----------------------------------------------------------


async def test_dpop_bound_token_passes_with_its_proof_and_the_key_reaches_device(
    tmp_path: Path,
) -> None:
    device = SignalsDevice()
    edge = await start_edge(tmp_path, Components(device, TableRisk()))
    try:
        key = keys.generate("ec-p256")
        jkt = key.public_key().thumbprint()
        subject, token = await _customer(edge, cnf={"jkt": jkt})
        url = f"https://api.bank.example{PATH}"

        def request(proof: str | None) -> object:
            headers = {"authorization": f"DPoP {token}", "x-device-signals": signals("d", subject)}
            if proof is not None:
                headers["dpop"] = proof
            return check_request(headers=headers)

        proof = make_proof(key, method="GET", url=url, access_token=token)
        upstream, _ = allowed(await edge.check(request(proof)))
        assert upstream["x-ztgate-subject"] == subject
        assert device.seen[-1].key_thumbprint == jkt

        replay = denied(await edge.check(request(proof)))
        assert (replay.status, replay.body["error"]) == (401, "invalid_dpop_proof")
        missing = denied(await edge.check(request(None)))
        assert missing.status == 401 and missing.headers["www-authenticate"].startswith("DPoP ")
        other_url = make_proof(
            key, method="GET", url="https://api.bank.example/x", access_token=token
        )
        assert denied(await edge.check(request(other_url))).body["error"] == "invalid_dpop_proof"
        as_bearer = check_request(headers=_headers(token, subject))
        assert denied(await edge.check(as_bearer)).body["error"] == "invalid_token"
    finally:
        await edge.close()


async def test_mtls_routes_need_the_certificate_the_token_is_bound_to(edge: Edge) -> None:
    from authn.cnf import cnf_for_certificate

    cert, other = make_cert("partner-app"), make_cert("someone-else")
    subject = await edge.user()
    token = await edge.token(subject, cnf=cnf_for_certificate(cert))
    headers = _headers(token, subject)

    missing = denied(await edge.check(check_request(headers=headers, mtls=True)))
    assert (missing.status, missing.body["reason"]) == (403, ["tls:client_certificate_required"])

    wrong = denied(
        await edge.check(check_request(headers=headers, mtls=True, certificate_pem=pem_of(other)))
    )
    assert (
        wrong.status == 401
        and "does not match the token binding" in wrong.headers["www-authenticate"]
    )

    response = await edge.check(
        check_request(headers=headers, mtls=True, certificate_pem=pem_of(cert))
    )
    upstream, _ = allowed(response)
    assert upstream["x-ztgate-subject"] == subject

    garbage = check_request(headers=headers, mtls=True, certificate_pem=b"-----BEGIN nonsense")
    assert denied(await edge.check(garbage)).body["reason"] == ["tls:invalid_client_certificate"]


# -- fail closed --------------------------------------------------------------------------


async def test_an_exception_denies_without_leaking_it(tmp_path: Path) -> None:
    edge = await start_edge(tmp_path, Components(BrokenDevice(), TableRisk()))
    try:
        subject, token = await _customer(edge)
        response = await edge.check(check_request(headers=_headers(token, subject)))
        result = denied(response)
        assert (result.status, result.body["reason"]) == (403, ["gateway:error"])
        assert "10.1.2.3" not in str(response) and "RuntimeError" not in str(response)
    finally:
        await edge.close()


async def test_a_check_past_its_deadline_denies(tmp_path: Path) -> None:
    edge = await start_edge(
        tmp_path, Components(SignalsDevice(), SlowRisk(60.0)), check_timeout=0.05
    )
    try:
        subject, token = await _customer(edge)
        started = time.monotonic()
        result = denied(await edge.check(check_request(headers=_headers(token, subject))))
        assert (result.status, result.body["reason"]) == (403, ["gateway:timeout"])
        assert time.monotonic() - started < 10  # the slow step was abandoned, not awaited
    finally:
        await edge.close()


@pytest.mark.parametrize(
    ("route", "request_args", "reason"),
    [
        (None, {}, "route:missing"),
        ({"route_id": "x"}, {}, "route:invalid"),
        ({**PUBLIC_ROUTE, "classification": "admin"}, {}, "route:invalid"),
        (PUBLIC_ROUTE, {"path": "/a/../b"}, "request:invalid_path"),
        (PUBLIC_ROUTE, {"method": "get"}, "request:invalid_method"),
        (PUBLIC_ROUTE, {"host": "exa mple"}, "request:invalid_host"),
        (PUBLIC_ROUTE, {"address": "not-an-ip"}, "request:invalid_client_address"),
        (
            PUBLIC_ROUTE,
            {"path": "/p?" + "&".join(f"k{i}=v" for i in range(80))},
            "request:invalid_query",
        ),
    ],
)
async def test_requests_that_cannot_be_judged_are_403(
    edge: Edge, route: dict[str, str] | None, request_args: dict[str, str], reason: str
) -> None:
    result = denied(await edge.check(check_request(route=route, **request_args)))
    assert (result.status, result.body["error"], result.body["reason"]) == (
        403,
        "access_denied",
        [reason],
    )


async def test_a_revoked_token_is_refused_once_the_revocation_syncs(edge: Edge) -> None:
    subject, token = await _customer(edge)
    allowed(await edge.check(check_request(headers=_headers(token, subject))))  # now cached
    await edge.issuer.revoke(token)
    deadline = time.monotonic() + 5
    while True:
        response = await edge.check(check_request(headers=_headers(token, subject)))
        if response.WhichOneof("http_response") == "denied_response":
            break
        assert time.monotonic() < deadline, "revocation never reached the agent"
        await asyncio.sleep(0.05)
    assert denied(response).headers["www-authenticate"].endswith('"token revoked"')


async def test_a_stale_revocation_view_refuses_authenticated_requests(tmp_path: Path) -> None:
    edge = await start_edge(tmp_path, revocation_sync_seconds=0.1, revocation_max_staleness=1.5)
    try:
        subject, token = await _customer(edge)
        allowed(await edge.check(check_request(headers=_headers(token, subject))))
        await edge.agent.store.close()  # the store becomes unreachable: syncs now fail
        await asyncio.sleep(2.0)
        result = denied(await edge.check(check_request(headers=_headers(token, subject))))
        assert (result.status, result.body["reason"]) == (403, ["gateway:revocations_stale"])
        public = check_request(path="/products", route=PUBLIC_ROUTE)
        allowed(await edge.check(public))  # anonymous requests carry no token to revoke
    finally:
        await edge.close()


# -- decision log -----------------------------------------------------------------------


async def test_every_decision_is_logged_masked_under_the_id_the_client_sees(edge: Edge) -> None:
    subject, token = await _customer(edge)
    ok, _ = allowed(await edge.check(check_request(headers=_headers(token, subject))))
    no_route = denied(await edge.check(check_request(route=None)))
    bad = denied(await edge.check(check_request(headers={"authorization": "Bearer x.y.z"})))
    edge.agent.decision_log.flush()
    lines = (edge.config.decision_log_dir / "decisions-0.jsonl").read_text().splitlines()
    events = {event["decision_id"]: event for event in map(json.loads, lines)}
    assert set(events) == {
        ok["x-ztgate-decision-id"],
        no_route.body["decision_id"],
        bad.body["decision_id"],
    }
    allow = events[ok["x-ztgate-decision-id"]]
    assert allow["result"]["allow"] is True and allow["labels"]["status"] == "200"
    assert allow["bundles"]["ztgate"]["revision"] == edge.agent.policy.revision
    assert allow["input"]["identity"]["subject"] != subject  # pseudonymised or masked
    assert "authorization" not in json.dumps(allow["input"]).lower()
    refused = events[bad.body["decision_id"]]
    assert refused["result"]["reasons"] == ["identity:invalid_token"]
    assert refused["labels"]["status"] == "401"
    assert refused["input"]["route"]["id"] == "accounts.balances"
    assert events[no_route.body["decision_id"]]["result"]["reasons"] == ["route:missing"]


async def test_nothing_is_allowed_that_the_decision_log_cannot_take(edge: Edge) -> None:
    subject, token = await _customer(edge)
    allowed(await edge.check(check_request(headers=_headers(token, subject))))
    dlog = edge.agent.decision_log
    dlog.close()  # as a full queue: the log takes no more events
    result = denied(await edge.check(check_request(headers=_headers(token, subject))))
    assert (result.status, result.body["reason"]) == (403, ["gateway:audit_unavailable"])
    assert dlog.dropped == 2  # the allow it could not take, and the deny that replaced it


async def test_a_token_for_an_unknown_subject_is_refused(edge: Edge) -> None:
    token = await edge.token("u-never-created")
    result = denied(await edge.check(check_request(headers=_headers(token, "u-never-created"))))
    assert (result.status, result.body["reason"]) == (401, ["identity:invalid_token"])
    assert result.headers["www-authenticate"].endswith('"unknown or disabled subject"')


async def test_step_up_for_a_dpop_bound_token_uses_the_dpop_scheme(edge: Edge) -> None:
    key = keys.generate("ec-p256")
    subject, token = await _customer(edge, cnf={"jkt": key.public_key().thumbprint()})
    path = "/payments/v1/transfers"
    proof = make_proof(
        key, method="POST", url=f"https://api.bank.example{path}", access_token=token
    )
    headers = {
        "authorization": f"DPoP {token}",
        "dpop": proof,
        "x-device-signals": signals("d", subject),
    }
    request = check_request(method="POST", path=path, route=TRANSFER_ROUTE, headers=headers)
    result = denied(await edge.check(request))
    assert result.status == 401
    assert result.headers["www-authenticate"].startswith(
        'DPoP error="insufficient_user_authentication"'
    )
