"""The real device and risk steps of a worker's pipeline (`gateway.agent.ComponentsFactory`).

``build_components`` is what ``ztgate up`` and ``python -m gateway.workers
--components gateway.components:build_components`` name. Each worker opens its
own device registry connection (the authn store's database: devices and users
live together, ARCHITECTURE.md "Data") and its own risk scorer (in-process
state by default, Redis in distributed mode), so nothing is shared between
processes but the databases.

The two steps share one geolocation: the risk scorer locates the client
address and the device assessor gets the country as ``region`` (time zone vs
region consistency) — one look-up per request, not two.
"""

from __future__ import annotations

from device_fingerprint.assessment import DeviceAssessment, DeviceObservation
from device_fingerprint.assessor import DeviceAssessor
from device_fingerprint.config import DeviceConfig
from device_fingerprint.registry import open_registry
from gateway.agent_config import AgentConfig
from gateway.pipeline import Components
from risk.config import RiskConfig
from risk.scorer import RiskScorer

__all__ = ["DeviceStep", "build_components"]


class DeviceStep:
    """`gateway.pipeline.DeviceAssessor` over the real assessor, with the risk
    scorer's geolocation as the region."""

    def __init__(self, assessor: DeviceAssessor, scorer: RiskScorer) -> None:
        self._assessor = assessor
        self._scorer = scorer

    async def assess(self, obs: DeviceObservation) -> DeviceAssessment:
        where = self._scorer.locate(obs.client_ip)
        return await self._assessor.assess(obs, region=where.country if where else None)


async def build_components(
    config: AgentConfig,
    *,
    device: DeviceConfig | None = None,
    risk: RiskConfig | None = None,
) -> Components:
    """Open this worker's device registry and risk scorer (secure defaults unless given)."""
    device = device or DeviceConfig()
    registry = await open_registry(config.store_url, device, schema=config.store_schema or None)
    try:
        assessor = DeviceAssessor(registry, device)
        scorer = RiskScorer.from_config(risk or RiskConfig())
        await assessor.start()
    except BaseException:
        await registry.close()
        raise

    async def close() -> None:
        await assessor.close()
        await scorer.close()
        await registry.close()

    return Components(DeviceStep(assessor, scorer), scorer, close, auth_failures=scorer)
