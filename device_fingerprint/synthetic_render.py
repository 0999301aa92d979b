"""What a `SyntheticDevice` shows the edge: its collector payload, User-Agent header and
client hints, in the formats the real browsers and the banking app's SDK use.

Canvas, WebGL and audio digests are functions of what really determines them —
GPU, OS, browser engine and its rendering "epoch" (outputs change every few
browser majors), fonts — plus a per-session nonce for privacy-farbled browsers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from device_fingerprint import synthetic_catalog as cat
from device_fingerprint.signals import sm3_hex

if TYPE_CHECKING:
    from device_fingerprint.synthetic import SyntheticDevice

__all__ = ["render"]


def _h16(*parts: object) -> str:
    return sm3_hex("|".join(map(str, parts)).encode())[:16]


_PLATFORMS = {
    "windows": "Win32",
    "macos": "MacIntel",
    "linux": "Linux x86_64",
    "ios": "iPhone",
    "android": "Linux armv81",
}
_HINT_PLATFORMS = {"windows": "Windows", "macos": "macOS", "linux": "Linux", "android": "Android"}
_CHROMIUM = {"chrome", "edge", *cat.VENDOR_BROWSERS}


def _user_agent(d: SyntheticDevice, os: str) -> str:
    m = d.major
    webkit = "AppleWebKit/537.36 (KHTML, like Gecko)"
    if d.browser == "firefox":
        system = {"windows": "Windows NT 10.0; Win64; x64", "linux": "X11; Linux x86_64"}[os]
        return f"Mozilla/5.0 ({system}; rv:{m}.0) Gecko/20100101 Firefox/{m}.0"
    apple = "AppleWebKit/605.1.15 (KHTML, like Gecko)"
    if d.browser == "safari" and os == "macos":
        version = cat.MAC_SAFARI.get(d.os_version, str(m))
        system = "Macintosh; Intel Mac OS X 10_15_7"
        return f"Mozilla/5.0 ({system}) {apple} Version/{version} Safari/605.1.15"
    if os == "ios":
        shown = "18_6" if m >= 26 else d.os_version.replace(".", "_")  # iOS 26 froze the token
        version = ".".join(d.os_version.split(".")[:2])
        return (
            f"Mozilla/5.0 (iPhone; CPU iPhone OS {shown} like Mac OS X) {apple}"
            f" Version/{version} Mobile/15E148 Safari/604.1"
        )
    if os == "android":
        if d.browser in cat.VENDOR_BROWSERS:
            token, version, _ = cat.VENDOR_BROWSERS[d.browser]
            system = f"Linux; U; Android {d.os_version}; zh-cn; {d.model} Build/UKQ1.230804.001"
            tail = f"Version/4.0 Chrome/{m}.0.0.0 Mobile Safari/537.36 {token.format(v=version)}"
            return f"Mozilla/5.0 ({system}) {webkit} {tail}"
        return f"Mozilla/5.0 (Linux; Android 10; K) {webkit} Chrome/{m}.0.0.0 Mobile Safari/537.36"
    system = {
        "windows": "Windows NT 10.0; Win64; x64",
        "macos": "Macintosh; Intel Mac OS X 10_15_7",
        "linux": "X11; Linux x86_64",
    }[os]
    name = "HeadlessChrome" if d.tells.get("headless") else "Chrome"
    tail = f" Edg/{m}.0.0.0" if d.browser == "edge" else ""
    return f"Mozilla/5.0 ({system}) {webkit} {name}/{m}.0.0.0 Safari/537.36{tail}"


def _brands(d: SyntheticDevice) -> list[tuple[str, str]]:
    grease = ("Not:A-Brand", ("8", "24", "99")[d.major % 3])
    own = {"chrome": "Google Chrome", "edge": "Microsoft Edge"}.get(d.browser)
    return [("Chromium", str(d.major)), *([(own, str(d.major))] if own else []), grease]


def render(d: SyntheticDevice, tz_offset: int) -> tuple[dict[str, Any], str | None, dict[str, str]]:
    """(payload, User-Agent header, client-hint headers) of one request from `d`."""
    w, h, dpr = d.screen
    common = {
        "collector_version": "1.0.0",
        "languages": list(d.languages),
        "tz": d.tz,
        "tz_offset": tz_offset,
    }
    if d.cls == "app":
        app = d.app
        payload: dict[str, Any] = {
            "kind": "mobile",
            **common,
            "os": d.os,
            "os_version": d.os_version,
            "model": d.model,
            "manufacturer": d.manufacturer,
            "app_version": f"6.{d.major}.{app.get('version_patch', 0)}",
            "app_install_id": app["install_id"],
            "device_ids": app["ids"],
            "sim": {"hash": app["sim"], "carrier": sm3_hex(app["carrier"].encode())},
            "integrity": {
                k: app["integrity"].get(k, False)
                for k in ("rooted", "jailbroken", "emulator", "hooked", "debugger")
            },
            "screen": {"w": round(w * dpr), "h": round(h * dpr), "dpr": dpr},
            "locale": d.locale,
        }
        agent = "ztbank/6 CFNetwork/3826.600.41 Darwin/24.6.0" if d.os == "ios" else "okhttp/4.12.0"
        return payload, agent, {}
    os = d.tells.get("ua_os", d.os)
    ua = _user_agent(d, os)
    engine = "blink" if d.browser in _CHROMIUM else d.browser
    epoch = d.major // (6 if engine == "blink" else 8) if d.browser != "safari" else d.major
    noise = d.session if d.farbled else 0
    major_os = d.os_version.split(".")[0]
    arial = "Arial" in d.fonts
    payload = {
        "kind": "web",
        **common,
        "ua": ua,
        "platform": _PLATFORMS[os],
        "screen": {
            "w": w,
            "h": h,
            "aw": w,
            "ah": h - (0 if d.cls == "phone" else 40),
            "depth": 24,
            "dpr": dpr,
        },
        "hw_concurrency": d.cores,
        "touch_points": d.touch,
        "canvas": _h16("canvas", d.renderer, d.os, major_os, engine, epoch, arial, noise),
        "webgl": {
            "vendor": d.renderer[0],
            "renderer": d.renderer[1],
            "hash": _h16("webgl", d.renderer, engine, d.major // 16),
        },
        "audio": _h16("audio", engine, d.os, epoch // 2, noise),
        "fonts": list(d.fonts),
        "automation": {
            "webdriver": bool(d.tells.get("webdriver")),
            "globals": list(d.tells.get("globals", ())),
            "plugins": d.tells.get("plugins", 0 if d.cls == "phone" else 5),
        },
    }
    hints: dict[str, str] = {}
    if d.browser in _CHROMIUM:
        payload["device_memory"] = d.memory
        brands = _brands(d)
        payload["uach"] = {
            "brands": [{"brand": b, "version": v} for b, v in brands],
            "mobile": d.cls == "phone",
            "platform": _HINT_PLATFORMS[d.os],
            "platform_version": d.os_version,
            "architecture": "arm" if d.os in ("android", "macos") else "x86",
            "bitness": "64",
            "model": d.model if d.os == "android" else "",
        }
        if not d.tells.get("no_hints"):
            hints = {
                "sec-ch-ua": ", ".join(f'"{b}";v="{v}"' for b, v in brands),
                "sec-ch-ua-mobile": "?1" if d.cls == "phone" else "?0",
                "sec-ch-ua-platform": f'"{_HINT_PLATFORMS[d.os]}"',
            }
    return payload, ua, hints
