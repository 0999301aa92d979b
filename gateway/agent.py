"""One worker's edge agent, assembled from `AgentConfig`: the composition root.

`open_agent` opens, in order, everything a worker's pipeline needs and fails
loudly (`AgentStartError`, naming the configuration key) rather than serve in
a degraded state:

- the authn store (revocations, DPoP replay nonces, users' kinds);
- the token keys (JWKS file) and a `TokenVerifier` with its own cache, synced
  with the store's revocations once before serving and then every
  `revocation_sync_seconds` (`authn.revocation_sync`);
- the policy bundle in a `PolicyHolder` (verified, compiled, tested; one
  engine per worker process) and its `BundleWatcher` for hot reload;
- the decision log (``decisions-<worker>.jsonl``: one file per worker, so
  workers never interleave or race on rotation);
- the assertion signer (SM2 key ring or HMAC-SM3 key);
- the response signer (`load_response_signer`), when a key file is configured.

Secret files (HMAC keys, the pseudonym key) must not be readable by group or
others.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import stat
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from authn.consents import ConsentStore, open_consents
from authn.revocation_sync import keep_revocations_synced
from authn.rfc7591 import RegistrationStore, open_registrations
from authn.roles import RoleStore, open_roles
from authn.store import Store, open_store
from authn.tokens import TokenConfig, TokenVerifier
from crypto.envelope import KeyEncryptionKeyRing
from crypto.errors import CryptoError
from crypto.keyring import KeyRing
from gateway.agent_config import AgentConfig
from gateway.assertion import AssertionSigner
from gateway.identity import Authenticator
from gateway.jwks import JwksError, JwksKeys
from gateway.pipeline import Components, Pipeline
from gateway.quotas import Quotas
from gateway.response_signing import ResponseSigner
from gateway.signatures import RequestSignatures
from policy.decision_log import DecisionLog
from policy.reload import BundleWatcher, PolicyHolder

__all__ = ["Agent", "AgentStartError", "ComponentsFactory", "open_agent"]

log = logging.getLogger("ztgate.gateway.agent")

ComponentsFactory = Callable[[AgentConfig], Awaitable[Components]]
"""Builds a worker's device assessor and risk scorer; must be importable by name
(worker processes are spawned, and receive it pickled)."""
MAX_SECRET_FILE: Final = 4096


class AgentStartError(RuntimeError):
    """The agent cannot start; the message begins with the configuration key at fault."""


def read_secret(path: Path, key: str, *, min_length: int = 32) -> bytes:
    """A key file's raw bytes; refused when group/other may read it or it is too short."""
    try:
        mode = path.stat().st_mode
        data = path.read_bytes()[: MAX_SECRET_FILE + 1]
    except OSError as exc:
        raise AgentStartError(f"{key}: cannot read {path}: {exc.strerror}") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise AgentStartError(f"{key}: {path} must not be accessible by group or others")
    if not min_length <= len(data) <= MAX_SECRET_FILE:
        raise AgentStartError(f"{key}: {path} must hold {min_length} to {MAX_SECRET_FILE} bytes")
    return data


def load_response_signer(config: AgentConfig) -> ResponseSigner | None:
    """The edge's response-signing key (``response_signing_key_file``), or None."""
    path = config.response_signing_key_file
    if path is None:
        return None
    data = read_secret(path, "response_signing_key_file", min_length=64)
    try:
        return ResponseSigner.from_pem(data)
    except ValueError as exc:
        raise AgentStartError(f"response_signing_key_file: {path}: {exc}") from None


def _signer(config: AgentConfig) -> AssertionSigner:
    if config.assertion_hmac_key is not None:
        secret = read_secret(config.assertion_hmac_key, "assertion_hmac_key")
        return AssertionSigner(issuer=config.node_id, ttl=config.assertion_ttl, hmac_key=secret)
    assert config.assertion_keyring is not None
    try:
        kek = None
        if config.assertion_kek is not None:
            kek = KeyEncryptionKeyRing.from_file(config.assertion_kek)
        ring = KeyRing.load(config.assertion_keyring, envelope=kek)
        return AssertionSigner(issuer=config.node_id, ttl=config.assertion_ttl, keyring=ring)
    except (CryptoError, OSError, ValueError) as exc:
        raise AgentStartError(f"assertion_keyring: {exc}") from None


@dataclass
class Agent:
    config: AgentConfig
    pipeline: Pipeline
    store: Store
    verifier: TokenVerifier
    token_keys: JwksKeys
    policy: PolicyHolder
    decision_log: DecisionLog
    components: Components
    _watcher: BundleWatcher
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)
    consents: ConsentStore | None = None
    quotas: Quotas | None = None
    registrations: RegistrationStore | None = None
    roles: RoleStore | None = None
    response_signer: ResponseSigner | None = None
    """Signs the responses to signed requests (in ext_proc); None = they are blocked."""

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self._watcher.stop()
        await self.policy.close()
        await asyncio.to_thread(self.decision_log.close)
        if self.components.close is not None:
            await self.components.close()
        if self.consents is not None:
            await self.consents.close()
        if self.registrations is not None:
            await self.registrations.close()
        if self.roles is not None:
            await self.roles.close()
        if self.quotas is not None:
            await self.quotas.close()
        await self.store.close()


async def _reload_keys(keys: JwksKeys, interval: float) -> None:
    while True:
        await asyncio.sleep(interval)
        await asyncio.to_thread(keys.reload)


def _policy_holder(config: AgentConfig) -> PolicyHolder:
    if config.policy_verify_jwks is None:
        return PolicyHolder()
    try:
        verify_keys = JwksKeys(config.policy_verify_jwks).keys
    except (OSError, JwksError) as exc:
        raise AgentStartError(f"policy_verify_jwks: {exc}") from None
    return PolicyHolder(verify_keys=verify_keys)


def _decision_log(config: AgentConfig, worker: int) -> DecisionLog:
    pseudonym_key = None
    if config.decision_log_pseudonym_key is not None:
        pseudonym_key = read_secret(
            config.decision_log_pseudonym_key, "decision_log_pseudonym_key", min_length=16
        )
    try:
        config.decision_log_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        return DecisionLog(
            config.decision_log_dir / f"decisions-{worker}.jsonl",
            pseudonym_key=pseudonym_key,
            labels={"node": config.node_id, "worker": str(worker)},
        )
    except OSError as exc:
        raise AgentStartError(f"decision_log_dir: {exc}") from None


async def open_agent(
    config: AgentConfig,
    components: Components,
    *,
    worker: int = 0,
    clock: Callable[[], float] = time.time,
) -> Agent:
    """Open everything worker `worker` needs (see the module docstring)."""
    signer = _signer(config)
    response_signer = load_response_signer(config)
    holder = _policy_holder(config)
    try:
        token_keys = JwksKeys(config.token_jwks or Path())
    except (OSError, JwksError) as exc:
        raise AgentStartError(f"token_jwks: {exc}") from None
    try:
        store = await open_store(config.store_url, schema=config.store_schema or None)
    except Exception as exc:
        raise AgentStartError(f"store_url: cannot open the store ({type(exc).__name__})") from None
    try:
        consents = await open_consents(config.store_url, schema=config.store_schema or None)
    except Exception as exc:
        await store.close()
        raise AgentStartError(
            f"store_url: cannot open the consents ({type(exc).__name__})"
        ) from None
    try:
        registrations = await open_registrations(
            config.store_url, schema=config.store_schema or None
        )
        roles = await open_roles(config.store_url, schema=config.store_schema or None)
    except Exception as exc:
        await consents.close()
        await store.close()
        raise AgentStartError(
            f"store_url: cannot open the registrations ({type(exc).__name__})"
        ) from None
    tasks: list[asyncio.Task[None]] = []
    try:
        tokens = TokenConfig(
            issuer=config.token_issuer,
            audience=config.token_audience,
            access_ttl=config.token_max_ttl,
            leeway=config.token_leeway,
            cache_size=config.token_cache_size,
        )
        verifier = TokenVerifier(token_keys.resolve, store, tokens, clock=clock)
        await verifier.sync_revocations()
        watcher = BundleWatcher(holder, config.bundle_path, interval=config.policy_watch_seconds)
        loaded = await watcher.check()
        if loaded is None or not loaded.ok:
            why = "unreadable" if loaded is None else f"{loaded.stage}: {loaded.reason}"
            raise AgentStartError(f"policy_bundle: {config.bundle_path} refused ({why})")
        decision_log = _decision_log(config, worker)
    except BaseException:
        await roles.close()
        await registrations.close()
        await consents.close()
        await store.close()
        raise

    staleness = config.revocation_max_staleness

    def revocations_fresh() -> bool:
        last = verifier.last_sync
        return last is not None and clock() - last <= staleness

    quotas = Quotas.open(config.quota_tiers, config.quota_redis_url)
    pipeline = Pipeline(
        authenticator=Authenticator(
            verifier,
            store,
            consents=consents,
            registrations=registrations,
            roles=roles,
            subject_ttl=config.subject_cache_seconds,
        ),
        components=components,
        policy=holder,
        signer=signer,
        decision_log=decision_log,
        timeout=config.check_timeout,
        revocations_fresh=revocations_fresh,
        max_signals_bytes=config.max_signals_bytes,
        quotas=quotas,
        signatures=RequestSignatures(store, clock=clock),
        clock=clock,
    )
    tasks.append(
        asyncio.create_task(keep_revocations_synced(verifier, config.revocation_sync_seconds))
    )
    tasks.append(asyncio.create_task(_reload_keys(token_keys, config.keys_reload_seconds)))
    watcher.start()
    log.info(
        "edge agent ready",
        extra={
            "event": "gateway.agent_ready",
            "worker": worker,
            "pid": os.getpid(),
            "policy_revision": holder.revision,
        },
    )
    return Agent(
        config,
        pipeline,
        store,
        verifier,
        token_keys,
        holder,
        decision_log,
        components,
        watcher,
        tasks,
        consents,
        quotas,
        registrations,
        roles,
        response_signer,
    )
