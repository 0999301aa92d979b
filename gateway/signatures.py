"""Step 1b of the pipeline on signed routes: the partner's RFC 9421 request signature.

Payment initiation (``signed`` routes in the gateway configuration) must be signed
by the calling partner (`authn.rfc9421`): over ``@method``, ``@target-uri``,
``content-digest`` (checked against the body, which Envoy sends with the check on
these routes only) and ``authorization``, with ``created`` and a single-use
``nonce`` (recorded in the authn store's nonce table, so a replay is refused on
every edge node), by a key in the JWKS the partner registered (SM2 or P-256). Only
partners sign: any other caller on a signed route is refused, and so is a partner
without registered keys (mTLS-only clients sign nothing).

A failure is ``401 invalid_signature`` with the reason ``signature:<code>``
(`authn.rfc9421.ErrorCode`); a malformed field is ``400``. docs/http-signatures.md
is what partners read.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from authn.rfc9421 import (
    AuthnStoreReplay,
    HTTPRequest,
    SignatureError,
    VerifiedSignature,
    verify_request,
)
from authn.store import Store
from gateway.context import RequestContext

__all__ = ["RequestSignatures", "SignatureRefused"]


class SignatureRefused(Exception):
    """Why a signed route's request is refused: HTTP status and reason."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class RequestSignatures:
    def __init__(self, store: Store, *, clock: Callable[[], float] | None = None) -> None:
        self._store = store
        self._replay = (
            AuthnStoreReplay(store) if clock is None else AuthnStoreReplay(store, clock=clock)
        )

    async def verify(
        self, ctx: RequestContext, client_id: str | None, now: float
    ) -> VerifiedSignature:
        if client_id is None:
            raise SignatureRefused(403, "signature:partner_only")
        client = await self._store.get_client(client_id)
        jwks: Any = json.loads(client.jwks) if client is not None else None
        if not isinstance(jwks, dict) or not jwks.get("keys"):
            raise SignatureRefused(403, "signature:no_registered_keys")
        headers = tuple((k, v) for k, v in ctx.headers.items() if not k.startswith(":"))
        request = HTTPRequest(ctx.method, ctx.target_uri, headers, ctx.body or b"")
        try:
            return await verify_request(request, jwks=jwks, replay_store=self._replay, now=now)
        except SignatureError as exc:
            raise SignatureRefused(exc.status, f"signature:{exc.code}") from None
