"""AgentConfig: secure defaults, and errors that name the offending key."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from gateway.agent_config import AgentConfig
from ztgate.config import ConfigError, from_dict

REQUIRED: dict[str, Any] = {
    "store_url": "sqlite:///var/lib/ztgate/authn.db",
    "token_jwks": "/etc/ztgate/token-jwks.json",
    "assertion_keyring": "/var/lib/ztgate/edge-keys",
}


def test_a_table_loads_with_secure_defaults() -> None:
    config = from_dict(AgentConfig, dict(REQUIRED), "agent")
    assert config.token_jwks == Path("/etc/ztgate/token-jwks.json")
    assert (config.host, config.check_timeout, config.assertion_ttl) == ("127.0.0.1", 0.2, 30)
    assert config.worker_count == (os.cpu_count() or 1)
    assert config.worker_ports() == tuple(9191 + i for i in range(config.worker_count))
    assert from_dict(AgentConfig, {**REQUIRED, "workers": 3}).worker_ports() == (9191, 9192, 9193)
    assert config.bundle_path.joinpath(".manifest").is_file()  # the packaged default bundle


@pytest.mark.parametrize(
    ("override", "key", "problem"),
    [
        ({"store_url": ""}, "agent.store_url", "required"),
        ({"store_url": "mysql://x"}, "agent.store_url", "sqlite"),
        ({"token_jwks": None}, "agent.token_jwks", "required"),
        ({"host": "0.0.0.0"}, "agent.host", "loopback"),
        ({"workers": 65}, "agent.workers", "0 (one per core) to 64"),
        ({"base_port": 80}, "agent.base_port", "between 1024"),
        ({"check_timeout": 0}, "agent.check_timeout", "between 0.005 and 5"),
        ({"assertion_hmac_key": "/k"}, "agent.assertion_keyring", "exactly one"),
        ({"assertion_keyring": None}, "agent.assertion_keyring", "exactly one"),
        ({"revocation_max_staleness": 0.5}, "agent.revocation_max_staleness", "exceed"),
        ({"assertion_ttl": 3600}, "agent.assertion_ttl", "5 to 300"),
        ({"node_id": "edge 1"}, "agent.node_id", "characters"),
        ({"store_schema": "Bad-Schema"}, "agent.store_schema", "identifier"),
        ({"workers": "2"}, "agent.workers", "must be a number"),
        ({"bogus": 1}, "agent.bogus", "unknown key"),
    ],
)
def test_errors_name_the_key(override: dict[str, Any], key: str, problem: str) -> None:
    doc = {k: v for k, v in {**REQUIRED, **override}.items() if v is not None}
    with pytest.raises(ConfigError) as info:
        from_dict(AgentConfig, doc, "agent")
    assert info.value.key == key
    assert problem in info.value.problem
