"""What device assessment hands to the rest of the pipeline.

`DeviceAssessment` is part of the shared kernel (ARCHITECTURE.md): the risk
scorer reads it and the gateway copies it into the policy input document's
``device`` member (`to_policy_input`, schema ``policy/schema/input-v1.json``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

__all__ = ["DeviceAssessment", "DeviceObservation", "TrustLevel"]


class TrustLevel(StrEnum):
    """Ordered from strongest to weakest; `rank` gives the order for comparisons."""

    BOUND_WITH_KEY = "bound_with_key"
    """Bound to the subject and proving possession of a hardware-held key (DPoP)."""
    BOUND = "bound"
    """Bound to the subject at enrolment after a strong factor; no key proof."""
    KNOWN = "known"
    """Seen before for this subject, not bound."""
    NEW = "new"
    """Never seen for this subject."""
    SUSPICIOUS = "suspicious"
    """Anomalies, revoked binding, or device-farm signals."""

    @property
    def rank(self) -> int:
        return _RANK[self]


_RANK = {
    TrustLevel.SUSPICIOUS: 0,
    TrustLevel.NEW: 1,
    TrustLevel.KNOWN: 2,
    TrustLevel.BOUND: 3,
    TrustLevel.BOUND_WITH_KEY: 4,
}


@dataclass(frozen=True, slots=True)
class DeviceObservation:
    """What the edge saw of the device on one request: the assessor's input.

    Only ``key_thumbprint`` is a proof; everything else is a client claim the
    assessor weighs (and cross-checks against ``ja4``, which the edge measured).
    """

    subject: str | None
    """The authenticated subject, or None for an anonymous request."""
    client_ip: str
    signals: bytes | None = None
    """Raw collector payload (JSON text, web or mobile), unvalidated."""
    key_thumbprint: str | None = None
    """RFC 7638 thumbprint of a key whose possession this request proved (a DPoP
    proof verified by `authn`); None when no such proof came with it."""
    ja4: str | None = None
    """JA4 fingerprint of the client's TLS hello, computed by Envoy."""
    user_agent: str | None = None
    client_hints: Mapping[str, str] = field(default_factory=dict)
    """``sec-ch-ua*`` request headers, lower-case name → value."""


@dataclass(frozen=True, slots=True)
class DeviceAssessment:
    """The verdict on the device behind one request, with its reasons."""

    device_id: str | None
    """SM3-derived id or key thumbprint; None when no usable signals arrived."""
    known: bool
    bound_to_subject: bool
    trust: TrustLevel
    anomalies: tuple[str, ...] = ()
    """Machine-readable tells, e.g. ``automation:webdriver``, ``tls:ua_mismatch``."""
    reasons: tuple[str, ...] = ()
    """Why the trust level is what it is, e.g. ``binding:revoked``."""

    def to_policy_input(self) -> dict[str, Any]:
        """The ``device`` member of the policy input document."""
        return {
            "id": self.device_id,
            "known": self.known,
            "bound_to_subject": self.bound_to_subject,
            "trust": self.trust.value,
            "anomalies": list(self.anomalies),
        }
