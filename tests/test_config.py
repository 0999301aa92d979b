"""The configuration convention: one TOML file, every error names its key."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ztgate import config


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "ztgate.toml"
    path.write_text(text)
    return path


def test_defaults_are_secure() -> None:
    cfg = config.load(None)
    assert cfg.crypto.signing_algorithm == "sm2"
    assert cfg.crypto.selftest_on_start is True


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ('[crypto]\nsigning_algorithm = "HS256"\n', "crypto.signing_algorithm"),
        ("[crypto]\nselftest_on_start = 1\n", "crypto.selftest_on_start"),
        ('[crypto]\nunknown = "x"\n', "crypto.unknown"),
        ("[nonsense]\nx = 1\n", "nonsense"),
        ("log = 3\n", "log"),
        ('[log]\nlevel = "trace"\n', "log.level"),
        ('[state]\ndir = ""\n', "state.dir"),
    ],
)
def test_errors_name_the_key(tmp_path: Path, text: str, key: str) -> None:
    with pytest.raises(config.ConfigError) as err:
        config.load(write(tmp_path, text))
    assert err.value.key == key
    assert str(err.value).startswith(key + ":")


def test_unreadable_and_invalid_files(tmp_path: Path) -> None:
    with pytest.raises(config.ConfigError, match="cannot read"):
        config.load(tmp_path / "missing.toml")
    with pytest.raises(config.ConfigError, match="not valid TOML"):
        config.load(write(tmp_path, "[crypto\n"))
    bad = tmp_path / "bad.toml"
    bad.write_bytes(b"\xff\xfe")
    with pytest.raises(config.ConfigError, match="not valid TOML"):
        config.load(bad)


def test_valid_file(tmp_path: Path) -> None:
    cfg = config.load(
        write(
            tmp_path, '[crypto]\nsigning_algorithm = "ed25519"\n[state]\ndir = "/var/lib/ztgate"\n'
        )
    )
    assert cfg.crypto.signing_algorithm == "ed25519"
    assert cfg.state.dir == Path("/var/lib/ztgate")


@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=8),
        lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=8), c, max_size=3),
        max_leaves=10,
    )
)
def test_from_dict_only_raises_config_error(doc: object) -> None:
    with contextlib.suppress(config.ConfigError):
        config.from_dict(config.Config, doc)
