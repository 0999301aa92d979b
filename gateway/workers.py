"""Several edge-agent processes, so ext_authz is not held to one core.

The Python hop is the gateway's ceiling (STANDARDS.md): one process runs one
event loop on one core, and the policy engine holds the GIL while it
evaluates. So `Supervisor` starts `AgentConfig.worker_count` processes
(default: one per core) with the ``spawn`` start method — no state inherited
from the parent, each opens its own store connections, token cache, policy
engine and decision log — and worker *i* serves ext_authz on loopback port
``base_port + i``. The control plane lists every port as an endpoint of the
ext_authz cluster and Envoy balances across them.

Caches are per worker; revocations reach every worker through the store
(`authn.revocation_sync`, each worker pulls every `revocation_sync_seconds`).

The parent supervises: a worker that dies is restarted on its port (with
exponential backoff, 0.5 s doubling to 30 s, reset once a worker has lived a
minute, so a crash loop does not spin). SIGTERM or SIGINT stops the workers
cleanly: each stops accepting, lets in-flight checks finish (2 s grace), flushes
its decision log and closes its store; one still alive after the timeout is
killed. A worker whose parent disappears stops by itself.

Run: ``python -m gateway.workers CONFIG.toml --components MODULE:FACTORY``
(the ``[agent]`` table of CONFIG.toml is an `AgentConfig`; FACTORY builds the
device assessor and risk scorer, see `gateway.agent.ComponentsFactory`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import importlib
import logging
import multiprocessing
import os
import signal
import sys
import threading
import time
import tomllib
from dataclasses import dataclass
from multiprocessing.process import BaseProcess
from multiprocessing.synchronize import Event
from pathlib import Path
from typing import Any, Final

from gateway.agent import AgentStartError, ComponentsFactory, open_agent
from gateway.agent_config import AgentConfig
from gateway.ext_authz import start_server
from gateway.masking.service import MaskingSettings
from gateway.parent_watch import die_with_parent
from ztgate import logs

__all__ = ["Supervisor", "WorkerStartError", "main"]

log = logging.getLogger("ztgate.gateway.workers")

GRACE: Final = 2.0
BACKOFF_START: Final = 0.5
BACKOFF_MAX: Final = 30.0
STABLE_AFTER: Final = 60.0
EXIT_START_FAILED: Final = 3


class WorkerStartError(RuntimeError):
    """A worker exited before it served."""


async def _serve(config: AgentConfig, index: int, factory: ComponentsFactory, ready: Event) -> None:
    # A broken rules or key file stops the worker before it serves anything.
    masking = MaskingSettings.from_config(
        config.masking_rules, config.masking_key_file, config.masking_text_types
    )
    components = await factory(config)
    agent = await open_agent(config, components, worker=index)
    try:
        server, _ = await start_server(
            agent.pipeline, config.host, config.base_port + index, masking, agent.response_signer
        )
    except BaseException:
        await agent.close()
        raise
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    parent = os.getppid()

    async def orphaned() -> None:
        while os.getppid() == parent:
            await asyncio.sleep(1.0)
        stop.set()

    watch = asyncio.create_task(orphaned())
    # Everything loaded so far (policy engine, caches, modules) lives as long as the
    # worker: move it out of the collector's generations so collections stay short.
    gc.collect()
    gc.freeze()
    ready.set()
    await stop.wait()
    watch.cancel()
    await server.stop(GRACE)
    await agent.close()


def _worker_main(
    config: AgentConfig, index: int, factory: ComponentsFactory, ready: Event, level: str
) -> None:
    """Entry point of a spawned worker process."""
    logs.configure(level)
    try:
        asyncio.run(_serve(config, index, factory, ready))
    except (AgentStartError, OSError) as exc:
        log.error(
            "edge agent worker could not start",
            extra={"event": "gateway.worker_start_failed", "worker": index, "error": str(exc)},
        )
        sys.exit(EXIT_START_FAILED)


@dataclass
class _Slot:
    index: int
    process: BaseProcess
    ready: Event
    started_at: float
    failures: int = 0
    restart_at: float | None = None


class Supervisor:
    """Starts, watches and stops the worker processes (see the module docstring)."""

    def __init__(
        self, config: AgentConfig, factory: ComponentsFactory, *, log_level: str = "info"
    ) -> None:
        self.config = config
        self._factory = factory
        self._level = log_level
        self._mp = multiprocessing.get_context("spawn")
        self._slots: list[_Slot] = []
        self._stopping = threading.Event()
        self.restarts = 0

    @property
    def ports(self) -> tuple[int, ...]:
        return self.config.worker_ports()

    def pids(self) -> list[int | None]:
        return [slot.process.pid for slot in self._slots]

    def _spawn(self, index: int) -> tuple[BaseProcess, Event]:
        ready = self._mp.Event()
        process = self._mp.Process(
            target=_worker_main,
            args=(self.config, index, self._factory, ready, self._level),
            name=f"ztgate-agent-{index}",
            daemon=False,
        )
        process.start()
        return process, ready

    def start(self, timeout: float = 60.0) -> None:
        """Start every worker and wait until each serves; `WorkerStartError` otherwise."""
        now = time.monotonic()
        for index in range(self.config.worker_count):
            process, ready = self._spawn(index)
            self._slots.append(_Slot(index, process, ready, now))
        deadline = now + timeout
        for slot in self._slots:
            while not slot.ready.wait(0.1):
                if not slot.process.is_alive() or time.monotonic() > deadline:
                    code = slot.process.exitcode
                    self.stop()
                    what = "timed out" if code is None else f"exited with status {code}"
                    raise WorkerStartError(f"worker {slot.index} {what} before serving")
        log.info(
            "edge agent workers serving",
            extra={"event": "gateway.workers_ready", "ports": list(self.ports)},
        )

    def supervise_once(self) -> list[int]:
        """Restart dead workers whose backoff has passed; the indexes restarted."""
        restarted = []
        now = time.monotonic()
        for slot in self._slots:
            if self._stopping.is_set() or slot.process.is_alive():
                continue
            if slot.restart_at is None:
                lived = now - slot.started_at
                slot.failures = 1 if lived >= STABLE_AFTER else slot.failures + 1
                delay = min(BACKOFF_MAX, BACKOFF_START * 2 ** (slot.failures - 1))
                slot.restart_at = now + delay
                log.error(
                    "edge agent worker died; restarting",
                    extra={
                        "event": "gateway.worker_died",
                        "worker": slot.index,
                        "exitcode": slot.process.exitcode,
                        "restart_in": delay,
                    },
                )
            if now >= slot.restart_at:
                slot.process, slot.ready = self._spawn(slot.index)
                slot.started_at, slot.restart_at = now, None
                self.restarts += 1
                restarted.append(slot.index)
        return restarted

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM every worker, wait up to `timeout`, then kill the stragglers."""
        self._stopping.set()
        for slot in self._slots:
            with contextlib.suppress(ValueError):  # already closed
                if slot.process.is_alive():
                    slot.process.terminate()
        deadline = time.monotonic() + timeout
        for slot in self._slots:
            with contextlib.suppress(ValueError):
                slot.process.join(max(0.0, deadline - time.monotonic()))
                if slot.process.is_alive():
                    log.warning(
                        "edge agent worker did not stop in time; killing it",
                        extra={"event": "gateway.worker_killed", "worker": slot.index},
                    )
                    slot.process.kill()
                    slot.process.join(5.0)

    def request_stop(self, *_: Any) -> None:
        """Signal-handler-safe: `run` notices and stops the workers."""
        self._stopping.set()

    def run(self, poll: float = 0.5) -> int:
        """Start, supervise until SIGTERM/SIGINT, stop; the process exit status."""
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, self.request_stop)
        try:
            self.start()
        except WorkerStartError as exc:
            log.error(str(exc), extra={"event": "gateway.workers_start_failed"})
            return EXIT_START_FAILED
        while not self._stopping.wait(poll):
            self.supervise_once()
        self.stop()
        log.info("edge agent workers stopped", extra={"event": "gateway.workers_stopped"})
        return 0


def load_factory(spec: str) -> ComponentsFactory:
    """``package.module:function`` → that function."""
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise ValueError("--components: expected MODULE:FACTORY")
    factory: ComponentsFactory = getattr(importlib.import_module(module_name), attribute)
    return factory


def main(argv: list[str] | None = None) -> int:
    from ztgate.config import ConfigError, from_dict

    parser = argparse.ArgumentParser(prog="python -m gateway.workers", description=__doc__)
    parser.add_argument("config", type=Path, help="TOML file whose [agent] table is AgentConfig")
    parser.add_argument("--components", required=True, help="MODULE:FACTORY")
    parser.add_argument("--log-level", default="info")
    args = parser.parse_args(argv)
    die_with_parent()
    logs.configure(args.log_level)
    try:
        doc = tomllib.loads(args.config.read_text(encoding="utf-8"))
        config = from_dict(AgentConfig, doc.get("agent", {}), "agent")
        factory = load_factory(args.components)
    except (OSError, tomllib.TOMLDecodeError, ConfigError, ValueError, ImportError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return Supervisor(config, factory, log_level=args.log_level).run()


if __name__ == "__main__":
    sys.exit(main())
