"""A `PolicyEngine` that asks a remote OPA over its REST API.

Decisions: ``POST /v1/data/<entrypoint>?provenance=true`` with ``{"input": …}``
(https://www.openpolicyagent.org/docs/rest-api#get-a-document-with-input); the
``result`` goes through `policy.decision.parse_result`, so an undefined or
malformed result is a deny. The bundle revision comes from the response's
``provenance.bundles`` (OPA's provenance API), so every decision still records
the revision that made it.

Fail closed (issue 4, "a timeout or error is a deny"): a timeout, a refused
connection, a non-200 status, a body that is not a JSON object, or an open
circuit is a deny with a reason — ``policy:remote_timeout``,
``policy:remote_error`` or ``policy:circuit_open`` — never an exception and
never an allow. Each request has a deadline (default 50 ms, connect included).

`CircuitBreaker` stops a failing OPA from adding its timeout to every request:
closed → open after `failure_threshold` consecutive failures within
`failure_window` seconds; after `cooldown` one probe is let through
(half-open); its success closes the circuit, its failure re-opens it.

Administration (`put_policy`, `delete_policy`, `list_policies`, `health`) uses a
longer deadline and raises `RemoteOpaError` carrying OPA's error document.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal
from urllib.parse import quote

import aiohttp

from policy.contract import MAX_INPUT_BYTES, check_input
from policy.decision import Decision, deny, parse_result
from policy.engine import DEFAULT_ENTRYPOINT

__all__ = [
    "REASON_CIRCUIT_OPEN",
    "REASON_REMOTE_ERROR",
    "REASON_REMOTE_TIMEOUT",
    "CircuitBreaker",
    "RemoteOpaEngine",
    "RemoteOpaError",
]

log = logging.getLogger("ztgate.policy.remote_opa")

REASON_REMOTE_TIMEOUT: Final = "policy:remote_timeout"
REASON_REMOTE_ERROR: Final = "policy:remote_error"
REASON_CIRCUIT_OPEN: Final = "policy:circuit_open"
MAX_RESPONSE_BYTES: Final = 1024 * 1024
"""A decision result is small; a larger answer is treated as an error, not buffered."""
MAX_ADMIN_RESPONSE_BYTES: Final = 64 * 1024 * 1024

BreakerState = Literal["closed", "open", "half_open"]


class RemoteOpaError(Exception):
    """An administrative call failed; `status` 0 means no HTTP answer at all."""

    def __init__(
        self, status: int, code: str, message: str, errors: tuple[Mapping[str, Any], ...] = ()
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.errors = errors


class CircuitBreaker:
    """Consecutive-failure circuit breaker with a single half-open probe.

    Not thread-safe: one breaker per event loop (the engine's).
    """

    def __init__(
        self,
        *,
        failure_threshold: int = 5,
        failure_window: float = 10.0,
        cooldown: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if failure_threshold < 1 or failure_window <= 0 or cooldown <= 0:
            raise ValueError("threshold must be ≥ 1, window and cool-down > 0")
        self.failure_threshold = failure_threshold
        self.failure_window = failure_window
        self.cooldown = cooldown
        self._clock = clock
        self._failures: deque[float] = deque()
        self._state: BreakerState = "closed"
        self._opened_at = 0.0
        self._probe_out = False

    @property
    def state(self) -> BreakerState:
        if self._state == "open" and self._clock() - self._opened_at >= self.cooldown:
            return "half_open"
        return self._state

    def allow(self) -> bool:
        """Whether a request may go out now; in half-open, only one probe at a time."""
        state = self.state
        if state == "closed":
            return True
        if state == "half_open" and not self._probe_out:
            self._state = "half_open"
            self._probe_out = True
            return True
        return False

    def record_success(self) -> None:
        if self._state != "closed":
            log.info("policy circuit closed", extra={"event": "circuit_closed"})
        self._state = "closed"
        self._failures.clear()
        self._probe_out = False

    def record_failure(self) -> None:
        now = self._clock()
        if self._state == "half_open":
            self._trip(now)
            return
        if self._state == "open":
            return  # a request that started before the trip finished late
        self._failures.append(now)
        while self._failures and now - self._failures[0] > self.failure_window:
            self._failures.popleft()
        if len(self._failures) >= self.failure_threshold:
            self._trip(now)

    def release(self) -> None:
        """A request ended without an outcome (cancelled): free the probe slot."""
        self._probe_out = False

    def _trip(self, now: float) -> None:
        self._state = "open"
        self._opened_at = now
        self._failures.clear()
        self._probe_out = False
        log.warning(
            "policy circuit opened", extra={"event": "circuit_open", "cooldown_s": self.cooldown}
        )


@dataclass(frozen=True)
class _Outcome:
    """What one decision request produced, before it becomes a `Decision`."""

    decision: Decision
    healthy: bool
    detail: dict[str, Any] = field(default_factory=dict)


class RemoteOpaEngine:
    """`PolicyEngine` over OPA's REST API at `url` (e.g. ``http://127.0.0.1:8181``).

    The aiohttp session is created on first use in the running loop and closed
    by `close`; use one engine per event loop.
    """

    def __init__(
        self,
        url: str,
        *,
        entrypoint: str = DEFAULT_ENTRYPOINT,
        timeout: float = 0.050,
        admin_timeout: float = 10.0,
        breaker: CircuitBreaker | None = None,
        token: str | None = None,
        connection_limit: int = 100,
    ) -> None:
        if not url.startswith(("http://", "https://")):
            raise ValueError("url must be http:// or https://")
        if timeout <= 0 or admin_timeout <= 0:
            raise ValueError("timeouts must be positive")
        self.url = url.rstrip("/")
        self.entrypoint = entrypoint.strip("/")
        self.timeout = timeout
        self.admin_timeout = admin_timeout
        self.breaker = breaker or CircuitBreaker()
        self._token = token
        self._connection_limit = connection_limit
        self._session: aiohttp.ClientSession | None = None
        self._revision = ""
        self._decision_url = (
            f"{self.url}/v1/data/{quote(self.entrypoint, safe='/')}?provenance=true"
        )

    @property
    def revision(self) -> str:
        """Revision the remote OPA reported with its last answer ('' before one)."""
        return self._revision

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit=self._connection_limit)
            self._session = aiohttp.ClientSession(connector=connector, raise_for_status=False)
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def decide(self, input_doc: Mapping[str, Any]) -> Decision:
        """The remote decision; every failure is a deny with a reason (never raises)."""
        reason = check_input(input_doc)
        if reason is not None:
            return deny(reason, self._revision)  # same refusal as the embedded engine
        try:
            body = json.dumps({"input": input_doc}, allow_nan=False, separators=(",", ":"))
        except (TypeError, ValueError, RecursionError):
            return deny("input:not_json", self._revision)
        payload = body.encode()
        if len(payload) > MAX_INPUT_BYTES + 16:
            return deny("input:too_large", self._revision)
        probe = self.breaker.state == "half_open"
        if not self.breaker.allow():
            return deny(REASON_CIRCUIT_OPEN, self._revision)
        settled = False
        try:
            outcome = await self._ask(payload)
            settled = True
        finally:
            if probe and not settled:  # a cancelled probe: no verdict, let another go
                self.breaker.release()
        if outcome.healthy:
            self.breaker.record_success()
        else:
            self.breaker.record_failure()
            log.warning(
                "remote policy decision failed",
                extra={
                    "reason": outcome.decision.reasons[0],
                    "url": self.url,
                    "breaker": self.breaker.state,
                    **outcome.detail,
                },
            )
        return outcome.decision

    async def _ask(self, body: bytes) -> _Outcome:
        revision = self._revision
        try:
            async with asyncio.timeout(self.timeout):
                status, raw = await self._request(
                    "POST",
                    self._decision_url,
                    body,
                    content_type="application/json",
                    timeout=self.timeout,
                    limit=MAX_RESPONSE_BYTES,
                )
        except TimeoutError:
            return _Outcome(deny(REASON_REMOTE_TIMEOUT, revision), False)
        except (aiohttp.ClientError, OSError, ValueError) as exc:
            return _Outcome(
                deny(REASON_REMOTE_ERROR, revision), False, detail={"error": type(exc).__name__}
            )
        except Exception as exc:  # the PolicyEngine contract: never raise
            log.exception("unexpected error calling the remote policy engine")
            return _Outcome(
                deny(REASON_REMOTE_ERROR, revision), False, detail={"error": type(exc).__name__}
            )
        if status != 200:
            return _Outcome(deny(REASON_REMOTE_ERROR, revision), False, detail={"status": status})
        doc = _json_object(raw)
        if doc is None:
            return _Outcome(
                deny(REASON_REMOTE_ERROR, revision), False, detail={"error": "not a JSON object"}
            )
        revision = _provenance_revision(doc.get("provenance")) or revision
        self._revision = revision
        return _Outcome(parse_result(doc.get("result"), revision), True)

    async def _request(
        self,
        method: str,
        url: str,
        body: bytes | None = None,
        *,
        content_type: str | None = None,
        timeout: float,
        limit: int,
        admin: bool = False,
    ) -> tuple[int, bytes]:
        headers = {"Accept": "application/json"}
        if content_type:
            headers["Content-Type"] = content_type
        if admin and self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        client_timeout = aiohttp.ClientTimeout(total=timeout, connect=timeout)
        async with self._client().request(
            method, url, data=body, headers=headers, timeout=client_timeout
        ) as resp:
            raw = await resp.content.read(limit + 1)
            if len(raw) > limit:
                raise ValueError("response too large")
            return resp.status, raw

    # -- administration ---------------------------------------------------------------

    async def _admin(
        self, method: str, path: str, body: bytes | None = None, content_type: str | None = None
    ) -> tuple[int, dict[str, Any]]:
        try:
            async with asyncio.timeout(self.admin_timeout):
                status, raw = await self._request(
                    method,
                    f"{self.url}{path}",
                    body,
                    content_type=content_type,
                    timeout=self.admin_timeout,
                    limit=MAX_ADMIN_RESPONSE_BYTES,
                    admin=True,
                )
        except TimeoutError:
            raise RemoteOpaError(0, "timeout", f"no answer within {self.admin_timeout}s") from None
        except (aiohttp.ClientError, OSError, ValueError) as exc:
            raise RemoteOpaError(0, "unreachable", type(exc).__name__) from None
        return status, _json_object(raw) or {}

    async def put_policy(self, policy_id: str, source: str) -> None:
        """Create or replace a module (``PUT /v1/policies/<id>``); 400 → `RemoteOpaError`
        with OPA's compile errors in `errors`."""
        status, doc = await self._admin(
            "PUT", _policy_path(policy_id), source.encode("utf-8"), "text/plain"
        )
        if status != 200:
            raise _error(status, doc)

    async def delete_policy(self, policy_id: str) -> None:
        status, doc = await self._admin("DELETE", _policy_path(policy_id))
        if status != 200:
            raise _error(status, doc)

    async def get_policy(self, policy_id: str) -> str:
        """The module's Rego source (``result.raw``)."""
        status, doc = await self._admin("GET", _policy_path(policy_id))
        result = doc.get("result")
        if status != 200 or not isinstance(result, dict) or not isinstance(result.get("raw"), str):
            raise _error(status, doc)
        return str(result["raw"])

    async def list_policies(self) -> list[str]:
        """Ids of the loaded modules (``GET /v1/policies``)."""
        status, doc = await self._admin("GET", "/v1/policies")
        result = doc.get("result")
        if status != 200 or not isinstance(result, list):
            raise _error(status, doc)
        return sorted(str(p["id"]) for p in result if isinstance(p, dict) and "id" in p)

    async def health(self, *, bundles: bool = False) -> bool:
        """OPA's ``/health`` (``?bundles``: the bundle is activated); False on any failure."""
        try:
            status, _ = await self._admin("GET", "/health?bundles" if bundles else "/health")
        except RemoteOpaError:
            return False
        return status == 200


def _policy_path(policy_id: str) -> str:
    if not policy_id or policy_id.startswith("/") or ".." in policy_id.split("/"):
        raise ValueError("policy id must be a relative path")
    return "/v1/policies/" + quote(policy_id, safe="/")


def _error(status: int, doc: Mapping[str, Any]) -> RemoteOpaError:
    errors = doc.get("errors")
    return RemoteOpaError(
        status,
        str(doc.get("code", "unexpected_response")),
        str(doc.get("message", f"HTTP {status}")),
        tuple(e for e in errors if isinstance(e, dict)) if isinstance(errors, list) else (),
    )


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not JSON")


def _json_object(raw: bytes) -> dict[str, Any] | None:
    try:
        doc = json.loads(raw, parse_constant=_reject_constant)
    except (ValueError, RecursionError):
        return None
    return doc if isinstance(doc, dict) else None


def _provenance_revision(provenance: object) -> str:
    """The bundle revision(s) from OPA's provenance: one bundle → its revision; several →
    ``name=rev`` joined by ``,`` (sorted); else the legacy top-level ``revision``."""
    if not isinstance(provenance, dict):
        return ""
    bundles = provenance.get("bundles")
    if isinstance(bundles, dict) and bundles:
        revs = {
            str(name): b["revision"]
            for name, b in bundles.items()
            if isinstance(b, dict) and isinstance(b.get("revision"), str)
        }
        if len(revs) == 1:
            only: str = next(iter(revs.values()))
            return only[:128]
        return ",".join(f"{n}={r}" for n, r in sorted(revs.items()))[:256]
    legacy = provenance.get("revision")
    return legacy[:128] if isinstance(legacy, str) else ""
