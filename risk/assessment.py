"""What the risk scorer hands to the rest of the pipeline (shared kernel)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from device_fingerprint.assessment import DeviceAssessment

__all__ = ["RiskAssessment", "RiskObservation"]


@dataclass(frozen=True, slots=True)
class RiskObservation:
    """One request as the risk scorer sees it: its input."""

    subject: str | None
    client_ip: str
    at: float
    """Unix time of the request."""
    device: DeviceAssessment
    route_id: str
    sensitive_operation: str | None = None
    """E.g. ``transfer`` on routes whose policy data marks them sensitive."""
    amount: Decimal | None = None
    """The operation's amount, when it has one (transfers)."""
    keystrokes: tuple[float, ...] | None = None
    """Typing rhythm of the PIN/password just entered (hold and flight times in
    milliseconds, in the SDK's documented order), when the SDK sent it."""
    device_applies: bool = True
    """False for a partner's server (client credentials over mTLS): it has no phone
    or browser, so device signals neither raise nor lower its risk."""


@dataclass(frozen=True, slots=True)
class RiskAssessment:
    """An explainable score: 0 (no risk) to 100, and the reasons that made it."""

    score: int
    reasons: tuple[str, ...] = ()
    """Machine-readable, e.g. ``travel:impossible``, ``hour:unusual``."""

    def __post_init__(self) -> None:
        if not 0 <= self.score <= 100:
            raise ValueError(f"score: {self.score} is outside 0..100")

    def to_policy_input(self) -> dict[str, Any]:
        """The ``risk`` member of the policy input document."""
        return {"score": self.score, "reasons": list(self.reasons)}
