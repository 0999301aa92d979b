"""`ztgate up`'s port layout and the configuration it derives (no processes)."""

from __future__ import annotations

import tomllib
from dataclasses import replace
from pathlib import Path

import pytest

from gateway.agent_config import AgentConfig
from gateway.config import from_document
from ztgate.config import from_dict
from ztgate.up_plan import MAX_NODES, AgentFiles, Layout, agent_toml, gateway_document


def test_defaults_scripts_rely_on() -> None:
    layout = Layout()
    first = layout.node(1)
    assert (first.http_port, first.https_port, first.agent_ports) == (8080, 8443, (9191, 9192))
    assert (layout.authn_port, layout.corebank_port, layout.policy_port) == (8081, 8090, 8181)
    assert layout.corebank_sandbox_port == 8091
    assert (layout.xds_port, layout.admin_port) == (18000, 18001)
    assert [(p.http_port, p.https_port) for p in Layout(nodes=3).node_plans()] == [
        (8080, 8443),
        (8082, 8444),
        (8083, 8445),
    ]


@pytest.mark.parametrize("nodes", range(1, MAX_NODES + 1))
@pytest.mark.parametrize("workers", [1, 2, 8])
def test_no_two_pieces_share_a_port(nodes: int, workers: int) -> None:
    ports = [port for _, port in Layout(nodes=nodes, workers=workers).ports()]
    assert len(ports) == len(set(ports))


@pytest.mark.parametrize(
    ("kwargs", "key"),
    [({"base_port": 80}, "--base-port"), ({"nodes": 9}, "--nodes"), ({"workers": 0}, "--workers")],
)
def test_bad_options_are_named(kwargs: dict[str, int], key: str) -> None:
    with pytest.raises(ValueError, match=key):
        Layout(**kwargs)


def test_each_node_gets_its_ports_and_agent_config_from_one_plan(tmp_path: Path) -> None:
    layout = Layout(base_port=30000, nodes=3, workers=2)
    cfg = from_document(gateway_document(layout), base_dir=tmp_path)
    files = AgentFiles(
        store_url=f"sqlite://{tmp_path / 'authn.db'}",
        token_jwks=tmp_path / "jwks.json",
        token_issuer="http://localhost:30001",
        token_audience="ztgate",
        assertion_keyring=tmp_path / "ring",
        assertion_kek=tmp_path / "kek.json",
    )
    for plan in layout.node_plans():
        node = cfg.for_node(plan.node_id)
        assert {li.name: li.port for li in node.listeners} == {
            "edge-http": plan.http_port,
            "edge-https": plan.https_port,
        }
        assert node.agent.ports == plan.agent_ports
        doc = tomllib.loads(agent_toml(plan, files, tmp_path / "logs"))
        agent = from_dict(AgentConfig, doc["agent"], "agent")
        assert agent.worker_ports() == plan.agent_ports  # what Envoy calls is what binds
        assert agent.node_id == plan.node_id
    assert cfg.clusters["corebank"].endpoints[0].port == layout.corebank_port
    assert cfg.clusters["corebank-sandbox"].endpoints[0].port == layout.corebank_sandbox_port
    assert cfg.clusters["authn"].endpoints[0].port == layout.authn_port


def test_agent_config_signs_with_the_shared_hmac_key_or_the_key_ring(tmp_path: Path) -> None:
    plan = Layout().node_plans()[0]
    common = AgentFiles(
        f"sqlite://{tmp_path / 'authn.db'}", tmp_path / "jwks.json", "http://x", "ztgate"
    )
    hmac_files = replace(common, assertion_hmac_key=tmp_path / "assertion-hmac.key")
    ring_files = replace(
        common, assertion_keyring=tmp_path / "ring", assertion_kek=tmp_path / "kek.json"
    )
    for files in (hmac_files, ring_files):
        doc = tomllib.loads(agent_toml(plan, files, tmp_path / "logs"))
        agent = from_dict(AgentConfig, doc["agent"], "agent")
        assert agent.assertion_hmac_key == files.assertion_hmac_key
        assert agent.assertion_keyring == files.assertion_keyring
        assert agent.assertion_kek == files.assertion_kek
