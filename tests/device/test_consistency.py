"""Claims against each other: User-Agent, client hints, JA4, time zone, region."""

from __future__ import annotations

import time
from typing import Any

import pytest

from device_fingerprint.consistency import anomalies, zone_countries
from device_fingerprint.ja4 import parse_ja4
from device_fingerprint.payload import read_payload
from device_fingerprint.signals import Signals, signals_from_payload
from device_fingerprint.useragent import parse_user_agent
from tests.device.payloads import (
    CHROME_HINTS,
    CHROME_JA4,
    CHROME_UA,
    PYTHON_JA4,
    encode,
    phone,
    web,
)

IPHONE_SAFARI = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_6 like Mac OS X) AppleWebKit/605.1.15"
    " (KHTML, like Gecko) Version/26.0 Mobile/15E148 Safari/604.1"
)
FIREFOX = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:152.0) Gecko/20100101 Firefox/152.0"
MIUI = (
    "Mozilla/5.0 (Linux; U; Android 14; zh-cn; 23127PN0CC Build/UKQ1.230804.001)"
    " AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/122.0.0.0 Mobile Safari/537.36"
    " XiaoMi/MiuiBrowser/18.6.70411"
)
JULY = 1_783_000_000.0  # 2026-07: northern summer time
JANUARY = 1_768_000_000.0  # 2026-01


def signals(doc: dict[str, Any]) -> Signals:
    return signals_from_payload(read_payload(encode(doc), max_bytes=16384, max_depth=8))


def check(doc: dict[str, Any] | None = None, **request: Any) -> tuple[str, ...]:
    args: dict[str, Any] = {
        "user_agent": CHROME_UA,
        "client_hints": CHROME_HINTS,
        "ja4": CHROME_JA4,
        "region": "CN",
        "now": JULY,
    }
    args.update(request)
    return anomalies(signals(doc) if doc is not None else None, **args)


def test_a_consistent_browser_has_no_anomalies() -> None:
    assert check(web()) == ()
    assert check(None) == ()  # no payload: the header claims still agree


@pytest.mark.parametrize(
    ("ua", "browser", "major", "os", "mobile"),
    [
        (CHROME_UA, "chrome", 156, "windows", False),
        (CHROME_UA + " Edg/156.0.0.0", "edge", 156, "windows", False),
        (IPHONE_SAFARI, "safari", 26, "ios", True),
        (FIREFOX, "firefox", 152, "windows", False),
        (MIUI, "miui", 18, "android", True),
        ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko)"
         " HeadlessChrome/156.0.0.0 Safari/537.36", "headless_chrome", 156, "linux", False),
        ("python-requests/2.34.2", "other", None, "other", False),
        ("curl/7.88.1", "other", None, "other", False),
    ],
)  # fmt: skip
def test_user_agents(ua: str, browser: str, major: int | None, os: str, mobile: bool) -> None:
    parsed = parse_user_agent(ua)
    assert (parsed.browser, parsed.major, parsed.os, parsed.mobile) == (browser, major, os, mobile)


def test_mobile_safari_on_a_scripting_tls_stack() -> None:
    """The issue's example: a "mobile Safari" whose TLS is Python's."""
    found = check(None, user_agent=IPHONE_SAFARI, client_hints={}, ja4=PYTHON_JA4)
    assert found == ("tls:alpn_mismatch", "tls:scripting_client", "tls:ua_mismatch")


@pytest.mark.parametrize(
    ("ja4", "expected"),
    [
        ("t13d3112h2_e8f1e7e78f70_b26ce05bbdd6", ("tls:scripting_client", "tls:ua_mismatch")),
        ("t13d190900_9dc949149365_97f8aa674fd9",
         ("tls:alpn_mismatch", "tls:scripting_client", "tls:ua_mismatch")),
        ("t13d3713h2_db35923f8641_7c76daad20ec", ("tls:scripting_client", "tls:ua_mismatch")),
        ("t13d591000_a33745022dd6_1f22a2ca17c4",
         ("tls:alpn_mismatch", "tls:scripting_client", "tls:ua_mismatch")),
        ("t13d1715h2_5b57614c22b0_3d5424432f57", ("tls:ua_mismatch",)),  # Firefox's NSS
        ("t13d2014h2_a09f3c656075_14788d8d241b", ("tls:ua_mismatch",)),  # Apple's stack
        ("t13d1517h2_8daaf6152771_b0da82dd1658", ()),  # Chrome with another extension set
        ("t13d1516h1_0000aaaa1111_02713d6af862", ("tls:alpn_mismatch",)),  # unknown, no h2
        ("t13d1516h2_0000aaaa1111_02713d6af862", ()),  # unknown stack: no judgement
        ("not-a-ja4", ()),
    ],
)  # fmt: skip
def test_chrome_claim_against_tls_families(ja4: str, expected: tuple[str, ...]) -> None:
    assert check(web(), ja4=ja4) == expected


def test_every_ios_browser_may_use_apple_or_chromium_networking() -> None:
    for ja4 in ("t13d2014h2_a09f3c656075_14788d8d241b", CHROME_JA4):
        assert check(None, user_agent=IPHONE_SAFARI, client_hints={}, ja4=ja4) == ()


def test_a_script_that_says_so_is_consistent() -> None:
    assert check(None, user_agent="python-requests/2.34.2", client_hints={}, ja4=PYTHON_JA4) == ()


def test_the_app_on_a_scripting_stack() -> None:
    found = check(phone(), user_agent="okhttp/4.12.0", client_hints={}, ja4=PYTHON_JA4)
    assert found == ("tls:scripting_client",)
    assert check(phone(), user_agent="okhttp/4.12.0", client_hints={}) == ()


@pytest.mark.parametrize(
    ("hints", "ua"),
    [
        ({**CHROME_HINTS, "sec-ch-ua": '"Chromium";v="120", "Not:A-Brand";v="8"'}, CHROME_UA),
        ({**CHROME_HINTS, "sec-ch-ua-mobile": "?1"}, CHROME_UA),
        ({**CHROME_HINTS, "sec-ch-ua-platform": '"Linux"'}, CHROME_UA),
        (CHROME_HINTS, FIREFOX),  # Firefox sends no client hints
        (CHROME_HINTS, IPHONE_SAFARI),
    ],
)
def test_client_hints_against_the_user_agent(hints: dict[str, str], ua: str) -> None:
    ja4 = "t13d1715h2_5b57614c22b0_3d5424432f57" if "Firefox" in ua else None
    assert "hints:ua_mismatch" in check(None, user_agent=ua, client_hints=hints, ja4=ja4)


def test_vendor_browsers_report_their_chromium_engine_in_hints() -> None:
    hints = {
        "sec-ch-ua": '"Chromium";v="122", "Not:A-Brand";v="24"',
        "sec-ch-ua-mobile": "?1",
        "sec-ch-ua-platform": '"Android"',
    }
    assert check(None, user_agent=MIUI, client_hints=hints) == ()


def test_payload_user_agent_must_be_the_requests() -> None:
    assert check(web(), user_agent=CHROME_UA.replace("156", "155")) == ("ua:payload_mismatch",)


def test_automation_tells() -> None:
    headless = web(
        ua=CHROME_UA.replace("Chrome/", "HeadlessChrome/"),
        automation={
            "webdriver": True,
            "globals": ["cdc_adoQpoasnfa76pfcZLmcfl_Array"],
            "plugins": 0,
        },
        webgl={
            "vendor": "Google Inc. (Google)",
            "renderer": "ANGLE (Google, Vulkan 1.3.0 (SwiftShader Device (Subzero)),"
            " SwiftShader driver)",
        },
        languages=[],
    )
    found = check(headless, user_agent=headless["ua"])
    assert {
        "automation:globals",
        "automation:headless",
        "automation:no_languages",
        "automation:no_plugins",
        "automation:webdriver",
        "render:software",
    } <= set(found)
    brand = {**CHROME_HINTS, "sec-ch-ua": '"HeadlessChrome";v="156", "Chromium";v="156"'}
    assert "automation:headless" in check(None, client_hints=brand)


def test_time_zone_against_region_and_offset() -> None:
    assert check(web(), region="CN") == ()
    assert check(web(), region="US") == ("tz:region_mismatch",)
    assert check(web(), region=None) == ()
    assert check(web(tz_offset=0)) == ("tz:offset_mismatch",)
    assert check(web(tz="Mars/Olympus_Mons")) == ("tz:unknown",)
    assert check(web(tz="../../../../etc/passwd")) == ("tz:unknown",)
    london = web(tz="Europe/London", tz_offset=60)
    assert check(london, region="GB", now=JULY) == ()  # BST
    assert check(london, region="GB", now=JANUARY) == ("tz:offset_mismatch",)
    assert check(web(tz="Europe/London", tz_offset=0), region="GB", now=JANUARY) == ()
    assert check(web(tz="Asia/Calcutta", tz_offset=330), region="IN") == ()  # a link name
    assert check(web(tz="Etc/UTC", tz_offset=0), region="CN") == ()  # no country to compare
    assert zone_countries("Europe/Berlin") >= {"DE", "DK", "NO", "SE"}


def test_dst_change_between_collection_and_request_is_not_an_anomaly() -> None:
    # 2026-03-29 01:00 UTC London moves to BST; a payload collected at 00:59 GMT.
    switch = 1_774_746_000.0
    assert check(web(tz="Europe/London", tz_offset=0), region="GB", now=switch + 120) == ()


def test_mobile_integrity_and_emulators() -> None:
    assert check(phone(integrity={"rooted": True, "hooked": True}), user_agent=None) == (
        "integrity:hooked",
        "integrity:rooted",
    )
    emulated = phone(manufacturer="Google", model="sdk_gphone64_x86_64")
    assert check(emulated, user_agent=None) == ("integrity:emulator_model",)


def test_ja4_parser() -> None:
    parsed = parse_ja4(CHROME_JA4)
    assert parsed is not None and parsed.family == "chromium" and parsed.offers_h2 and parsed.sni
    assert parse_ja4("q13d0312h3_55b375c5d22e_06cda9e17597") is not None
    for bad in ("", "t13d1516h2_8daaf6152771", "x13d1516h2_8daaf6152771_02713d6af862", "t" * 36):
        assert parse_ja4(bad) is None


def test_is_fast_enough_to_run_per_request() -> None:
    """Not a timing assertion: anomalies() must not grow with repetition (caches bounded)."""
    s = signals(web())
    for _ in range(2000):
        anomalies(s, user_agent=CHROME_UA, client_hints=CHROME_HINTS, ja4=CHROME_JA4,
                  region="CN", now=time.time())  # fmt: skip
    assert parse_user_agent.cache_info().currsize <= 4096
