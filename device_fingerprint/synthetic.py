"""A generated population of devices with realistic drift, and attack devices.

For measuring device ids (`device_fingerprint.id_quality`, `benchmarks/device_ids.py`)
and for the risk scenario simulator. Everything is driven by a `random.Random`,
so a seed reproduces a population exactly. Values come from
`device_fingerprint.synthetic_catalog` (real UA formats, client hints, GPUs,
screens, fonts, phone models, JA4s).

* `random_device` / `population` — desktop browsers (Windows, macOS, Linux),
  phone browsers (iPhone Safari, Android Chrome and vendor browsers) and the
  banking app (iOS, Android), in rough market shares.
* `drift` — one month of life: browser and OS updates (rendering changes every
  few browser majors, as canvas and audio outputs really do), app updates and
  reinstalls, travel (time zone and region), docking a laptop to another
  screen, new fonts, a new SIM now and then; privacy-farbled browsers render a
  different canvas every session.
* Attacks — `headless_browser` (plain or "stealth"), `scripted_client` (a real
  device's payload replayed by a script), `emulator`, `rooted_phone`,
  `jailbroken_phone`, `device_farm` (one phone, many accounts; reinstalling
  between accounts with `reinstall`), `sim_swap`.

`observe` turns a device into the `DeviceObservation` the edge would build.
"""

from __future__ import annotations

import json
import random
import time
import zoneinfo
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, TypeVar

from device_fingerprint import synthetic_catalog as cat
from device_fingerprint.assessment import DeviceObservation
from device_fingerprint.collector import FONT_PROBES
from device_fingerprint.synthetic_render import render

__all__ = [
    "SyntheticDevice",
    "device_farm",
    "drift",
    "emulator",
    "headless_browser",
    "jailbroken_phone",
    "observe",
    "population",
    "random_device",
    "reinstall",
    "rooted_phone",
    "scripted_client",
    "sim_swap",
]

T = TypeVar("T")
_PROBES = {f: i for i, f in enumerate(FONT_PROBES)}


def _pick(rng: random.Random, table: Sequence[tuple[Any, ...]]) -> tuple[Any, ...]:
    """A row of a table whose first column is the weight."""
    return rng.choices(table, weights=[row[0] for row in table])[0]


def _hex(rng: random.Random, bits: int) -> str:
    return f"{rng.getrandbits(bits):0{bits // 4}x}"


@dataclass(frozen=True)
class SyntheticDevice:
    """One physical device (`uid` is its ground truth) at one point of its life."""

    uid: str
    cls: str
    """``desktop``, ``phone`` (a phone's browser) or ``app`` (the banking app)."""
    os: str
    os_version: str
    browser: str
    major: int
    region: str
    home: tuple[str, str]
    """(region, time zone) at home; travel changes `region` and `tz`, not this."""
    tz: str
    languages: tuple[str, ...]
    locale: str
    screen: tuple[int, int, float]
    cores: int
    memory: float | None
    touch: int
    renderer: tuple[str, str]
    fonts: tuple[str, ...] = ()
    model: str = ""
    manufacturer: str = ""
    app: dict[str, Any] = field(default_factory=dict)
    """App devices: version, install id, hashed platform ids, SIM, integrity flags."""
    ja4_family: str = "chromium"
    ja4: str = ""
    farbled: bool = False
    session: int = 0
    key_thumbprint: str | None = None
    tells: dict[str, Any] = field(default_factory=dict)
    """Attack overrides: ``webdriver``, ``globals``, ``plugins``, ``ua``, ``hints``."""

    @property
    def profile(self) -> str:
        """``os-browser`` as in `synthetic_catalog.PROFILES` (``android-vendor``, ``ios-app``…)."""
        browser = "vendor" if self.browser in cat.VENDOR_BROWSERS else self.browser
        return f"{self.os}-{'app' if self.cls == 'app' else browser}"


# --- building devices -----------------------------------------------------------------------


def _locale(rng: random.Random) -> tuple[str, str, tuple[str, ...], str]:
    _, region, zones, languages, locale = _pick(rng, cat.REGIONS)
    tz = _pick(rng, zones)[1]
    return region, tz, tuple(_pick(rng, languages)[1]), locale


def _fonts(
    rng: random.Random, os: str, languages: Sequence[str], manufacturer: str
) -> tuple[str, ...]:
    if os == "windows":
        base = set(cat.WINDOWS_FONTS) | (
            set(cat.WINDOWS_CHINESE) if languages[0].startswith("zh") else set()
        )
    elif os == "macos":
        base = set(cat.MAC_FONTS)
    elif os == "ios":
        return tuple(sorted(cat.IOS_FONTS, key=_PROBES.__getitem__))
    elif os == "android":
        vendor = cat.ANDROID_VENDOR_FONTS.get(manufacturer)
        base = set(cat.ANDROID_FONTS) | ({vendor} if vendor else set())
    else:
        base = set(cat.LINUX_FONTS)
    for probability, bundle in cat.FONT_BUNDLES.get(os, ()):
        if rng.random() < probability:
            base |= set(bundle)
    return tuple(sorted(base & _PROBES.keys(), key=_PROBES.__getitem__))


def random_device(rng: random.Random, profile: str | None = None) -> SyntheticDevice:
    """A device drawn from the population's market shares (or of one ``os-browser``)."""
    rows = [r for r in cat.PROFILES if profile is None or f"{r[1]}-{r[2]}" == profile]
    _, os, browser, cls = _pick(rng, rows)
    region, tz, languages, locale = _locale(rng)
    common: dict[str, Any] = {
        "uid": _hex(rng, 64),
        "cls": cls,
        "os": os,
        "browser": browser,
        "region": region,
        "home": (region, tz),
        "tz": tz,
        "languages": languages,
        "locale": locale,
    }
    if os == "windows" or (os == "linux"):
        _, vendor, model, pci = _pick(rng, cat.WINDOWS_GPUS)
        w, h, dpr = _pick(rng, cat.WINDOWS_SCREENS)[1:]
        if os == "linux":
            renderer = (f"Google Inc. ({vendor})", f"ANGLE ({vendor}, {model}, OpenGL 4.6)")
        elif browser == "firefox":
            renderer = (
                f"Google Inc. ({vendor})",
                f"ANGLE ({vendor}, {model} Direct3D11 vs_5_0 ps_5_0), or similar",
            )
        else:
            renderer = (
                f"Google Inc. ({vendor})",
                f"ANGLE ({vendor}, {model} ({pci}) Direct3D11 vs_5_0 ps_5_0, D3D11)",
            )
        touch = 10 if dpr >= 1.5 and rng.random() < 0.25 else 0
        version = _pick(rng, cat.WINDOWS_VERSIONS)[1] if os == "windows" else "6.8"
        device = SyntheticDevice(
            **common,
            os_version=version,
            major=_major(rng, browser),
            screen=(w, h, dpr),
            cores=_pick(rng, cat.WINDOWS_CORES)[1],
            memory=float(_pick(rng, cat.WINDOWS_MEMORY)[1]),
            touch=touch,
            renderer=renderer,
            fonts=_fonts(rng, os, languages, ""),
            ja4_family="firefox" if browser == "firefox" else "chromium",
        )
    elif os == "macos":
        _, chip, cores, w, h, dpr = _pick(rng, cat.MACS)
        version = _pick(rng, cat.MAC_VERSIONS)[1]
        if browser == "safari":
            renderer, major = (
                ("Apple Inc.", "Apple GPU"),
                int(cat.MAC_SAFARI[version].split(".")[0]),
            )
        else:
            renderer = (
                "Google Inc. (Apple)",
                f"ANGLE (Apple, ANGLE Metal Renderer: {chip}, Unspecified Version)",
            )
            major = _major(rng, browser)
        device = SyntheticDevice(
            **common,
            os_version=version,
            major=major,
            screen=(w, h, dpr),
            cores=cores,
            memory=8.0,
            touch=0,
            renderer=renderer,
            fonts=_fonts(rng, os, languages, ""),
            ja4_family="apple" if browser == "safari" else "chromium",
        )
    elif os == "ios":
        machine, w, h, dpr = _pick(rng, cat.IPHONES)[2:]
        version = _pick(rng, cat.IOS_VERSIONS)[1]
        device = SyntheticDevice(
            **common,
            os_version=version,
            major=int(version.split(".")[0]),
            screen=(w, h, dpr),
            cores=4,
            memory=None,
            touch=5,
            renderer=("Apple Inc.", "Apple GPU"),
            fonts=_fonts(rng, os, languages, ""),
            model=machine,
            manufacturer="Apple",
            ja4_family="apple",
        )
    else:  # android
        _, maker, model, gpu, w, h, dpr, vendor_browser = _pick(rng, cat.ANDROIDS)
        if browser == "vendor":
            browser = common["browser"] = vendor_browser
        gpu_vendor = "Qualcomm" if gpu.startswith("Adreno") else "ARM"
        device = SyntheticDevice(
            **common,
            os_version=_pick(rng, cat.ANDROID_VERSIONS)[1],
            major=_major(rng, browser),
            screen=(w, h, dpr),
            cores=8,
            memory=8.0,
            touch=5 if sum(map(ord, model)) % 3 else 10,  # maxTouchPoints is the panel's
            renderer=(gpu_vendor, gpu),
            fonts=_fonts(rng, os, languages, maker),
            model=model,
            manufacturer=maker,
        )
    if cls == "app":
        device = replace(
            device, major=rng.randint(0, 9), app=_app_state(rng, os), key_thumbprint=None
        )
    farbled = cls != "app" and browser in ("firefox", "safari") and rng.random() < 0.03
    ja4 = rng.choice(cat.JA4[device.ja4_family])
    return replace(device, farbled=farbled, ja4=ja4, session=rng.getrandbits(32))


def _major(rng: random.Random, browser: str) -> int:
    if browser in cat.VENDOR_BROWSERS:
        return cat.VENDOR_BROWSERS[browser][2]
    newest = cat.FIREFOX_MAJOR if browser == "firefox" else cat.CHROME_MAJOR
    return newest - min(int(rng.expovariate(0.6)), 12)


def _app_state(rng: random.Random, os: str) -> dict[str, Any]:
    ids = (
        {"android_id": _hex(rng, 256), "media_drm": _hex(rng, 256)}
        if os == "android"
        else {"idfv": _hex(rng, 256)}
    )
    return {
        "install_id": f"{_hex(rng, 32)}-{_hex(rng, 16)}",
        "ids": ids,
        "sim": _hex(rng, 256) if rng.random() < 0.97 else None,
        "carrier": rng.choice(("46000", "46001", "46011", "46015")),
        "integrity": {},
    }


def population(n: int, seed: int) -> list[SyntheticDevice]:
    rng = random.Random(seed)  # noqa: S311 (a reproducible simulation, not a secret)
    return [random_device(rng) for _ in range(n)]


# --- drift ---------------------------------------------------------------------------------


def _bump_version(version: str, rng: random.Random) -> str:
    parts = [int(p) for p in version.split(".")]
    parts[-1 if len(parts) > 1 and rng.random() < 0.7 else 0] += 1
    return ".".join(map(str, parts))


def drift(device: SyntheticDevice, rng: random.Random) -> SyntheticDevice:
    """One month of normal use."""
    changes: dict[str, Any] = {"session": rng.getrandbits(32)}
    if device.cls == "app":
        app = dict(device.app)
        app["version_patch"] = app.get("version_patch", 0) + (rng.random() < 0.6)
        if rng.random() < 0.02:
            app = reinstall(replace(device, app=app), rng).app
        if rng.random() < 0.01:
            app["sim"] = _hex(rng, 256)
        changes["app"] = app
    elif device.browser != "safari":
        changes["major"] = device.major + rng.choice((0, 1, 1, 2, 2, 3))
    if rng.random() < 0.15:
        changes["os_version"] = _bump_version(device.os_version, rng)
        if device.browser == "safari" and device.os == "ios":
            changes["major"] = int(changes["os_version"].split(".")[0])
    if device.region == device.home[0] and rng.random() < 0.06:
        _, region, zones, _, _ = _pick(rng, [r for r in cat.REGIONS if r[1] != device.home[0]])
        changes["region"], changes["tz"] = region, _pick(rng, zones)[1]
    elif device.region != device.home[0] and rng.random() < 0.6:
        changes["region"], changes["tz"] = device.home
    if device.cls == "desktop" and rng.random() < (0.10 if device.screen[2] > 1 else 0.02):
        changes["screen"] = rng.choice(((1920, 1080, 1.0), (2560, 1440, 1.0), device.screen))
    if device.cls == "desktop" and rng.random() < 0.05:
        extra = rng.choice(cat.EXTRA_FONTS_LATER)
        changes["fonts"] = tuple(sorted({*device.fonts, extra}, key=_PROBES.__getitem__))
    if rng.random() < 0.02 and "en" not in device.languages:
        changes["languages"] = (*device.languages, "en")
    return replace(device, **changes)


def reinstall(device: SyntheticDevice, rng: random.Random) -> SyntheticDevice:
    """The app reinstalled: a new install id; on iOS also a new identifierForVendor."""
    app = dict(device.app)
    app["install_id"] = f"{_hex(rng, 32)}-{_hex(rng, 16)}"
    if device.os == "ios":
        app["ids"] = {"idfv": _hex(rng, 256)}
    return replace(device, app=app)


# --- attacks ----------------------------------------------------------------------------------


def headless_browser(rng: random.Random, *, stealth: bool = False) -> SyntheticDevice:
    """Automated Chromium in a data centre. Plain: it says so (HeadlessChrome,
    navigator.webdriver, ChromeDriver globals). Stealth: UA and webdriver patched to
    look like Windows Chrome, but the hints, the software renderer and the time zone
    still tell."""
    base = random_device(rng, "linux-chrome")
    renderer = (
        "Google Inc. (Google)",
        "ANGLE (Google, Vulkan 1.3.0 (SwiftShader Device (Subzero) (0x0000C0DE)),"
        " SwiftShader driver)",
    )
    tells: dict[str, Any] = {
        "webdriver": True,
        "globals": ["cdc_adoQpoasnfa76pfcZLmcfl_Array"],
        "headless": True,
    }
    if stealth:
        tells = {"ua_os": "windows", "plugins": 5}
    return replace(
        base,
        screen=(800, 600, 1.0),
        tz="UTC",
        languages=("en-US", "en"),
        renderer=renderer,
        fonts=("DejaVu Sans", "Liberation Sans"),
        tells=tells,
        cores=2,
        memory=8.0,
    )


def scripted_client(
    device: SyntheticDevice, rng: random.Random, family: str = "python"
) -> SyntheticDevice:
    """`device`'s signals replayed by a script (its TLS stack is the script's)."""
    return replace(
        device,
        ja4_family=family,
        ja4=rng.choice(cat.JA4[family]),
        tells={**device.tells, "no_hints": True},
    )


def emulator(rng: random.Random, *, masked: bool = False) -> SyntheticDevice:
    """An Android emulator running the app; `masked` claims a real phone model."""
    device = random_device(rng, "android-app")
    maker, model, gpu = cat.EMULATORS[2 if masked else rng.randrange(2)]
    app = {**device.app, "integrity": {"emulator": True}, "sim": None}
    return replace(
        device,
        manufacturer=maker,
        model=model,
        renderer=("Google", gpu),
        app=app,
        region="CN",
        tz="UTC",
    )


def rooted_phone(rng: random.Random) -> SyntheticDevice:
    """A rooted Android phone with a hooking framework (Frida, Xposed) injected."""
    device = random_device(rng, "android-app")
    return replace(device, app={**device.app, "integrity": {"rooted": True, "hooked": True}})


def jailbroken_phone(rng: random.Random) -> SyntheticDevice:
    device = random_device(rng, "ios-app")
    return replace(device, app={**device.app, "integrity": {"jailbroken": True}})


def device_farm(rng: random.Random) -> SyntheticDevice:
    """One phone that will log in to many accounts (observe it with many subjects)."""
    return random_device(rng, "android-app")


def sim_swap(device: SyntheticDevice, rng: random.Random) -> SyntheticDevice:
    """Same phone, another SIM (a swapped number now receives the customer's SMS)."""
    return replace(device, app={**device.app, "sim": _hex(rng, 256)})


# --- what the edge sees ---------------------------------------------------------------------


def observe(
    device: SyntheticDevice,
    subject: str | None,
    *,
    now: float | None = None,
    key_thumbprint: str | None = None,
) -> DeviceObservation:
    """The observation of one request from `device` by `subject`: payload, User-Agent,
    client hints and JA4, as the edge would pass them on."""
    at = time.time() if now is None else now
    payload, ua, hints = render(device, _offset(device.tz, at))
    return DeviceObservation(
        subject=subject,
        client_ip="203.0.113.7",
        signals=json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode(),
        key_thumbprint=key_thumbprint,
        ja4=device.ja4,
        user_agent=ua,
        client_hints=hints,
    )


def _offset(tz: str, at: float) -> int:
    offset = datetime.fromtimestamp(at, UTC).astimezone(zoneinfo.ZoneInfo(tz)).utcoffset()
    return 0 if offset is None else int(offset.total_seconds() // 60)
