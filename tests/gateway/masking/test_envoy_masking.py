"""Masking behind a real Envoy: bodies change length, errors are masked, and what
cannot be checked is blocked — as the client receives it.

Envoy, the control plane and the agent are those of tests/gateway/test_ext_proc.py;
the upstream is a small aiohttp app answering with core-bank-shaped bodies.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

from edge_nodes.envoy import EnvoyOptions, LocalEnvoy
from gateway import pii
from tests.edge_nodes.harness import (
    ControlPlaneThread,
    base_config,
    free_port,
    http_request,
    wait_for,
    write_config,
)
from tests.gateway.harness import Edge, signals, start_edge

CARD = pii.card_number("622208", "123456789012", 19)
ROUTE = {
    "id": "accounts.balances",
    "template": "/api/accounts/{account_id}/balance",
    "methods": ["GET"],
    "cluster": "bank",
    "api_product": "retail-accounts",
    "classification": "account",
    "masking": True,
}


def _upstream() -> web.Application:
    async def healthz(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def balance(request: web.Request) -> web.Response:
        which = request.match_info["account_id"]
        if which == "html":
            return web.Response(text=f"<p>{CARD}</p>", content_type="text/html")
        if which == "broken":
            return web.Response(body=b'{"account_number": "' + CARD.encode(),
                                content_type="application/json")  # fmt: skip
        if which == "frozen":
            error = {"error": "account_frozen", "error_description": f"account {CARD} is frozen"}
            return web.json_response(error, status=422)
        card = {"account_number": CARD, "cvn": "123", "expiry": "09/29", "cardholder_name": "王芳"}
        return web.json_response(card)

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/api/accounts/{account_id}/balance", balance)
    return app


@pytest.fixture
async def agent(tmp_path: Path) -> AsyncIterator[Edge]:
    running = await start_edge(tmp_path)
    yield running
    await running.close()


async def test_responses_through_envoy_are_masked_or_blocked(
    agent: Edge, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="ztgate.gateway.masking")
    runner = web.AppRunner(_upstream())
    await runner.setup()
    upstream_port = free_port()
    await web.TCPSite(runner, "127.0.0.1", upstream_port).start()
    plain = free_port()
    doc = base_config(upstream_port=upstream_port, agent_ports=[agent.port], plain_port=plain,
                      tls_port=0, routes=[ROUTE])  # fmt: skip
    cp = ControlPlaneThread(write_config(tmp_path / "gateway.json", doc))
    envoy = LocalEnvoy(EnvoyOptions(node_id="edge-mask", xds_port=cp.xds_port,
                                    work_dir=tmp_path / "e"))  # fmt: skip
    try:
        await envoy.start()
        subject = await agent.user()
        token = await agent.token(subject, scope="accounts:read")
        headers = {"authorization": f"Bearer {token}", "x-device-signals": signals("d", subject)}

        def get(account: str) -> tuple[int, dict[str, str], bytes]:
            return http_request(plain, f"/api/accounts/{account}/balance", headers=headers)

        status, _, body = await asyncio.to_thread(
            wait_for, lambda: (r := get("acc-1"))[0] == 200 and r, 20
        )
        # C3 removed, C2 masked for the customer; the body is shorter than the upstream's.
        assert json.loads(body) == {"account_number": f"622208*********{CARD[-4:]}",
                                    "cardholder_name": "王*"}  # fmt: skip

        status, _, body = await asyncio.to_thread(get, "frozen")
        assert status == 422
        assert (
            json.loads(body)["error_description"] == f"account 622208*********{CARD[-4:]} is frozen"
        )

        for account, reason in (
            ("broken", "unparseable_body"),
            ("html", "content_type_not_allowed"),
        ):
            status, response_headers, body = await asyncio.to_thread(get, account)
            assert status == 502, account
            assert response_headers["content-type"] == "application/json"
            # Envoy's local-reply mapper gives every 502 its uniform body; the reason is
            # in the agent's log (gateway.masking_blocked) and the response details.
            assert json.loads(body) == {"error": "bad_gateway"}
            assert CARD.encode() not in body
            blocks = [
                r for r in caplog.records if getattr(r, "event", "") == "gateway.masking_blocked"
            ]
            assert getattr(blocks[-1], "reason", None) == reason
    finally:
        await envoy.stop()
        cp.stop()
        await runner.cleanup()
