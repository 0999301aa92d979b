"""The periodic revocation pull every process runs (authn.revocation_sync)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

import pytest

from authn.revocation_sync import keep_revocations_synced
from authn.store import Store
from tests.authn.conftest import StoreURL
from tests.authn.token_harness import make_env, refused, reopen


async def test_another_process_learns_a_revocation_within_an_interval(
    store: Store, store_url: StoreURL
) -> None:
    env = make_env(store)
    token = await env.token()
    other_store = await reopen(store_url)
    other = env.other_verifier(other_store)
    await other.verify(token)  # cached there
    task = asyncio.create_task(keep_revocations_synced(other, 0.05))
    try:
        await env.issuer.revoke(token)
        deadline = time.monotonic() + 5
        while not other.revoked_jtis:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.02)
        assert await refused(other.verify(token)) == "token revoked"
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await other_store.close()


async def test_a_failing_pull_is_logged_and_retried(
    store: Store, store_url: StoreURL, caplog: pytest.LogCaptureFixture
) -> None:
    env = make_env(store)
    other_store = await reopen(store_url)
    other = env.other_verifier(other_store)
    await other.sync_revocations()
    synced = other.last_sync
    await other_store.close()  # every pull now fails
    task = asyncio.create_task(keep_revocations_synced(other, 0.02))
    with caplog.at_level(logging.WARNING, logger="ztgate.authn.revocations"):
        await asyncio.sleep(0.2)
    assert not task.done()  # still trying
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    failures = [
        r for r in caplog.records if getattr(r, "event", "") == "authn.revocation_sync_failed"
    ]
    assert len(failures) >= 2
    assert other.last_sync == synced  # staleness is visible to health checks and the edge


async def test_the_interval_must_be_positive(store: Store) -> None:
    with pytest.raises(ValueError, match="positive"):
        await keep_revocations_synced(make_env(store).verifier, 0)
