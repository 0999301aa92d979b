"""Step 1 of the pipeline: who is calling.

The access token is verified by `authn.tokens.TokenVerifier` — the same
verifier, cache, revocation view and DPoP / RFC 8705 checks the
authentication service uses — exactly as its resource endpoints call it
(``Authorization: Bearer`` or ``DPoP`` with the ``DPoP`` proof header, RFC
9449 §7.1; the TLS client certificate's ``x5t#S256`` for certificate-bound
tokens, RFC 8705 §3.2). No ``Authorization`` header is an anonymous identity:
the policy decides whether the route is public.

A partner's token acting under an open-banking consent carries ``consent_id``;
the consent (`authn.consents`) is looked up on every such request — no cache —
so a revocation by the customer, the partner or the bank refuses the very next
request on every edge node. A consent that is missing or not the token's
client's becomes the policy input ``identity.consent`` with status
``unknown``, which the policy refuses.

The token says who; the store says what kind of user that is (``customer`` or
``staff``; client-credentials tokens are ``partner``) and whether the user is
still enabled. That look-up is cached per worker for `subject_ttl` seconds.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

from authn.cnf import x5t_s256
from authn.consents import Consent, ConsentStore
from authn.dpop import DPoPCheck
from authn.errors import invalid_token
from authn.rfc7591 import RegistrationStore
from authn.roles import RoleStore
from authn.service.routes_oauth import is_client_token
from authn.store import Store
from authn.tokens import TokenVerifier, VerifiedToken
from gateway.context import RequestContext

__all__ = ["ANONYMOUS", "Authenticator", "Identity", "Kind"]

Kind = Literal["customer", "partner", "staff", "anonymous"]
MAX_CACHED_SUBJECTS: Final = 100_000


@dataclass(frozen=True, slots=True)
class Identity:
    kind: Kind
    token: VerifiedToken | None = None
    consent: Consent | None = None
    """The consent a partner's token acts under, as stored (None: none claimed, or
    not found — see `consent_id`)."""
    partner: Mapping[str, Any] | None = None
    """A dynamically registered partner's facts for the policy (``identity.partner``:
    status, allowed networks, rate-limit tier, environment); None for partners the bank lists in
    the policy's own data, and for everyone else."""
    roles: tuple[str, ...] = ()
    """A staff user's roles (the policy input's ``identity.roles``)."""

    @property
    def consent_id(self) -> str | None:
        """The ``consent_id`` the token claims (partners only)."""
        claimed = None if self.token is None else self.token.claims.get("consent_id")
        return claimed if isinstance(claimed, str) else None

    @property
    def subject(self) -> str | None:
        return None if self.token is None else self.token.subject

    @property
    def acr(self) -> str | None:
        return None if self.token is None else self.token.acr

    @property
    def key_thumbprint(self) -> str | None:
        """The DPoP key this request proved possession of (its proof was verified
        against ``cnf.jkt``), or None."""
        cnf = None if self.token is None else self.token.cnf
        return None if cnf is None else cnf.get("jkt")

    @property
    def scheme(self) -> str:
        """The authorization scheme challenges must use (RFC 9449 §7.1)."""
        return "DPoP" if self.key_thumbprint is not None else "Bearer"

    def consent_input(self, now: float) -> dict[str, Any] | None:
        """``identity.consent``: the stored consent, ``unknown`` if the claimed one is
        missing or another client's, None if none is claimed."""
        claimed = self.consent_id
        if claimed is None:
            return None
        consent = self.consent
        if consent is None or self.token is None or consent.client_id != self.token.client_id:
            return {"id": claimed[:256], "status": "unknown", "resources": [], "expires_at": 0}
        return consent.to_policy_input(now)

    def to_policy_input(self, now: float | None = None) -> dict[str, Any]:
        """The ``identity`` member of the policy input document."""
        token = self.token
        if token is None:
            return {
                "subject": None,
                "kind": "anonymous",
                "acr": None,
                "amr": [],
                "auth_time": None,
                "scopes": [],
                "client_id": None,
                "consent": None,
                "roles": [],
            }
        return {
            "subject": token.subject,
            "kind": self.kind,
            "acr": token.acr,
            "amr": list(token.amr),
            "auth_time": token.auth_time,
            "scopes": sorted(token.scope),
            "client_id": token.client_id,
            "consent": self.consent_input(time.time() if now is None else now),
            "roles": list(self.roles),
        } | ({} if self.partner is None else {"partner": dict(self.partner)})


ANONYMOUS: Final = Identity("anonymous")


class Authenticator:
    """Turns a request's credentials into an `Identity`; every failure is `AuthnError`."""

    def __init__(
        self,
        verifier: TokenVerifier,
        store: Store,
        *,
        consents: ConsentStore | None = None,
        registrations: RegistrationStore | None = None,
        roles: RoleStore | None = None,
        subject_ttl: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._verifier = verifier
        self._store = store
        self._consents = consents
        self._registrations = registrations
        self._roles = roles
        self._partners: dict[str, tuple[Mapping[str, Any] | None, float]] = {}
        self._subject_ttl = subject_ttl
        self._clock = clock
        self._kinds: dict[str, tuple[Kind | None, tuple[str, ...], float]] = {}

    async def authenticate(self, ctx: RequestContext) -> Identity:
        header = ctx.headers.get("authorization")
        if header is None:
            return ANONYMOUS
        scheme, _, credential = header.partition(" ")
        credential = credential.strip()
        check = None
        if scheme.lower() == "dpop":
            check = DPoPCheck(ctx.headers.get("dpop", ""), ctx.method, ctx.url, credential)
        elif scheme.lower() != "bearer":
            raise invalid_token("unsupported authorization scheme")
        cert = ctx.client_cert_der
        token = await self._verifier.verify(
            credential,
            dpop=check,
            client_cert_sha256=None if cert is None else x5t_s256(cert),
        )
        if is_client_token(token):
            claimed = token.claims.get("consent_id")
            consent = None
            if isinstance(claimed, str) and self._consents is not None:
                consent = await self._consents.get(claimed)
            return Identity("partner", token, consent, await self._partner_facts(token.subject))
        kind, roles = await self._user_kind(token.subject)
        if kind is None:
            raise invalid_token("unknown or disabled subject")
        return Identity(kind, token, roles=roles)

    async def _partner_facts(self, client_id: str) -> Mapping[str, Any] | None:
        """A registered partner's facts, cached per worker for `subject_ttl` seconds
        (a suspension reaches the edge within that, and its tokens die with it)."""
        if self._registrations is None:
            return None
        now = self._clock()
        cached = self._partners.get(client_id)
        if cached is not None and cached[1] > now:
            return cached[0]
        facts: Mapping[str, Any] | None = None
        registration = await self._registrations.get(client_id)
        if registration is not None:
            client = await self._store.get_client(client_id)
            active = client is not None and not client.disabled
            facts = {
                "status": "active" if active else "suspended",
                "allowed_networks": list(registration.allowed_networks),
                "rate_limit_tier": registration.rate_limit_tier,
                "environment": registration.environment,
            }
        if len(self._partners) >= MAX_CACHED_SUBJECTS:
            self._partners.clear()
        self._partners[client_id] = (facts, now + self._subject_ttl)
        return facts

    async def _user_kind(self, subject: str) -> tuple[Kind | None, tuple[str, ...]]:
        """The user's kind (None: unknown or disabled) and staff roles, cached."""
        now = self._clock()
        cached = self._kinds.get(subject)
        if cached is not None and cached[2] > now:
            return cached[0], cached[1]
        user = await self._store.get_user(subject)
        kind: Kind | None = None if user is None or user.disabled else user.kind
        roles: tuple[str, ...] = ()
        if kind == "staff" and self._roles is not None:
            roles = await self._roles.get(subject)
        if len(self._kinds) >= MAX_CACHED_SUBJECTS:
            self._kinds.clear()  # rare; a refill costs one look-up per active subject
        self._kinds[subject] = (kind, roles, now + self._subject_ttl)
        return kind, roles
