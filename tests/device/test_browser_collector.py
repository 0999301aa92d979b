"""Acceptance: the collector script in the real headless Chromium (driven by ChromeDriver).

The page loads ``collector.js`` with its Subresource Integrity hash, as ztgate's
pages do. What it produces must validate, give the same device id on two page
loads, and — ChromeDriver sets ``navigator.webdriver`` and leaves its ``cdc_``
globals — be flagged as automated.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from aiohttp import web

from device_fingerprint.assessment import DeviceObservation, TrustLevel
from device_fingerprint.assessor import DeviceAssessor
from device_fingerprint.collector import FONT_PROBES, collector_integrity, collector_script
from device_fingerprint.config import DeviceConfig
from device_fingerprint.payload import SCHEMAS, read_payload
from device_fingerprint.registry import open_registry
from device_fingerprint.signals import signals_from_payload
from tests.browser import ServiceThread

pytestmark = [pytest.mark.browser, pytest.mark.timeout(120)]


class Site:
    """A page that embeds the collector, and the request headers the browser sent."""

    def __init__(self) -> None:
        self.headers: list[dict[str, str]] = []
        self.thread = ServiceThread()
        self.runner: web.AppRunner | None = None
        self.url = ""

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/", self.page)
        app.router.add_get("/tampered", self.page)
        app.router.add_get("/static/collector.js", self.script)
        app.router.add_get("/static/tampered.js", self.script)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "localhost", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://localhost:{port}"

    async def page(self, request: web.Request) -> web.Response:
        self.headers.append({k.lower(): v for k, v in request.headers.items()})
        name = "tampered.js" if request.path == "/tampered" else "collector.js"
        html = (
            "<!doctype html><title>ztgate</title>"
            f'<script src="/static/{name}" integrity="{collector_integrity()}"'
            ' crossorigin="anonymous"></script>'
        )
        return web.Response(text=html, content_type="text/html")

    async def script(self, request: web.Request) -> web.Response:
        body = collector_script()
        if request.path.endswith("tampered.js"):
            body = body.replace(b'"1.0.0"', b'"6.6.6"')  # one changed byte string
        return web.Response(body=body, content_type="application/javascript")

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()


@pytest.fixture
def site() -> Iterator[Site]:
    running = Site()
    running.thread.run(running.start())
    try:
        yield running
    finally:
        running.thread.run(running.stop())
        running.thread.close()


def collect(driver: Any, url: str) -> bytes:
    driver.get(url)
    assert driver.execute_script("return typeof window.ztgateDevice") == "object"
    text: str = driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "window.ztgateDevice.collectJSON().then(done, e => done('error: ' + e));"
    )
    assert not text.startswith("error:"), text
    return text.encode("utf-8")


async def test_collector_in_headless_chromium(site: Site, chromium: Any, tmp_path: Path) -> None:
    first = collect(chromium, site.url + "/")
    second = collect(chromium, site.url + "/")
    headers = site.headers[-1]

    docs = [read_payload(raw, max_bytes=16 * 1024, max_depth=8) for raw in (first, second)]
    for doc in docs:
        jsonschema.validate(doc, SCHEMAS["web"])
        assert doc["collector_version"] == "1.0.0" and doc["ua"] == headers["user-agent"]
        assert doc["automation"]["webdriver"] is True
        assert doc["canvas"] and doc["audio"] and doc["webgl"]["renderer"]
    one, two = (signals_from_payload(doc) for doc in docs)
    assert one.signal_id == two.signal_id and one.features == two.features

    registry = await open_registry(f"sqlite://{tmp_path / 'device.db'}", DeviceConfig())
    try:
        assessor = DeviceAssessor(registry)
        hints = {k: v for k, v in headers.items() if k.startswith("sec-ch-ua")}
        assert hints, "Chromium sends client hints to localhost (a secure context)"
        verdicts = [
            await assessor.assess(
                DeviceObservation(
                    subject="u-alice",
                    client_ip="127.0.0.1",
                    signals=raw,
                    user_agent=headers["user-agent"],
                    client_hints=hints,
                )
            )
            for raw in (first, second)
        ]
    finally:
        await registry.close()
    assert verdicts[0].device_id == verdicts[1].device_id == one.signal_id
    assert (verdicts[0].known, verdicts[1].known) == (False, True)
    for verdict in verdicts:
        assert verdict.trust is TrustLevel.SUSPICIOUS
        assert {"automation:webdriver", "automation:globals", "automation:headless"} <= set(
            verdict.anomalies
        ), verdict.anomalies
        assert "anomaly:automation:webdriver" in verdict.reasons
        assert not any(a.startswith(("hints:", "ua:", "tls:")) for a in verdict.anomalies)


def test_a_tampered_script_is_refused_by_the_browser(site: Site, chromium: Any) -> None:
    chromium.get(site.url + "/tampered")
    assert chromium.execute_script("return typeof window.ztgateDevice") == "undefined"
    chromium.get(site.url + "/")
    assert chromium.execute_script("return window.ztgateDevice.version") == "1.0.0"


def test_script_integrity_and_font_list() -> None:
    integrity = collector_integrity()
    assert integrity.startswith("sha384-") and len(base64.b64decode(integrity[7:])) == 48
    text = collector_script().decode("utf-8")
    match = re.search(r"var FONTS = (\[.*?\]);", text, re.DOTALL)
    assert match is not None
    assert tuple(json.loads(match.group(1))) == FONT_PROBES
    assert 'var VERSION = "1.0.0";' in text
