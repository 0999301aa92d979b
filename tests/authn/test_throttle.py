"""Login back-off: per account and per source, capped and decaying, never a permanent lock."""

from __future__ import annotations

import pytest

from authn import throttle
from authn.errors import AuthnError
from authn.passwords import PasswordPolicy, set_user_password, verify_user_password
from authn.store.base import Store
from authn.throttle import (
    ThrottlePolicy,
    account_bucket,
    check,
    record_failure,
    record_success,
    retry_after,
    source_bucket,
)

POLICY = ThrottlePolicy()
T0 = 1_700_000_000.0


def test_default_numbers() -> None:
    assert POLICY.account_threshold == 5
    assert POLICY.account_max_delay == 900
    assert POLICY.account_max_delay <= POLICY.account_window
    assert POLICY.source_max_delay <= POLICY.source_window
    with pytest.raises(ValueError):
        ThrottlePolicy(account_max_delay=2 * POLICY.account_window)
    with pytest.raises(ValueError):
        ThrottlePolicy(source_threshold=0)
    with pytest.raises(ValueError):
        ThrottlePolicy(account_base_delay=0)


def test_retry_after_formula() -> None:
    def ra(count: int, last: float, now: float) -> float:
        return retry_after(count, last, now, threshold=5, base=1.0, cap=900.0)

    assert ra(4, T0, T0) == 0
    assert ra(5, T0, T0) == 1
    assert ra(6, T0, T0) == 2
    assert ra(9, T0, T0 + 10) == 6
    assert ra(15, T0, T0) == 900
    assert ra(10**6, T0, T0) == 900  # no overflow, still capped
    assert ra(15, T0, T0 + 900) == 0
    assert ra(15, T0 + 5000, T0) == 900  # clock skew cannot extend it


def test_buckets() -> None:
    assert account_bucket("u-42") == "acct:u-42"
    long = account_bucket("x" * 10_000)
    assert long.startswith("acct:#") and len(long) < 80
    assert source_bucket("192.0.2.7") == "ip:192.0.2.7"
    assert source_bucket(" 192.0.2.7 ") == "ip:192.0.2.7"
    assert source_bucket("::ffff:192.0.2.7") == "ip:192.0.2.7"
    same = {
        source_bucket(a)
        for a in (
            "2001:db8:1:2::1",
            "2001:db8:1:2:ffff:ffff:ffff:ffff",
            "2001:DB8:1:2:abcd::9",
            "[2001:db8:1:2::77]",
            "2001:db8:1:2::5%eth0",
        )
    }
    assert same == {"ip:2001:db8:1:2::/64"}
    assert source_bucket("2001:db8:1:3::1") == "ip:2001:db8:1:3::/64"
    assert source_bucket("not an address") == source_bucket("") == "ip:invalid"


# --- store-backed --------------------------------------------------------------------


async def _retry_after(store: Store, account: str, source: str, now: float) -> int | None:
    """Retry-After seconds if throttled, else None."""
    try:
        await check(store, account_key=account, source=source, now=now, policy=POLICY)
    except AuthnError as exc:
        assert (exc.code, exc.status) == ("too_many_attempts", 429)
        return int(exc.headers["Retry-After"])
    return None


async def _fail(store: Store, account: str, source: str, now: float, n: int = 1) -> None:
    for _ in range(n):
        await record_failure(store, account_key=account, source=source, now=now, policy=POLICY)


async def test_n_failures_then_429(store: Store) -> None:
    await _fail(store, "u-a", "192.0.2.1", T0, 4)
    assert await _retry_after(store, "u-a", "192.0.2.1", T0) is None
    await _fail(store, "u-a", "192.0.2.1", T0)
    with pytest.raises(AuthnError) as exc:
        await check(store, account_key="u-a", source="192.0.2.1", now=T0, policy=POLICY)
    assert exc.value.status == 429 and exc.value.headers == {"Retry-After": "1"}
    # The account is throttled from every address, not just the failing one.
    assert await _retry_after(store, "u-a", "198.51.100.9", T0) == 1
    assert await _retry_after(store, "u-a", "198.51.100.9", T0 + 1) is None
    assert await _retry_after(store, "u-other", "192.0.2.1", T0) is None


async def test_backoff_doubles_and_is_capped(store: Store) -> None:
    now = T0
    await _fail(store, "u-b", "192.0.2.2", now, 5)
    seen = []
    for _ in range(14):
        wait = await _retry_after(store, "u-b", "192.0.2.2", now)
        assert wait is not None
        seen.append(wait)
        assert await _retry_after(store, "u-b", "192.0.2.2", now + wait - 0.5) == 1
        now += wait
        assert await _retry_after(store, "u-b", "192.0.2.2", now) is None
        await _fail(store, "u-b", "192.0.2.2", now)
    assert seen == [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 900, 900, 900, 900]


async def test_backoff_decays_after_the_window(store: Store) -> None:
    await _fail(store, "u-c", "192.0.2.3", T0, 8)
    assert await _retry_after(store, "u-c", "192.0.2.3", T0) == 8
    # Waiting out the delay allows one more try; the count is still high.
    assert await _retry_after(store, "u-c", "192.0.2.3", T0 + 8) is None
    await _fail(store, "u-c", "192.0.2.3", T0 + 8)
    assert await _retry_after(store, "u-c", "192.0.2.3", T0 + 8) == 16
    # Once the window has passed, the old failures are forgotten entirely.
    later = T0 + 8 + POLICY.account_window + 1
    count, _ = await store.failure_state(account_bucket("u-c"), later, POLICY.account_window)
    assert count == 0
    await _fail(store, "u-c", "192.0.2.3", later, 4)
    assert await _retry_after(store, "u-c", "192.0.2.3", later) is None


async def test_success_clears_account_but_not_source(store: Store) -> None:
    await _fail(store, "u-d", "192.0.2.4", T0, 5)
    assert await _retry_after(store, "u-d", "192.0.2.4", T0) == 1
    await record_success(store, account_key="u-d")
    assert await _retry_after(store, "u-d", "192.0.2.4", T0) is None
    count, _ = await store.failure_state(account_bucket("u-d"), T0, POLICY.account_window)
    assert count == 0
    count, _ = await store.failure_state(source_bucket("192.0.2.4"), T0, POLICY.source_window)
    assert count == 5


async def test_source_budget_across_many_accounts(store: Store) -> None:
    # Credential stuffing: one try per account, never tripping any account rule.
    for i in range(POLICY.source_threshold):
        assert await _retry_after(store, f"victim-{i}", "203.0.113.5", T0 + i) is None
        await _fail(store, f"victim-{i}", "203.0.113.5", T0 + i)
    last = T0 + POLICY.source_threshold - 1
    assert await _retry_after(store, "victim-new", "203.0.113.5", last) == 1
    assert await _retry_after(store, "victim-new", "203.0.113.6", last) is None
    # A success on the attacker's own account does not reset the address budget.
    await record_success(store, account_key="victim-0")
    assert await _retry_after(store, "victim-new", "203.0.113.5", last) == 1


async def test_ipv6_rotation_within_a_64_shares_one_budget(store: Store) -> None:
    for i in range(POLICY.source_threshold):
        await _fail(store, f"acct-{i}", f"2001:db8:aa:bb::{i + 1:x}", T0)
    assert await _retry_after(store, "acct-x", "2001:db8:aa:bb:1234:5678:9abc:def0", T0) == 1
    assert await _retry_after(store, "acct-x", "2001:db8:aa:bc::1", T0) is None


async def test_distributed_attack_causes_at_most_the_capped_delay(store: Store) -> None:
    now = T0
    for i in range(100):  # 100 addresses, 1 failure each, all at the same instant
        await _fail(store, "u-victim", f"10.0.{i}.1", now)
    wait = await _retry_after(store, "u-victim", "198.51.100.200", now)
    assert wait == POLICY.account_max_delay
    # Attacker keeps going, but only when allowed (refused attempts do not count).
    for _ in range(20):
        now += await _retry_after(store, "u-victim", "10.9.9.9", now) or 0
        await _fail(store, "u-victim", "10.9.9.9", now)
        wait = await _retry_after(store, "u-victim", "198.51.100.200", now)
        assert wait is not None and wait <= POLICY.account_max_delay
    # When the attacker stops, the victim is in again after at most the cap.
    assert await _retry_after(store, "u-victim", "198.51.100.200", now + 900) is None


async def test_correct_password_refused_during_backoff(store: Store) -> None:
    """The intended login flow: check, verify, record; a right password cannot skip the wait."""
    pw_policy = PasswordPolicy(iterations=1000)
    user = await store.create_user("throttle-erin", "Erin")
    await set_user_password(store, user.subject, "the right password", pw_policy)

    async def login(password: str, now: float) -> str:
        try:
            await throttle.check(
                store, account_key=user.subject, source="192.0.2.50", now=now, policy=POLICY
            )
        except AuthnError as exc:
            return exc.code
        if await verify_user_password(store, user, password, pw_policy):
            await record_success(store, account_key=user.subject)
            return "ok"
        await _fail(store, user.subject, "192.0.2.50", now)
        return "bad_password"

    assert [await login("guess", T0) for _ in range(5)] == ["bad_password"] * 5
    assert await login("the right password", T0) == "too_many_attempts"
    assert await login("the right password", T0 + 1) == "ok"
    assert [await login("guess", T0 + 2) for _ in range(5)] == ["bad_password"] * 5
