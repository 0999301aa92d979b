"""A sample core-banking service: the upstream that ztgate protects.

`ztgate up`, the integration tests and the benchmarks put it behind the edge so
that every request path ends at something bank-like: accounts, balances,
transactions, cards, customer profiles full of realistic Chinese personal data
(names, resident ID numbers, card numbers, mobile numbers, addresses — all
synthetic, all structurally valid), transfers with idempotency, customer-service
and open-banking partner views. It answers the way real core systems do — full
C2 identifiers, C3 card data on the card-detail endpoint, account numbers in
some error descriptions — so that the edge's masking (JR/T 0171-2020) has
something real to remove.

It is not part of the gateway's request path and nothing in `gateway` imports
it; it lives here because the gateway's tests and tools start it. See
docs/corebank.md.
"""

from __future__ import annotations

from gateway.corebank.callers import (
    Authenticator,
    Caller,
    Consent,
    trust_identity_headers,
    verify_signed_assertions,
)
from gateway.corebank.runner import RunningCorebank, start_corebank

__all__ = [
    "Authenticator",
    "Caller",
    "Consent",
    "RunningCorebank",
    "start_corebank",
    "trust_identity_headers",
    "verify_signed_assertions",
]
