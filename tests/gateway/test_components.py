"""The agent with the real device assessor and risk scorer (`gateway.components`).

A browser the customer has never used is not trusted for account data; once the
customer binds it (after a strong factor), the same browser is allowed and its
device id reaches the upstream; an automated browser stays out even for the
right customer.
"""

from __future__ import annotations

import asyncio
import base64
import random
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from device_fingerprint.assessment import DeviceObservation
from device_fingerprint.assessor import DeviceAssessor
from device_fingerprint.config import DeviceConfig
from device_fingerprint.registry import Actor, open_registry
from device_fingerprint.synthetic import headless_browser, observe, random_device
from gateway.components import build_components
from tests.gateway.harness import Edge, allowed, check_request, denied, make_config, start_edge


@pytest.fixture
async def edge(tmp_path: Path) -> AsyncIterator[Edge]:
    config, _, _ = make_config(tmp_path)
    running = await start_edge(tmp_path, await build_components(config))
    yield running
    await running.close()
    if running.components.close is not None:
        await running.components.close()


def _request(token: str, obs: DeviceObservation) -> dict[str, str]:
    """Headers as Envoy forwards them: the collector payload, UA, client hints, JA4."""
    assert obs.signals is not None and obs.user_agent is not None and obs.ja4 is not None
    encoded = base64.urlsafe_b64encode(obs.signals).rstrip(b"=").decode()
    return {
        "authorization": f"Bearer {token}",
        "x-device-signals": encoded,
        "user-agent": obs.user_agent,
        "x-ztgate-ja4": obs.ja4,
        **obs.client_hints,
    }


async def test_new_browser_is_refused_until_bound_then_allowed(edge: Edge) -> None:
    subject = await edge.user("wang")
    token = await edge.token(subject)
    device = random_device(random.Random(7), "windows-chrome")
    obs = observe(device, subject)
    headers = _request(token, obs)

    first = denied(await edge.check(check_request(headers=headers)))
    assert first.status in (401, 403)
    assert any(r.startswith("device:") for r in first.body["reason"]), first

    registry = await open_registry(edge.config.store_url, DeviceConfig())
    try:
        assessment = await DeviceAssessor(registry).assess(obs)
        await registry.bind(
            subject, assessment, actor=Actor("customer", subject),
            acr="urn:ztgate:acr:mfa", amr=("pwd", "otp"), name="office PC",
        )  # fmt: skip
    finally:
        await registry.close()

    # Another process bound it: the worker's cache learns within DeviceConfig.sync_seconds.
    deadline = time.monotonic() + 10
    response = await edge.check(check_request(headers=headers))
    while response.WhichOneof("http_response") != "ok_response" and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
        response = await edge.check(check_request(headers=headers))
    upstream, _ = allowed(response)
    assert upstream["x-ztgate-subject"] == subject
    assert upstream["x-ztgate-device"] == assessment.device_id


async def test_headless_browser_is_refused(edge: Edge) -> None:
    subject = await edge.user("li")
    token = await edge.token(subject)
    obs = observe(headless_browser(random.Random(3)), subject)
    headers = _request(token, obs)
    refused = denied(await edge.check(check_request(headers=headers)))
    assert refused.status in (401, 403)
