"""The risk configuration: defaults, validation naming the key, loading from TOML."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from risk.config import AnomalyWeight, DeviceWeights, GeoConfig, RiskConfig
from ztgate.config import ConfigError, from_dict


def test_defaults_are_valid_and_in_process() -> None:
    config = RiskConfig()
    assert config.store.backend == "memory"
    assert config.geo.table is None and config.geo.mmdb is None


def test_loads_from_the_gateway_file_format() -> None:
    doc = tomllib.loads(
        """
        [device]
        new = 40
        unknown_anomaly = 35.5
        [[device.anomalies]]
        prefix = "automation:"
        weight = 95
        [geo]
        table = "/etc/ztgate/geo.csv"
        max_speed_kmh = 1000
        [rate]
        ip_burst = 200
        [store]
        backend = "redis"
        key_prefix = "edge1:risk:"
        [keystrokes]
        enrol_samples = 8
        """
    )
    config = from_dict(RiskConfig, doc, "risk")
    assert config.device.new == 40.0
    assert config.device.anomalies == (AnomalyWeight("automation:", 95.0),)
    assert config.geo.table == Path("/etc/ztgate/geo.csv")
    assert config.rate.ip_burst == 200
    assert config.store.backend == "redis"
    assert config.keystrokes.enrol_samples == 8


@pytest.mark.parametrize(
    ("doc", "key"),
    [
        ({"device": {"new": 101}}, "risk.device.new"),
        ({"device": {"new": -1}}, "risk.device.new"),
        ({"device": {"new": "high"}}, "risk.device.new"),
        (
            {"device": {"anomalies": [{"prefix": "", "weight": 1}]}},
            "risk.device.anomalies[0].prefix",
        ),
        (
            {"device": {"anomalies": [{"prefix": "x", "weight": 200}]}},
            "risk.device.anomalies[0].weight",
        ),
        ({"geo": {"max_speed_kmh": 0}}, "risk.geo.max_speed_kmh"),
        ({"geo": {"table": "a.csv", "mmdb": "b.mmdb"}}, "risk.geo.mmdb"),
        ({"geo": {"impossible_travel": 100.5}}, "risk.geo.impossible_travel"),
        ({"hour": {"rare_share": 1.5}}, "risk.hour.rare_share"),
        ({"hour": {"utc_offset_minutes": 900}}, "risk.hour.utc_offset_minutes"),
        ({"rate": {"ip_failures": 0}}, "risk.rate.ip_failures"),
        ({"rate": {"window_seconds": -5}}, "risk.rate.window_seconds"),
        ({"amount": {"z_full": 2.0}}, "risk.amount.z_full"),
        ({"keystrokes": {"full": 1.0}}, "risk.keystrokes.full"),
        ({"keystrokes": {"enrol_samples": 1}}, "risk.keystrokes.enrol_samples"),
        ({"keystrokes": {"feature_cap": -1}}, "risk.keystrokes.feature_cap"),
        ({"profile": {"learn_max_score": 101}}, "risk.profile.learn_max_score"),
        ({"profile": {"max_pending": 0}}, "risk.profile.max_pending"),
        ({"store": {"backend": "memcached"}}, "risk.store.backend"),
        ({"store": {"redis_url": "http://x"}}, "risk.store.redis_url"),
        ({"store": {"max_subjects": 0}}, "risk.store.max_subjects"),
        ({"surprise": 1}, "risk.surprise"),
    ],
)
def test_errors_name_the_offending_key(doc: dict[str, object], key: str) -> None:
    with pytest.raises(ConfigError) as caught:
        from_dict(RiskConfig, doc, "risk")
    assert caught.value.key == key


def test_direct_construction_is_validated_too() -> None:
    with pytest.raises(ValueError, match=r"^new: must be 0 to 100 points"):
        DeviceWeights(new=float("nan"))
    with pytest.raises(ValueError, match=r"^max_speed_kmh"):
        GeoConfig(max_speed_kmh=float("inf"))


def test_longest_anomaly_prefix_wins_and_unknown_anomalies_still_count() -> None:
    weights = DeviceWeights(
        anomalies=(AnomalyWeight("tls:", 30.0), AnomalyWeight("tls:ua_mismatch", 70.0)),
        unknown_anomaly=25.0,
    )
    assert weights.anomaly_weight("tls:ua_mismatch") == 70.0
    assert weights.anomaly_weight("tls:ja4_unknown") == 30.0
    assert weights.anomaly_weight("never:heard_of") == 25.0
