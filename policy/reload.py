"""Atomic hot reload: a new bundle is verified, compiled and tested before it serves.

Issue 4, "Atomic hot reload": a bundle that fails any step never takes effect
and the old one keeps serving; every decision records the revision that made
it. How:

- `PolicyHolder` holds one immutable `EmbeddedEngine`. A decision reads that
  reference exactly once and evaluates on that engine alone, so it is made by
  one complete revision and stamped with it (`Decision.revision`).
- `PolicyHolder.load` runs, off the event loop (`asyncio.to_thread`): signature
  verification (`policy.signing`, when keys are configured: an unsigned bundle
  is then refused; a signed bundle with no keys configured is refused too, as
  OPA does), compilation (`EmbeddedEngine(bundle)`), and the bundle's own Rego
  unit tests (`policy.testing.run_tests`). Only if all pass is the new engine
  published, by one attribute assignment. Loads are serialised, so they take
  effect in the order they were asked for.
- The engine that stops serving is not closed: decisions already in flight on
  it finish on it; it is freed when the last of them drops its reference.

`BundleWatcher` polls a bundle directory or ``.tar.gz`` every few seconds and
loads it when its content (SHA-256) changes; a refused bundle is reported once
and not retried until the file changes again. Publish bundles by writing a new
file and renaming it over the old one, so a poll never reads a half-written
tarball (a half-copied directory is caught by its signature, then re-read).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal

from crypto import keys
from policy.bundle import MAX_TOTAL_SIZE, SIGNATURES, Bundle, BundleError
from policy.decision import Decision, deny
from policy.embedded import EmbeddedEngine, PolicyCompileError
from policy.engine import DEFAULT_ENTRYPOINT
from policy.signing import verify_bundle
from policy.testing import TestReport, run_tests

__all__ = ["BundleWatcher", "LoadResult", "PolicyHolder", "read_bundle"]

log = logging.getLogger("ztgate.policy.reload")

Stage = Literal["read", "signature", "compile", "tests", "loaded"]
_MAX_REASON: Final = 500
_PASSTHROUGH: Final = (KeyboardInterrupt, SystemExit, asyncio.CancelledError, GeneratorExit)


@dataclass(frozen=True)
class LoadResult:
    """What became of one bundle: loaded, or refused at `stage` for `reason`."""

    ok: bool
    revision: str
    """The candidate bundle's revision ('' when it could not be read)."""
    stage: Stage
    """``loaded`` on success, else the step that refused it."""
    reason: str = ""
    tests: TestReport | None = None
    active: str = ""
    """The revision serving once this load finished (the old one after a refusal)."""


class _Refused(Exception):
    def __init__(self, stage: Stage, reason: str, tests: TestReport | None = None) -> None:
        super().__init__(reason)
        self.stage: Stage = stage
        self.reason = reason[:_MAX_REASON]
        self.tests = tests


def _describe_failures(report: TestReport) -> str:
    names = ", ".join(f"{name} ({why})" if why else name for name, why in report.failed[:5])
    more = f" and {len(report.failed) - 5} more" if len(report.failed) > 5 else ""
    return f"{len(report.failed)} test(s) failed: {names}{more}"


class PolicyHolder:
    """`policy.engine.PolicyEngine` whose bundle can be replaced while it serves.

    `verify_keys` (kid → SM2/P-256 public key) turns signature checking on for
    every load (an empty mapping trusts nothing rather than checking nothing);
    `scope` is the signature scope to require (see `policy.signing.verify_bundle`).
    `require_tests`: a bundle without any ``test_`` rule is refused — a policy
    nobody tested does not go live.
    """

    def __init__(
        self,
        *,
        verify_keys: Mapping[str, keys.PublicKey] | None = None,
        scope: str | None = None,
        entrypoint: str = DEFAULT_ENTRYPOINT,
        require_tests: bool = True,
    ) -> None:
        self._verify_keys = None if verify_keys is None else dict(verify_keys)
        self._scope = scope
        self._entrypoint = entrypoint
        self._require_tests = require_tests
        self._engine: EmbeddedEngine | None = None
        self._lock = asyncio.Lock()
        self._closed = False
        self.loads_ok = 0
        self.loads_refused = 0

    # -- PolicyEngine -------------------------------------------------------------------

    @property
    def revision(self) -> str:
        engine = self._engine
        return "" if engine is None else engine.revision

    @property
    def engine(self) -> EmbeddedEngine | None:
        """The engine serving now (for the OPA-compatible server's raw queries)."""
        return self._engine

    def evaluate(self, input_doc: object) -> Decision:
        """Synchronous `decide` for worker threads; never raises."""
        engine = self._engine  # read once: the whole decision is this engine's
        if engine is None:
            return deny("policy:closed" if self._closed else "policy:no_bundle")
        try:
            return engine.evaluate(input_doc)
        except _PASSTHROUGH:
            raise
        except BaseException as exc:  # includes pyo3 PanicException: fail closed
            return self._eval_failed(engine, exc)

    async def decide(self, input_doc: Mapping[str, Any]) -> Decision:
        engine = self._engine  # read once: the whole decision is this engine's
        if engine is None:
            return deny("policy:closed" if self._closed else "policy:no_bundle")
        try:
            return await engine.decide(input_doc)
        except _PASSTHROUGH:
            raise
        except BaseException as exc:  # includes pyo3 PanicException: fail closed
            return self._eval_failed(engine, exc)

    @staticmethod
    def _eval_failed(engine: EmbeddedEngine, exc: BaseException) -> Decision:
        log.error(
            "policy engine raised instead of deciding",
            extra={
                "event": "policy.eval_error",
                "error_type": type(exc).__name__,
                "revision": engine.revision,
            },
        )
        return deny("policy:eval_error", engine.revision)

    async def close(self) -> None:
        async with self._lock:
            self._closed = True
            engine, self._engine = self._engine, None
        if engine is not None:
            await engine.close()

    # -- loading --------------------------------------------------------------------------

    async def load(
        self, bundle: Bundle, *, verify_keys: Mapping[str, keys.PublicKey] | None = None
    ) -> LoadResult:
        """Verify, compile and test `bundle`; make it serve only if every step passes.

        `verify_keys` replaces the holder's keys for this load; any mapping, even an
        empty one, means "verify" (an empty one trusts nothing), so it cannot turn
        verification off. Never raises for a bad bundle: the `LoadResult` says why.
        """
        trusted = self._verify_keys if verify_keys is None else dict(verify_keys)
        async with self._lock:
            if self._closed:
                return self._refused(bundle.revision, _Refused("read", "policy holder is closed"))
            try:
                engine, report = await asyncio.to_thread(self._prepare, bundle, trusted)
            except _Refused as refusal:
                return self._refused(bundle.revision, refusal)
            previous = self.revision
            self._engine = engine  # the atomic swap: one reference assignment
            self.loads_ok += 1
        log.info(
            "policy bundle activated",
            extra={
                "event": "policy.reload",
                "revision": bundle.revision,
                "previous": previous,
                "tests_passed": len(report.passed),
                "coverage": report.coverage,
                "signed": trusted is not None,
            },
        )
        return LoadResult(True, bundle.revision, "loaded", "", report, bundle.revision)

    def _prepare(
        self, bundle: Bundle, trusted: Mapping[str, keys.PublicKey] | None
    ) -> tuple[EmbeddedEngine, TestReport]:
        """Everything that may refuse a bundle; runs on a worker thread."""
        if trusted is not None:
            try:
                verify_bundle(bundle, keys=trusted, scope=self._scope)
            except BundleError as exc:
                raise _Refused("signature", str(exc)) from None
            except Exception as exc:  # anything unexpected refuses too: fail closed
                raise _Refused("signature", f"{type(exc).__name__}: {exc}") from None
        elif SIGNATURES in bundle.files:
            raise _Refused("signature", "bundle is signed but no verification keys are configured")
        try:
            engine = EmbeddedEngine(bundle, entrypoint=self._entrypoint)
        except PolicyCompileError as exc:
            where = "; ".join(f"{f}:{line}: {msg}" for f, line, msg in exc.errors[:5])
            raise _Refused("compile", where or str(exc)) from None
        except _PASSTHROUGH:
            raise
        except BaseException as exc:  # includes pyo3's PanicException
            raise _Refused("compile", f"{type(exc).__name__}: {exc}") from None
        try:
            report = run_tests(bundle)
        except Exception as exc:  # a test runner crash refuses the bundle
            raise _Refused("tests", f"test run failed: {type(exc).__name__}: {exc}") from None
        if not report.ok:
            raise _Refused("tests", _describe_failures(report), report)
        if self._require_tests and not report.passed:
            raise _Refused("tests", "the bundle has no test_ rules", report)
        return engine, report

    def _refused(self, revision: str, refusal: _Refused) -> LoadResult:
        self.loads_refused += 1
        active = self.revision
        log.warning(
            "policy bundle refused; previous revision keeps serving",
            extra={
                "event": "policy.reload_refused",
                "revision": revision,
                "stage": refusal.stage,
                "reason": refusal.reason,
                "active": active,
            },
        )
        return LoadResult(False, revision, refusal.stage, refusal.reason, refusal.tests, active)

    async def load_from_dir(self, path: str | Path) -> LoadResult:
        """Load a bundle directory or ``.tar.gz`` file (read off the event loop)."""
        try:
            bundle, _ = await asyncio.to_thread(read_bundle, Path(path))
        except (BundleError, OSError) as exc:
            return self._refused("", _Refused("read", f"{path}: {exc}"))
        return await self.load(bundle)


def read_bundle(path: Path) -> tuple[Bundle, str]:
    """The bundle at `path` (directory or ``.tar.gz``) and a SHA-256 of its content."""
    if path.is_dir():
        bundle = Bundle.from_dir(path)
        digest = hashlib.sha256()
        for name, data in sorted(bundle.files.items()):
            digest.update(hashlib.sha256(name.encode()).digest())
            digest.update(hashlib.sha256(data).digest())
        return bundle, digest.hexdigest()
    with path.open("rb") as handle:
        data = handle.read(MAX_TOTAL_SIZE + 1)
    if len(data) > MAX_TOTAL_SIZE:
        raise BundleError(f"{path}: larger than {MAX_TOTAL_SIZE} bytes")
    return Bundle.from_tarball(data), hashlib.sha256(data).hexdigest()


class BundleWatcher:
    """Poll `path` every `interval` seconds; load it into `holder` when it changes."""

    def __init__(self, holder: PolicyHolder, path: str | Path, *, interval: float = 5.0) -> None:
        if interval <= 0:
            raise ValueError("interval must be positive")
        self.holder = holder
        self.path = Path(path)
        self.interval = interval
        self._last: str | None = None
        self._task: asyncio.Task[None] | None = None

    async def check(self) -> LoadResult | None:
        """One poll: the `LoadResult` if the content changed since the last poll, else None."""
        try:
            bundle, fingerprint = await asyncio.to_thread(read_bundle, self.path)
        except (BundleError, OSError) as exc:
            reason = f"{self.path}: {exc}"
            if self._last == "error:" + reason:
                return None
            self._last = "error:" + reason
            return self.holder._refused("", _Refused("read", reason))
        if fingerprint == self._last:
            return None
        self._last = fingerprint
        return await self.holder.load(bundle)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"policy-watch:{self.path}")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        while True:
            try:
                await self.check()
            except Exception:  # the watcher must outlive any one bad poll
                log.exception("policy bundle poll failed", extra={"event": "policy.watch_error"})
            await asyncio.sleep(self.interval)
