"""Acceptance: a real headless Chromium registers and uses a passkey on the running service.

Chromium's virtual authenticator (WebDriver "Virtual Authenticators", driven by
Selenium) is a CTAP2 platform authenticator with resident keys and user
verification — the phone's biometric sensor, as far as the browser and the
service can tell. The page is the service's own ``/passkey``; the browser does
everything through ``window.ztgatePasskey`` (authn/service/static/passkey.js).

The virtual authenticator increments its signature counter on every assertion
(checked below through ``get_credentials()``), so the cloned-authenticator case
needs no tampering: an assertion produced first but submitted after a newer
one carries a lower counter (WebAuthn L3 §6.1.1, §7.2 step 21).
"""

from __future__ import annotations

import base64
import json
import re
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.common.virtual_authenticator import (
    Protocol,
    Transport,
    VirtualAuthenticatorOptions,
)
from selenium.webdriver.support.wait import WebDriverWait

from authn.acr import PASSKEY
from tests.browser import ServiceThread

pytestmark = [pytest.mark.browser, pytest.mark.timeout(120)]


@pytest.fixture
def service(tmp_path: Path) -> Iterator[tuple[Any, int]]:
    """The running service, plus a second port serving the same app (another origin)."""
    from authn.service.runner import free_port, start_service

    thread = ServiceThread()
    running = thread.run(
        start_service(state_dir=tmp_path / "state", database_url=f"sqlite:///{tmp_path}/authn.db")
    )
    other_port = free_port()

    async def second_site() -> None:
        await web.TCPSite(running.runner, "localhost", other_port).start()

    thread.run(second_site())
    try:
        yield running, other_port
    finally:
        thread.run(running.stop())
        thread.close()


@pytest.fixture
def browser(chromium: webdriver.Chrome) -> webdriver.Chrome:
    """Chromium with a virtual CTAP2 platform authenticator (resident keys, UV)."""
    chromium.add_virtual_authenticator(
        VirtualAuthenticatorOptions(
            protocol=Protocol.CTAP2,
            transport=Transport.INTERNAL,
            has_resident_key=True,
            has_user_verification=True,
            is_user_verified=True,
        )
    )
    return chromium


def page_call(driver: webdriver.Chrome, function: str, *args: Any) -> dict[str, Any]:
    """Await ``window.ztgatePasskey[function](...args)`` in the page."""
    result: dict[str, Any] = driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "const args = Array.prototype.slice.call(arguments, 1, arguments.length - 1);"
        "window.ztgatePasskey[arguments[0]](...args)"
        ".then(done, e => done({status: -1, body: String(e)}));",
        function,
        *args,
    )
    return result


def open_page(driver: webdriver.Chrome, origin: str) -> None:
    driver.get(f"{origin}/passkey")
    assert driver.execute_script("return typeof window.ztgatePasskey") == "object"
    assert driver.execute_script("return window.isSecureContext") is True


def create_user(url: str, admin_token: str, username: str, password: str) -> str:
    body = json.dumps(
        {"username": username, "display_name": "Li Si", "password": password}
    ).encode()
    request = urllib.request.Request(
        f"{url}/v1/users",
        data=body,
        method="POST",
        headers={"Authorization": f"Bearer {admin_token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 201
        subject: str = json.load(response)["subject"]
        return subject


def claims(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    decoded: dict[str, Any] = json.loads(
        base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    )
    return decoded


def counters(driver: webdriver.Chrome) -> list[int]:
    return [c.sign_count for c in driver.get_credentials()]


def test_passkey_in_a_real_browser(service: tuple[Any, int], browser: webdriver.Chrome) -> None:
    running, other_port = service
    username, password = f"phone-{uuid.uuid4().hex[:10]}", "correct horse battery staple"
    subject = create_user(running.url, running.admin_token, username, password)
    open_page(browser, running.url)

    # Password first (a passkey is added to an authenticated account), then register.
    result = page_call(browser, "loginPassword", username, password)
    assert result["status"] == 200, result
    result = page_call(browser, "register", "phone")
    assert result["status"] == 201, result
    credential_id = result["body"]["credential_id"]
    [stored] = browser.get_credentials()
    assert stored.is_resident_credential
    assert stored.id.rstrip("=") == credential_id  # Selenium gives padded base64url

    # Discoverable, username-less login with the passkey alone.
    browser.execute_script("window.ztgatePasskey.logout()")
    before = counters(browser)
    result = page_call(browser, "login")
    assert result["status"] == 200, result
    token = claims(result["body"]["access_token"])
    assert (token["sub"], token["acr"]) == (subject, PASSKEY)
    assert {"hwk", "user"} <= set(token["amr"]) and "pwd" not in token["amr"]
    assert result["body"]["acr"] == PASSKEY
    assert counters(browser)[0] > before[0], "the virtual authenticator must count signatures"
    browser.execute_script("window.ztgatePasskey.logout()")

    # (a) Same RP ID (localhost) but another origin (port): refused.
    open_page(browser, f"http://localhost:{other_port}")
    result = page_call(browser, "login")
    assert 400 <= result["status"] < 500, result
    assert result["body"]["error"] == "invalid_assertion", result
    assert "origin" in result["body"]["error_description"]

    # (b) Cloned authenticator: an older assertion arriving after a newer one.
    open_page(browser, running.url)
    older = page_call(browser, "getAssertion")
    assert older["status"] == 200, older
    newer = page_call(browser, "login")
    assert newer["status"] == 200, newer
    result = page_call(browser, "submitAssertion", older)
    assert (result["status"], result["body"]["error"]) == (401, "credential_cloned"), result
    result = page_call(browser, "login")
    assert (result["status"], result["body"]["error"]) == (401, "credential_flagged"), result

    # A human sees results in the page's <pre>, tokens redacted.
    browser.find_element(By.ID, "username").send_keys(username)
    browser.find_element(By.ID, "password").send_keys(password)
    browser.find_element(By.ID, "password-login").click()
    WebDriverWait(browser, 10).until(
        lambda d: '"status": 200' in d.find_element(By.ID, "result").text
    )
    text = browser.find_element(By.ID, "result").text
    assert re.search(r'"access_token": "[^"]{12}…"', text), text  # redacted
    assert '"acr": "urn:ztgate:acr:pwd"' in text
