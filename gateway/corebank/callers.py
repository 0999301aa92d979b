"""Who is calling the core: the identity the edge vouches for, and how the core learns it.

The edge removes every client-supplied ``x-ztgate-*`` header and re-issues its
own: ``x-ztgate-subject`` (a customer id, a partner's client id or a staff id)
together with ``x-ztgate-assertion``, a signed identity assertion. The core
never trusts the subject header alone in production; it calls an injected
`Authenticator` — ``async (request) -> Caller | None`` — so the verifier of
signed assertions plugs in without touching a handler:

* `trust_identity_headers` believes the headers as they stand. It exists for
  tests and loopback development only, where nothing but the test (or a local
  edge) can reach the port; `start_corebank` refuses it on a non-loopback bind.
* `verify_signed_assertions` (the default of ``python -m gateway.corebank`` and
  ``ztgate up``) verifies ``x-ztgate-assertion`` (`gateway.assertion`) for the
  request being served — signature by a trusted edge key, lifetime, method and
  path — and builds the `Caller` from its claims alone (``sub``, ``kind``); the
  unsigned ``x-ztgate-subject``/``-subject-kind`` headers are ignored. A
  partner's consent comes from the assertion's ``consent`` claim (the edge
  looked it up and the policy judged it); without one, every account is
  refused (fail closed).

Partners act under a customer's consent. The consent itself (its grant, expiry
and revocation) is the edge's business; the core only receives what it covers,
``x-ztgate-consent: id=<consent id>; customer=<customer id>; accounts=<id>,<id>``,
and refuses any account the consent does not list (defence in depth).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Final, Literal

from aiohttp import web

from gateway.assertion import AssertionKeys, InvalidAssertion, verify_assertion

CallerKind = Literal["customer", "partner", "staff"]
KINDS: Final[frozenset[str]] = frozenset({"customer", "partner", "staff"})

SUBJECT_HEADER: Final = "x-ztgate-subject"
KIND_HEADER: Final = "x-ztgate-subject-kind"
ASSERTION_HEADER: Final = "x-ztgate-assertion"
CONSENT_HEADER: Final = "x-ztgate-consent"

MAX_CONSENT_ACCOUNTS: Final = 50
_IDENT: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")
_CONSENT: Final = re.compile(
    r"id=(?P<id>[^;\s]+);\s*customer=(?P<customer>[^;\s]+);\s*accounts=(?P<accounts>[^;\s]+)"
)


@dataclass(frozen=True)
class Consent:
    """What a partner may touch: one customer's listed accounts."""

    consent_id: str
    customer_id: str
    account_ids: frozenset[str]


@dataclass(frozen=True)
class Caller:
    subject: str
    kind: CallerKind
    consent: Consent | None = None  # partners only


Authenticator = Callable[[web.Request], Awaitable[Caller | None]]


def valid_identifier(value: str) -> bool:
    """Subjects, consent and account ids: short, printable, no separators."""
    return _IDENT.fullmatch(value) is not None


def parse_consent(value: str) -> Consent | None:
    """The consent header's value, or None if it is malformed in any way."""
    match = _CONSENT.fullmatch(value.strip())
    if match is None:
        return None
    accounts = match["accounts"].split(",")
    identifiers = [match["id"], match["customer"], *accounts]
    if len(accounts) > MAX_CONSENT_ACCOUNTS or not all(map(valid_identifier, identifiers)):
        return None
    return Consent(match["id"], match["customer"], frozenset(accounts))


async def trust_identity_headers(request: web.Request) -> Caller | None:
    """The caller named by the edge's headers, unverified (tests and loopback only).

    ``x-ztgate-subject-kind`` says which kind of subject it is; a partner without a
    well-formed consent header is still a partner, but with no consent.
    """
    subject = request.headers.get(SUBJECT_HEADER, "")
    kind = request.headers.get(KIND_HEADER, "")
    if not valid_identifier(subject) or kind not in KINDS:
        return None
    if kind == "partner":
        consent = parse_consent(request.headers.get(CONSENT_HEADER, ""))
        return Caller(subject, "partner", consent)
    return Caller(subject, "customer" if kind == "customer" else "staff")


def verify_signed_assertions(keys: AssertionKeys, *, leeway: float = 5.0) -> Authenticator:
    """An `Authenticator` that trusts only a valid ``x-ztgate-assertion`` signed with
    `keys` and bound to this request's method and path (see the module docstring)."""

    async def authenticate(request: web.Request) -> Caller | None:
        token = request.headers.get(ASSERTION_HEADER)
        if token is None:
            return None
        try:
            claims = verify_assertion(
                token,
                expected_method=request.method,
                expected_path=request.raw_path,
                keys=keys,
                leeway=leeway,
            )
        except InvalidAssertion:
            return None
        subject = claims.subject
        if subject is None or not valid_identifier(subject) or claims.kind not in KINDS:
            return None  # anonymous, or a kind the core does not serve
        if claims.kind == "partner":
            asserted = claims.consent
            consent = None
            if asserted is not None:
                ids = [asserted.consent_id, asserted.customer, *asserted.accounts]
                if all(map(valid_identifier, ids)):
                    consent = Consent(
                        asserted.consent_id, asserted.customer, frozenset(asserted.accounts)
                    )
            return Caller(subject, "partner", consent)
        return Caller(subject, "customer" if claims.kind == "customer" else "staff")

    return authenticate
