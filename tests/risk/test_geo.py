"""Geolocation: the operator's CIDR table (CSV/JSON) and a real MaxMind DB file."""

from __future__ import annotations

import contextlib
import ipaddress
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from mmdb_writer import MMDBWriter
from netaddr import IPSet

from risk.config import GeoConfig
from risk.geo import (
    GeoLocation,
    GeoTable,
    GeoTableError,
    MaxMindGeolocator,
    haversine_km,
    open_geolocator,
)

CSV = """network,country,region,city,lat,lon
10.0.0.0/8,CN,BJ,Beijing,39.9042,116.4074
10.1.0.0/16,CN,SH,Shanghai,31.2304,121.4737
10.1.2.0/24,CN,GD,Shenzhen,22.5431,114.0579
192.0.2.0/24,SG,,Singapore,1.3521,103.8198
2001:db8::/32,DE,BE,Berlin,52.52,13.405
2001:db8:1::/48,FR,IDF,Paris,48.8566,2.3522
"""


def test_csv_table_most_specific_block_wins() -> None:
    table = GeoTable.from_csv(CSV)
    assert len(table) == 6
    assert table.locate("10.200.0.1") == GeoLocation("CN", "BJ", "Beijing", 39.9042, 116.4074)
    located = table.locate("10.1.9.9")
    assert located is not None and located.city == "Shanghai"
    located = table.locate("10.1.2.200")
    assert located is not None and located.city == "Shenzhen"
    located = table.locate("10.1.3.0")  # past the /24, back in the /16
    assert located is not None and located.city == "Shanghai"
    located = table.locate("10.2.0.0")  # past the /16, back in the /8
    assert located is not None and located.city == "Beijing"
    assert table.locate("11.0.0.0") is None
    assert table.locate("9.255.255.255") is None


def test_ipv6_and_ipv4_mapped_addresses() -> None:
    table = GeoTable.from_csv(CSV)
    located = table.locate("2001:db8:1::42")
    assert located is not None and located.city == "Paris"
    located = table.locate("2001:db8:2::1")
    assert located is not None and located.city == "Berlin"
    located = table.locate("::ffff:192.0.2.7")
    assert located is not None and located.country == "SG" and located.region_key == "SG/"
    assert table.locate("not an address") is None
    assert table.locate("") is None


def test_json_table_and_from_path(tmp_path: Path) -> None:
    rows = [
        {
            "network": "198.51.100.0/24",
            "country": "CN",
            "region": "ZJ",
            "city": "Hangzhou",
            "lat": 30.27,
            "lon": 120.15,
        },
        {"network": "203.0.113.0/25", "country": "US", "lat": "40.71", "lon": "-74.0"},
    ]
    path = tmp_path / "geo.json"
    path.write_text(json.dumps(rows))
    table = GeoTable.from_path(path)
    located = table.locate("198.51.100.99")
    assert located is not None and located.city == "Hangzhou"
    located = table.locate("203.0.113.1")
    assert located == GeoLocation("US", "", "", 40.71, -74.0)
    assert table.locate("203.0.113.200") is None
    csv_path = tmp_path / "geo.csv"
    csv_path.write_text(CSV)
    assert len(GeoTable.from_path(csv_path)) == 6
    assert open_geolocator(GeoConfig(table=csv_path)) is not None
    assert open_geolocator(GeoConfig()) is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("network,country,lat\n", "header lacks column(s) region, city, lon"),
        ("network,country,region,city,lat,lon\n10.0.0.1/8,CN,,,1,1\n", "line 2: network"),
        ("network,country,region,city,lat,lon\n10.0.0.0/8,,,,1,1\n", "line 2: country"),
        ("network,country,region,city,lat,lon\n10.0.0.0/8,CN,,,91,1\n", "line 2: lat"),
        ("network,country,region,city,lat,lon\n10.0.0.0/8,CN,,,1,nan\n", "line 2: lon"),
        ("network,country,region,city,lat,lon\n10.0.0.0/8,CN,,,1,x\n", "line 2: lon"),
        (
            "network,country,region,city,lat,lon\n10.0.0.0/8,CN,,,1,1\n10.0.0.0/8,US,,,1,1\n",
            "10.0.0.0/8: listed twice",
        ),
    ],
)
def test_csv_errors_name_the_row_and_column(text: str, message: str) -> None:
    with pytest.raises(GeoTableError, match=message.replace("(", r"\(").replace(")", r"\)")):
        GeoTable.from_csv(text)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{", "not JSON"),
        ('{"network": "10.0.0.0/8"}', "JSON array"),
        ("[1]", r"\[0\]: must be an object"),
        ('[{"network": "10.0.0.0/8", "country": "CN", "lat": true, "lon": 1}]', r"\[0\]: lat"),
        ('[{"network": "10.0.0.0/8", "country": 5, "lat": 1, "lon": 1}]', r"\[0\]: country"),
    ],
)
def test_json_errors_name_the_entry(text: str, message: str) -> None:
    with pytest.raises(GeoTableError, match=message):
        GeoTable.from_json(text)


def test_unreadable_table_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(GeoTableError, match="cannot read"):
        GeoTable.from_path(tmp_path / "missing.csv")
    bad = tmp_path / "bad.csv"
    bad.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(GeoTableError, match="cannot read"):
        GeoTable.from_path(bad)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=400))
def test_csv_parser_fails_only_with_its_own_error(text: str) -> None:
    with contextlib.suppress(GeoTableError):
        GeoTable.from_csv(text)


@settings(max_examples=300, deadline=None)
@given(
    st.recursive(
        st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=20),
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
        max_leaves=12,
    )
)
def test_json_parser_fails_only_with_its_own_error(doc: object) -> None:
    with contextlib.suppress(GeoTableError):
        GeoTable.from_json(json.dumps(doc))


networks_v4 = st.builds(
    lambda value, length: ipaddress.ip_network((value, length), strict=False),
    st.integers(0, 2**32 - 1),
    st.integers(4, 32),
)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(networks_v4, min_size=1, max_size=30, unique=True),
    st.lists(st.integers(0, 2**32 - 1), min_size=1, max_size=30),
)
def test_lookup_agrees_with_a_linear_scan(
    nets: list[ipaddress.IPv4Network], probes: list[int]
) -> None:
    """Bisect + parent chain == the most specific containing block, by brute force."""
    rows = [(str(n), GeoLocation(f"C{i}", lat=0.0, lon=0.0)) for i, n in enumerate(nets)]
    table = GeoTable(rows)
    # probe inside every block too, not only at random
    probes += [int(n.network_address) for n in nets] + [int(n.broadcast_address) for n in nets]
    for probe in probes:
        address = ipaddress.IPv4Address(probe)
        containing = [(n.prefixlen, i) for i, n in enumerate(nets) if address in n]
        expected = rows[max(containing)[1]][1] if containing else None
        assert table.locate(str(address)) == expected


def test_haversine_known_distances() -> None:
    beijing, shanghai = (39.9042, 116.4074), (31.2304, 121.4737)
    assert haversine_km(*beijing, *shanghai) == pytest.approx(1067, abs=5)
    assert haversine_km(*beijing, *beijing) == 0
    assert haversine_km(0, 0, 0, 180) == pytest.approx(20015, abs=2)  # half the equator


def _write_mmdb(path: Path) -> None:
    writer = MMDBWriter(ip_version=6, ipv4_compatible=True, database_type="GeoIP2-City")
    writer.insert_network(
        IPSet(["198.51.100.0/24"]),
        {
            "country": {"iso_code": "CN", "names": {"en": "China"}},
            "subdivisions": [{"iso_code": "SH", "names": {"en": "Shanghai"}}],
            "city": {"names": {"en": "Shanghai"}},
            "location": {"latitude": 31.2304, "longitude": 121.4737},
        },
    )
    writer.insert_network(
        IPSet(["2001:db8:5::/48"]),
        {
            "country": {"iso_code": "GB"},
            "city": {"names": {"en": "London"}},
            "location": {"latitude": 51.5072, "longitude": -0.1276},
        },
    )
    writer.insert_network(IPSet(["203.0.113.0/24"]), {"registered_country": {"iso_code": "US"}})
    writer.insert_network(IPSet(["192.0.2.0/24"]), {"isp": "no location here"})
    writer.to_db_file(str(path))


def test_maxmind_database_written_here_is_read(tmp_path: Path) -> None:
    path = tmp_path / "city.mmdb"
    _write_mmdb(path)
    geo = open_geolocator(GeoConfig(mmdb=path))
    assert isinstance(geo, MaxMindGeolocator)
    try:
        assert geo.locate("198.51.100.7") == GeoLocation("CN", "SH", "Shanghai", 31.2304, 121.4737)
        assert geo.locate("::ffff:198.51.100.7") == geo.locate("198.51.100.7")
        assert geo.locate("2001:db8:5::1") == GeoLocation("GB", "", "London", 51.5072, -0.1276)
        assert geo.locate("203.0.113.9") == GeoLocation("US")  # country only: no coordinates
        assert geo.locate("192.0.2.1") is None  # a record without a country
        assert geo.locate("8.8.8.8") is None
        assert geo.locate("garbage") is None
    finally:
        geo.close()


def test_not_a_maxmind_database(tmp_path: Path) -> None:
    path = tmp_path / "fake.mmdb"
    path.write_bytes(b"\x00" * 64)
    with pytest.raises(GeoTableError, match="not a readable MaxMind DB"):
        MaxMindGeolocator(path)
    with pytest.raises(GeoTableError, match="not a readable MaxMind DB"):
        MaxMindGeolocator(tmp_path / "missing.mmdb")
