"""Binding, listing, renaming and revoking devices, with the audit trail — on both databases."""

from __future__ import annotations

import asyncio
import random
from dataclasses import replace

import pytest

from device_fingerprint import synthetic
from device_fingerprint.assessment import DeviceAssessment, TrustLevel
from device_fingerprint.assessor import DeviceAssessor
from device_fingerprint.config import ACR_MFA, ACR_PASSKEY, ACR_PWD, DeviceConfig
from device_fingerprint.registry import Actor, DeviceRegistry, RegistryError, open_registry
from tests.databases import DatabaseURL

ALICE = "u-alice"
CUSTOMER = Actor("customer", ALICE)
STAFF = Actor("staff", "staff-0042")


async def seen(assessor: DeviceAssessor, subject: str, seed: int) -> DeviceAssessment:
    """Assess a fresh synthetic desktop browser for `subject` (records it as known)."""
    device = synthetic.random_device(random.Random(seed), "windows-chrome")
    result = await assessor.assess(synthetic.observe(device, subject), region=device.region)
    assert result.trust is TrustLevel.NEW and result.device_id is not None, result
    return result


async def test_bind_list_rename_revoke_with_audit(registry: DeviceRegistry) -> None:
    assessor = DeviceAssessor(registry)
    first = await seen(assessor, ALICE, 1)
    device = await registry.bind(
        ALICE, first, actor=CUSTOMER, acr=ACR_MFA, amr=["pwd", "otp", "mfa"], name="Work laptop"
    )
    assert (device.state, device.name, device.key_bound) == ("bound", "Work laptop", False)
    assert device.bound_at is not None and device.label == "Chrome on Windows"

    await registry.rename(ALICE, device.device_id, "  Home PC ", actor=CUSTOMER)
    [listed] = await registry.list_devices(ALICE)
    assert (listed.device_id, listed.name, listed.state) == (device.device_id, "Home PC", "bound")

    assert await registry.revoke(ALICE, device.device_id, actor=STAFF, reason="card fraud case 81")
    assert not await registry.revoke(ALICE, device.device_id, actor=STAFF)  # already revoked
    [listed] = await registry.list_devices(ALICE)
    assert listed.state == "revoked" and listed.revoked_at is not None

    trail = await registry.audit(ALICE)
    assert [(e.action, e.actor, e.acr) for e in trail] == [
        ("bind", CUSTOMER, ACR_MFA),
        ("rename", CUSTOMER, None),
        ("revoke", STAFF, None),
    ]
    assert trail[0].detail == {"name": "Work laptop", "amr": ["mfa", "otp", "pwd"]}
    assert trail[2].detail == {"reason": "card fraud case 81"}
    assert all(e.device_id == device.device_id and e.at > 0 for e in trail)
    assert await registry.audit("u-nobody") == []


async def test_rebinding_a_revoked_device_needs_a_strong_factor_again(
    registry: DeviceRegistry,
) -> None:
    assessor = DeviceAssessor(registry)
    first = await seen(assessor, ALICE, 2)
    await registry.bind(ALICE, first, actor=CUSTOMER, acr=ACR_MFA, name="phone")
    await registry.revoke(ALICE, first.device_id or "", actor=CUSTOMER)
    with pytest.raises(RegistryError, match="acr:insufficient"):
        await registry.bind(ALICE, first, actor=CUSTOMER, acr=ACR_PWD, name="phone")
    device = await registry.bind(ALICE, first, actor=CUSTOMER, acr=ACR_PASSKEY, name="phone")
    assert device.state == "bound" and device.revoked_at is None


@pytest.mark.parametrize(
    ("kwargs", "code"),
    [
        ({"acr": ACR_PWD}, "acr:insufficient"),
        ({"acr": None}, "acr:insufficient"),
        ({"acr": "urn:other:acr:gold"}, "acr:insufficient"),
        ({"actor": STAFF}, "actor:not_allowed"),
        ({"actor": Actor("customer", "u-mallory")}, "actor:not_subject"),
        ({"name": ""}, "name:invalid"),
        ({"name": "   "}, "name:invalid"),
        ({"name": "x" * 65}, "name:invalid"),
        ({"name": "bad\x00name"}, "name:invalid"),
        ({"name": "rtl\u202eoverride"}, "name:invalid"),
    ],
)
async def test_binding_refusals(
    registry: DeviceRegistry, kwargs: dict[str, object], code: str
) -> None:
    assessor = DeviceAssessor(registry)
    first = await seen(assessor, ALICE, 3)
    args: dict[str, object] = {"actor": CUSTOMER, "acr": ACR_MFA, "name": "laptop", **kwargs}
    with pytest.raises(RegistryError) as info:
        await registry.bind(ALICE, first, **args)  # type: ignore[arg-type]
    assert info.value.code == code
    assert [d.state for d in await registry.list_devices(ALICE)] == ["known"]
    assert await registry.audit(ALICE) == []


async def test_binding_needs_a_known_unsuspicious_device(registry: DeviceRegistry) -> None:
    assessor = DeviceAssessor(registry)
    first = await seen(assessor, ALICE, 4)

    async def refused(assessment: DeviceAssessment) -> str:
        with pytest.raises(RegistryError) as info:
            await registry.bind(ALICE, assessment, actor=CUSTOMER, acr=ACR_MFA, name="x")
        return info.value.code

    assert await refused(replace(first, trust=TrustLevel.SUSPICIOUS)) == "device:suspicious"
    assert await refused(replace(first, device_id=None)) == "device:unknown"
    assert await refused(replace(first, device_id="fp:" + "0" * 32)) == "device:unknown"
    await registry.bind(ALICE, first, actor=CUSTOMER, acr=ACR_MFA, name="x")
    assert await refused(first) == "device:already_bound"


async def test_staff_and_customers_manage_only_what_they_may(registry: DeviceRegistry) -> None:
    assessor = DeviceAssessor(registry)
    first = await seen(assessor, ALICE, 5)
    device_id = first.device_id or ""
    mallory = Actor("customer", "u-mallory")
    for call in (
        registry.rename(ALICE, device_id, "mine now", actor=mallory),
        registry.revoke(ALICE, device_id, actor=mallory),
    ):
        with pytest.raises(RegistryError, match="actor:not_subject"):
            await call
    with pytest.raises(RegistryError, match="device:unknown"):
        await registry.revoke(ALICE, "fp:" + "1" * 32, actor=STAFF)
    with pytest.raises(RegistryError, match="device:unknown"):
        await registry.rename(ALICE, "fp:" + "1" * 32, "x", actor=STAFF)
    await registry.rename(ALICE, device_id, "Branch-verified laptop", actor=STAFF)
    # A customer may disown a device that was only ever "known".
    assert await registry.revoke(ALICE, device_id, actor=CUSTOMER, reason="not mine")


async def test_bound_device_limit_holds_under_concurrency(fresh_database: DatabaseURL) -> None:
    url, schema = fresh_database
    config = DeviceConfig(max_bound_devices=2, hop_new_devices=10)  # five new devices today
    registry = await open_registry(url, config, schema=schema)
    try:
        assessor = DeviceAssessor(registry, config)
        found = [await seen(assessor, ALICE, 10 + i) for i in range(5)]
        results = await asyncio.gather(
            *(
                registry.bind(ALICE, a, actor=CUSTOMER, acr=ACR_MFA, name=f"device {i}")
                for i, a in enumerate(found)
            ),
            return_exceptions=True,
        )
        refused = [r for r in results if isinstance(r, RegistryError)]
        assert len(refused) == 3 and {r.code for r in refused} == {"limit:bound_devices"}
        states = [d.state for d in await registry.list_devices(ALICE)]
        assert sorted(states) == ["bound", "bound", "known", "known", "known"]
        assert len(await registry.audit(ALICE)) == 2
    finally:
        await registry.close()


async def test_registry_survives_reopening(fresh_database: DatabaseURL) -> None:
    url, schema = fresh_database
    registry = await open_registry(url, DeviceConfig(), schema=schema)
    first = await seen(DeviceAssessor(registry), ALICE, 6)
    await registry.bind(ALICE, first, actor=CUSTOMER, acr=ACR_MFA, name="laptop")
    await registry.close()
    again = await open_registry(url, DeviceConfig(), schema=schema)
    try:
        [device] = await again.list_devices(ALICE)
        assert (device.device_id, device.state) == (first.device_id, "bound")
    finally:
        await again.close()


async def test_assessor_writes_are_behind_but_never_lost_on_close(
    fresh_database: DatabaseURL,
) -> None:
    """First sightings are queued (no write on the request path), visible at once to
    this process's reads, to another process after the flush, and flushed on close."""
    url, schema = fresh_database
    config = DeviceConfig(write_behind_seconds=60.0)  # no timed flush during the test
    here = await open_registry(url, config, schema=schema)
    there = await open_registry(url, config, schema=schema)
    try:
        first = await seen(DeviceAssessor(here, config), ALICE, 21)
        assert here.queued > 0
        assert await there.list_devices(ALICE) == []  # not written yet
        [mine] = await here.list_devices(ALICE)  # this process reads its own writes
        assert (mine.device_id, mine.state) == (first.device_id, "known")
        assert here.queued == 0
        [theirs] = await there.list_devices(ALICE)
        assert theirs.device_id == first.device_id

        second = await seen(DeviceAssessor(here, config), "u-bob", 22)
        assert here.queued > 0
        await here.close()
        [bobs] = await there.list_devices("u-bob")
        assert bobs.device_id == second.device_id
    finally:
        await here.close()
        await there.close()


async def test_write_behind_flushes_on_its_own(fresh_database: DatabaseURL) -> None:
    url, schema = fresh_database
    config = DeviceConfig(write_behind_seconds=0.05)
    here = await open_registry(url, config, schema=schema)
    there = await open_registry(url, config, schema=schema)
    try:
        first = await seen(DeviceAssessor(here, config), ALICE, 23)
        deadline = asyncio.get_running_loop().time() + 10
        while not await there.list_devices(ALICE):
            assert asyncio.get_running_loop().time() < deadline, "never flushed"
            await asyncio.sleep(0.02)
        [theirs] = await there.list_devices(ALICE)
        assert theirs.device_id == first.device_id and here.queued == 0
    finally:
        await here.close()
        await there.close()


async def test_a_queue_full_of_writes_is_flushed_before_it_grows(
    fresh_database: DatabaseURL,
) -> None:
    url, schema = fresh_database
    config = DeviceConfig(write_behind_seconds=60.0, write_behind_max=2, hop_new_devices=100)
    here = await open_registry(url, config, schema=schema)
    there = await open_registry(url, config, schema=schema)
    try:
        assessor = DeviceAssessor(here, config)
        for i in range(6):
            await seen(assessor, ALICE, 30 + i)
            assert here.queued < 2 * config.write_behind_max + 2  # bounded, whatever the loop
        await asyncio.sleep(0.1)  # the woken writer's turn
        assert len(await there.list_devices(ALICE)) >= 4
    finally:
        await here.close()
        await there.close()


async def test_a_batch_the_database_refuses_does_not_block_later_writes(
    registry: DeviceRegistry,
) -> None:
    first = await seen(DeviceAssessor(registry), ALICE, 41)
    [device] = await registry.list_devices(ALICE)
    await registry.add_device(replace(device, subject="u-bob", kind="bogus"))  # CHECK fails
    await registry.flush()  # refused and dropped, not raised forever
    assert registry.queued == 0 and await registry.list_devices("u-bob") == []
    await registry.touch(ALICE, device.device_id, device.last_seen + 60)
    [after] = await registry.list_devices(ALICE)
    assert (after.device_id, after.last_seen) == (first.device_id, device.last_seen + 60)
