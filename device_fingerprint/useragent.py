"""Just enough User-Agent parsing to compare a claim with the other signals.

Extracts the browser (and the TLS stack its networking uses), its major
version, the OS family and version, the mobile flag and headless Chrome. Since
Chrome's UA reduction (2023) the OS version is frozen on Android ("Android 10;
K") and macOS ("10_15_7"), so those versions carry no information — the
collector's client hints do.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Final

__all__ = ["MAX_UA", "UserAgent", "parse_user_agent"]

MAX_UA: Final = 512


@dataclass(frozen=True, slots=True)
class UserAgent:
    browser: str
    """``chrome``, ``edge``, ``opera``, ``samsung``, ``huawei``, ``miui``, ``uc``, ``qq``,
    ``firefox``, ``safari``, ``headless_chrome``, or ``other``."""
    major: int | None
    os: str
    """``windows``, ``macos``, ``ios``, ``android``, ``harmonyos``, ``chromeos``,
    ``linux``, or ``other``."""
    os_version: str | None
    mobile: bool
    chromium_major: int | None = None
    """The ``Chrome/NNN`` engine version of Chromium-based browsers (client hints carry it)."""

    @property
    def headless(self) -> bool:
        return self.browser == "headless_chrome"

    @property
    def chromium_based(self) -> bool:
        return self.browser in _CHROMIUM and self.os != "ios"

    @property
    def is_browser(self) -> bool:
        return self.browser != "other"

    def tls_families(self) -> frozenset[str]:
        """TLS stacks (JA4 families, `device_fingerprint.ja4`) this browser can use."""
        if self.os == "ios":  # every iOS browser is WebKit; networking may be Cronet
            return frozenset({"apple", "chromium"})
        if self.browser in _CHROMIUM:
            return frozenset({"chromium"})
        if self.browser == "firefox":
            return frozenset({"firefox"})
        if self.browser == "safari":
            return frozenset({"apple"})
        return frozenset()

    def label(self) -> str:
        names = _NAMES.get(self.browser, "Browser")
        return f"{names} on {_OS_NAMES.get(self.os, 'an unknown OS')}"


_CHROMIUM: Final = frozenset(
    {"chrome", "edge", "opera", "samsung", "huawei", "miui", "uc", "qq", "headless_chrome"}
)
_NAMES: Final = {
    "chrome": "Chrome",
    "edge": "Edge",
    "opera": "Opera",
    "samsung": "Samsung Internet",
    "huawei": "Huawei Browser",
    "miui": "MIUI Browser",
    "uc": "UC Browser",
    "qq": "QQ Browser",
    "firefox": "Firefox",
    "safari": "Safari",
    "headless_chrome": "Headless Chrome",
}
_OS_NAMES: Final = {
    "windows": "Windows",
    "macos": "macOS",
    "ios": "iOS",
    "android": "Android",
    "harmonyos": "HarmonyOS",
    "chromeos": "ChromeOS",
    "linux": "Linux",
}
# First match wins: brands that also say "Chrome/…" or "Safari/…" come first.
_BROWSERS: Final = tuple(
    (name, re.compile(pattern))
    for name, pattern in (
        ("headless_chrome", r"HeadlessChrome/(\d+)"),
        ("edge", r"Edg(?:e|A|iOS)?/(\d+)"),
        ("opera", r"(?:OPR|OPT)/(\d+)"),
        ("samsung", r"SamsungBrowser/(\d+)"),
        ("huawei", r"HuaweiBrowser/(\d+)"),
        ("miui", r"MiuiBrowser/(\d+)"),
        ("uc", r"UCBrowser/(\d+)"),
        ("qq", r"MQQBrowser/(\d+)|QQBrowser/(\d+)"),
        ("firefox", r"(?:Firefox|FxiOS)/(\d+)"),
        ("chrome", r"(?:Chrome|CriOS)/(\d+)"),
        ("safari", r"Version/(\d+)[\d.]* (?:Mobile/\S+ )?Safari/"),
    )
)
_CHROME_TOKEN: Final = re.compile(r"(?:HeadlessChrome|Chrome)/(\d+)")
_IOS: Final = re.compile(r"\((?:iPhone|iPad|iPod)[^)]*? OS (\d+)(?:_(\d+))?")
_ANDROID: Final = re.compile(r"Android (\d+(?:\.\d+)?)")
_HARMONY: Final = re.compile(r"(?:OpenHarmony|HarmonyOS)[ /]?(\d+(?:\.\d+)?)?")
_WINDOWS: Final = re.compile(r"Windows NT (\d+\.\d+)")
_MACOS: Final = re.compile(r"Mac OS X (\d+)[_.](\d+)")


def _os(ua: str) -> tuple[str, str | None]:
    if m := _IOS.search(ua):
        return "ios", m.group(1) + (f".{m.group(2)}" if m.group(2) else "")
    if m := _ANDROID.search(ua):  # HarmonyOS 2-4 say Android too, and behave as it
        return "android", m.group(1)
    if m := _HARMONY.search(ua):
        return "harmonyos", m.group(1)
    if m := _WINDOWS.search(ua):
        return "windows", m.group(1)
    if m := _MACOS.search(ua):
        return "macos", f"{m.group(1)}.{m.group(2)}"
    if "CrOS" in ua:
        return "chromeos", None
    if "Linux" in ua or "X11" in ua:
        return "linux", None
    return "other", None


@functools.lru_cache(maxsize=4096)
def parse_user_agent(ua: str) -> UserAgent:
    """Parse `ua` (cached: a fleet sees few distinct strings). Callers pass at most
    `MAX_UA` characters, which bounds the cache's memory."""
    browser, major = "other", None
    if ua.startswith("Mozilla/5.0"):
        for name, pattern in _BROWSERS:
            if m := pattern.search(ua):
                digits = next(g for g in m.groups() if g is not None)
                browser, major = name, int(digits[:6])
                break
    os_name, os_version = _os(ua)
    mobile = "Mobile" in ua or "iPhone" in ua
    engine = _CHROME_TOKEN.search(ua) if browser in _CHROMIUM else None
    chromium_major = int(engine.group(1)[:6]) if engine else None
    return UserAgent(browser, major, os_name, os_version, mobile, chromium_major)
