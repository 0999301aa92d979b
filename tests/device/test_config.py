"""The ``[device]`` section: defaults, validation, and errors that name the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from authn import acr
from device_fingerprint.config import DeviceConfig, WebWeights
from ztgate import config


def load(tmp_path: Path, text: str) -> config.Config:
    path = tmp_path / "ztgate.toml"
    path.write_text(text)
    return config.load(path)


def test_defaults_match_authn_and_are_valid() -> None:
    cfg = config.load(None).device
    assert cfg == DeviceConfig()
    assert [acr.level(a) for a in cfg.acr_levels] == [1, 2, 3]  # authn's order
    assert cfg.bind_min_acr == acr.MFA
    assert cfg.acr_rank(acr.PASSKEY) > cfg.acr_rank(acr.MFA) > cfg.acr_rank(acr.PWD) > 0
    assert cfg.acr_rank(None) == cfg.acr_rank("urn:unknown") == 0


def test_a_file_sets_nested_weights(tmp_path: Path) -> None:
    cfg = load(
        tmp_path,
        "[device]\nmatch_threshold = 7.5\nmax_bound_devices = 3\n"
        "[device.web]\ncanvas = [3.0, -2.0]\n",
    ).device
    assert (cfg.match_threshold, cfg.max_bound_devices, cfg.web.canvas) == (7.5, 3, (3.0, -2.0))
    assert cfg.web.fonts == WebWeights().fonts


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("match_threshold = 0.5", "device.match_threshold"),
        ('match_threshold = "high"', "device.match_threshold"),
        ("max_payload_bytes = 100", "device.max_payload_bytes"),
        ("max_depth = 1000", "device.max_depth"),
        ("max_bound_devices = 0", "device.max_bound_devices"),
        ("farm_subjects = 1", "device.farm_subjects"),
        ("sync_seconds = 0", "device.sync_seconds"),
        ("cache_ttl = -1", "device.cache_ttl"),
        ('bind_min_acr = "urn:ztgate:acr:none"', "device.bind_min_acr"),
        ("acr_levels = []", "device.acr_levels"),
        ('acr_levels = ["a", "a"]\nbind_min_acr = "a"', "device.acr_levels"),
        ('suspicious_anomalies = ["tls"]', "device.suspicious_anomalies"),
        ("surprise = 1", "device.surprise"),
        ("[device.web]\ncanvas = [1.0]", "device.web.canvas"),
        ("[device.web]\ncanvas = [-1.0, -2.0]", "device.web.canvas"),
        ("[device.web]\ncanvas = [1.0, 2.0]", "device.web.canvas"),
        ('[device.web]\ncanvas = [1.0, "x"]', "device.web.canvas[1]"),
        ("[device.mobile]\nsim = [100.0, -1.0]", "device.mobile.sim"),
        ("[device.mobile]\nimei = [1.0, -1.0]", "device.mobile.imei"),
    ],
)
def test_errors_name_the_key(tmp_path: Path, text: str, key: str) -> None:
    if not text.startswith("["):
        text = "[device]\n" + text
    with pytest.raises(config.ConfigError) as err:
        load(tmp_path, text + "\n")
    assert err.value.key == key, err.value


def test_direct_construction_is_validated_too() -> None:
    with pytest.raises(ValueError, match=r"^match_threshold: "):
        DeviceConfig(match_threshold=float("nan"))
    with pytest.raises(ValueError, match=r"^web\.fonts: "):
        DeviceConfig(web=WebWeights(fonts=(1.0, float("inf"))))


def test_the_published_schema_has_the_section() -> None:
    schema = config.json_schema()
    device = schema["properties"]["device"]
    assert device["properties"]["web"]["properties"]["canvas"]["type"] == "array"
    assert device["additionalProperties"] is False
