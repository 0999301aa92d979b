"""The developer portal: what it serves, with which headers, nothing from elsewhere, and
(in a real headless Chromium) that the page renders every operation under its strict
CSP without a console error."""

from __future__ import annotations

import copy
import json
import re
from collections.abc import AsyncIterator, Iterator
from html.parser import HTMLParser
from importlib import resources
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from selenium import webdriver
from selenium.common.exceptions import JavascriptException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.wait import WebDriverWait

from crypto import keys
from gateway.catalogue.portal import (
    PORTAL_CSP,
    RESPONSE_JWKS_PATH,
    add_portal,
    openapi_document,
    portal_extension,
)
from gateway.response_signing import ResponseSigner
from tests.browser import ServiceThread, chromium_driver
from tests.catalogue.spec import operations

ASSETS = {
    "/portal/": "text/html",
    "/portal/static/portal.js": "text/javascript",
    "/portal/static/portal.css": "text/css",
    "/portal/static/favicon.png": "image/png",
}
HOSTILE = '<img src=x onerror="document.title=1">'


def _asset(name: str) -> bytes:
    return resources.files("gateway.catalogue").joinpath(name).read_bytes()


def _test_app() -> web.Application:
    """The portal, plus two pages for the browser test's controls: the same page over
    a document full of markup (`/hostile/`), and a page with an inline script under
    the portal's CSP (`/probe/`)."""
    app = web.Application()
    add_portal(app)
    hostile = copy.deepcopy(openapi_document())
    hostile["info"]["title"] = HOSTILE
    for op in operations(hostile):
        op.doc["summary"] = HOSTILE + op.doc["summary"]

    def fixed(body: bytes, content_type: str) -> Any:
        async def serve(request: web.Request) -> web.Response:
            response = web.Response(body=body, content_type=content_type)
            response.headers["Content-Security-Policy"] = PORTAL_CSP
            return response

        return serve

    for name, content_type in (
        ("index.html", "text/html"),
        ("portal.js", "text/javascript"),
        ("portal.css", "text/css"),
        ("favicon.png", "image/png"),
    ):
        path = "/hostile/" if name == "index.html" else f"/hostile/static/{name}"
        app.router.add_get(path, fixed(_asset(f"static/{name}"), content_type))
    app.router.add_get(
        "/hostile/openapi.json", fixed(json.dumps(hostile).encode(), "application/json")
    )
    probe = b"<!doctype html><title>probe</title><script>document.title='ran'</script>"
    app.router.add_get("/probe/", fixed(probe, "text/html"))
    return app


async def _serve(app: web.Application, host: str = "127.0.0.1") -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, 0)
    await site.start()
    port = next(a[1] for a in runner.addresses if isinstance(a, tuple))
    return runner, f"http://{host}:{port}"


@pytest.fixture
async def portal() -> AsyncIterator[tuple[str, aiohttp.ClientSession]]:
    runner, url = await _serve(_test_app())
    async with aiohttp.ClientSession() as session:
        try:
            yield url, session
        finally:
            await runner.cleanup()


async def test_the_portal_serves_its_page_assets_and_document(
    portal: tuple[str, aiohttp.ClientSession],
) -> None:
    url, session = portal
    for path, content_type in {**ASSETS, "/portal/openapi.json": "application/json"}.items():
        for method in ("GET", "HEAD"):
            async with session.request(method, url + path) as resp:
                assert resp.status == 200, path
                assert resp.content_type == content_type
                assert resp.headers["Content-Security-Policy"] == PORTAL_CSP
                assert resp.headers["X-Content-Type-Options"] == "nosniff"
                assert resp.headers["X-Frame-Options"] == "DENY"
    async with session.get(url + "/portal/openapi.json") as resp:
        assert await resp.json() == openapi_document()
    async with session.get(url + "/portal", allow_redirects=False) as resp:
        assert (resp.status, resp.headers["Location"]) == (308, "/portal/")
    async with session.get(url + "/portal/static/other.js") as resp:
        assert resp.status == 404


def test_the_csp_admits_nothing_but_this_origin() -> None:
    directives = dict(d.strip().split(" ", 1) for d in PORTAL_CSP.split(";"))
    assert directives["default-src"] == "'self'"
    assert directives["script-src"] == "'self'"  # no inline, no eval
    assert directives["style-src"] == "'self'"
    assert directives["object-src"] == directives["base-uri"] == "'none'"
    assert directives["frame-ancestors"] == "'none'"
    assert directives["require-trusted-types-for"] == "'script'"
    assert "unsafe" not in PORTAL_CSP and "http" not in PORTAL_CSP and "data:" not in PORTAL_CSP


class _References(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.inline_scripts = 0
        self.handlers: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in ("src", "href", "action", "srcset", "poster", "data") and value:
                self.urls.append(value)
            if name.startswith("on"):
                self.handlers.append(name)
        if tag == "script" and not dict(attrs).get("src"):
            self.inline_scripts += 1
        if tag == "style":
            self.inline_scripts += 1


def test_no_asset_refers_to_another_host() -> None:
    """No absolute URL anywhere in the page, script or stylesheet; every reference in
    the page is relative (no scheme, no ``//host``); no inline script or handler; the
    stylesheet loads nothing (no ``url()``, no ``@import``)."""
    for name in ("static/index.html", "static/portal.js", "static/portal.css"):
        text = _asset(name).decode()
        assert re.findall(r"(?i)\b[a-z][a-z0-9+.-]*://", text) == [], name
    page = _References()
    page.feed(_asset("static/index.html").decode())
    assert sorted(page.urls) == [
        "openapi.json",
        "static/favicon.png",
        "static/portal.css",
        "static/portal.js",
    ]
    assert page.inline_scripts == 0 and page.handlers == []
    css = _asset("static/portal.css").decode()
    assert "url(" not in css and "@import" not in css
    script = _asset("static/portal.js").decode()
    assert re.findall(r"\bfetch\(([^,)]*)", script) == ['"openapi.json"']
    for call in ("XMLHttpRequest", "WebSocket", "EventSource", "import(", "sendBeacon"):
        assert call not in script


def test_the_renderer_never_parses_text_as_markup() -> None:
    script = _asset("static/portal.js").decode()
    for sink in (
        "innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(",
        "Function(", "setTimeout(\"", "DOMParser", "createContextualFragment",
    ):  # fmt: skip
        assert sink not in script, sink


async def test_ztgate_up_serves_the_portal_on_the_authn_origin(tmp_path: Path) -> None:
    """`portal_extension` is what `ztgate up` installs on the authentication service."""
    from authn.service.runner import start_service

    signer = ResponseSigner.from_key(keys.generate("sm2"))
    service = await start_service(
        state_dir=tmp_path / "state",
        database_url=f"sqlite:///{tmp_path}/authn.db",
        extensions=[portal_extension(signer.jwks())],
    )
    try:
        async with aiohttp.ClientSession() as session:
            async with session.get(service.url + "/portal/") as resp:
                assert resp.status == 200
                assert resp.headers["Content-Security-Policy"] == PORTAL_CSP
                assert "static/portal.js" in await resp.text()
            async with session.get(service.url + "/portal/openapi.json") as resp:
                assert await resp.json() == openapi_document()
            async with session.get(service.url + RESPONSE_JWKS_PATH) as resp:
                assert resp.content_type == "application/jwk-set+json"
                assert await resp.json() == signer.jwks()  # public members only
            async with session.get(service.url + "/.well-known/jwks.json") as resp:
                assert resp.status == 200  # the service's own routes are untouched
    finally:
        await service.stop()


def test_a_private_key_is_never_published() -> None:
    key = keys.generate("ec-p256")
    leaked = {"keys": [{**key.public_key().to_jwk(), "d": "AAAA"}]}
    with pytest.raises(ValueError, match="public keys only"):
        add_portal(web.Application(), leaked)


# --- in a real browser -------------------------------------------------------------


@pytest.fixture
def served() -> Iterator[str]:
    thread = ServiceThread()
    runner, url = thread.run(_serve(_test_app(), "localhost"))
    try:
        yield url
    finally:
        thread.run(runner.cleanup())
        thread.close()


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[webdriver.Chrome]:
    driver = chromium_driver(tmp_path / "chromium", browser_log=True)
    try:
        yield driver
    finally:
        driver.quit()


def _load(driver: webdriver.Chrome, url: str) -> None:
    driver.get(url)
    WebDriverWait(driver, 20).until(
        lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-state")
    )
    assert driver.find_element(By.TAG_NAME, "body").get_attribute("data-state") == "ready"


def _console(driver: webdriver.Chrome) -> list[dict[str, Any]]:
    return list(driver.get_log("browser"))


@pytest.mark.browser
@pytest.mark.timeout(120)
def test_the_page_renders_every_operation_in_chromium(
    browser: webdriver.Chrome, served: str
) -> None:
    _load(browser, served + "/portal/")
    doc = openapi_document()
    assert browser.title == doc["info"]["title"]
    for op in operations(doc):
        section = browser.find_element(By.ID, "op-" + op.doc["operationId"])
        text = section.text
        assert op.doc["summary"] in text and op.path in text, op.path
        assert op.method.upper() in text
        for requirement in op.doc["security"]:
            for scope in requirement.get("partnerToken", []):
                assert scope in text
        for status in op.doc["responses"]:
            assert status in text
        link = browser.find_element(By.CSS_SELECTOR, f'nav a[href="#op-{op.doc["operationId"]}"]')
        assert op.doc["summary"] in link.text
    for name in doc["components"]["schemas"]:
        assert browser.find_element(By.ID, "schema-" + name)
    security = browser.find_element(By.ID, "security").text
    assert "/v1/token" in security and "mutualTLS" in security
    # the schema tables name every field of a payment
    payment = browser.find_element(By.ID, "schema-Payment").text
    assert all(field in payment for field in doc["components"]["schemas"]["Payment"]["properties"])
    assert _console(browser) == []


@pytest.mark.browser
@pytest.mark.timeout(120)
def test_the_page_shows_markup_in_the_document_as_text(
    browser: webdriver.Chrome, served: str
) -> None:
    _load(browser, served + "/hostile/")
    assert browser.title == HOSTILE  # set as text: the title is the literal string
    assert browser.find_elements(By.CSS_SELECTOR, "img") == []
    op = next(operations(openapi_document()))
    assert HOSTILE in browser.find_element(By.ID, "op-" + op.doc["operationId"]).text
    assert _console(browser) == []


@pytest.mark.browser
@pytest.mark.timeout(120)
def test_the_csp_is_enforced_and_its_violations_would_be_seen(
    browser: webdriver.Chrome, served: str
) -> None:
    """Controls for the two tests above: under the portal's CSP an inline script does
    not run and is reported on the console, and an HTML sink throws (Trusted Types)."""
    browser.get(served + "/probe/")
    assert browser.title == "probe"
    logged = _console(browser)
    assert any("Content Security Policy" in entry["message"] for entry in logged), logged
    _load(browser, served + "/portal/")
    with pytest.raises(JavascriptException, match="TrustedHTML"):
        browser.execute_script("document.body.innerHTML = '<b>x</b>'")
