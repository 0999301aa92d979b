"""Deterministic stand-ins for the device assessor and the risk scorer.

The real ones (device_fingerprint/, risk/) are built elsewhere and plug into
`gateway.pipeline` through the same two protocols. These decide from plain
facts so that each test states exactly what the device and risk steps say:

- `SignalsDevice` reads the collector payload (``x-device-signals``, JSON):
  ``device_id``, ``bound_to`` (the subject the device is bound to), ``known``,
  ``anomalies``. A DPoP-proven key on a bound device is ``bound_with_key``.
- `TableRisk` scores by subject from a table (default 10).

`make_components` is the factory worker processes import by name.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping

from device_fingerprint.assessment import DeviceAssessment, DeviceObservation, TrustLevel
from gateway.agent_config import AgentConfig
from gateway.pipeline import Components
from risk.assessment import RiskAssessment, RiskObservation


class SignalsDevice:
    def __init__(self) -> None:
        self.seen: list[DeviceObservation] = []

    async def assess(self, obs: DeviceObservation) -> DeviceAssessment:
        self.seen.append(obs)
        try:
            payload = json.loads(obs.signals) if obs.signals else None
        except ValueError:
            payload = None
        if not isinstance(payload, dict) or not isinstance(payload.get("device_id"), str):
            return DeviceAssessment(None, False, False, TrustLevel.NEW, reasons=("signals:none",))
        bound = obs.subject is not None and payload.get("bound_to") == obs.subject
        known = bool(payload.get("known", bound))
        anomalies = tuple(str(a) for a in payload.get("anomalies", ()))
        if anomalies:
            trust = TrustLevel.SUSPICIOUS
        elif bound:
            trust = TrustLevel.BOUND_WITH_KEY if obs.key_thumbprint else TrustLevel.BOUND
        else:
            trust = TrustLevel.KNOWN if known else TrustLevel.NEW
        return DeviceAssessment(payload["device_id"], known, bound, trust, anomalies)


class TableRisk:
    def __init__(self, scores: Mapping[str, int] | None = None, default: int = 10) -> None:
        self.scores = dict(scores or {})
        self.default = default

    async def score(self, obs: RiskObservation) -> RiskAssessment:
        score = self.scores.get(obs.subject or "", self.default)
        return RiskAssessment(score, ("table:high",) if score >= 50 else ("table:usual",))


class SlowRisk:
    """Takes `delay` seconds: the deadline must deny."""

    def __init__(self, delay: float) -> None:
        self.delay = delay

    async def score(self, obs: RiskObservation) -> RiskAssessment:
        await asyncio.sleep(self.delay)
        return RiskAssessment(0)


class BrokenDevice:
    """Raises with a message that must never reach the client."""

    async def assess(self, obs: DeviceObservation) -> DeviceAssessment:
        raise RuntimeError("internal detail: connection to 10.1.2.3 refused")


async def make_components(config: AgentConfig) -> Components:
    return Components(SignalsDevice(), TableRisk())
