"""Where an address is: an operator's CIDR table, or a MaxMind-format database.

The table (CSV or JSON; columns ``network, country, region, city, lat, lon``)
is held as sorted integer ranges per address family and looked up with
`bisect`. CIDR blocks are either nested or disjoint, so each block keeps a
pointer to the nearest block enclosing it: a lookup finds the last block that
starts at or before the address and walks up the (at most 128-deep) chain
until one contains it — the most specific block wins, as in routing tables.

A MaxMind DB (GeoIP2/GeoLite2 City layout: ``country.iso_code``,
``subdivisions[0]``, ``city.names.en``, ``location``) is read with `maxminddb`
when the operator configures one (spec: https://maxmind.github.io/MaxMind-DB/).
"""

from __future__ import annotations

import csv
import io
import ipaddress
import json
import math
from bisect import bisect_right
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import maxminddb

from risk.config import GeoConfig

__all__ = [
    "GeoLocation",
    "GeoTable",
    "GeoTableError",
    "Geolocator",
    "MaxMindGeolocator",
    "haversine_km",
    "open_geolocator",
]

_EARTH_RADIUS_KM = 6371.0088
_MAX_FIELD = 128
_COLUMNS = ("network", "country", "region", "city", "lat", "lon")

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class GeoTableError(ValueError):
    """A malformed geolocation table; the message names the row and the column."""


@dataclass(frozen=True, slots=True)
class GeoLocation:
    country: str
    region: str = ""
    city: str = ""
    lat: float | None = None
    lon: float | None = None

    @property
    def region_key(self) -> str:
        """Country and region together: region names repeat across countries."""
        return f"{self.country}/{self.region}"


class Geolocator(Protocol):
    def locate(self, address: str) -> GeoLocation | None:
        """The address's location; None when unknown or not an IP address."""
        ...

    def close(self) -> None: ...


def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance on a spherical Earth (mean radius, IUGG)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * _EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(h)))


def _address(address: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


class _Ranges:
    """Laminar CIDR blocks of one address family, sorted by (start, prefix length)."""

    __slots__ = ("_ends", "_locations", "_parents", "_starts")

    def __init__(self, blocks: list[tuple[Network, GeoLocation]]) -> None:
        blocks.sort(key=lambda b: (int(b[0].network_address), b[0].prefixlen))
        self._starts: list[int] = []
        self._ends: list[int] = []
        self._parents: list[int] = []
        self._locations: list[GeoLocation] = []
        stack: list[int] = []
        for net, location in blocks:
            start, end = int(net.network_address), int(net.broadcast_address)
            if self._starts and self._starts[-1] == start and self._ends[-1] == end:
                raise GeoTableError(f"network {net}: listed twice")
            while stack and self._ends[stack[-1]] < start:
                stack.pop()
            self._parents.append(stack[-1] if stack else -1)
            stack.append(len(self._starts))
            self._starts.append(start)
            self._ends.append(end)
            self._locations.append(location)

    def __len__(self) -> int:
        return len(self._starts)

    def find(self, value: int) -> GeoLocation | None:
        i = bisect_right(self._starts, value) - 1
        while i >= 0 and self._ends[i] < value:
            i = self._parents[i]
        return self._locations[i] if i >= 0 else None


class GeoTable:
    """An operator's CIDR → location table."""

    def __init__(self, rows: Iterable[tuple[str | Network, GeoLocation]]) -> None:
        v4: list[tuple[Network, GeoLocation]] = []
        v6: list[tuple[Network, GeoLocation]] = []
        for index, (network, location) in enumerate(rows):
            net = _network(network, f"row {index}")
            (v4 if net.version == 4 else v6).append((net, location))
        self._v4 = _Ranges(v4)
        self._v6 = _Ranges(v6)

    def __len__(self) -> int:
        return len(self._v4) + len(self._v6)

    def locate(self, address: str) -> GeoLocation | None:
        ip = _address(address)
        if ip is None:
            return None
        return (self._v4 if ip.version == 4 else self._v6).find(int(ip))

    def close(self) -> None:
        return None

    @classmethod
    def from_path(cls, path: Path) -> GeoTable:
        """Read ``*.json`` (a list of objects) or anything else as CSV with a header row."""
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise GeoTableError(f"{path}: cannot read: {exc}") from None
        if path.suffix.lower() == ".json":
            return cls.from_json(text, source=str(path))
        return cls.from_csv(text, source=str(path))

    @classmethod
    def from_csv(cls, text: str, *, source: str = "table") -> GeoTable:
        reader = csv.DictReader(io.StringIO(text, newline=""))
        try:
            missing = [c for c in _COLUMNS if c not in (reader.fieldnames or ())]
            if missing:
                raise GeoTableError(f"{source}: header lacks column(s) {', '.join(missing)}")
            rows = [_row(record, f"{source} line {reader.line_num}") for record in reader]
        except csv.Error as exc:
            raise GeoTableError(f"{source} line {reader.line_num}: {exc}") from None
        return cls(rows)

    @classmethod
    def from_json(cls, text: str, *, source: str = "table") -> GeoTable:
        try:
            doc = json.loads(text)
        except ValueError as exc:
            raise GeoTableError(f"{source}: not JSON: {exc}") from None
        if not isinstance(doc, list):
            raise GeoTableError(f"{source}: must be a JSON array of objects")
        rows = []
        for index, record in enumerate(doc):
            where = f"{source}[{index}]"
            if not isinstance(record, dict):
                raise GeoTableError(f"{where}: must be an object")
            rows.append(_row(record, where))
        return cls(rows)


def _text(record: Mapping[str, Any], column: str, where: str, *, required: bool) -> str:
    value = record.get(column)
    if value is None or value == "":
        if required:
            raise GeoTableError(f"{where}: {column}: required")
        return ""
    if not isinstance(value, str) or len(value) > _MAX_FIELD or not value.isprintable():
        raise GeoTableError(f"{where}: {column}: must be printable text of at most 128 chars")
    return value


def _coordinate(record: Mapping[str, Any], column: str, where: str, limit: float) -> float:
    value = record.get(column)
    try:
        number = float(value) if isinstance(value, str | int | float) else math.nan
    except ValueError:
        number = math.nan
    if isinstance(value, bool) or not (math.isfinite(number) and -limit <= number <= limit):
        raise GeoTableError(f"{where}: {column}: must be a number from -{limit:g} to {limit:g}")
    return number


def _network(network: str | Network, where: str) -> Network:
    if not isinstance(network, str):
        return network
    try:
        return ipaddress.ip_network(network, strict=True)
    except ValueError as exc:
        raise GeoTableError(f"{where}: network: {exc}") from None


def _row(record: Mapping[str, Any], where: str) -> tuple[Network, GeoLocation]:
    network = _network(_text(record, "network", where, required=True), where)
    location = GeoLocation(
        country=_text(record, "country", where, required=True),
        region=_text(record, "region", where, required=False),
        city=_text(record, "city", where, required=False),
        lat=_coordinate(record, "lat", where, 90.0),
        lon=_coordinate(record, "lon", where, 180.0),
    )
    return network, location


class MaxMindGeolocator:
    """A MaxMind DB in the GeoIP2 City layout (Country databases give no coordinates)."""

    def __init__(self, path: Path) -> None:
        try:
            self._reader = maxminddb.open_database(str(path))
        except (OSError, ValueError, maxminddb.InvalidDatabaseError) as exc:
            raise GeoTableError(f"{path}: not a readable MaxMind DB: {exc}") from None

    def locate(self, address: str) -> GeoLocation | None:
        ip = _address(address)
        if ip is None:
            return None
        try:
            record = self._reader.get(ip)
        except ValueError:  # e.g. an IPv6 address in an IPv4-only database
            return None
        return _from_mmdb(record) if isinstance(record, dict) else None

    def close(self) -> None:
        self._reader.close()


def _get(doc: Any, *path: str | int) -> Any:
    for step in path:
        if isinstance(step, int):
            doc = doc[step] if isinstance(doc, list) and len(doc) > step else None
        else:
            doc = doc.get(step) if isinstance(doc, dict) else None
    return doc


def _from_mmdb(record: dict[str, Any]) -> GeoLocation | None:
    country = _get(record, "country", "iso_code") or _get(record, "registered_country", "iso_code")
    if not isinstance(country, str):
        return None
    region = _get(record, "subdivisions", 0, "iso_code") or _get(
        record, "subdivisions", 0, "names", "en"
    )
    city = _get(record, "city", "names", "en")
    lat, lon = _get(record, "location", "latitude"), _get(record, "location", "longitude")
    located = isinstance(lat, int | float) and isinstance(lon, int | float)
    return GeoLocation(
        country=country,
        region=region if isinstance(region, str) else "",
        city=city if isinstance(city, str) else "",
        lat=float(lat) if located else None,
        lon=float(lon) if located else None,
    )


def open_geolocator(config: GeoConfig) -> Geolocator | None:
    """The configured geolocator, or None when neither a table nor a database is set."""
    if config.mmdb is not None:
        return MaxMindGeolocator(config.mmdb)
    if config.table is not None:
        return GeoTable.from_path(config.table)
    return None
