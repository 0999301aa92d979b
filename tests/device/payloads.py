"""Well-formed collector payloads for tests (one browser, one phone), as JSON bytes."""

from __future__ import annotations

import json
from typing import Any

CHROME_UA = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko)"
    " Chrome/156.0.0.0 Safari/537.36"
)
CHROME_HINTS = {
    "sec-ch-ua": '"Chromium";v="156", "Google Chrome";v="156", "Not:A-Brand";v="8"',
    "sec-ch-ua-mobile": "?0",
    "sec-ch-ua-platform": '"Windows"',
}
CHROME_JA4 = "t13d1516h2_8daaf6152771_02713d6af862"
PYTHON_JA4 = "t13d1812h1_85036bcba153_b26ce05bbdd6"


def web(**changes: Any) -> dict[str, Any]:
    """Chrome 156 on a Windows desktop in Shanghai (edit with keyword arguments)."""
    doc: dict[str, Any] = {
        "kind": "web",
        "collector_version": "1.0.0",
        "ua": CHROME_UA,
        "uach": {
            "brands": [
                {"brand": "Chromium", "version": "156"},
                {"brand": "Google Chrome", "version": "156"},
                {"brand": "Not:A-Brand", "version": "8"},
            ],
            "mobile": False,
            "platform": "Windows",
            "platform_version": "19.0.0",
            "architecture": "x86",
            "bitness": "64",
            "model": "",
        },
        "platform": "Win32",
        "languages": ["zh-CN", "zh"],
        "tz": "Asia/Shanghai",
        "tz_offset": 480,
        "screen": {"w": 1920, "h": 1080, "aw": 1920, "ah": 1040, "depth": 24, "dpr": 1},
        "hw_concurrency": 12,
        "device_memory": 8,
        "touch_points": 0,
        "canvas": "5f1a9c03e2b74d61",
        "webgl": {
            "vendor": "Google Inc. (NVIDIA)",
            "renderer": "ANGLE (NVIDIA, NVIDIA GeForce RTX 3060 (0x00002504) Direct3D11 vs_5_0"
            " ps_5_0, D3D11)",
            "hash": "0b8e61d2c4a97f35",
        },
        "audio": "9d2e4f6a1b3c5d7e",
        "fonts": ["Arial", "Calibri", "Consolas", "Microsoft YaHei", "Segoe UI", "SimSun"],
        "automation": {"webdriver": False, "globals": [], "plugins": 5},
    }
    doc.update(changes)
    return doc


def phone(**changes: Any) -> dict[str, Any]:
    """The banking app on a Xiaomi 14 in Shanghai."""
    doc: dict[str, Any] = {
        "kind": "mobile",
        "collector_version": "1.0.0",
        "os": "android",
        "os_version": "15",
        "model": "23127PN0CC",
        "manufacturer": "Xiaomi",
        "app_version": "6.4.1",
        "app_install_id": "3f9a6c1e-5b2d-4e8f-9a7c-1d2e3f4a5b6c",
        "device_ids": {"android_id": "a" * 64, "media_drm": "b" * 64},
        "sim": {"hash": "c" * 64, "carrier": "d" * 64},
        "integrity": {"rooted": False, "emulator": False, "hooked": False},
        "screen": {"w": 1200, "h": 2670, "dpr": 3.0},
        "locale": "zh-CN",
        "languages": ["zh-CN"],
        "tz": "Asia/Shanghai",
        "tz_offset": 480,
    }
    doc.update(changes)
    return doc


def encode(doc: Any) -> bytes:
    return json.dumps(doc, ensure_ascii=False).encode("utf-8")
