"""What the risk scorer hands to the rest of the pipeline (shared kernel)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["RiskAssessment"]


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
