"""Do the device's claims hang together? Machine-readable anomalies, one request at a time.

Compared: the browser the User-Agent claims with the client hints Chromium sends
(``sec-ch-ua*``) and with the TLS stack the edge measured (JA4,
`device_fingerprint.ja4`) — a "mobile Safari" whose TLS hello is Python's is a
script; the payload's User-Agent with the request's; the payload's time zone
with its own UTC offset and with the region the address geolocates to (the
caller passes the region: IP geolocation belongs to the risk scorer).

Anomalies (sorted, no repeats), besides the payload's own tells
(`Signals.tells`):

``ua:payload_mismatch``   the collector saw another User-Agent than the request carries
``hints:ua_mismatch``     client hints contradict the User-Agent (brand, version,
                          mobile, platform), or a non-Chromium browser sends them
``automation:headless``   a ``HeadlessChrome`` brand in the hints
``tls:scripting_client``  a scripting stack (Python, OpenSSL/curl, Go, Java, Node,
                          GnuTLS) behind a browser or app claim
``tls:ua_mismatch``       a known TLS family the claimed browser never uses
``tls:alpn_mismatch``     a browser claim without HTTP/2 in ALPN (browsers always offer it)
``tz:unknown``            a time zone the IANA database doesn't know
``tz:offset_mismatch``    the reported UTC offset is not the zone's offset now
``tz:region_mismatch``    the zone is not used in the address's country
"""

from __future__ import annotations

import functools
import json
import re
import zoneinfo
from collections.abc import Mapping
from datetime import UTC, datetime
from importlib import resources
from typing import Final

from device_fingerprint.ja4 import SCRIPTING_FAMILIES, parse_ja4
from device_fingerprint.signals import Signals
from device_fingerprint.useragent import MAX_UA, UserAgent, parse_user_agent

__all__ = ["anomalies", "zone_countries"]

_BRAND: Final = re.compile(r'"([^"]{1,64})"\s*;\s*v="([^"]{0,32})"')
_PLATFORMS: Final = {
    "windows": "windows",
    "macos": "macos",
    "android": "android",
    "ios": "ios",
    "linux": "linux",
    "chrome os": "chromeos",
    "chromeos": "chromeos",
    "harmonyos": "harmonyos",
}
_ZONES: Final[dict[str, frozenset[str]]] = {
    zone: frozenset(codes.split())
    for zone, codes in json.loads(
        resources.files("device_fingerprint").joinpath("data", "tz_countries.json").read_text()
    )["zones"].items()
}


def zone_countries(tz: str) -> frozenset[str]:
    """ISO 3166 countries that use IANA zone `tz` (empty when unknown or not a country's)."""
    return _ZONES.get(tz, frozenset())


@functools.lru_cache(maxsize=1024)
def _zone(tz: str) -> zoneinfo.ZoneInfo | None:
    try:
        return zoneinfo.ZoneInfo(tz)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        return None


@functools.lru_cache(maxsize=4096)
def _offset_minutes(tz: str, hour: int) -> int | None:
    """UTC offset of `tz` at the start of Unix hour `hour` (cached per hour)."""
    zone = _zone(tz)
    if zone is None:
        return None
    offset = datetime.fromtimestamp(hour * 3600, UTC).astimezone(zone).utcoffset()
    return None if offset is None else int(offset.total_seconds() // 60)


def _hints(hints: Mapping[str, str], claim: UserAgent, out: set[str]) -> None:
    brands_header = hints.get("sec-ch-ua")
    mobile_header = hints.get("sec-ch-ua-mobile")
    platform_header = hints.get("sec-ch-ua-platform")
    if brands_header is None and mobile_header is None and platform_header is None:
        return
    if not claim.chromium_based:
        out.add("hints:ua_mismatch")  # Firefox and Safari send no client hints
        return
    brands = dict(_BRAND.findall(brands_header or ""))
    if "HeadlessChrome" in brands:
        out.add("automation:headless")
    version = brands.get("Chromium") or brands.get("HeadlessChrome")
    engine = claim.chromium_major
    if version and engine is not None and version.split(".")[0] != str(engine):
        out.add("hints:ua_mismatch")
    if mobile_header in ("?0", "?1") and (mobile_header == "?1") != claim.mobile:
        out.add("hints:ua_mismatch")
    if platform_header:
        platform = _PLATFORMS.get(platform_header.strip().strip('"').lower())
        if platform is not None and platform != claim.os:
            out.add("hints:ua_mismatch")


def _payload_hints(signals: Signals, claim: UserAgent, out: set[str]) -> None:
    if signals.hints_mobile is not None and signals.hints_mobile != claim.mobile:
        out.add("hints:ua_mismatch")
    if signals.hints_platform:
        platform = _PLATFORMS.get(signals.hints_platform.lower())
        if platform is not None and platform != claim.os:
            out.add("hints:ua_mismatch")
    if signals.brands and not claim.chromium_based:
        out.add("hints:ua_mismatch")


def _tls(ja4_text: str | None, claim: UserAgent | None, app: bool, out: set[str]) -> None:
    ja4 = parse_ja4(ja4_text)
    if ja4 is None:
        return
    browser = claim is not None and claim.is_browser
    if not (browser or app):
        return  # a script that says it is one is consistent
    if ja4.family in SCRIPTING_FAMILIES:
        out.add("tls:scripting_client")
    if browser and claim is not None:
        expected = claim.tls_families()
        if ja4.family is not None and expected and ja4.family not in expected:
            out.add("tls:ua_mismatch")
        if ja4.protocol == "t" and not ja4.offers_h2:
            out.add("tls:alpn_mismatch")
    elif app and ja4.family == "firefox":
        out.add("tls:ua_mismatch")  # no banking app ships NSS


def _timezone(signals: Signals, region: str | None, now: float, out: set[str]) -> None:
    tz = signals.tz
    if not tz:
        return
    if _zone(tz) is None:
        out.add("tz:unknown")
        return
    if signals.tz_offset is not None:
        # The offset at the request's hour, and the one before: a payload collected
        # just before a DST change is not an anomaly.
        hour = int(now // 3600)
        offsets = {_offset_minutes(tz, hour), _offset_minutes(tz, hour - 1)}
        if signals.tz_offset not in offsets:
            out.add("tz:offset_mismatch")
    countries = _ZONES.get(tz)
    if region and countries and region.upper() not in countries:
        out.add("tz:region_mismatch")


def anomalies(
    signals: Signals | None,
    *,
    user_agent: str | None,
    client_hints: Mapping[str, str],
    ja4: str | None,
    region: str | None,
    now: float,
) -> tuple[str, ...]:
    """Every anomaly of one request (see the module doc), sorted."""
    out: set[str] = set(signals.tells) if signals is not None else set()
    header_ua = parse_user_agent(user_agent[:MAX_UA]) if user_agent else None
    claim = signals.ua if signals is not None and signals.ua is not None else header_ua
    payload_ua = signals.ua_text if signals is not None else None
    if payload_ua is not None and user_agent is not None and payload_ua != user_agent[:MAX_UA]:
        out.add("ua:payload_mismatch")
    if claim is not None and claim.is_browser:
        _hints(client_hints, claim, out)
        if signals is not None and signals.kind == "web":
            _payload_hints(signals, claim, out)
    app = signals is not None and signals.kind == "mobile"
    _tls(ja4, claim if not app else None, app, out)
    if signals is not None:
        _timezone(signals, region, now, out)
    return tuple(sorted(out))
