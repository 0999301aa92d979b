"""The edge agent's configuration: one frozen, validated dataclass.

It follows `ztgate.config`'s convention, so ``ztgate.config.from_dict(AgentConfig,
doc)`` loads it from a TOML table and every error names its key
(``agent.check_timeout: must be between 0.005 and 5 seconds``). Defaults are the
secure ones: loopback, a 200 ms deadline per check (fail closed), SM2-signed
identity assertions valid for 30 s, revocations pulled every second and
authenticated requests refused once that view is 10 s stale.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Final

from gateway.quotas import DEFAULT_TIERS, QuotaTier

__all__ = ["AgentConfig", "default_bundle_path"]

_NODE_ID: Final = re.compile(r"[A-Za-z0-9._:-]{1,128}")
_LOOPBACK: Final = ("127.0.0.1", "::1", "localhost")
MAX_WORKERS: Final = 64


def default_bundle_path() -> Path:
    """The policy bundle shipped in the package (``policy/bundles/default``)."""
    return Path(str(resources.files("policy").joinpath("bundles").joinpath("default")))


@dataclass(frozen=True)
class AgentConfig:
    node_id: str = "edge-1"
    """This edge node's name: the ``iss`` of its identity assertions."""
    host: str = "127.0.0.1"
    """Where the workers listen for Envoy's ext_authz calls (plain gRPC: loopback only)."""
    base_port: int = 9191
    """Worker i listens on ``base_port + i``; the control plane lists them all."""
    workers: int = 0
    """Worker processes; 0 means one per CPU core."""
    check_timeout: float = 0.2
    """Deadline of one whole check in seconds; when it passes the request is denied."""
    store_url: str = ""
    """The authn store (``sqlite:///…`` or ``postgresql://…``): revocations, DPoP
    replay nonces, users' kinds. Required."""
    store_schema: str = ""
    """PostgreSQL schema of the store; empty for the default."""
    token_jwks: Path | None = None
    """JWKS file with the public keys that sign access tokens. Required."""
    token_issuer: str = "http://localhost:8081"  # noqa: S105 - a URL, not a secret
    token_audience: str = "ztgate"  # noqa: S105 - an audience name
    token_max_ttl: int = 300
    """The issuer's access-token lifetime: longer-lived tokens are refused."""
    token_leeway: int = 10
    token_cache_size: int = 100_000
    """Verified tokens cached per worker."""
    keys_reload_seconds: float = 30.0
    """How often the JWKS files are checked for changes (key rotation)."""
    revocation_sync_seconds: float = 1.0
    """How often each worker pulls revocations: the cross-worker revocation latency."""
    revocation_max_staleness: float = 10.0
    """Authenticated requests are refused when the last successful pull is older."""
    subject_cache_seconds: float = 30.0
    """How long a user's kind (customer/staff) and enabled state are cached per worker."""
    policy_bundle: Path | None = None
    """Bundle directory or ``.tar.gz``; None = the packaged default bundle."""
    policy_verify_jwks: Path | None = None
    """JWKS of the bundle-signing keys; set, only signed bundles load."""
    policy_watch_seconds: float = 5.0
    decision_log_dir: Path = Path("state/decision-logs")
    """Each worker appends to ``decisions-<worker>.jsonl`` here (OPA decision-log format)."""
    decision_log_pseudonym_key: Path | None = None
    """File holding the HMAC-SM3 key of decision-log pseudonyms (subject, device id)."""
    assertion_keyring: Path | None = None
    """Key ring directory (`crypto.keyring`) whose active key signs assertions (SM2)."""
    assertion_kek: Path | None = None
    """KEK file (`crypto.envelope`) when the assertion key ring is sealed."""
    assertion_hmac_key: Path | None = None
    """Alternative to the key ring: a file with a shared HMAC-SM3 key (32+ bytes)."""
    assertion_ttl: int = 30
    """Lifetime of an identity assertion in seconds."""
    max_signals_bytes: int = 16 * 1024
    """Largest decoded ``x-device-signals`` payload passed to device assessment."""
    quota_tiers: tuple[QuotaTier, ...] = DEFAULT_TIERS
    """The rate-limit tiers the policy may name (``[[agent.quota_tiers]]`` with
    ``name``, ``limit`` requests per ``window`` seconds); per caller and API product."""
    quota_redis_url: str = ""
    """Redis shared by every edge node for quota buckets; empty = per worker."""
    masking_rules: Path | None = None
    """Response-masking rules file (docs/masking.md); None = the shipped rules."""
    masking_key_file: Path | None = None
    """Pseudonym master key (≥ 32 bytes, mode 0600); None = a random key per process."""
    masking_text_types: tuple[str, ...] = ()
    """Media types masked as text on masked routes instead of being blocked."""
    response_signing_key_file: Path | None = None
    """The edge's RFC 9421 response-signing key (PEM PKCS#8, SM2 or P-256, mode
    0600): signs the response to every signed request (docs/http-signatures.md).
    None = such responses are blocked with a 502 (fail closed)."""

    def __post_init__(self) -> None:
        if _NODE_ID.fullmatch(self.node_id) is None:
            raise ValueError("node_id: must be 1-128 characters of [A-Za-z0-9._:-]")
        if self.host not in _LOOPBACK:
            raise ValueError("host: the ext_authz listener is plain gRPC; it must be loopback")
        if not 1024 <= self.base_port <= 65535 - MAX_WORKERS:
            raise ValueError(f"base_port: must be between 1024 and {65535 - MAX_WORKERS}")
        if not 0 <= self.workers <= MAX_WORKERS:
            raise ValueError(f"workers: must be 0 (one per core) to {MAX_WORKERS}")
        if not 0.005 <= self.check_timeout <= 5:
            raise ValueError("check_timeout: must be between 0.005 and 5 seconds")
        if not self.store_url.startswith(("sqlite://", "postgresql://", "postgres://")):
            raise ValueError("store_url: required, sqlite://… or postgresql://…")
        if self.store_schema and not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", self.store_schema):
            raise ValueError("store_schema: must be a lower-case SQL identifier")
        if self.token_jwks is None:
            raise ValueError("token_jwks: required (the token-signing public keys)")
        if not self.token_issuer or not self.token_audience:
            raise ValueError("token_issuer: issuer and audience must be non-empty")
        if not 0 < self.token_max_ttl <= 3600:
            raise ValueError("token_max_ttl: must be 1 to 3600 seconds")
        if not 0 <= self.token_leeway <= 60:
            raise ValueError("token_leeway: must be 0 to 60 seconds")
        if not 0 <= self.token_cache_size <= 10_000_000:
            raise ValueError("token_cache_size: must be 0 to 10000000")
        for name in ("keys_reload_seconds", "policy_watch_seconds", "subject_cache_seconds"):
            if not 0 < getattr(self, name) <= 3600:
                raise ValueError(f"{name}: must be more than 0 and at most 3600 seconds")
        if not 0 < self.revocation_sync_seconds <= 60:
            raise ValueError("revocation_sync_seconds: must be more than 0 and at most 60")
        if not self.revocation_sync_seconds < self.revocation_max_staleness <= 3600:
            raise ValueError(
                "revocation_max_staleness: must exceed revocation_sync_seconds (at most 3600)"
            )
        if (self.assertion_keyring is None) == (self.assertion_hmac_key is None):
            raise ValueError(
                "assertion_keyring: set exactly one of assertion_keyring (SM2) and "
                "assertion_hmac_key (HMAC-SM3)"
            )
        if self.assertion_kek is not None and self.assertion_keyring is None:
            raise ValueError("assertion_kek: only with assertion_keyring")
        if not 5 <= self.assertion_ttl <= 300:
            raise ValueError("assertion_ttl: must be 5 to 300 seconds")
        names = [t.name for t in self.quota_tiers]
        if len(set(names)) != len(names):
            raise ValueError("quota_tiers: a tier name appears twice")
        if self.quota_redis_url and not self.quota_redis_url.startswith(
            ("redis://", "rediss://", "unix://")
        ):
            raise ValueError("quota_redis_url: must be a redis://, rediss:// or unix:// URL")
        if not 256 <= self.max_signals_bytes <= 1024 * 1024:
            raise ValueError("max_signals_bytes: must be 256 bytes to 1 MiB")

    @property
    def worker_count(self) -> int:
        """`workers`, with 0 resolved to the number of cores."""
        return self.workers or max(1, min(os.cpu_count() or 1, MAX_WORKERS))

    def worker_ports(self) -> tuple[int, ...]:
        """Every worker's port: the endpoints of Envoy's ext_authz cluster."""
        return tuple(self.base_port + i for i in range(self.worker_count))

    @property
    def bundle_path(self) -> Path:
        return self.policy_bundle if self.policy_bundle is not None else default_bundle_path()
