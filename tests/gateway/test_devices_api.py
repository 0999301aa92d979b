"""The device-management API (`gateway.devices_api`) on the real authentication service,
over real TCP, with the real assessor and registry (SQLite): binding needs a fresh
strong factor, a customer manages only their own devices, the bank revokes any, and
every bad request is a 4xx with a reason."""

from __future__ import annotations

import base64
import random
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from device_fingerprint.config import DeviceConfig
from device_fingerprint.synthetic import headless_browser, observe, random_device
from gateway.devices_api import BIND_MAX_AGE, devices_extension
from tests.authn.service_harness import Api

MFA = "urn:ztgate:acr:mfa"
PWD = "urn:ztgate:acr:pwd"


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Api]:
    url = f"sqlite://{tmp_path / 'authn.db'}"
    extension = devices_extension(url, DeviceConfig(max_bound_devices=2))
    service = Api(tmp_path / "state", url, None, extra={"extensions": [extension]})
    await service.start()
    try:
        yield service
    finally:
        await service.close()


async def customer(api: Api, name: str, kind: str = "customer") -> str:
    reply = await api.call(
        "POST", "/v1/users", json_body={"username": name, "kind": kind}, token=api.admin
    )
    assert reply.status == 201, reply.text
    return str(reply.body["subject"])


async def token(
    api: Api, subject: str, *, acr: str = MFA, age: float = 0, cnf: dict[str, str] | None = None
) -> str:
    assert api.service is not None
    response = await api.service.state.issuer.issue(
        subject=subject,
        client_id="ztgate-app",
        acr=acr,
        amr=["pwd", "otp"] if acr == MFA else ["pwd"],
        auth_time=int(time.time() - age),
        cnf=cnf,
        with_refresh=False,
    )
    return response.access_token


def browser(seed: int, subject: str, *, bot: bool = False) -> dict[str, str]:
    rng = random.Random(seed)
    device = headless_browser(rng) if bot else random_device(rng, "windows-chrome")
    obs = observe(device, subject)
    signals = base64.urlsafe_b64encode(obs.signals or b"").rstrip(b"=").decode()
    return {**obs.client_hints, "User-Agent": obs.user_agent or "", "x-device-signals": signals}


async def test_bind_list_rename_revoke(api: Api) -> None:
    subject = await customer(api, "alice")
    bearer = await token(api, subject)
    device = browser(1, subject)
    bound = await api.call(
        "POST", "/v1/devices", json_body={"name": "laptop"}, token=bearer, headers=device
    )
    assert bound.status == 201, bound.text
    assert bound.body["state"] == "bound" and bound.body["name"] == "laptop"
    device_id = bound.body["device_id"]
    listed = await api.call("GET", "/v1/devices", token=bearer)
    assert listed.status == 200
    assert [d["device_id"] for d in listed.body["devices"]] == [device_id]
    assert "features" not in listed.body["devices"][0]  # never the raw signals
    again = await api.call(
        "POST", "/v1/devices", json_body={"name": "laptop"}, token=bearer, headers=device
    )
    assert (again.status, again.error) == (409, "device:already_bound")
    renamed = await api.call(
        "PATCH", f"/v1/devices/{device_id}", json_body={"name": "work"}, token=bearer
    )
    assert renamed.status == 200 and renamed.body["name"] == "work"
    revoked = await api.call("DELETE", f"/v1/devices/{device_id}", token=bearer)
    assert revoked.status == 204
    listed = await api.call("GET", "/v1/devices", token=bearer)
    assert listed.body["devices"][0]["state"] == "revoked"


@pytest.mark.parametrize(("acr", "age"), [(PWD, 0), (MFA, BIND_MAX_AGE + 60)])
async def test_binding_needs_a_fresh_strong_factor(api: Api, acr: str, age: float) -> None:
    subject = await customer(api, "bob")
    bearer = await token(api, subject, acr=acr, age=age)
    reply = await api.call(
        "POST", "/v1/devices", json_body={"name": "x"}, token=bearer, headers=browser(2, subject)
    )
    assert (reply.status, reply.error) == (401, "insufficient_user_authentication")
    challenge = reply.headers["WWW-Authenticate"]
    assert f'acr_values="{MFA}"' in challenge and f"max_age={BIND_MAX_AGE}" in challenge
    listed = await api.call("GET", "/v1/devices", token=bearer)
    assert all(d["state"] != "bound" for d in listed.body["devices"])


async def test_no_token_forged_token_and_non_customers_are_refused(api: Api) -> None:
    subject = await customer(api, "carol")
    staff = await customer(api, "sam", kind="staff")
    assert (await api.call("GET", "/v1/devices")).status == 401
    bearer = await token(api, subject)
    forged = bearer[:-6] + ("AAAAAA" if not bearer.endswith("AAAAAA") else "BBBBBB")
    reply = await api.call("GET", "/v1/devices", token=forged)
    assert (reply.status, reply.error) == (401, "invalid_token")
    reply = await api.call("GET", "/v1/devices", token=await token(api, staff))
    assert reply.status == 200  # staff enrol the devices they work from too
    assert api.service is not None
    partner_token = await api.service.state.issuer.issue(
        subject="c-partner", client_id="c-partner", acr="urn:ztgate:acr:client",
        amr=["pop"], auth_time=int(time.time()), with_refresh=False,
    )  # fmt: skip
    reply = await api.call("GET", "/v1/devices", token=partner_token.access_token)
    assert (reply.status, reply.error) == (403, "actor:not_allowed")


async def test_a_customer_cannot_touch_another_customers_device(api: Api) -> None:
    alice = await customer(api, "alice2")
    mallory = await customer(api, "mallory")
    bound = await api.call(
        "POST",
        "/v1/devices",
        json_body={"name": "phone"},
        token=await token(api, alice),
        headers=browser(3, alice),
    )
    device_id = bound.body["device_id"]
    theirs = await token(api, mallory)
    for method, body in (("PATCH", {"name": "mine"}), ("DELETE", None)):
        reply = await api.call(method, f"/v1/devices/{device_id}", json_body=body, token=theirs)
        assert (reply.status, reply.error) == (404, "device:unknown"), method
    listed = await api.call("GET", "/v1/devices", token=await token(api, alice))
    assert listed.body["devices"][0]["state"] == "bound"


async def test_bad_requests_are_4xx_with_a_reason(api: Api) -> None:
    subject = await customer(api, "dave")
    bearer = await token(api, subject)
    no_signals = await api.call("POST", "/v1/devices", json_body={"name": "x"}, token=bearer)
    assert (no_signals.status, no_signals.error) == (400, "device:no_signals")
    garbage = {"x-device-signals": "!!!not-base64!!!", "User-Agent": "curl/8"}
    reply = await api.call(
        "POST", "/v1/devices", json_body={"name": "x"}, token=bearer, headers=garbage
    )
    assert reply.status == 400 and reply.error == "device:no_signals"
    device = browser(4, subject)
    for body in ({}, {"name": ""}, {"name": 5}, {"name": "x" * 65}):
        reply = await api.call("POST", "/v1/devices", json_body=body, token=bearer, headers=device)
        assert reply.status == 400, body
    reply = await api.call("POST", "/v1/devices", data=b"{", token=bearer, headers=device)
    assert reply.status in (400, 415)
    bot = await api.call(
        "POST",
        "/v1/devices",
        json_body={"name": "bot"},
        token=bearer,
        headers=browser(5, subject, bot=True),
    )
    assert (bot.status, bot.error) == (403, "device:suspicious")


async def test_the_bound_device_limit(api: Api) -> None:
    subject = await customer(api, "erin")
    bearer = await token(api, subject)
    for seed in (10, 11):
        reply = await api.call(
            "POST",
            "/v1/devices",
            json_body={"name": "d"},
            token=bearer,
            headers=browser(seed, subject),
        )
        assert reply.status == 201, reply.text
    third = await api.call(
        "POST", "/v1/devices", json_body={"name": "d"}, token=bearer, headers=browser(12, subject)
    )
    assert (third.status, third.error) == (409, "limit:bound_devices")


async def test_the_bank_revokes_with_the_admin_token_only(api: Api) -> None:
    subject = await customer(api, "frank")
    bearer = await token(api, subject)
    bound = await api.call(
        "POST", "/v1/devices", json_body={"name": "p"}, token=bearer, headers=browser(6, subject)
    )
    path = f"/v1/subjects/{subject}/devices/{bound.body['device_id']}"
    reply = await api.call("DELETE", path, token=bearer, json_body={"reason": "stolen"})
    assert reply.status == 401  # a customer token is not the admin token
    reply = await api.call(
        "DELETE", path, token=api.admin, json_body={"reason": "reported stolen", "staff_id": "s1"}
    )
    assert reply.status == 204, reply.text
    listed = await api.call("GET", "/v1/devices", token=bearer)
    assert listed.body["devices"][0]["state"] == "revoked"
    unknown = await api.call("DELETE", f"/v1/subjects/{subject}/devices/fp:nope", token=api.admin)
    assert (unknown.status, unknown.error) == (404, "device:unknown")
