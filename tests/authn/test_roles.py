"""Staff roles over the admin API (`authn.roles`): set at creation or replaced later,
staff only, well-formed names only, admin token only."""

from __future__ import annotations

from typing import Any

import pytest

from tests.authn.service_harness import Api


async def test_roles_are_set_and_replaced_by_the_admin(api: Api) -> None:
    body = {"username": "csr", "kind": "staff", "roles": ["csr", "csr"]}
    reply = await api.call("POST", "/v1/users", json_body=body, token=api.admin)
    assert reply.status == 201 and reply.body["roles"] == ["csr"], reply.text
    subject = reply.body["subject"]
    assert api.service is not None
    assert await api.service.state.roles.get(subject) == ("csr",)
    path = f"/v1/users/{subject}/roles"
    reply = await api.call("PUT", path, json_body={"roles": ["csr_supervisor"]}, token=api.admin)
    assert reply.status == 200 and reply.body["roles"] == ["csr_supervisor"]
    assert await api.service.state.roles.get(subject) == ("csr_supervisor",)
    reply = await api.call("PUT", path, json_body={"roles": []}, token="not-the-admin")
    assert reply.status == 401
    reply = await api.call(
        "PUT", "/v1/users/u-nobody/roles", json_body={"roles": []}, token=api.admin
    )
    assert reply.status == 404


@pytest.mark.parametrize(
    "body",
    [
        {"username": "cust", "roles": ["csr"]},  # customers hold no roles
        {"username": "s1", "kind": "staff", "roles": "csr"},
        {"username": "s2", "kind": "staff", "roles": ["CSR"]},
        {"username": "s3", "kind": "staff", "roles": ["a" * 65]},
        {"username": "s4", "kind": "staff", "roles": [f"r{i}" for i in range(17)]},
    ],
)
async def test_bad_roles_are_400(api: Api, body: dict[str, Any]) -> None:
    reply = await api.call("POST", "/v1/users", json_body=body, token=api.admin)
    assert (reply.status, reply.error) == (400, "invalid_request"), reply.text
