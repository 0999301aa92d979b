"""A validated payload turned into what assessment uses: match features, the SM3 device
id of its stable part, and the tells the payload carries about itself.

Features are plain JSON values (the registry stores them) named after the
weights in `DeviceConfig.web` / `DeviceConfig.mobile`, plus the *gates* —
``kind``, ``browser``, ``os``, ``mobile``, ``model`` — that must agree for two
fingerprints to be one device at all (Chrome and Firefox on one laptop are two
devices to us: two cookie jars, two sets of signals).

The device id (``fp:`` + 32 hex) is SM3 over the canonical JSON (sorted keys, no
spaces) of the *stable* features only — versions, time zone and SIM are left
out, they drift — under a domain-separation prefix. A browser update therefore
keeps the id unless the rendering changed, and fuzzy matching
(`device_fingerprint.matching`) covers what drifts anyway.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

from device_fingerprint.useragent import MAX_UA, UserAgent, parse_user_agent

__all__ = ["Signals", "signals_from_payload"]

_SM3: Final = hashlib.new("sm3")
_ID_PREFIX: Final = b"ztgate.device.v1\x00"
_WEB_STABLE: Final = (
    "kind", "browser", "os", "mobile", "platform", "arch", "model", "hw_concurrency",
    "device_memory", "screen", "dpr", "color_depth", "touch", "languages", "canvas",
    "webgl_renderer", "webgl", "audio", "fonts",
)  # fmt: skip
_MOBILE_STABLE: Final = (
    "kind",
    "os",
    "model",
    "app_install_id",
    "platform_ids",
    "screen",
    "locale",
)
_EMULATOR_MODELS: Final = (
    "sdk_gphone",
    "google_sdk",
    "android sdk built for",
    "emulator",
    "genymotion",
    "vbox86",
    "nox",
    "ldplayer",
    "bluestacks",
    "mumu",
)
_SOFTWARE_GL: Final = ("swiftshader", "llvmpipe", "softpipe", "software adapter")


def sm3_hex(data: bytes) -> str:
    h = _SM3.copy()
    h.update(data)
    return h.hexdigest()


def features_digest(features: Mapping[str, Any]) -> str:
    """SM3 over the canonical JSON of every feature (the stable and the drifting)."""
    return canonical_id(features, sorted(features))[3:]


def canonical_id(features: Mapping[str, Any], keys: Sequence[str]) -> str:
    """``fp:`` + the first 128 bits of SM3 over the canonical JSON of `keys`."""
    stable = {k: features[k] for k in keys if features.get(k) is not None}
    text = json.dumps(stable, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "fp:" + sm3_hex(_ID_PREFIX + text.encode("utf-8"))[:32]


@dataclass(frozen=True, slots=True)
class Signals:
    """Everything assessment needs from one payload; a pure function of its bytes."""

    kind: Literal["web", "mobile"]
    collector_version: str
    features: Mapping[str, Any]
    signal_id: str
    """SM3 device id of the stable features (``fp:…``)."""
    graph_key: str
    """What the shared-device graph counts subjects on: the signal id, or for phones
    the hardware alone (model + platform ids) so a reinstall between accounts of a
    device farm does not hide the farm."""
    label: str
    """Human-readable ("Chrome on Windows", "iPhone16,1"), for device lists."""
    digest: str
    """SM3 of all the features: equal digests, nothing drifted (`features_digest`)."""
    ua: UserAgent | None
    ua_text: str | None
    brands: tuple[tuple[str, str], ...] = ()
    hints_mobile: bool | None = None
    hints_platform: str | None = None
    tz: str | None = None
    tz_offset: int | None = None
    tells: tuple[str, ...] = ()
    """Anomalies visible in the payload alone (automation, integrity, emulators)."""
    sim: str | None = None


def _screen(doc: Mapping[str, Any]) -> list[int] | None:
    screen = doc.get("screen")
    if not isinstance(screen, dict):
        return None
    w, h = int(screen["w"]), int(screen["h"])
    return [max(w, h), min(w, h)]


def _web(doc: dict[str, Any]) -> Signals:
    ua_text = doc["ua"][:MAX_UA]
    ua = parse_user_agent(ua_text)
    uach = doc.get("uach") or {}
    screen = doc.get("screen") or {}
    webgl = doc.get("webgl") or {}
    automation = doc.get("automation") or {}
    brands = tuple((b["brand"], b["version"]) for b in uach.get("brands", ()))
    renderer = f"{webgl.get('vendor', '')}|{webgl.get('renderer', '')}" if webgl else None
    arch = uach.get("architecture", "") + uach.get("bitness", "")
    os_version = uach.get("platform_version") or ua.os_version
    features: dict[str, Any] = {
        "kind": "web",
        "browser": ua.browser,
        "os": ua.os,
        "mobile": uach.get("mobile", ua.mobile),
        "browser_version": ua.major,
        "os_version": os_version,
        "platform": doc.get("platform"),
        "arch": arch or None,
        "model": uach.get("model") or None,
        "hw_concurrency": _int(doc.get("hw_concurrency")),
        "device_memory": doc.get("device_memory"),
        "screen": _screen(doc),
        "dpr": round(float(screen["dpr"]), 3) if "dpr" in screen else None,
        "color_depth": _int(screen.get("depth")),
        "touch": _int(doc.get("touch_points")),
        "timezone": doc.get("tz"),
        "languages": list(doc.get("languages", ())) or None,
        "canvas": doc.get("canvas"),
        "webgl_renderer": renderer,
        "webgl": webgl.get("hash"),
        "audio": doc.get("audio"),
        "fonts": sorted(set(doc.get("fonts", ()))) or None,
    }
    for name in _uniform(ua, features["mobile"]):
        features[name] = None
    tells: list[str] = []
    if automation.get("webdriver") is True:
        tells.append("automation:webdriver")
    if automation.get("globals"):
        tells.append("automation:globals")
    if ua.headless or any(b == "HeadlessChrome" for b, _ in brands):
        tells.append("automation:headless")
    if "languages" in doc and not doc["languages"]:
        tells.append("automation:no_languages")
    plugins = automation.get("plugins")
    if (
        plugins == 0
        and ua.browser in ("chrome", "edge", "headless_chrome")
        and not features["mobile"]
    ):
        tells.append("automation:no_plugins")  # desktop Chromium lists 5 PDF plugins since 94
    if any(s in (renderer or "").lower() for s in _SOFTWARE_GL):
        tells.append("render:software")
    signal_id = canonical_id(features, _WEB_STABLE)
    return Signals(
        kind="web",
        collector_version=doc["collector_version"],
        features=features,
        signal_id=signal_id,
        graph_key=signal_id,
        label=ua.label(),
        digest=features_digest(features),
        ua=ua,
        ua_text=ua_text,
        brands=brands,
        hints_mobile=uach.get("mobile"),
        hints_platform=uach.get("platform"),
        tz=doc.get("tz"),
        tz_offset=_int(doc.get("tz_offset")),
        tells=tuple(tells),
    )


def _uniform(ua: UserAgent, mobile: bool) -> tuple[str, ...]:
    """Signals the platform makes the same on every device, on purpose: they carry no
    evidence, and counting them would make two iPhones look like one. WebKit reports
    "Apple GPU", a clamped core count and only system fonts (Safari 17 fingerprinting
    defences; every iOS browser is WebKit); mobile Chromium exposes only the system's
    fonts and caps memory at 8 GiB."""
    if ua.os == "ios" or ua.browser == "safari":
        return ("platform", "hw_concurrency", "webgl_renderer", "webgl", "fonts", "touch")
    if mobile:
        return ("platform", "device_memory", "fonts")
    return ()


def _mobile(doc: dict[str, Any]) -> Signals:
    ids = doc.get("device_ids") or {}
    platform_ids = sorted(f"{k}:{v}" for k, v in ids.items() if isinstance(v, str))
    sim = doc.get("sim") or {}
    integrity = doc.get("integrity") or {}
    manufacturer = doc.get("manufacturer") or ""
    model = f"{manufacturer}/{doc['model']}" if manufacturer else doc["model"]
    screen = _screen(doc)
    dpr = (doc.get("screen") or {}).get("dpr")
    features: dict[str, Any] = {
        "kind": "mobile",
        "os": doc["os"],
        "model": model,
        "os_version": doc["os_version"],
        "app_version": doc["app_version"],
        "app_install_id": doc["app_install_id"],
        "platform_ids": platform_ids or None,
        "sim": sim.get("hash"),
        "carrier": sim.get("carrier"),
        "screen": None if screen is None else [*screen, round(float(dpr or 0), 3)],
        "locale": doc.get("locale"),
        "timezone": doc.get("tz"),
    }
    tells = [f"integrity:{flag}" for flag in sorted(integrity) if integrity[flag] is True]
    lowered = f"{manufacturer} {doc['model']}".lower()
    if any(name in lowered for name in _EMULATOR_MODELS):
        tells.append("integrity:emulator_model")
    signal_id = canonical_id(features, _MOBILE_STABLE)
    graph_key = (
        canonical_id(features, ("kind", "os", "model", "platform_ids"))
        if platform_ids
        else signal_id
    )
    return Signals(
        kind="mobile",
        collector_version=doc["collector_version"],
        features=features,
        signal_id=signal_id,
        graph_key=graph_key,
        label=doc["model"] if doc["os"] == "ios" else f"{manufacturer} {doc['model']}".strip(),
        digest=features_digest(features),
        ua=None,
        ua_text=None,
        tz=doc.get("tz"),
        tz_offset=_int(doc.get("tz_offset")),
        tells=tuple(tells),
        sim=sim.get("hash"),
    )


def _int(value: Any) -> int | None:
    return None if value is None else int(value)  # schema integers may arrive as 3.0


def signals_from_payload(doc: dict[str, Any]) -> Signals:
    """`doc` must already conform to its schema (`device_fingerprint.payload`)."""
    return _web(doc) if doc["kind"] == "web" else _mobile(doc)
