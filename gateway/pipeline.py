"""The check pipeline: identity → device → behaviour risk → policy, within a deadline.

`Pipeline.check` turns a `RequestContext` into an `Allow` (upstream headers and
a signed identity assertion) or a `Deny` (status, error, reasons). Rules:

- Fail closed (ARCHITECTURE.md): the whole check runs under one deadline
  (`AgentConfig.check_timeout`); when it passes the answer is ``403
  gateway:timeout`` — also when a synchronous step overran it, because the
  deadline is checked again before an allow leaves. Any exception is ``403
  gateway:error``; the exception is logged here, never sent to the client.
- Authentication failures are ``401`` with the verifier's challenge (RFC 6750
  §3, RFC 9449 §7.1). A worker whose revocation view is too stale refuses
  authenticated requests (``403 gateway:revocations_stale``): a token revoked
  meanwhile must not pass.
- The policy's deny is ``403``; ``401`` when nobody authenticated (a token
  would help); a step-up obligation is ``401`` with the RFC 9470 challenge.
- Every decision, early denies included, goes to the decision log (OPA format,
  masked) under the decision id the client and the upstream also see. The log
  is the audit record: an allow the log cannot take (its queue full — the disk
  stalled) becomes ``403 gateway:audit_unavailable``; nothing passes unlogged.

The device and risk steps are the `DeviceAssessor` and `RiskScorer` protocols,
so the real assessors plug in without this module knowing them.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any, Final, Protocol

from authn.errors import AuthnError
from authn.stepup import StepUpRequirement
from device_fingerprint.assessment import DeviceAssessment, DeviceObservation, TrustLevel
from gateway import ids, policy_input
from gateway.assertion import AssertedConsent, AssertionSigner
from gateway.context import INTERNAL_PREFIX, SIGNALS_HEADER, RequestContext, decode_signals
from gateway.identity import Authenticator, Identity
from gateway.quotas import Quotas, rate_limit_headers
from gateway.response_signing import SignedRequest
from gateway.signatures import RequestSignatures, SignatureRefused
from policy.decision import Decision, deny
from policy.decision_log import DecisionLog
from policy.engine import PolicyEngine
from risk.assessment import RiskAssessment, RiskObservation

__all__ = [
    "Allow",
    "Components",
    "Deny",
    "DeviceAssessor",
    "Outcome",
    "Pipeline",
    "RiskScorer",
]

log = logging.getLogger("ztgate.gateway.pipeline")

SUBJECT: Final = "x-ztgate-subject"
ACR: Final = "x-ztgate-acr"
DEVICE: Final = "x-ztgate-device"
RISK: Final = "x-ztgate-risk"
DECISION_ID: Final = "x-ztgate-decision-id"
MASK_PROFILE: Final = "x-ztgate-mask-profile"
ASSERTION: Final = "x-ztgate-assertion"
CLIENT: Final = "x-ztgate-client"
"""A partner's client id: Envoy's per-partner token bucket is keyed on it."""
OWN_HEADERS: Final = frozenset(
    {SUBJECT, ACR, DEVICE, RISK, DECISION_ID, MASK_PROFILE, ASSERTION, CLIENT}
)
_CHALLENGE: Final = 'Bearer realm="ztgate"'
_OK: Final = {"labels": {"status": "200"}}
_STATUS_LABELS: Final = {code: {"labels": {"status": str(code)}} for code in (401, 403)}
"""The decision log's ``extra`` per status, built once (the log only reads them)."""


class DeviceAssessor(Protocol):
    async def assess(self, obs: DeviceObservation) -> DeviceAssessment: ...


class RiskScorer(Protocol):
    async def score(self, obs: RiskObservation) -> RiskAssessment: ...


class AuthFailures(Protocol):
    """Where failed authentications go (the risk scorer's failure streaks)."""

    async def record_auth_failure(self, subject: str | None, client_ip: str, at: float) -> bool: ...


@dataclass(frozen=True)
class Components:
    """The pluggable steps of a worker's pipeline."""

    device: DeviceAssessor
    risk: RiskScorer
    close: Callable[[], Awaitable[None]] | None = None
    """Releases what the components hold (connections), called when the worker stops."""
    auth_failures: AuthFailures | None = None
    """Told of every presented token that fails verification, by client address
    (credential stuffing with stolen or forged tokens raises that address's risk)."""


@dataclass(frozen=True, slots=True)
class Allow:
    decision_id: str
    headers: tuple[tuple[str, str], ...]
    """Set upstream (overwriting any client copy)."""
    mask_profile: str
    response_headers: tuple[tuple[str, str], ...] = ()
    """Added to the response the client gets (the quota's RateLimit fields)."""
    client_id: str | None = None
    """A partner's client id: the response masking's pseudonym scope."""
    signed_request: SignedRequest | None = None
    """The verified request signature the response must be bound to
    (`gateway.response_signing`); None when the request was not signed."""


@dataclass(frozen=True, slots=True)
class Deny:
    status: int
    error: str
    reasons: tuple[str, ...]
    decision_id: str
    challenge: str | None = None
    """``WWW-Authenticate`` value for a 401."""
    headers: tuple[tuple[str, str], ...] = ()
    """More response headers (a 429's Retry-After and RateLimit fields)."""


Outcome = Allow | Deny


def _safe(value: str) -> bool:
    """A value that can travel in an HTTP header as it is (no CR/LF, no controls)."""
    return value.isascii() and value.isprintable()


NO_DEVICE: Final = DeviceAssessment(
    device_id=None, known=False, bound_to_subject=False, trust=TrustLevel.NEW
)
"""A partner's server has no device to assess: the policy input says so (``new``,
no id) and the risk scorer ignores device signals for it (`RiskObservation.device_applies`)."""


def _quota_caller(identity: Identity, ctx: RequestContext) -> str:
    """Whose bucket: a partner's client, a user, or (anonymous) the client address."""
    token = identity.token
    if token is None:
        return "ip:" + ctx.client_address
    if identity.kind == "partner":
        return "client:" + (token.client_id or token.subject)
    return "sub:" + token.subject


def _asserted_consent(identity: Identity, now: float) -> AssertedConsent | None:
    """The consent to vouch for upstream: only a usable one of the token's own client."""
    consent, token = identity.consent, identity.token
    if consent is None or token is None or consent.customer is None:
        return None
    if consent.client_id != token.client_id or not consent.usable(now):
        return None
    return AssertedConsent(consent.consent_id, consent.customer, consent.accounts)


class _Trace:
    """What a check has established so far, for the decision log of any ending."""

    __slots__ = ("doc", "request", "route")

    def __init__(self) -> None:
        self.doc: dict[str, Any] | None = None
        self.request: dict[str, Any] | None = None
        self.route: dict[str, Any] | None = None

    def input(self, now: float) -> dict[str, Any]:
        if self.doc is not None:
            return self.doc
        partial: dict[str, Any] = {"version": "1", "time": {"now": int(now)}}
        if self.request is not None:
            partial["request"] = self.request
        if self.route is not None:
            partial["route"] = self.route
        return partial


class Pipeline:
    def __init__(
        self,
        *,
        authenticator: Authenticator,
        components: Components,
        policy: PolicyEngine,
        signer: AssertionSigner,
        decision_log: DecisionLog,
        timeout: float,
        revocations_fresh: Callable[[], bool],
        max_signals_bytes: int = 16 * 1024,
        clock: Callable[[], float] = time.time,
        quotas: Quotas | None = None,
        signatures: RequestSignatures | None = None,
    ) -> None:
        self._authn = authenticator
        self._quotas = quotas
        self._signatures = signatures
        self._device = components.device
        self._risk = components.risk
        self._auth_failures = components.auth_failures
        self._policy = policy
        self._signer = signer
        self._log = decision_log
        self._timeout = timeout
        self._revocations_fresh = revocations_fresh
        self._max_signals = max_signals_bytes
        self._clock = clock
        self._last_unaudited_warning = -1e9

    def reject(self, reason: str) -> Deny:
        """A request that could not even be read (`gateway.context.RequestRejected`)."""
        decision_id = ids.decision_id()
        outcome = Deny(403, "access_denied", (reason,), decision_id)
        self._record(_Trace(), outcome, None)
        return outcome

    async def check(self, ctx: RequestContext) -> Outcome:
        decision_id = ids.decision_id()
        trace = _Trace()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._timeout
        try:
            async with asyncio.timeout_at(deadline):
                outcome, decision = await self._run(ctx, decision_id, trace)
            if isinstance(outcome, Allow) and loop.time() > deadline:
                raise TimeoutError  # a synchronous step overran: never allow late
        except TimeoutError:
            outcome, decision = Deny(403, "access_denied", ("gateway:timeout",), decision_id), None
            log.warning(
                "check timed out",
                extra={
                    "event": "gateway.timeout",
                    "decision_id": decision_id,
                    "route_id": ctx.route.route_id,
                },
            )
        except Exception as exc:
            outcome, decision = Deny(403, "access_denied", ("gateway:error",), decision_id), None
            log.error(
                "check failed",
                exc_info=True,
                extra={
                    "event": "gateway.error",
                    "decision_id": decision_id,
                    "route_id": ctx.route.route_id,
                    "error_type": type(exc).__name__,
                },
            )
        if not self._record(trace, outcome, decision) and isinstance(outcome, Allow):
            outcome = Deny(403, "access_denied", ("gateway:audit_unavailable",), decision_id)
            self._unaudited()
            self._record(trace, outcome, None)  # most likely dropped (and counted) too
        return outcome

    def _record(self, trace: _Trace, outcome: Outcome, decision: Decision | None) -> bool:
        """Queue the decision-log event; False when the log refused it."""
        if decision is None:
            assert isinstance(outcome, Deny)
            decision = deny(outcome.reasons[0], self._policy.revision)
        if isinstance(outcome, Deny):
            labels = _STATUS_LABELS.get(outcome.status)
            extra = labels or {"labels": {"status": str(outcome.status)}}
        else:
            extra = _OK
        return self._log.offer(
            trace.input(self._clock()), decision, decision_id=outcome.decision_id, extra=extra
        )

    def _unaudited(self) -> None:
        """Say, at most once a second, that allows are being refused for want of a log."""
        now = time.monotonic()
        if now - self._last_unaudited_warning >= 1.0:
            self._last_unaudited_warning = now
            log.error(
                "decision log full: allowed requests are denied until it catches up",
                extra={"event": "gateway.audit_unavailable", "dropped": self._log.dropped},
            )

    async def _run(
        self, ctx: RequestContext, decision_id: str, trace: _Trace
    ) -> tuple[Outcome, Decision | None]:
        now = self._clock()
        request = trace.request = policy_input.request_member(ctx)
        route = trace.route = policy_input.route_member(ctx)
        if request is None:
            return Deny(403, "access_denied", ("request:invalid_query",), decision_id), None
        try:
            identity = await self._authn.authenticate(ctx)
        except AuthnError as exc:
            if (
                self._auth_failures is not None
                and exc.code == "invalid_token"
                and not exc.lapsed  # forged, tampered, revoked or foreign: counted
            ):
                await self._auth_failures.record_auth_failure(None, ctx.client_address, now)
            reason = f"identity:{exc.code}"
            challenge = exc.headers.get("WWW-Authenticate")
            return Deny(401, exc.code, (reason,), decision_id, challenge), None
        signed: SignedRequest | None = None
        if ctx.route.signed:
            checked = await self._check_signature(ctx, identity, now, decision_id)
            if isinstance(checked, Deny):
                return checked, None
            signed = checked
        if identity.token is not None and not self._revocations_fresh():
            return Deny(403, "access_denied", ("gateway:revocations_stale",), decision_id), None
        machine = identity.kind == "partner"  # a partner's server: no phone or browser
        if machine:
            device = NO_DEVICE
        else:
            device = await self._device.assess(
                DeviceObservation(
                    subject=identity.subject,
                    client_ip=ctx.client_address,
                    signals=decode_signals(ctx.headers.get(SIGNALS_HEADER), self._max_signals),
                    key_thumbprint=identity.key_thumbprint,
                    ja4=ctx.ja4,
                    user_agent=ctx.headers.get("user-agent"),
                    client_hints=ctx.client_hints(),
                )
            )
        classification = ctx.route.classification
        risk = await self._risk.score(
            RiskObservation(
                subject=identity.subject,
                client_ip=ctx.client_address,
                at=now,
                device=device,
                route_id=ctx.route.route_id,
                sensitive_operation=classification if classification == "transfer" else None,
                device_applies=not machine,
            )
        )
        doc = trace.doc = policy_input.document(request, route, identity, device, risk, now)
        decision = await self._policy.decide(doc)
        if not decision.allow:
            return self._deny(decision_id, identity, decision), decision
        limits: tuple[tuple[str, str], ...] = ()
        if self._quotas is not None:
            verdict = await self._quotas.take(
                decision.obligations.rate_limit_tier,
                _quota_caller(identity, ctx),
                ctx.route.api_product,
            )
            if verdict is None:
                reason = "gateway:unknown_rate_limit_tier"
                return Deny(403, "access_denied", (reason,), decision_id), decision
            limits = tuple(rate_limit_headers(verdict))
            if not verdict.allowed:
                return Deny(
                    429, "rate_limited", ("quota:exceeded",), decision_id, None, limits
                ), decision
        allow = self._allow(ctx, decision_id, identity, device, risk, decision, now)
        if limits or signed is not None:
            allow = replace(allow, response_headers=limits, signed_request=signed)
        return allow, decision

    async def _check_signature(
        self, ctx: RequestContext, identity: Identity, now: float, decision_id: str
    ) -> Deny | SignedRequest:
        """A signed route's RFC 9421 check (`gateway.signatures`); when it passes, what
        the response's signature must be bound to."""
        if self._signatures is None:  # nothing to check with: fail closed
            return Deny(403, "access_denied", ("signature:unavailable",), decision_id)
        client = identity.token.client_id if identity.kind == "partner" and identity.token else None
        try:
            verified = await self._signatures.verify(ctx, client, now)
        except SignatureRefused as exc:
            error = "invalid_signature" if exc.status in (400, 401) else "access_denied"
            return Deny(exc.status, error, (exc.reason,), decision_id)
        field = ctx.headers.get("signature", "").strip(" \t")
        return SignedRequest(verified.label, field, ctx.method, ctx.target_uri)

    def _deny(self, decision_id: str, identity: Identity, decision: Decision) -> Deny:
        reasons = decision.reasons or ("policy:deny",)
        step_up = decision.obligations.step_up
        if step_up is not None:
            requirement = StepUpRequirement(acr=step_up.acr, max_age=step_up.max_age)
            challenge = requirement.www_authenticate(
                "a stronger or more recent authentication is required", identity.scheme
            )
            return Deny(401, "insufficient_user_authentication", reasons, decision_id, challenge)
        if identity.token is None:
            return Deny(401, "unauthorized", reasons, decision_id, _CHALLENGE)
        return Deny(403, "access_denied", reasons, decision_id)

    def _allow(
        self,
        ctx: RequestContext,
        decision_id: str,
        identity: Identity,
        device: DeviceAssessment,
        risk: RiskAssessment,
        decision: Decision,
        now: float,
    ) -> Allow:
        subject, acr, device_id = identity.subject, identity.acr, device.device_id
        partner = (
            identity.token.client_id if identity.kind == "partner" and identity.token else None
        )
        mask_profile = decision.obligations.mask_profile
        headers: list[tuple[str, str]] = [
            (RISK, str(risk.score)),
            (DECISION_ID, decision_id),
            (MASK_PROFILE, mask_profile),
        ]
        for name, value in ((SUBJECT, subject), (ACR, acr), (DEVICE, device_id), (CLIENT, partner)):
            if value is not None:
                headers.append((name, value))
        headers.extend(
            (name, value)
            for name, value in decision.obligations.headers
            if name not in OWN_HEADERS and name.startswith(INTERNAL_PREFIX)
        )
        if not all(_safe(value) for _, value in headers):
            raise ValueError("a header value is not safe to forward")  # → gateway:error
        assertion = self._signer.sign(
            subject=subject,
            kind=identity.kind,
            acr=acr,
            device=device_id,
            risk=risk.score,
            decision_id=decision_id,
            route_id=ctx.route.route_id,
            method=ctx.method,
            path=ctx.path,
            now=now,
            consent=_asserted_consent(identity, now),
        )
        headers.append((ASSERTION, assertion))
        return Allow(decision_id, tuple(headers), mask_profile, client_id=partner)
