"""The ``[device]`` configuration section: limits, match weights, binding rules, graph
thresholds and cache sizes, in one validated frozen dataclass.

Built directly (``DeviceConfig(match_threshold=9.0)``) or from the TOML file by
`ztgate.config` (which adds the ``device.`` prefix to the key a `ValueError`
names). Every check raises ``ValueError("<field>: <problem>")`` so an operator
sees which key to fix.

Match weights follow the Fellegi-Sunter record-linkage model: for each signal,
``(agree, disagree)`` are log2 likelihood ratios — ``agree = log2(m/u)`` and
``disagree = log2((1-m)/(1-u))``, where *m* is the chance the signal is
unchanged on the same device after normal drift and *u* the chance two
different devices share it. A candidate device matches when the summed
evidence reaches ``match_threshold`` bits. `docs/device.md` gives the m/u
estimates behind the defaults.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Final

Weight = tuple[float, ...]
"""``(agree, disagree)`` in bits: agree > 0 ≥ disagree."""

ACR_PWD: Final = "urn:ztgate:acr:pwd"  # noqa: S105 (an acr URI, not a password)
ACR_MFA: Final = "urn:ztgate:acr:mfa"
ACR_PASSKEY: Final = "urn:ztgate:acr:passkey"


@dataclass(frozen=True)
class WebWeights:
    """Evidence per browser signal (see the module doc)."""

    browser_version: Weight = (1.0, -5.0)
    os_version: Weight = (0.6, -4.0)
    platform: Weight = (0.3, -6.0)
    arch: Weight = (0.3, -6.0)
    model: Weight = (2.0, -6.0)
    hw_concurrency: Weight = (0.8, -6.0)
    device_memory: Weight = (0.3, -6.0)
    screen: Weight = (1.5, -2.5)
    dpr: Weight = (0.5, -3.0)
    color_depth: Weight = (0.1, -3.0)
    touch: Weight = (0.3, -6.0)
    timezone: Weight = (0.4, -1.0)
    languages: Weight = (1.5, -3.0)
    canvas: Weight = (2.5, -1.5)
    webgl_renderer: Weight = (1.5, -6.0)
    webgl: Weight = (0.5, -1.5)
    audio: Weight = (0.5, -1.5)
    fonts: Weight = (3.5, -3.5)


@dataclass(frozen=True)
class MobileWeights:
    """Evidence per mobile-SDK signal (see the module doc)."""

    os_version: Weight = (0.5, -3.0)
    app_version: Weight = (0.3, -3.0)
    app_install_id: Weight = (12.0, -2.0)
    platform_ids: Weight = (12.0, -2.0)
    """Hashed ANDROID_ID / identifierForVendor / MediaDrm id: any one agreeing."""
    sim: Weight = (8.0, -0.5)
    carrier: Weight = (1.0, -0.5)
    screen: Weight = (1.5, -6.0)
    locale: Weight = (0.8, -1.0)
    timezone: Weight = (0.4, -1.0)


def _weights_ok(section: object, name: str) -> None:
    for f in dataclasses.fields(section):  # type: ignore[arg-type]
        value = getattr(section, f.name)
        key = f"{name}.{f.name}"
        if not isinstance(value, tuple) or len(value) != 2:
            raise ValueError(f"{key}: must be a pair [agree, disagree]")
        agree, disagree = value
        if not (math.isfinite(agree) and math.isfinite(disagree)):
            raise ValueError(f"{key}: must be finite numbers")
        if not (0 < agree <= 64 and -64 <= disagree <= 0):
            raise ValueError(f"{key}: agree must be in (0, 64] and disagree in [-64, 0]")


@dataclass(frozen=True)
class DeviceConfig:
    """Everything tunable about device assessment; defaults are the secure ones."""

    database_url: str = ""
    """``sqlite:///…`` or ``postgresql://…`` for the registry (`open_registry`); empty =
    ``device.db`` in the state directory. May be authn's database: tables don't clash."""
    max_payload_bytes: int = 16 * 1024
    """Collector payloads above this are refused unread (``payload:invalid:too_large``)."""
    max_depth: int = 8
    """Deepest JSON nesting accepted anywhere in a payload, unknown members included."""
    match_threshold: float = 6.0
    """Bits of evidence (summed weights) for a fingerprint to be the same device."""
    web: WebWeights = field(default_factory=WebWeights)
    mobile: MobileWeights = field(default_factory=MobileWeights)
    browser_version_window: int = 8
    """A browser this many major versions newer than recorded still agrees (updates)."""

    max_bound_devices: int = 5
    """Bound devices per subject; binding one more is refused (``limit:bound_devices``)."""
    acr_levels: tuple[str, ...] = (ACR_PWD, ACR_MFA, ACR_PASSKEY)
    """Authentication context classes, weakest first (authn's levels)."""
    bind_min_acr: str = ACR_MFA
    """Binding needs an authentication at least this strong (``acr:insufficient``)."""
    max_known_devices: int = 30
    """Unbound devices remembered per subject (the oldest are forgotten first)."""

    farm_subjects: int = 4
    """A device used by this many distinct subjects in `farm_window` is a shared device."""
    farm_window: float = 7 * 86400.0
    hop_new_devices: int = 4
    """A subject with this many never-seen devices in `hop_window` is device-hopping."""
    hop_window: float = 86400.0
    sim_change_window: float = 3 * 86400.0
    """How long after a SIM change the device keeps reporting ``sim:changed``."""

    suspicious_anomalies: tuple[str, ...] = (
        "automation:",
        "tls:",
        "hints:",
        "ua:",
        "integrity:",
        "key:",
        "graph:",
    )
    """Anomaly prefixes that make the trust ``suspicious``; others are reported only
    (time-zone mismatches and SIM changes are the risk scorer's to weigh)."""

    cache_subjects: int = 100_000
    """Subjects whose devices a process keeps in memory (LRU)."""
    cache_ttl: float = 300.0
    """A cached subject is reloaded after this many seconds, whatever happened."""
    payload_cache: int = 20_000
    """Parsed payloads kept per process, keyed by their SM3 digest (LRU)."""
    sync_seconds: float = 1.0
    """How often a process pulls binding changes other processes made (revocations)."""
    touch_seconds: float = 3600.0
    """``last_seen`` of a device is written at most this often."""
    graph_refresh: float = 60.0
    """A cached shared-device count is recounted after this many seconds."""
    write_behind_seconds: float = 1.0
    """First sightings, drift, ``last_seen`` and shared-device sightings are written in
    the background at least this often (`DeviceRegistry.flush`): a crash loses at most
    this much of them; bindings and revocations are written at once."""
    write_behind_max: int = 1000
    """Queued registry writes that trigger a flush before the interval; a request that
    finds this many queued waits for it (memory stays bounded when the database is slow)."""

    def __post_init__(self) -> None:
        _weights_ok(self.web, "web")
        _weights_ok(self.mobile, "mobile")
        ranges: dict[str, tuple[float, float]] = {
            "max_payload_bytes": (512, 1024 * 1024),
            "max_depth": (3, 64),
            "match_threshold": (1.0, 200.0),
            "browser_version_window": (0, 100),
            "max_bound_devices": (1, 100),
            "max_known_devices": (1, 1000),
            "farm_subjects": (2, 10_000),
            "farm_window": (60.0, 365 * 86400.0),
            "hop_new_devices": (2, 10_000),
            "hop_window": (60.0, 365 * 86400.0),
            "sim_change_window": (0.0, 365 * 86400.0),
            "cache_subjects": (1, 10_000_000),
            "cache_ttl": (1.0, 86400.0),
            "payload_cache": (1, 10_000_000),
            "sync_seconds": (0.05, 60.0),
            "touch_seconds": (1.0, 86400.0),
            "graph_refresh": (1.0, 86400.0),
            "write_behind_seconds": (0.01, 60.0),
            "write_behind_max": (1, 1_000_000),
        }
        for key, (low, high) in ranges.items():
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"{key}: must be a number")
            if not (math.isfinite(value) and low <= value <= high):
                raise ValueError(f"{key}: must be between {low:g} and {high:g}, got {value!r}")
        if not self.acr_levels or len(set(self.acr_levels)) != len(self.acr_levels):
            raise ValueError("acr_levels: must be a non-empty list without repeats")
        if self.bind_min_acr not in self.acr_levels:
            raise ValueError(f"bind_min_acr: {self.bind_min_acr!r} is not one of acr_levels")
        for prefix in self.suspicious_anomalies:
            if not prefix or ":" not in prefix:
                raise ValueError(
                    f"suspicious_anomalies: {prefix!r} is not an anomaly prefix like 'tls:'"
                )

    def acr_rank(self, acr: str | None) -> int:
        """1-based strength of `acr`; 0 for unknown or missing (satisfies nothing)."""
        try:
            return self.acr_levels.index(acr or "") + 1
        except ValueError:
            return 0
