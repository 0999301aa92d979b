"""The periodic pull that carries revocations between processes.

Every process holding a `TokenVerifier` (the authentication service, each edge
worker) runs `keep_revocations_synced`: every `interval` seconds it pulls the
revocations other processes wrote to the shared store since its last pull
(`TokenVerifier.sync_revocations`), so a cached token stops passing there
within one interval. A failed pull is logged and retried at the next tick;
`TokenVerifier.last_sync` shows how stale the process's view is (the edge
agent refuses authenticated requests when it is too stale).
"""

from __future__ import annotations

import asyncio
import logging

from authn.tokens import TokenVerifier

__all__ = ["keep_revocations_synced"]

log = logging.getLogger("ztgate.authn.revocations")


async def keep_revocations_synced(verifier: TokenVerifier, interval: float) -> None:
    """Pull revocations every `interval` seconds until cancelled."""
    if interval <= 0:
        raise ValueError("interval must be positive")
    while True:
        await asyncio.sleep(interval)
        try:
            await verifier.sync_revocations()
        except Exception as exc:  # the store is down: keep trying, say so
            log.warning(
                "revocation sync failed",
                extra={"event": "authn.revocation_sync_failed", "error_type": type(exc).__name__},
            )
