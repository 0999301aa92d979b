"""Nonce replay protection for message signatures (RFC 9421 §7.2.2).

A verifier that requires ``nonce`` must remember every nonce it accepted
for as long as a signature carrying it could still be accepted (the
``created`` window), or the same signed request could be sent twice — a
payment initiated twice. `ReplayStore` is what the verifier needs;
`AuthnStoreReplay` keeps the nonces in the authn store's ``nonces`` table,
the same single-use table that already records DPoP proof ``jti`` values
(`authn.dpop`) and client-assertion ``jti`` values, so that every edge worker
sharing the store refuses a replay, across restarts, with no second table.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Final, Protocol

from authn.store.base import Store

__all__ = ["SCOPE", "AuthnStoreReplay", "ReplayStore"]

SCOPE: Final = "httpsig"
"""The ``nonces.scope`` of signature nonces (DPoP uses ``dpop:<jkt>``)."""


class ReplayStore(Protocol):
    async def remember(self, nonce_key: str, expires_at: float) -> bool:
        """Record `nonce_key` until `expires_at` (POSIX seconds).

        True the first time; False while an unexpired record exists (a replay).
        Must be atomic across every verifier sharing the store.
        """
        ...


class AuthnStoreReplay:
    """`ReplayStore` over `authn.store.Store.use_nonce` (atomic INSERT … ON CONFLICT)."""

    def __init__(self, store: Store, *, clock: Callable[[], float] = time.time) -> None:
        self._store = store
        self._clock = clock

    async def remember(self, nonce_key: str, expires_at: float) -> bool:
        return await self._store.use_nonce(SCOPE, nonce_key, expires_at, self._clock())
