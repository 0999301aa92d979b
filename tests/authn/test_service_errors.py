"""Bad input to the running service: always a 4xx JSON error, never a 500 or a stack trace.

Acceptance check 6 of the authentication issue: malformed JSON, missing
fields, oversized bodies (> 64 KiB) and wrong content types, on every
endpoint that takes a body; plus a property test that arbitrary bodies never
produce a 5xx.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from authn.store.base import SUBJECT_PATTERN
from tests.authn.service_harness import Api, Reply

JSON_ENDPOINTS = [
    "/v1/users",
    "/v1/clients",
    "/v1/login/password",
    "/v1/login/totp",
    "/v1/totp/enroll",
    "/v1/totp/confirm",
    "/v1/webauthn/register/options",
    "/v1/webauthn/register/verify",
    "/v1/webauthn/authenticate/options",
    "/v1/webauthn/authenticate/verify",
]
FORM_ENDPOINTS = ["/v1/token", "/v1/revoke", "/v1/introspect"]


def assert_clean_error(
    reply: Reply, status: int | tuple[int, ...], code: str | None = None
) -> None:
    statuses = (status,) if isinstance(status, int) else status
    assert reply.status in statuses, reply
    assert reply.headers["Content-Type"].startswith("application/json"), reply
    assert set(reply.body) <= {"error", "error_description"}, reply
    if code is not None:
        assert reply.error == code, reply
    assert "Traceback" not in reply.text and 'File "' not in reply.text
    assert reply.headers.get("X-Content-Type-Options") == "nosniff"


async def _authenticated(api: Api) -> dict[str, str]:
    """An Authorization header for a logged-in user, so bearer checks pass first."""
    await api.create_user("eve", "a long enough password")
    reply = await api.login("eve", "a long enough password")
    return {"Authorization": f"Bearer {reply.body['access_token']}"}


@pytest.mark.parametrize("path", JSON_ENDPOINTS)
async def test_malformed_json(api: Api, path: str) -> None:
    headers = {"Content-Type": "application/json", **(await _authenticated(api))}
    if path in ("/v1/users", "/v1/clients"):
        headers["Authorization"] = f"Bearer {api.admin}"
    deep = b"[" * 100 + b"]" * 100
    recursion = b'{"a": ' + b"[" * 20_000 + b"]" * 20_000 + b"}"  # past the decoder's limit
    for raw in (b"{", b"[1, 2]", b'"text"', b"\xff\xfe", b'{"a": NaN', deep, recursion):
        reply = await api.call("POST", path, data=raw, headers=headers)
        assert_clean_error(reply, 400, "invalid_request")


@pytest.mark.parametrize("path", JSON_ENDPOINTS)
async def test_wrong_content_type(api: Api, path: str) -> None:
    headers = await _authenticated(api)
    if path in ("/v1/users", "/v1/clients"):
        headers["Authorization"] = f"Bearer {api.admin}"
    for content_type in ("text/plain", "application/x-www-form-urlencoded", "application/xml"):
        reply = await api.call(
            "POST",
            path,
            data=b'{"username": "x"}',
            headers={**headers, "Content-Type": content_type},
        )
        assert_clean_error(reply, 415, "unsupported_media_type")


@pytest.mark.parametrize("path", FORM_ENDPOINTS)
async def test_form_endpoints_refuse_json(api: Api, path: str) -> None:
    reply = await api.call("POST", path, json_body={"grant_type": "client_credentials"})
    assert_clean_error(reply, 415, "unsupported_media_type")


async def test_missing_fields_are_named(api: Api) -> None:
    reply = await api.call("POST", "/v1/login/password", json_body={"username": "x"})
    assert_clean_error(reply, 400, "invalid_request")
    assert "password" in reply.body["error_description"]
    reply = await api.call("POST", "/v1/users", json_body={}, token=api.admin)
    assert_clean_error(reply, 400, "invalid_request")
    assert "username" in reply.body["error_description"]
    reply = await api.call("POST", "/v1/token", form={})
    assert_clean_error(reply, 400, "invalid_request")
    assert "grant_type" in reply.body["error_description"]
    reply = await api.call("POST", "/v1/token", form={"grant_type": "refresh_token"})
    assert_clean_error(reply, 400, "invalid_request")
    reply = await api.call("POST", "/v1/token", form={"grant_type": "password"})
    assert_clean_error(reply, 400, "unsupported_grant_type")


async def test_wrong_field_types(api: Api) -> None:
    for body in (
        {"username": 5, "password": "x"},
        {"username": "a", "password": ["x"]},
        {"username": "a" * 10_000, "password": "x"},
        {"username": "", "password": "x"},
    ):
        reply = await api.call("POST", "/v1/login/password", json_body=body)
        assert_clean_error(reply, 400, "invalid_request")
    bad_clients: list[dict[str, Any]] = [
        {"name": 5, "auth_method": "private_key_jwt", "scopes": "a"},
        {"name": "p", "auth_method": "secret", "scopes": "a"},
        {"name": "p", "auth_method": "private_key_jwt", "scopes": "a", "jwks": 7},
        {"name": "p", "auth_method": "tls_client_auth", "scopes": "a", "tls_subject_dn": ["x"]},
        {"name": "p", "auth_method": "tls_client_auth", "scopes": 3, "tls_subject_dn": "CN=x"},
        {
            "name": "p",
            "auth_method": "self_signed_tls_client_auth",
            "scopes": "a",
            "tls_cert_pem": 1,
        },
    ]
    for body in bad_clients:
        reply = await api.call("POST", "/v1/clients", json_body=body, token=api.admin)
        assert_clean_error(reply, 400, "invalid_client_metadata")


@pytest.mark.parametrize("path", [*JSON_ENDPOINTS, *FORM_ENDPOINTS])
async def test_oversized_bodies(api: Api, path: str) -> None:
    big = json.dumps({"username": "x" * (64 * 1024 + 1)}).encode()
    content_type = (
        "application/json" if path in JSON_ENDPOINTS else "application/x-www-form-urlencoded"
    )
    headers = {"Content-Type": content_type, "Authorization": f"Bearer {api.admin}"}
    if path not in ("/v1/users", "/v1/clients"):
        headers.update(await _authenticated(api))
    reply = await api.call("POST", path, data=big, headers=headers)
    assert_clean_error(reply, 413, "request_too_large")


async def test_unknown_paths_and_methods(api: Api) -> None:
    assert_clean_error(await api.call("GET", "/v1/nothing"), 404, "not_found")
    assert_clean_error(await api.call("GET", "/v1/login/password"), 405, "method_not_allowed")
    assert_clean_error(await api.call("GET", "/%2e%2e/%2e%2e/etc/passwd"), 404, "not_found")


async def test_admin_endpoints_need_the_admin_token(api: Api) -> None:
    body = {"username": "mallory"}
    for token in (None, "", "wrong", api.admin + "x", api.admin[:-1]):
        reply = await api.call("POST", "/v1/users", json_body=body, token=token)
        assert_clean_error(reply, 401, "unauthorized")
        assert reply.headers["WWW-Authenticate"].startswith("Bearer")
    user_token = (await _authenticated(api))["Authorization"].split()[1]
    reply = await api.call("POST", "/v1/clients", json_body=body, token=user_token)
    assert_clean_error(reply, 401, "unauthorized")


async def test_bearer_endpoints_reject_bad_tokens(api: Api) -> None:
    for header in ("", "Bearer", "Bearer x.y.z", "Basic dXNlcjpwdw==", "Bearer " + "a" * 20_000):
        reply = await api.call(
            "GET", "/v1/webauthn/credentials", headers={"Authorization": header} if header else {}
        )
        assert_clean_error(reply, (400, 401), None)
        assert reply.error in ("invalid_token", "invalid_request"), reply
        if reply.status == 401:
            assert "WWW-Authenticate" in reply.headers


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=12,
)
_field_names = st.sampled_from(
    [
        "username",
        "password",
        "code",
        "challenge_id",
        "credential",
        "name",
        "jwks",
        "scopes",
        "auth_method",
        "display_name",
        "kind",
        "tls_subject_dn",
        "tls_cert_pem",
    ]
)


@pytest.mark.parametrize("store_backend", ["sqlite"], indirect=True)
@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    path=st.sampled_from([*JSON_ENDPOINTS, *FORM_ENDPOINTS]),
    body=st.dictionaries(_field_names, _json_values, max_size=5),
    as_admin=st.booleans(),
)
async def test_arbitrary_bodies_never_500(
    api: Api, path: str, body: dict[str, Any], as_admin: bool
) -> None:
    token = api.admin if as_admin else None
    if path in FORM_ENDPOINTS:
        form = {k: json.dumps(v) if not isinstance(v, str) else v for k, v in body.items()}
        reply = await api.call("POST", path, form=form, token=token)
    else:
        reply = await api.call("POST", path, json_body=body, token=token)
    assert reply.status < 500, (path, body, reply)
    if reply.status >= 400:
        assert_clean_error(reply, reply.status)


async def test_admin_may_choose_the_subject(api: Api) -> None:
    """``POST /v1/users`` with ``subject``: the login of a core customer ``cst_…``."""
    body = {"username": "core-dora", "subject": "cst_00ab12cd34ef5678"}
    reply = await api.call("POST", "/v1/users", json_body=body, token=api.admin)
    assert reply.status == 201, reply
    assert reply.body["subject"] == "cst_00ab12cd34ef5678"
    again = {"username": "core-dora-2", "subject": "cst_00ab12cd34ef5678"}
    reply = await api.call("POST", "/v1/users", json_body=again, token=api.admin)
    assert_clean_error(reply, 409, "subject_taken")
    reply = await api.call(
        "POST", "/v1/users", json_body={"username": "x", "subject": "cst_1"}, token=None
    )
    assert reply.status == 401  # only the admin chooses subjects


@pytest.mark.parametrize("store_backend", ["sqlite"], indirect=True)
@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(subject=st.one_of(st.text(max_size=80), st.integers(), st.lists(st.text(), max_size=2)))
async def test_chosen_subjects_are_validated(api: Api, subject: Any) -> None:
    body = {"username": f"u{abs(hash(repr(subject)))}", "subject": subject}
    reply = await api.call("POST", "/v1/users", json_body=body, token=api.admin)
    valid = isinstance(subject, str) and SUBJECT_PATTERN.fullmatch(subject) is not None
    if valid:
        assert reply.status in (201, 409), reply
    else:
        assert_clean_error(reply, 400, "invalid_request")
