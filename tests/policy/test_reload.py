"""Atomic hot reload (policy/reload.py) — issue 4, acceptance check 2.

Two revisions that decide differently for the same probe input are swapped in
and out while thousands of decisions are in flight on threads and asyncio
tasks, with bad bundles (failing tests, broken Rego, bad signature) in between.
Every decision must be exactly what the revision it names decides, and a bad
bundle must leave the previous revision serving.
"""

from __future__ import annotations

import asyncio
import json
import threading
from pathlib import Path
from typing import Any

import pytest

from crypto import keys
from policy.bundle import SIGNATURES, Bundle
from policy.contract import example_input
from policy.decision import Decision
from policy.reload import BundleWatcher, PolicyHolder, read_bundle
from policy.signing import sign_bundle

DEFAULT_BUNDLE = Path(__file__).resolve().parents[2] / "policy" / "bundles" / "default"


def toy_bundle(revision: str, *, allow: bool, tier: str, test_ok: bool = True) -> Bundle:
    """A bundle whose whole answer (allow, reasons, obligations) names its revision."""
    decision = {
        "allow": allow,
        "reasons": [f"rev:{revision}"],
        "obligations": {"rate_limit_tier": tier, "audit": "none", "mask_profile": tier},
    }
    policy = f"package ztgate.main\n\ndecision := {json.dumps(decision)}\n"
    expect = "true" if allow == test_ok else "false"
    test = (
        "package ztgate.main_test\n\nimport data.ztgate.main\n\n"
        f"test_decision if main.decision.allow == {expect}\n"
    )
    return Bundle.build(
        {"ztgate/main/main.rego": policy.encode(), "ztgate/main/main_test.rego": test.encode()},
        revision=revision,
    )


REV_A = toy_bundle("rev-a", allow=True, tier="gold")
REV_B = toy_bundle("rev-b", allow=False, tier="bronze")
FAILING_TESTS = toy_bundle("bad-tests", allow=True, tier="evil", test_ok=False)
BROKEN_REGO = Bundle.build(
    {"ztgate/main/main.rego": b"package ztgate.main\n\ndecision := {\n"}, revision="bad-rego"
)
PROBE = example_input()


def expected(bundle: Bundle) -> Decision:
    """What `bundle` decides for the probe, computed by a fresh engine of its own."""
    from policy.embedded import EmbeddedEngine

    return EmbeddedEngine(bundle).evaluate(PROBE)


async def test_decisions_carry_the_revision_that_made_them() -> None:
    holder = PolicyHolder()
    assert (await holder.decide(PROBE)).reasons == ("policy:no_bundle",)
    result = await holder.load(REV_A)
    assert result.ok and result.stage == "loaded" and result.active == "rev-a"
    assert result.tests is not None and result.tests.passed
    decision = await holder.decide(PROBE)
    assert (decision.allow, decision.revision, decision.reasons) == (True, "rev-a", ("rev:rev-a",))
    assert holder.evaluate(PROBE) == decision
    assert (await holder.load(REV_B)).ok
    assert (await holder.decide(PROBE)).revision == "rev-b"
    await holder.close()
    assert (await holder.decide(PROBE)).reasons == ("policy:closed",)
    assert not (await holder.load(REV_A)).ok


@pytest.mark.parametrize(
    ("bad", "stage"),
    [(FAILING_TESTS, "tests"), (BROKEN_REGO, "compile")],
)
async def test_a_bad_bundle_never_takes_effect(bad: Bundle, stage: str) -> None:
    holder = PolicyHolder()
    await holder.load(REV_A)
    result = await holder.load(bad)
    assert not result.ok and result.stage == stage and result.revision == bad.revision
    assert result.active == "rev-a" and holder.revision == "rev-a"
    assert (await holder.decide(PROBE)).revision == "rev-a"
    if stage == "tests":
        assert result.tests is not None and result.tests.failed
        assert "test_decision" in result.reason
    else:
        assert "main.rego" in result.reason


async def test_compile_error_carries_file_and_line() -> None:
    result = await PolicyHolder().load(BROKEN_REGO)
    assert result.stage == "compile" and "ztgate/main/main.rego:" in result.reason


async def test_untested_bundles_are_refused_unless_allowed() -> None:
    untested = Bundle.build(
        {k: v for k, v in REV_A.files.items() if not k.endswith("_test.rego")}, revision="untested"
    )
    refused = await PolicyHolder().load(untested)
    assert not refused.ok and refused.stage == "tests" and "no test_" in refused.reason
    assert (await PolicyHolder(require_tests=False).load(untested)).ok


async def test_default_bundle_loads() -> None:
    holder = PolicyHolder()
    result = await holder.load(Bundle.from_dir(DEFAULT_BUNDLE))
    assert result.ok, result.reason
    assert (await holder.decide(PROBE)).revision == result.revision


# -- signatures ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def signer() -> keys.PrivateKey:
    return keys.generate("sm2")


async def test_signed_bundles_only_when_keys_are_configured(signer: keys.PrivateKey) -> None:
    holder = PolicyHolder(verify_keys={"k1": signer.public_key()})
    unsigned = await holder.load(REV_A)
    assert not unsigned.ok and unsigned.stage == "signature" and "not signed" in unsigned.reason
    assert (await holder.load(sign_bundle(REV_A, signer, kid="k1"))).ok
    forged = sign_bundle(REV_B, keys.generate("sm2"), kid="k1")
    result = await holder.load(forged)
    assert not result.ok and result.stage == "signature" and holder.revision == "rev-a"
    tampered = sign_bundle(REV_B, signer, kid="k1").with_files(
        {"ztgate/main/main.rego": FAILING_TESTS.files["ztgate/main/main.rego"]}
    )
    assert (await holder.load(tampered)).stage == "signature"
    assert (await holder.decide(PROBE)).revision == "rev-a"


async def test_per_load_keys_cannot_switch_verification_off(signer: keys.PrivateKey) -> None:
    holder = PolicyHolder(verify_keys={"k1": signer.public_key()})
    assert not (await holder.load(REV_A, verify_keys={})).ok
    signed = sign_bundle(REV_A, signer, kid="k1")
    assert (await holder.load(signed, verify_keys={"k1": signer.public_key()})).ok


async def test_empty_key_set_trusts_nothing(signer: keys.PrivateKey) -> None:
    """A configuration that lost its keys fails closed, it does not stop checking."""
    holder = PolicyHolder(verify_keys={})
    assert (await holder.load(REV_A)).stage == "signature"
    assert (await holder.load(sign_bundle(REV_A, signer, kid="k1"))).stage == "signature"
    assert holder.revision == ""


async def test_signed_bundle_without_configured_keys_is_refused(signer: keys.PrivateKey) -> None:
    result = await PolicyHolder().load(sign_bundle(REV_A, signer, kid="k1"))
    assert not result.ok and result.stage == "signature"


# -- reading from disk and watching -------------------------------------------------------------


def write_bundle(path: Path, bundle: Bundle) -> None:
    """Publish as an operator should: write aside, then rename over."""
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(bundle.to_tarball())
    tmp.replace(path)


def write_dir(path: Path, bundle: Bundle) -> None:
    for name, data in bundle.files.items():
        (path / name).parent.mkdir(parents=True, exist_ok=True)
        (path / name).write_bytes(data)


async def test_load_from_dir_and_tarball(tmp_path: Path) -> None:
    holder = PolicyHolder()
    write_dir(tmp_path / "dir", REV_A)
    assert (await holder.load_from_dir(tmp_path / "dir")).ok and holder.revision == "rev-a"
    tarball = tmp_path / "bundle.tar.gz"
    write_bundle(tarball, REV_B)
    result = await holder.load_from_dir(tarball)
    assert result.ok and holder.revision == "rev-b"
    missing = await holder.load_from_dir(tmp_path / "nope.tar.gz")
    assert not missing.ok and missing.stage == "read" and holder.revision == "rev-b"
    (tmp_path / "junk.tar.gz").write_bytes(b"\x1f\x8b not really")
    assert (await holder.load_from_dir(tmp_path / "junk.tar.gz")).stage == "read"


def test_read_bundle_fingerprint_follows_content(tmp_path: Path) -> None:
    _, first = read_bundle(DEFAULT_BUNDLE)
    assert read_bundle(DEFAULT_BUNDLE)[1] == first
    copy = tmp_path / "copy"
    write_dir(copy, Bundle.from_dir(DEFAULT_BUNDLE))
    assert read_bundle(copy)[1] == first
    next(copy.rglob("*.rego")).write_text("package changed\n")
    assert read_bundle(copy)[1] != first


async def test_watcher_loads_changes_once_and_reports_bad_bundles_once(tmp_path: Path) -> None:
    path = tmp_path / "bundle.tar.gz"
    holder = PolicyHolder()
    watcher = BundleWatcher(holder, path, interval=3600)
    first = await watcher.check()
    assert first is not None and first.stage == "read"  # no file yet
    assert await watcher.check() is None  # same error: reported once
    write_bundle(path, REV_A)
    loaded = await watcher.check()
    assert loaded is not None and loaded.ok and holder.revision == "rev-a"
    assert await watcher.check() is None  # unchanged
    write_bundle(path, FAILING_TESTS)
    bad = await watcher.check()
    assert bad is not None and not bad.ok and holder.revision == "rev-a"
    assert await watcher.check() is None  # the bad file is not retried every poll
    write_bundle(path, REV_B)
    fixed = await watcher.check()
    assert fixed is not None and fixed.ok and holder.revision == "rev-b"
    watcher.start()
    await watcher.stop()


# -- acceptance check 2 --------------------------------------------------------------------------


async def test_hot_reload_under_concurrent_evaluation(signer: keys.PrivateKey) -> None:
    """Thousands of decisions in flight on threads and tasks while revisions swap."""
    want = {b.revision: expected(b) for b in (REV_A, REV_B)}
    assert want["rev-a"].allow != want["rev-b"].allow
    assert want["rev-a"].obligations != want["rev-b"].obligations

    trusted = {"k1": signer.public_key()}
    signed = {b.revision: sign_bundle(b, signer, kid="k1") for b in (REV_A, REV_B)}
    bad_signature = sign_bundle(REV_B, signer, kid="k1").with_files(
        {"ztgate/main/main.rego": FAILING_TESTS.files["ztgate/main/main.rego"]}
    )
    bad = [
        sign_bundle(FAILING_TESTS, signer, kid="k1"),
        sign_bundle(BROKEN_REGO, signer, kid="k1"),
        bad_signature,
        REV_A,  # unsigned
    ]
    holder = PolicyHolder(verify_keys=trusted)
    assert (await holder.load(signed["rev-a"])).ok

    stop = threading.Event()
    seen: list[Decision] = []
    seen_lock = threading.Lock()
    per_worker = 400

    def thread_worker() -> None:
        mine: list[Decision] = []
        while len(mine) < per_worker or not stop.is_set():
            mine.append(holder.evaluate(PROBE))
        with seen_lock:
            seen.extend(mine)

    async def task_worker() -> None:
        mine: list[Decision] = []
        while len(mine) < per_worker // 4 or not stop.is_set():
            mine.append(await holder.decide(PROBE))
            await asyncio.sleep(0)
        seen.extend(mine)

    threads = [threading.Thread(target=thread_worker) for _ in range(6)]
    for thread in threads:
        thread.start()
    tasks = [asyncio.create_task(task_worker()) for _ in range(16)]

    good_loads: list[bool] = []
    for round_ in range(12):
        good = signed["rev-b" if round_ % 2 == 0 else "rev-a"]
        result = await holder.load(good)
        good_loads.append(result.ok and holder.revision == good.revision)
        before = holder.revision
        result = await holder.load(bad[round_ % len(bad)])
        assert not result.ok and result.active == before == holder.revision, result
        assert (await holder.decide(PROBE)).revision == before
        await asyncio.sleep(0.001)

    stop.set()
    await asyncio.gather(*tasks)
    for thread in threads:
        await asyncio.to_thread(thread.join)

    assert len(seen) >= 6 * per_worker + 16 * per_worker // 4
    by_revision: dict[str, int] = {}
    for decision in seen:
        assert decision.revision in want, decision  # never a bad bundle's, never empty
        assert decision == want[decision.revision], decision  # all of one revision's answer
        by_revision[decision.revision] = by_revision.get(decision.revision, 0) + 1
    assert set(by_revision) == {"rev-a", "rev-b"}, by_revision
    assert all(good_loads)
    assert holder.loads_ok == 13 and holder.loads_refused == 12


async def test_loads_are_serialised_in_call_order() -> None:
    holder = PolicyHolder()
    results = await asyncio.gather(*(holder.load(b) for b in (REV_A, REV_B, REV_A, REV_B)))
    assert [r.active for r in results] == ["rev-a", "rev-b", "rev-a", "rev-b"]
    assert holder.revision == "rev-b"


def test_sync_evaluate_never_raises() -> None:
    holder = PolicyHolder()
    assert holder.evaluate(PROBE).reasons == ("policy:no_bundle",)
    asyncio.run(holder.load(REV_A))
    weird: Any = {"version": object()}
    decision = holder.evaluate(weird)
    assert not decision.allow and decision.revision == "rev-a"
    assert SIGNATURES not in REV_A.files
