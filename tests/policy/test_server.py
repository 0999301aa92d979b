"""ztgate's OPA-compatible policy service (`policy.server`), driven by real HTTP clients.

Acceptance check 3 (issue 4): a standard OPA REST client — PyPI
``opa-python-client`` — evaluates decisions against the service and gets what
the embedded engine computes, for allow, deny, step-up and malformed inputs.
"""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opa_client import OpaClient
from opa_client.errors import PolicyNotFoundError, RegoParseError

from policy.contract import MAX_INPUT_BYTES, example_input
from policy.decision import parse_result
from policy.decision_log import DecisionLog
from policy.embedded import EmbeddedEngine
from policy.reload import PolicyHolder
from policy.server import PolicyServerConfig, start_policy_server
from tests.policy.server_harness import ThreadedServer, mini_bundle, route_input
from ztgate.policy_cli import default_bundle

DECISION = "/v1/data/ztgate/main/decision"


@pytest.fixture(scope="module")
def served_default() -> Iterator[tuple[ThreadedServer, EmbeddedEngine]]:
    """ztgate's default bundle, served over REST and loaded in-process for comparison."""
    bundle = default_bundle()
    holder = PolicyHolder()
    srv = ThreadedServer(holder)
    result = srv.run(holder.load(bundle))
    assert result.ok, result
    try:
        yield srv, EmbeddedEngine(bundle)
    finally:
        srv.close()


@pytest.fixture
def served_mini() -> Iterator[tuple[ThreadedServer, PolicyHolder]]:
    holder = PolicyHolder()
    srv = ThreadedServer(holder)
    assert srv.run(holder.load(mini_bundle())).ok
    try:
        yield srv, holder
    finally:
        srv.close()


def _client(srv: ThreadedServer, token: str | None = None) -> OpaClient:
    return OpaClient(host="127.0.0.1", port=srv.port, token=token, retries=0, timeout=30)


def _stale_auth(doc: dict[str, Any], age: int) -> dict[str, Any]:
    doc["identity"]["auth_time"] = doc["time"]["now"] - age
    return doc


# -- acceptance check 3: a standard OPA client against the default bundle ------------------


def _cases() -> dict[str, dict[str, Any]]:
    transfer = example_input()
    transfer["route"].update(
        id="transfers.create", classification="transfer", api_product="retail-payments"
    )
    transfer["request"].update(method="POST", path="/payments/v1/transfers")
    malformed = example_input()
    del malformed["identity"]["subject"]
    risky = example_input()
    risky["risk"]["score"] = 97
    return {
        "allow": example_input(),
        "deny": risky,
        "step_up": _stale_auth(transfer, 3600),
        "malformed": malformed,
        "not_an_object": [1, 2, 3],  # type: ignore[dict-item]
    }


def test_opa_client_gets_the_embedded_decision(
    served_default: tuple[ThreadedServer, EmbeddedEngine],
) -> None:
    srv, engine = served_default
    cases = _cases()
    with _client(srv) as client:
        for name, doc in cases.items():
            answer = client.query_rule(doc, "ztgate.main", "decision")
            expected = engine.evaluate(doc)
            got = parse_result(answer.get("result"), engine.revision)
            assert got == expected, name
            assert answer["decision_id"]
            if name in ("malformed", "not_an_object"):
                assert not got.allow and got.reasons[0].startswith("input:"), name
            else:  # the raw result is exactly the embedded engine's raw value
                assert answer["result"] == engine.query("ztgate/main/decision", doc)[1], name
    kinds = {n: engine.evaluate(d) for n, d in cases.items()}
    assert kinds["allow"].allow
    assert not kinds["deny"].allow and kinds["deny"].obligations.step_up is None
    assert kinds["step_up"].obligations.step_up is not None


def test_opa_client_lists_and_reads_policies(
    served_default: tuple[ThreadedServer, EmbeddedEngine],
) -> None:
    srv, engine = served_default
    modules = engine.bundle.modules
    with _client(srv) as client:
        assert sorted(client.get_policies_list()) == sorted(modules)
        some = next(iter(modules))
        assert client.get_policy(some)["result"]["raw"] == modules[some]
        info = client.get_policies_info()
        entry = f"{client.root_url}/data/ztgate/main"  # the client's URL for a package
        main = next(p for p, i in info.items() if i["path"] == entry)
        assert f"{entry}/decision" in info[main]["rules"]
        with pytest.raises(PolicyNotFoundError):
            client.get_policy("no/such/module.rego")
        assert client.check_health() and client.check_health(query={"bundles": True})
        with pytest.raises(PolicyNotFoundError):  # undefined document: no `result`
            client.get_data("ztgate/main/no_such_rule")


def test_opa_client_policy_upload_goes_through_the_gate(
    served_mini: tuple[ThreadedServer, PolicyHolder], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="ztgate.policy")  # the change is logged
    srv, holder = served_mini
    before = holder.revision
    with _client(srv) as anonymous:
        with pytest.raises(RegoParseError) as refused:
            anonymous.update_policy_from_string("package ztgate.extra\n\nx := 1\n", "ztgate/extra")
        assert refused.value.expression == "unauthorized"
    with _client(srv, token=srv.server.admin_token) as admin:
        assert admin.update_policy_from_string(
            "package ztgate.extra\n\nx := 41 + 1\n", "ztgate/extra"
        )
        assert holder.revision.startswith(before + "+api.")
        assert admin.get_data("ztgate/extra/x")["result"] == 42
        with pytest.raises(RegoParseError) as broken:
            admin.update_policy_from_string("package ztgate.extra\n\nx := \n", "ztgate/extra")
        err = broken.value.errors[0]
        assert err["location"]["file"] == "ztgate/extra.rego" and err["location"]["row"] == 4
        assert admin.get_data("ztgate/extra/x")["result"] == 42  # the old module still serves
        assert any(getattr(r, "policy_module", "") == "ztgate/extra.rego" for r in caplog.records)
        assert admin.delete_policy("ztgate/extra")
        assert "ztgate/extra.rego" not in admin.get_policies_list()


# -- the Data API ---------------------------------------------------------------------------


def _post(srv: ThreadedServer, path: str, doc: Any, raw: bytes | None = None) -> tuple[int, Any]:
    body = raw if raw is not None else json.dumps(doc).encode()
    status, headers, data = srv.request("POST", path, body, {"Content-Type": "application/json"})
    assert headers["content-type"].startswith("application/json")
    return status, json.loads(data)


def test_decisions_of_every_kind_match_the_embedded_engine(
    served_mini: tuple[ThreadedServer, PolicyHolder],
) -> None:
    srv, holder = served_mini
    engine = holder.engine
    assert engine is not None
    for doc in (
        route_input("public"),
        route_input("account"),
        route_input("account", risk=80),
        route_input("transfer"),
        route_input("staff"),
        route_input("public", route_id="boom"),  # evaluation error → the embedded deny
        {"input": "not a document"},
        None,
    ):
        status, body = _post(srv, DECISION, {"input": doc})
        assert status == 200
        assert parse_result(body["result"], engine.revision) == engine.evaluate(doc)


def test_undefined_missing_input_and_other_paths(
    served_mini: tuple[ThreadedServer, PolicyHolder],
) -> None:
    srv, _ = served_mini
    status, body = _post(srv, "/v1/data/ztgate/main/no_such_rule", {"input": {}})
    assert status == 200 and "result" not in body and "warning" not in body
    status, body = _post(srv, "/v1/data/ztgate/main/route_ids", {})
    assert body["result"] == ["accounts.balances", "public.rates"]
    assert body["warning"]["code"] == "api_usage_warning"
    status, _, data = srv.request("GET", '/v1/data/ztgate/limits?input={"a":1}&pretty=true')
    assert status == 200 and json.loads(data)["result"] == {"max_risk": 40}
    assert data.startswith(b"{\n  ")
    status, _, data = srv.request("GET", "/v1/data/ztgate/main/route_ids?input=%7Bbad")
    assert status == 400 and json.loads(data)["code"] == "invalid_parameter"
    status, body = _post(srv, "/v0/data/ztgate/main/decision", route_input("public"))
    assert status == 200 and body["allow"] is True and body["reasons"] == ["public_route"]
    status, body = _post(srv, "/v0/data/ztgate/main/nothing", {})
    assert (status, body["code"]) == (404, "undefined_document")


def test_metrics_and_provenance(served_mini: tuple[ThreadedServer, PolicyHolder]) -> None:
    srv, holder = served_mini
    status, body = _post(
        srv, DECISION + "?metrics=true&provenance", {"input": route_input("public")}
    )
    assert status == 200
    assert {"timer_rego_query_eval_ns", "timer_server_handler_ns"} <= body["metrics"].keys()
    assert body["provenance"]["bundles"]["ztgate"]["revision"] == holder.revision


def test_evaluation_error_off_the_decision_path_is_opas_500(
    served_mini: tuple[ThreadedServer, PolicyHolder],
) -> None:
    srv, _ = served_mini
    status, body = _post(
        srv, "/v1/data/ztgate/main/conflict", {"input": route_input("public", route_id="boom")}
    )
    assert status == 500
    assert body["code"] == "internal_error" and body["errors"][0]["code"] == "eval_error"
    assert "Traceback" not in json.dumps(body)


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        (b"{bad", "body contains malformed input document"),
        (b"[1, 2]", "not an object"),
        (b'{"input": NaN}', "NaN"),
        (b'{"input": 1e999}', "out of range"),
        (b"\xff\xfe\x00", "malformed"),
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
    ],
)
def test_bad_bodies_are_opa_400s(
    served_mini: tuple[ThreadedServer, PolicyHolder], raw: bytes, fragment: str
) -> None:
    srv, _ = served_mini
    status, body = _post(srv, DECISION, None, raw=raw)
    assert status == 400 and body["code"] == "invalid_parameter"
    assert fragment in body["message"]


def test_oversized_input_is_413(served_mini: tuple[ThreadedServer, PolicyHolder]) -> None:
    srv, _ = served_mini
    big = {"input": {"pad": "x" * (MAX_INPUT_BYTES + 2048)}}
    status, body = _post(srv, DECISION, big)
    assert (status, body) == (
        413,
        {"code": "invalid_parameter", "message": "request body too large"},
    )

    async def chunked() -> tuple[int, Any]:  # no Content-Length: the limit holds while reading
        async def gen() -> Any:
            for _ in range(20):
                yield b" " * (128 * 1024)

        async with (
            aiohttp.ClientSession() as session,
            session.post(srv.url + DECISION, data=gen()) as resp,
        ):
            return resp.status, await resp.json()

    status, body = asyncio.run(chunked())
    assert status == 413 and body["code"] == "invalid_parameter"


def test_routing_errors_are_json(served_mini: tuple[ThreadedServer, PolicyHolder]) -> None:
    srv, _ = served_mini
    status, _, data = srv.request("GET", "/no/such/endpoint")
    assert status == 404 and json.loads(data)["code"] == "resource_not_found"
    status, _, data = srv.request("PATCH", "/v1/policies/x")
    assert status == 405 and json.loads(data)["code"] == "invalid_operation"


# -- the Policy API ---------------------------------------------------------------------------


def test_policy_writes_need_the_admin_token(
    served_mini: tuple[ThreadedServer, PolicyHolder],
) -> None:
    srv, holder = served_mini
    before = holder.revision
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic x"}):
        status, h, data = srv.request(
            "PUT", "/v1/policies/ztgate/x", b"package ztgate.x\n", headers
        )
        assert status == 401 and json.loads(data)["code"] == "unauthorized"
        assert h["www-authenticate"].startswith("Bearer")
        status, _, _ = srv.request("DELETE", "/v1/policies/ztgate/main.rego", None, headers)
        assert status == 401
    assert holder.revision == before


def _admin(srv: ThreadedServer) -> dict[str, str]:
    return {"Authorization": f"Bearer {srv.server.admin_token}"}


def test_a_change_whose_tests_fail_never_serves(
    served_mini: tuple[ThreadedServer, PolicyHolder],
) -> None:
    srv, holder = served_mini
    before = holder.revision
    failing = b"package ztgate.extra_test\n\ntest_fails if false\n"
    status, _, data = srv.request(
        "PUT", "/v1/policies/ztgate/extra_test.rego", failing, _admin(srv)
    )
    body = json.loads(data)
    assert status == 400 and body["errors"][0]["code"] == "rego_test_failure"
    assert holder.revision == before


def test_policy_api_guards(served_mini: tuple[ThreadedServer, PolicyHolder]) -> None:
    srv, holder = served_mini
    before = holder.revision
    admin = _admin(srv)
    outside = b"package elsewhere\n\nx := 1\n"
    status, _, data = srv.request("PUT", "/v1/policies/elsewhere", outside, admin)
    assert status == 400 and "roots" in json.loads(data)["message"]
    status, _, data = srv.request(
        "PUT", "/v1/policies/ztgate/../../etc", b"package ztgate.x\n", admin
    )
    assert status in (400, 404)
    status, _, data = srv.request("PUT", "/v1/policies/ztgate/empty", b"  \n", admin)
    assert (status, json.loads(data)["message"]) == (400, "empty module")
    status, _, data = srv.request("DELETE", "/v1/policies/ztgate/main.rego", None, admin)
    body = json.loads(data)
    assert status == 400 and body["code"] == "invalid_operation"  # the entry rule would go
    status, _, data = srv.request("DELETE", "/v1/policies/ztgate/none.rego", None, admin)
    assert status == 404 and json.loads(data)["code"] == "resource_not_found"
    same = holder.engine.bundle.files["ztgate/main.rego"] if holder.engine else b""
    status, _, _ = srv.request("PUT", "/v1/policies/ztgate/main.rego", same, admin)
    assert status == 200 and holder.revision == before  # unchanged content: nothing to do


async def test_a_fixed_engine_is_read_only_and_health_tracks_the_bundle() -> None:
    engine = EmbeddedEngine(mini_bundle())
    running = await start_policy_server(engine, config=PolicyServerConfig(port=0))
    empty = await start_policy_server(PolicyHolder(), config=PolicyServerConfig(port=0))
    headers = {"Authorization": f"Bearer {running.admin_token}"}
    try:
        async with aiohttp.ClientSession() as session:
            url = running.url + "/v1/policies/ztgate/x"
            async with session.put(url, data=b"package ztgate.x\n", headers=headers) as resp:
                assert resp.status == 405
            for path in ("/health", "/health?bundles", "/health/ready", "/health/live"):
                async with session.get(running.url + path) as resp:
                    assert (resp.status, await resp.json()) == (200, {})
            async with session.get(empty.url + "/health?bundles") as resp:
                assert resp.status == 500
                assert (await resp.json())["error"].startswith("not all configured bundles")
            async with session.post(empty.url + DECISION, json={"input": {}}) as resp:
                assert resp.status == 500 and (await resp.json())["code"] == "internal_error"
    finally:
        await running.stop()
        await empty.stop()


# -- concurrency --------------------------------------------------------------------------------


async def test_concurrent_decisions_during_a_policy_change() -> None:
    """Hundreds of decisions in flight while a module is replaced: each answer is one
    revision's, exactly what that revision's engine computes."""
    holder = PolicyHolder()
    assert (await holder.load(mini_bundle())).ok
    first = holder.engine
    assert first is not None
    running = await start_policy_server(holder, config=PolicyServerConfig(port=0))
    docs = [
        route_input(c, risk=r) for c in ("public", "account", "transfer", "staff") for r in (5, 90)
    ]
    changed = mini_bundle().files["ztgate/main.rego"].replace(b'"public_route"', b'"open_route"')
    try:
        async with aiohttp.ClientSession() as session:

            async def ask(i: int) -> tuple[dict[str, Any], dict[str, Any]]:
                doc = docs[i % len(docs)]
                url = running.url + DECISION + "?provenance"
                async with session.post(url, json={"input": doc}) as resp:
                    assert resp.status == 200
                    return doc, await resp.json()

            async def change() -> None:
                await asyncio.sleep(0)
                url = running.url + "/v1/policies/ztgate/main.rego"
                auth = {"Authorization": f"Bearer {running.admin_token}"}
                async with session.put(url, data=changed, headers=auth) as resp:
                    assert resp.status == 200, await resp.text()

            results = await asyncio.gather(*(ask(i) for i in range(300)), change())
        second = holder.engine
        assert second is not None and second.revision != first.revision
        engines = {first.revision: first, second.revision: second}
        seen = set()
        for doc, body in (r for r in results if r is not None):
            revision = body["provenance"]["bundles"]["ztgate"]["revision"]
            seen.add(revision)
            assert body["result"] == engines[revision].query("ztgate/main/decision", doc)[1]
        assert seen <= set(engines)
    finally:
        await running.stop()


# -- robustness -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fuzz_server() -> Iterator[ThreadedServer]:
    holder = PolicyHolder()
    srv = ThreadedServer(holder)
    assert srv.run(holder.load(mini_bundle(boom=False))).ok  # no rule fails on purpose
    try:
        yield srv
    finally:
        srv.close()


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    body=st.one_of(
        st.binary(max_size=300),
        _json_values.map(lambda v: json.dumps(v).encode()),
        _json_values.map(lambda v: json.dumps({"input": v}).encode()),
    ),
    path=st.sampled_from(
        [DECISION, "/v1/data/ztgate/main/route_ids", "/v1/data", "/v0/data/ztgate/main/decision"]
    ),
)
def test_arbitrary_bodies_never_500(fuzz_server: ThreadedServer, body: bytes, path: str) -> None:
    status, headers, data = fuzz_server.request("POST", path, body)
    assert status in (200, 400, 404, 413), (status, data[:200])
    assert headers["content-type"].startswith("application/json")
    doc = json.loads(data)
    if path == DECISION and status == 200:
        assert parse_result(doc["result"]).allow in (True, False)


async def test_decisions_are_logged_in_opas_format(tmp_path: Path) -> None:
    holder = PolicyHolder()
    assert (await holder.load(mini_bundle())).ok
    decision_log = DecisionLog(tmp_path / "decisions.jsonl")
    running = await start_policy_server(
        holder, config=PolicyServerConfig(port=0), decision_log=decision_log
    )
    doc = route_input("account")
    try:
        async with aiohttp.ClientSession() as session:
            async with session.post(running.url + DECISION, json={"input": doc}) as resp:
                answer = await resp.json()
            async with session.post(running.url + "/v1/data/ztgate/limits", json={}) as resp:
                assert resp.status == 200  # not the decision rule: not a decision
    finally:
        await running.stop()
        decision_log.close()
    events = [json.loads(line) for line in (tmp_path / "decisions.jsonl").read_text().splitlines()]
    assert len(events) == 1
    event = events[0]
    assert event["decision_id"] == answer["decision_id"]
    assert event["path"] == "ztgate/main/decision"
    assert event["result"] == answer["result"]
    assert event["bundles"] == {"ztgate": {"revision": "mini-1"}}
    assert event["input"]["identity"]["subject"] != doc["identity"]["subject"]  # masked


def test_ztgate_policy_serve(tmp_path: Path) -> None:
    """The operator's command: serve a bundle directory, answer, stop cleanly on SIGTERM."""
    bundle_dir = tmp_path / "bundle"
    for name, data in mini_bundle().files.items():
        (bundle_dir / name).parent.mkdir(parents=True, exist_ok=True)
        (bundle_dir / name).write_bytes(data)
    token_file = tmp_path / "admin-token"
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    log_file = tmp_path / "serve.log"
    with (
        log_file.open("wb") as logs,
        subprocess.Popen(
            [
                *(sys.executable, "-m", "ztgate", "policy", "serve", "--bundle", str(bundle_dir)),
                *("--port", str(port), "--admin-token-file", str(token_file), "--watch", "60"),
            ],
            stdout=subprocess.PIPE,
            stderr=logs,
        ) as proc,
    ):
        try:
            assert proc.stdout is not None
            line = proc.stdout.readline().decode()
            assert f"http://127.0.0.1:{port}" in line and "mini-1" in line, log_file.read_text()
            assert token_file.stat().st_mode & 0o777 == 0o600
            with OpaClient(host="127.0.0.1", port=port, retries=0, timeout=30) as client:
                answer = client.query_rule(route_input("public"), "ztgate.main", "decision")
                assert answer["result"]["reasons"] == ["public_route"]
            token = token_file.read_text().strip()
            with OpaClient(
                host="127.0.0.1", port=port, token=token, retries=0, timeout=30
            ) as admin:
                assert admin.update_policy_from_string("package ztgate.x\n\ny := 1\n", "ztgate/x")
        finally:
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=30) == 0, log_file.read_text()


async def test_reads_can_require_the_token_too() -> None:
    engine = EmbeddedEngine(mini_bundle())
    config = PolicyServerConfig(port=0, token_for_reads=True)
    running = await start_policy_server(engine, config=config, admin_token="t" * 32)
    try:
        async with aiohttp.ClientSession() as session:
            async with session.post(running.url + DECISION, json={"input": {}}) as resp:
                assert resp.status == 401
            async with session.get(running.url + "/v1/policies") as resp:
                assert resp.status == 401
            auth = {"Authorization": "Bearer " + "t" * 32}
            async with session.get(running.url + "/v1/policies", headers=auth) as resp:
                assert resp.status == 200
            async with session.get(running.url + "/health") as resp:
                assert resp.status == 200  # probes stay open
    finally:
        await running.stop()
