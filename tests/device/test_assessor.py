"""`DeviceAssessor` end to end on the real registry: trust levels, drift, keys, revocation,
the shared-device graph, attack devices — and that it never raises."""

from __future__ import annotations

import asyncio
import json
import random
from dataclasses import replace

import pytest

from device_fingerprint import synthetic
from device_fingerprint.assessment import DeviceObservation, TrustLevel
from device_fingerprint.assessor import DeviceAssessor
from device_fingerprint.config import ACR_MFA, DeviceConfig
from device_fingerprint.registry import Actor, DeviceRegistry, open_registry
from tests.databases import DatabaseURL
from tests.device.payloads import CHROME_HINTS, CHROME_JA4, CHROME_UA, encode, phone, web

ALICE, BOB = "u-alice", "u-bob"
T0 = 1_790_000_000.0
KEY = "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"  # an RFC 7638 thumbprint (its example)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


def browser(seed: int = 1, profile: str = "windows-chrome") -> synthetic.SyntheticDevice:
    device = synthetic.random_device(random.Random(seed), profile)
    return replace(device, region="CN", home=("CN", "Asia/Shanghai"), tz="Asia/Shanghai")


def seen_by(device: synthetic.SyntheticDevice, subject: str | None, **kw: str) -> DeviceObservation:
    return synthetic.observe(device, subject, now=T0, **kw)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def assessor(registry: DeviceRegistry, clock: Clock) -> DeviceAssessor:
    return DeviceAssessor(registry, DeviceConfig(), clock=clock)


async def test_new_known_bound_and_a_browser_update(
    registry: DeviceRegistry, assessor: DeviceAssessor, clock: Clock
) -> None:
    laptop = browser()
    first = await assessor.assess(seen_by(laptop, ALICE), region="CN")
    assert (first.trust, first.known, first.reasons) == (TrustLevel.NEW, False, ("device:new",))
    again = await assessor.assess(seen_by(laptop, ALICE), region="CN")
    assert (again.trust, again.known, again.device_id) == (TrustLevel.KNOWN, True, first.device_id)

    await registry.bind(ALICE, again, actor=Actor("customer", ALICE), acr=ACR_MFA, name="laptop")
    bound = await assessor.assess(seen_by(laptop, ALICE), region="CN")
    assert (bound.trust, bound.bound_to_subject, bound.reasons) == (
        TrustLevel.BOUND,
        True,
        ("binding:bound",),
    )
    # Three months of updates later: the same device, not a new one.
    updated = replace(laptop, major=laptop.major + 6, os_version="26.0.0")
    clock.now += 90 * 86400
    later = await assessor.assess(seen_by(updated, ALICE), region="CN")
    assert (later.trust, later.device_id) == (TrustLevel.BOUND, first.device_id)
    # A different machine is a different device.
    other = await assessor.assess(seen_by(browser(seed=99), ALICE), region="CN")
    assert other.trust is TrustLevel.NEW and other.device_id != first.device_id
    # The drifted fingerprint became the reference; the original still matches too.
    assert (await assessor.assess(seen_by(laptop, ALICE))).device_id == first.device_id


async def test_revocation_applies_to_the_next_request_here_and_after_sync_elsewhere(
    fresh_database: DatabaseURL, clock: Clock
) -> None:
    url, schema = fresh_database
    here_db = await open_registry(url, DeviceConfig(), schema=schema)
    there_db = await open_registry(url, DeviceConfig(sync_seconds=0.05), schema=schema)
    here = DeviceAssessor(here_db, clock=clock)
    there = DeviceAssessor(there_db, DeviceConfig(sync_seconds=0.05))
    try:
        laptop = browser()
        seen = await here.assess(seen_by(laptop, ALICE))
        await here_db.bind(ALICE, seen, actor=Actor("customer", ALICE), acr=ACR_MFA, name="pc")
        assert (await there.assess(seen_by(laptop, ALICE))).trust is TrustLevel.BOUND  # cached
        await here_db.revoke(ALICE, seen.device_id or "", actor=Actor("staff", "s-1"))
        revoked = await here.assess(seen_by(laptop, ALICE))
        assert (revoked.trust, revoked.reasons) == (TrustLevel.SUSPICIOUS, ("binding:revoked",))
        await there.start()  # the other process's sync loop reads the audit trail
        for _ in range(100):
            verdict = await there.assess(seen_by(laptop, ALICE))
            if verdict.trust is TrustLevel.SUSPICIOUS:
                break
            await asyncio.sleep(0.02)
        assert verdict.reasons == ("binding:revoked",)
    finally:
        await there.close()
        await here_db.close()
        await there_db.close()


async def test_device_bound_key(registry: DeviceRegistry, assessor: DeviceAssessor) -> None:
    app = synthetic.random_device(random.Random(3), "android-app")
    enrol = await assessor.assess(seen_by(app, ALICE, key_thumbprint=KEY))
    assert (enrol.device_id, enrol.trust) == (f"jkt:{KEY}", TrustLevel.NEW)
    await registry.bind(ALICE, enrol, actor=Actor("customer", ALICE), acr=ACR_MFA, name="phone")
    proven = await assessor.assess(seen_by(app, ALICE, key_thumbprint=KEY))
    assert (proven.trust, proven.bound_to_subject, proven.reasons) == (
        TrustLevel.BOUND_WITH_KEY,
        True,
        ("key:bound",),
    )
    # The same phone's signals without the key proof: lifted and replayed elsewhere.
    replay = await assessor.assess(seen_by(app, ALICE))
    assert replay.trust is TrustLevel.SUSPICIOUS and "key:proof_missing" in replay.anomalies
    assert not replay.bound_to_subject
    # The key with another phone's signals.
    other = synthetic.random_device(random.Random(4), "android-app")
    odd = await assessor.assess(seen_by(other, ALICE, key_thumbprint=KEY))
    assert odd.trust is TrustLevel.SUSPICIOUS and "key:signals_mismatch" in odd.anomalies
    # An app update and a new SIM keep the binding; the SIM change is reported.
    swapped = synthetic.sim_swap(replace(app, major=app.major + 1), random.Random(5))
    after = await assessor.assess(seen_by(swapped, ALICE, key_thumbprint=KEY))
    assert (after.trust, after.anomalies) == (TrustLevel.BOUND_WITH_KEY, ("sim:changed",))
    again = await assessor.assess(seen_by(swapped, ALICE, key_thumbprint=KEY))
    assert again.anomalies == ("sim:changed",)  # for sim_change_window, then it fades
    # A key unknown to this subject is a new device, whoever else bound it.
    assert (await assessor.assess(seen_by(app, BOB, key_thumbprint=KEY))).trust is TrustLevel.NEW


async def test_sim_change_fades_after_its_window(assessor: DeviceAssessor, clock: Clock) -> None:
    app = synthetic.random_device(random.Random(6), "ios-app")
    await assessor.assess(seen_by(app, ALICE))
    swapped = synthetic.sim_swap(app, random.Random(7))
    assert "sim:changed" in (await assessor.assess(seen_by(swapped, ALICE))).anomalies
    clock.now += assessor.config.sim_change_window + 1
    assert "sim:changed" not in (await assessor.assess(seen_by(swapped, ALICE))).anomalies


async def test_device_farm_is_flagged_even_across_reinstalls(
    assessor: DeviceAssessor,
) -> None:
    rng = random.Random(8)
    farm = synthetic.device_farm(rng)
    verdicts = []
    for i in range(6):
        verdicts.append(await assessor.assess(seen_by(farm, f"u-mule-{i}")))
        farm = synthetic.reinstall(farm, rng)  # a clean install for every account
    flagged = ["graph:shared_device" in v.anomalies for v in verdicts]
    assert flagged == [False, False, False, True, True, True]  # farm_subjects = 4
    assert all(v.trust is TrustLevel.SUSPICIOUS for v in verdicts[3:])


async def test_a_subject_hopping_across_new_devices(
    registry: DeviceRegistry, assessor: DeviceAssessor, clock: Clock
) -> None:
    home = await assessor.assess(seen_by(browser(20), ALICE))
    await registry.bind(ALICE, home, actor=Actor("customer", ALICE), acr=ACR_MFA, name="home")
    verdicts = [await assessor.assess(seen_by(browser(21 + i), ALICE)) for i in range(4)]
    assert ["graph:device_hopping" in v.anomalies for v in verdicts] == [False, False, True, True]
    assert verdicts[-1].trust is TrustLevel.SUSPICIOUS
    # The owner's bound device still works while the account is being hopped.
    mine = await assessor.assess(seen_by(browser(20), ALICE))
    assert (mine.trust, "graph:device_hopping" in mine.anomalies) == (TrustLevel.BOUND, True)
    clock.now += assessor.config.hop_window + assessor.config.cache_ttl + 1
    assert (
        "graph:device_hopping" not in (await assessor.assess(seen_by(browser(21), ALICE))).anomalies
    )


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda rng: synthetic.headless_browser(rng),
         {"automation:webdriver", "automation:headless"}),
        (lambda rng: synthetic.headless_browser(rng, stealth=True), {"hints:ua_mismatch"}),
        (lambda rng: synthetic.scripted_client(browser(30), rng), {"tls:scripting_client"}),
        (lambda rng: synthetic.scripted_client(browser(31, "ios-safari"), rng, "go"),
         {"tls:ua_mismatch"}),
        (lambda rng: synthetic.emulator(rng), {"integrity:emulator"}),
        (lambda rng: synthetic.emulator(rng, masked=True), {"integrity:emulator"}),
        (lambda rng: synthetic.rooted_phone(rng), {"integrity:rooted", "integrity:hooked"}),
        (lambda rng: synthetic.jailbroken_phone(rng), {"integrity:jailbroken"}),
    ],
)  # fmt: skip
async def test_attack_devices_are_suspicious(
    assessor: DeviceAssessor, make: object, expected: set[str]
) -> None:
    device = make(random.Random(40))  # type: ignore[operator]
    verdict = await assessor.assess(seen_by(device, ALICE), region="CN")
    assert verdict.trust is TrustLevel.SUSPICIOUS, verdict
    assert expected <= set(verdict.anomalies), verdict.anomalies


async def test_time_zone_mismatch_is_reported_not_held_against(assessor: DeviceAssessor) -> None:
    verdict = await assessor.assess(seen_by(browser(), ALICE), region="US")
    assert (verdict.trust, verdict.anomalies) == (TrustLevel.NEW, ("tz:region_mismatch",))


BAD_PAYLOADS = [
    (b"{" + b" " * 20_000 + b"}", "too_large"),
    (b'{"kind": "web", "ua": "\xc3\x28"}', "utf8"),
    (b"{nope", "json"),
    (encode(web(screen={"w": "wide", "h": 1})), "field:screen.w"),
    (b'{"a":' * 50 + b"1" + b"}" * 50, "too_deep"),
    (encode({k: v for k, v in web().items() if k != "collector_version"}), "collector_version"),
    (encode(phone(integrity={"rooted": "no"})), "field:integrity.rooted"),
    (b'{"kind": "web", "kind": "web"}', "duplicate_key"),
    (b'{"kind": "web", "ua": "\\udc00"}', "surrogate"),
    (b"[]", "not_object"),
]


@pytest.mark.parametrize(("raw", "why"), BAD_PAYLOADS)
async def test_bad_payloads_are_suspicious_with_a_reason(
    assessor: DeviceAssessor, raw: bytes, why: str
) -> None:
    for subject in (ALICE, None):
        obs = DeviceObservation(subject, "198.51.100.9", signals=raw, user_agent=CHROME_UA)
        verdict = await assessor.assess(obs)
        assert verdict.trust is TrustLevel.SUSPICIOUS
        assert verdict.reasons == (f"payload:invalid:{why}",)
        assert verdict.device_id is None


async def test_never_raises_when_the_registry_is_gone(
    registry: DeviceRegistry, assessor: DeviceAssessor
) -> None:
    laptop = browser()
    warm = await assessor.assess(seen_by(laptop, ALICE))
    await assessor.assess(seen_by(laptop, ALICE))
    await registry.close()
    # The hot path needs no database: a cached subject and fingerprint still answer.
    cached = await assessor.assess(seen_by(laptop, ALICE))
    assert (cached.trust, cached.device_id) == (TrustLevel.KNOWN, warm.device_id)
    # Anything needing the database fails closed, with a reason.
    for obs in (seen_by(browser(2), ALICE), seen_by(laptop, BOB)):
        verdict = await assessor.assess(obs)
        assert (verdict.trust, verdict.reasons) == (TrustLevel.SUSPICIOUS, ("assessor:error",))


async def test_anonymous_and_signal_less_requests(assessor: DeviceAssessor) -> None:
    anonymous = await assessor.assess(seen_by(browser(), None), region="CN")
    assert (anonymous.trust, anonymous.reasons) == (TrustLevel.NEW, ("subject:anonymous",))
    assert anonymous.device_id is not None and anonymous.device_id.startswith("fp:")
    bare = DeviceObservation(
        ALICE, "198.51.100.9", user_agent=CHROME_UA, client_hints=CHROME_HINTS, ja4=CHROME_JA4
    )
    verdict = await assessor.assess(bare)
    assert (verdict.trust, verdict.device_id, verdict.reasons) == (
        TrustLevel.NEW,
        None,
        ("signals:absent",),
    )
    scripted = replace(
        bare, user_agent=CHROME_UA, ja4="t13d1812h1_85036bcba153_b26ce05bbdd6", client_hints={}
    )
    assert (await assessor.assess(scripted)).trust is TrustLevel.SUSPICIOUS


async def test_caches_are_bounded(registry: DeviceRegistry) -> None:
    assessor = DeviceAssessor(registry, DeviceConfig(cache_subjects=2, payload_cache=3))
    for i in range(6):
        await assessor.assess(seen_by(browser(50 + i), f"u-{i}"))
    assert len(assessor._subjects) == 2 and len(assessor._payloads) == 3
    policy = (await assessor.assess(seen_by(browser(50), "u-0"))).to_policy_input()
    assert policy == {
        "id": policy["id"],
        "known": True,
        "bound_to_subject": False,
        "trust": "known",
        "anomalies": [],
    }
    json.dumps(policy)


async def test_other_processes_sightings_reach_the_graph_in_the_background(
    fresh_database: DatabaseURL, clock: Clock
) -> None:
    """A process counts its own sightings at once and other processes' from the registry,
    read in the background (never on the request path): the first request of a device
    this process has not seen counts only what it knows, the following ones all."""
    url, schema = fresh_database
    here_db = await open_registry(url, DeviceConfig(), schema=schema)
    there_db = await open_registry(url, DeviceConfig(), schema=schema)
    here = DeviceAssessor(here_db, clock=clock)
    there = DeviceAssessor(there_db, clock=clock)
    try:
        farm = synthetic.device_farm(random.Random(9))
        for i in range(3):
            await here.assess(seen_by(farm, f"u-mule-{i}"))
        await here_db.flush()
        first = await there.assess(seen_by(farm, "u-mule-3"))
        assert "graph:shared_device" not in first.anomalies
        for _ in range(100):  # the refresh lands within a database read
            await asyncio.sleep(0.01)
            again = await there.assess(seen_by(farm, "u-mule-3"))
            if "graph:shared_device" in again.anomalies:
                break
        assert "graph:shared_device" in again.anomalies and again.trust is TrustLevel.SUSPICIOUS
    finally:
        await here.close()
        await there.close()
        await here_db.close()
        await there_db.close()


async def test_a_stale_subject_is_reloaded_in_the_background(
    fresh_database: DatabaseURL, clock: Clock
) -> None:
    """After `cache_ttl` a request answers from the cached devices and a background
    reload picks up what changed elsewhere (here: a binding whose audit row this
    process never synced)."""
    url, schema = fresh_database
    here_db = await open_registry(url, DeviceConfig(), schema=schema)
    there_db = await open_registry(url, DeviceConfig(), schema=schema)
    here = DeviceAssessor(here_db, clock=clock)
    try:
        laptop = browser()
        seen = await here.assess(seen_by(laptop, ALICE))
        await here_db.flush()
        await there_db.bind(ALICE, seen, actor=Actor("customer", ALICE), acr=ACR_MFA, name="pc")
        assert (await here.assess(seen_by(laptop, ALICE))).trust is TrustLevel.KNOWN  # cached
        clock.now += here.config.cache_ttl + 1
        stale = await here.assess(seen_by(laptop, ALICE))
        assert stale.trust is TrustLevel.KNOWN  # answered from memory; reload under way
        for _ in range(100):
            await asyncio.sleep(0.01)
            fresh = await here.assess(seen_by(laptop, ALICE))
            if fresh.trust is TrustLevel.BOUND:
                break
        assert fresh.trust is TrustLevel.BOUND
    finally:
        await here.close()
        await here_db.close()
        await there_db.close()
