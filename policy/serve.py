"""Run the policy service until interrupted (``ztgate policy serve``).

A `PolicyHolder` gated by the bundle's compile and tests (and signature, when
keys are given) serves the bundle; with `watch`, a `BundleWatcher` re-loads the
bundle file or directory when it changes, through the same gate. The admin
token for the Policy API's writes is read from `admin_token_file` (created with
a fresh random token, mode 0600, when missing); without a file, writes are
refused.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import signal
from collections.abc import Mapping
from pathlib import Path

from crypto import keys
from policy.bundle import Bundle
from policy.decision_log import DecisionLog
from policy.reload import BundleWatcher, PolicyHolder
from policy.server import PolicyServerConfig, start_policy_server

__all__ = ["ServeError", "admin_token", "serve_forever"]

log = logging.getLogger("ztgate.policy.server")


class ServeError(Exception):
    """The service cannot start; the message says why (for the CLI's one-line error)."""


def admin_token(path: Path) -> str:
    """The token in `path`, or a new random one written there (0600, never overwritten)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    except FileExistsError:
        token = path.read_text(encoding="utf-8").strip()
        if len(token) < 16:
            raise ServeError(f"{path}: admin token shorter than 16 characters") from None
        return token
    token = secrets.token_urlsafe(32)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(token + "\n")
    return token


async def serve_forever(
    bundle: Bundle,
    *,
    config: PolicyServerConfig,
    bundle_path: Path | None = None,
    watch_interval: float | None = None,
    admin_token_file: Path | None = None,
    verify_keys: Mapping[str, keys.PublicKey] | None = None,
    decision_log_path: Path | None = None,
    stop: asyncio.Event | None = None,
) -> None:
    """Serve `bundle` until SIGINT/SIGTERM (or `stop` is set)."""
    holder = PolicyHolder(verify_keys=verify_keys, entrypoint=config.entrypoint)
    watcher = None
    if watch_interval is not None and bundle_path is not None:
        watcher = BundleWatcher(holder, bundle_path, interval=watch_interval)
        result = await watcher.check()  # the first poll loads it and remembers its content
    else:
        result = await holder.load(bundle)
    if result is None or not result.ok:
        why = "unreadable" if result is None else f"refused at {result.stage}: {result.reason}"
        raise ServeError(f"bundle {bundle.revision} {why}")
    token = admin_token(admin_token_file) if admin_token_file is not None else ""
    decision_log = DecisionLog(decision_log_path) if decision_log_path is not None else None
    if watcher is not None:
        watcher.start()
    running = await start_policy_server(
        holder, config=config, admin_token=token, decision_log=decision_log
    )
    writes = f"writes with the token in {admin_token_file}" if token else "read-only"
    print(f"policy service on {running.url} (bundle {holder.revision}; {writes})", flush=True)
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await running.stop()
        if watcher is not None:
            await watcher.stop()
        if decision_log is not None:
            decision_log.close()
        await holder.close()
