"""The risk scorer: one explainable 0-100 score per request, and the events that teach it.

`RiskScorer.score` never raises: a malformed observation scores 100 with
``observation:invalid`` and ``observation:<field>``, and a failing state store
scores 100 with ``risk:unavailable`` (fail closed, ARCHITECTURE.md).

Learning is separate from scoring. Each scored request leaves a pending event
with the subject; `end_session(subject, low_risk=...)` either teaches the
profile from those events or throws them away. It teaches only when the caller
says the session ended low risk *and* no request in it scored above
``profile.learn_max_score`` — so an attacker who holds a session open cannot
train the profile towards themselves. Pending events are per subject: a
concurrent risky session of the same subject blocks learning for both.

Failed authentications arrive as `record_auth_failure` (a streak per subject,
a windowed count per address); a low-risk session end clears the streak.
"""

from __future__ import annotations

import ipaddress
import logging
import math
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache

from device_fingerprint.assessment import DeviceAssessment, TrustLevel
from risk.assessment import RiskAssessment, RiskObservation
from risk.config import RiskConfig
from risk.geo import GeoLocation, Geolocator, open_geolocator
from risk.keystrokes import check_sample
from risk.profile import PendingEvent, learn
from risk.signals import (
    Signals,
    amount_signal,
    combine,
    device_signals,
    geo_signals,
    hour_of,
    hour_signal,
    keystroke_signal,
    rate_signals,
)
from risk.store import LastAccess, MemoryRiskStore, RiskStateStore, StoreError

__all__ = ["INVALID", "UNAVAILABLE", "RiskScorer", "normalise_address"]

log = logging.getLogger("ztgate.risk")

INVALID = "observation:invalid"
UNAVAILABLE = "risk:unavailable"
_MAX_SUBJECT = 256
_MAX_NAME = 64
_MAX_ANOMALIES = 32
_ADDRESS_CACHE = 65_536


def normalise_address(address: object) -> str | None:
    """Canonical text of an IP address (IPv4-mapped IPv6 as IPv4); None if not one."""
    if not isinstance(address, str) or len(address) > 64:
        return None
    return _normalise(address)


@lru_cache(maxsize=_ADDRESS_CACHE)
def _normalise(address: str) -> str | None:
    """Cached: a client's address repeats across the requests of its session."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    return str(ip)


def _name(value: object, limit: int) -> bool:
    return isinstance(value, str) and 0 < len(value) <= limit and value.isprintable()


@dataclass(frozen=True, slots=True)
class _Checked:
    subject: str | None
    address: str
    at: float
    amount: float | None


def _check_device(device: object) -> str | None:
    if not isinstance(device, DeviceAssessment) or not isinstance(device.trust, TrustLevel):
        return "device"
    if device.device_id is not None and not _name(device.device_id, 512):
        return "device"
    anomalies = device.anomalies
    if not isinstance(anomalies, tuple) or len(anomalies) > _MAX_ANOMALIES:
        return "device"
    if not all(_name(a, _MAX_NAME) for a in anomalies):
        return "device"
    return None


def _check(obs: object, config: RiskConfig) -> _Checked | str:
    """The observation's usable values, or the name of its first malformed field."""
    if not isinstance(obs, RiskObservation):
        return "type"
    if obs.subject is not None and not _name(obs.subject, _MAX_SUBJECT):
        return "subject"
    address = normalise_address(obs.client_ip)
    if address is None:
        return "client_ip"
    at = obs.at
    if isinstance(at, bool) or not isinstance(at, int | float) or not math.isfinite(at) or at < 0:
        return "at"
    problem = _check_device(obs.device)
    if problem is not None:
        return problem
    if not _name(obs.route_id, _MAX_SUBJECT):
        return "route_id"
    if obs.sensitive_operation is not None and not _name(obs.sensitive_operation, _MAX_NAME):
        return "sensitive_operation"
    amount: float | None = None
    if obs.amount is not None:
        if not isinstance(obs.amount, Decimal) or not obs.amount.is_finite() or obs.amount < 0:
            return "amount"
        amount = float(obs.amount)
        if not math.isfinite(amount):
            return "amount"
    if obs.keystrokes is not None and check_sample(obs.keystrokes, config.keystrokes) is not None:
        return "keystrokes"
    return _Checked(obs.subject, address, float(at), amount)


class RiskScorer:
    """Scores requests and learns per-subject habits; see the module docstring."""

    def __init__(
        self,
        config: RiskConfig,
        store: RiskStateStore,
        geolocator: Geolocator | None = None,
    ) -> None:
        self.config = config
        self._store = store
        self._geo = geolocator
        self._locate = lru_cache(maxsize=_ADDRESS_CACHE)(geolocator.locate) if geolocator else None

    @classmethod
    def from_config(cls, config: RiskConfig) -> RiskScorer:
        """The configured store (in-process or Redis) and geolocator."""
        store: RiskStateStore
        if config.store.backend == "redis":
            from risk.redis_store import RedisRiskStore

            store = RedisRiskStore.from_url(
                config.store.redis_url,
                config.rate,
                config.profile,
                config.keystrokes,
                prefix=config.store.key_prefix,
            )
        else:
            store = MemoryRiskStore(
                config.rate,
                config.profile,
                max_subjects=config.store.max_subjects,
                max_addresses=config.store.max_addresses,
            )
        return cls(config, store, open_geolocator(config.geo))

    def locate(self, client_ip: str) -> GeoLocation | None:
        """Where an address is (cached), or None: the device assessor's ``region`` comes from
        here, so one geolocation serves both steps."""
        address = normalise_address(client_ip)
        if address is None or self._locate is None:
            return None
        return self._locate(address)

    async def score(self, observation: RiskObservation) -> RiskAssessment:
        """Score one request; never raises."""
        try:
            checked = _check(observation, self.config)
            if isinstance(checked, str):
                log.warning("risk observation rejected", extra={"field": checked})
                return RiskAssessment(100, (INVALID, f"observation:{checked}"))
            return await self._score(observation, checked)
        except StoreError as exc:
            log.error("risk state unavailable", extra={"error": str(exc)})
        except Exception:  # fail closed on anything unforeseen, and say so in the logs
            log.exception("risk scoring failed")
        return RiskAssessment(100, (UNAVAILABLE,))

    async def _score(self, obs: RiskObservation, checked: _Checked) -> RiskAssessment:
        config = self.config
        subject = checked.subject
        location = self._locate(checked.address) if self._locate is not None else None
        access = None
        if location is not None and location.lat is not None and location.lon is not None:
            access = LastAccess(checked.at, location.lat, location.lon)
        touch = await self._store.touch(subject, checked.address, checked.at, access)
        signals: Signals = []
        if obs.device_applies:
            device_signals(obs.device, subject is not None, config.device, signals)
        rate_signals(touch, subject is not None, config.rate, signals)
        if subject is None:
            return combine(signals)
        profile = touch.profile
        if self._geo is not None:
            geo_signals(location, touch.previous, checked.at, profile, config.geo, signals)
        local_hour = hour_of(checked.at, config.hour)
        hour_signal(local_hour, profile, config.hour, signals)
        amount_signal(obs.sensitive_operation, checked.amount, profile, config.amount, signals)
        keystroke_signal(
            obs.keystrokes, obs.sensitive_operation, profile, config.keystrokes, signals
        )
        assessment = combine(signals)
        await self._store.add_pending(
            subject,
            PendingEvent(
                at=checked.at,
                score=assessment.score,
                hour=local_hour,
                country=location.country if location is not None else None,
                region=location.region_key if location is not None else None,
                operation=obs.sensitive_operation if checked.amount is not None else None,
                amount=checked.amount,
                keystrokes=obs.keystrokes,
            ),
        )
        return assessment

    async def record_auth_failure(self, subject: str | None, client_ip: str, at: float) -> bool:
        """A failed authentication (wrong password, PIN, OTP…); False if not recorded.

        `subject` is the claimed account (None when unknown); it need not exist,
        so credential stuffing against unknown accounts still counts per address.
        """
        address = normalise_address(client_ip)
        good_subject = subject is None or _name(subject, _MAX_SUBJECT)
        good_at = not isinstance(at, bool) and isinstance(at, int | float) and math.isfinite(at)
        if address is None or not good_subject or not good_at:
            log.warning("auth failure event rejected")
            return False
        try:
            await self._store.record_failure(subject, address, float(at))
        except StoreError as exc:
            log.error("risk state unavailable", extra={"error": str(exc)})
            return False
        return True

    async def end_session(self, subject: str, *, low_risk: bool) -> bool:
        """Close the subject's session; True when its events taught the profile."""
        if not _name(subject, _MAX_SUBJECT):
            return False
        try:
            events = await self._store.take_pending(subject)
            if events:  # a session abandoned long ago (no end reported) teaches nothing now
                newest = max(e.at for e in events)
                ttl = self.config.profile.session_ttl_seconds
                events = tuple(e for e in events if e.at >= newest - ttl)
            limit = self.config.profile.learn_max_score
            if not low_risk or not events or max(e.score for e in events) > limit:
                return False
            bounds, keys = self.config.profile, self.config.keystrokes
            await self._store.update_profile(
                subject, lambda profile: learn(profile, events, bounds, keys)
            )
            await self._store.clear_failures(subject)
        except StoreError as exc:
            log.error("risk state unavailable", extra={"error": str(exc)})
            return False
        return True

    async def forget(self, subject: str) -> None:
        await self._store.forget(subject)

    async def close(self) -> None:
        await self._store.close()
        if self._geo is not None:
            self._geo.close()
