"""ztgate's policy service: OPA's REST API answered by the embedded engine.

Standard OPA clients and tools (e.g. PyPI ``opa-python-client``) work against
it (issue 4, "OPA-compatible server"). Endpoints, after
https://www.openpolicyagent.org/docs/rest-api:

- ``POST /v1/data/{path}`` ``{"input": …}`` → ``{"result": …, "decision_id": …}``;
  ``result`` is omitted when the document is undefined, and a body without
  ``input`` gets OPA's ``api_usage_warning``. ``GET /v1/data/{path}``
  (``?input=`` JSON) and ``POST /v0/data/{path}`` (the body *is* the input;
  undefined → 404 ``undefined_document``) likewise.
- ``GET /v1/policies``, ``GET /v1/policies/{id}`` (``{"id", "raw", "ast"}``; the
  AST is a summary: the package path and each rule's head and location),
  ``PUT``/``DELETE /v1/policies/{id}``.
- ``GET /health`` (``?bundles``: a bundle is active), ``/health/live``, ``/health/ready``.
- ``?pretty``, ``?metrics`` (``timer_*_ns``), ``?provenance`` (the bundle
  revision under ``provenance.bundles.ztgate.revision``, which
  `policy.remote_opa` reads) as OPA answers them.

The decision path (``ztgate/main/decision`` by default) answers exactly what
`policy.embedded.EmbeddedEngine` computes: its raw result, and for input it
refuses (`policy.contract.check_input`) or cannot evaluate, the deny that
`EmbeddedEngine.evaluate` would return — so ``parse_result(result)`` over REST
equals the embedded decision (acceptance check 3), and a bad input is a 200
deny with a reason, never a 5xx (acceptance check 4).

A policy id is the module's path in the active bundle (``ztgate/main.rego``);
an id without ``.rego`` names ``<id>.rego``. ``PUT``/``DELETE`` are
administrative (``Authorization: Bearer <admin token>``) and go through the
same gate as a bundle rollout: the changed bundle (new revision
``<base>+api.<digest>``) must compile (`policy.check.check_bundle`), then
`policy.reload.PolicyHolder.load` runs its tests and swaps it in atomically;
otherwise 400 with OPA's error shape ``{"code", "message", "errors": [{code,
message, location{file,row,col}}]}`` and the old bundle keeps serving.

Errors are OPA's ``{"code", "message"}``; bodies are capped (input: 1 MiB →
413); an unexpected exception is ``500 internal_error`` with the detail only in
the log. Loopback by default.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import re
import secrets
import ssl
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Final

from aiohttp import web

from policy import server_http as sup
from policy.bundle import MANIFEST, MAX_FILE_SIZE, SIGNATURES, Bundle, BundleError
from policy.check import check_bundle
from policy.contract import MAX_INPUT_BYTES, check_input
from policy.decision import deny, parse_result
from policy.decision_log import DecisionLog
from policy.embedded import EmbeddedEngine, PolicyEvalError
from policy.engine import DEFAULT_ENTRYPOINT
from policy.reload import PolicyHolder

__all__ = [
    "PolicyServerConfig",
    "RunningPolicyServer",
    "create_policy_app",
    "start_policy_server",
]

log = logging.getLogger("ztgate.policy.server")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
BUNDLE_NAME: Final = "ztgate"
"""The name OPA's provenance and health APIs give the one bundle ztgate serves."""
_SEGMENT: Final = re.compile(r"[^/]+")


PolicySource = PolicyHolder | EmbeddedEngine
"""What the server serves from: a `PolicyHolder` (the Policy API can change it) or a
fixed `EmbeddedEngine` (read-only)."""


@dataclass(frozen=True)
class PolicyServerConfig:
    host: str = "127.0.0.1"
    """Loopback by default: the policy service is for the edge agent and the security
    team's tools on the same host; elsewhere put it behind TLS (``ssl_context``)."""
    port: int = 8181
    """OPA's default port."""
    entrypoint: str = DEFAULT_ENTRYPOINT
    max_input_bytes: int = MAX_INPUT_BYTES
    max_policy_bytes: int = MAX_FILE_SIZE
    token_for_reads: bool = False
    """Also require the admin bearer token on the Data and Policy read APIs (OPA's
    ``--authentication=token``); ``/health`` stays open."""


def create_policy_app(
    source: PolicySource,
    *,
    config: PolicyServerConfig | None = None,
    admin_token: str = "",
    decision_log: DecisionLog | None = None,
) -> web.Application:
    """The aiohttp application; `admin_token` ('' → writes always refused)."""
    api = _PolicyApi(source, config or PolicyServerConfig(), admin_token, decision_log)
    app = web.Application(
        client_max_size=max(api.config.max_input_bytes, api.config.max_policy_bytes) + 4096,
        middlewares=[sup.errors_middleware, api.auth_middleware],
    )
    r = app.router
    for prefix in ("/v1/data", "/v1/data/{path:.*}"):
        r.add_post(prefix, api.data_post)
        r.add_get(prefix, api.data_get)
    r.add_post("/v0/data/{path:.*}", api.data_v0)
    r.add_get("/v1/policies", api.policies_list)
    r.add_get("/v1/policies/", api.policies_list)
    r.add_get("/v1/policies/{id:.+}", api.policy_get)
    r.add_put("/v1/policies/{id:.+}", api.policy_put)
    r.add_delete("/v1/policies/{id:.+}", api.policy_delete)
    r.add_get("/health", api.health)
    r.add_get("/health/{check:live|ready}", api.health)
    return app


class _PolicyApi:
    def __init__(
        self,
        source: PolicySource,
        config: PolicyServerConfig,
        admin_token: str,
        decision_log: DecisionLog | None,
    ) -> None:
        self.source = source
        self.config = config
        self.entrypoint = "/".join(_SEGMENT.findall(config.entrypoint))
        self._admin_token = admin_token.encode()
        self._decision_log = decision_log
        self._write_lock = asyncio.Lock()
        self._asts: dict[int, tuple[Bundle, dict[str, Any]]] = {}

    # -- plumbing ------------------------------------------------------------------

    def engine(self) -> EmbeddedEngine | None:
        """The engine serving now; read once per request so one answer is one revision's."""
        return self.source if isinstance(self.source, EmbeddedEngine) else self.source.engine

    def _authorized(self, request: web.Request) -> bool:
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        return (
            bool(self._admin_token)
            and scheme.lower() == "bearer"
            and hmac.compare_digest(token.strip().encode(), self._admin_token)
        )

    @web.middleware
    async def auth_middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.match_info.http_exception is not None:
            return await handler(request)  # 404/405 before authentication, as routing decides
        write = request.method in ("PUT", "DELETE", "PATCH")
        guarded = (write or self.config.token_for_reads) and not request.path.startswith("/health")
        if guarded and not self._authorized(request):
            raise sup.OpaError(401, "unauthorized", sup.MSG_UNAUTHORIZED)
        return await handler(request)

    def _serving(self) -> EmbeddedEngine:
        engine = self.engine()
        if engine is None:
            raise sup.OpaError(500, "internal_error", "no policy bundle is active")
        return engine

    # -- Data API ------------------------------------------------------------------

    async def data_post(self, request: web.Request) -> web.Response:
        started = time.perf_counter_ns()
        raw = await sup.read_body(request, self.config.max_input_bytes + sup.ENVELOPE_SLACK)
        input_doc, has_input = sup.parse_envelope(raw)
        return self._answer(request, input_doc, has_input, started, time.perf_counter_ns())

    async def data_get(self, request: web.Request) -> web.Response:
        started = time.perf_counter_ns()
        text = request.query.get("input")
        input_doc, has_input = (None, False)
        if text is not None:
            if len(text) > self.config.max_input_bytes:
                raise sup.OpaError(413, "invalid_parameter", sup.MSG_TOO_LARGE)
            input_doc = sup.parse_json(text.encode(), "parameter contains malformed input document")
            has_input = input_doc is not None
        return self._answer(request, input_doc, has_input, started, time.perf_counter_ns())

    async def data_v0(self, request: web.Request) -> web.Response:
        raw = await sup.read_body(request, self.config.max_input_bytes)
        input_doc = (
            sup.parse_json(raw, "body contains malformed input document") if raw.strip() else None
        )
        path = self._path(request)
        engine = self._serving()
        defined, value = self._evaluate(engine, path, input_doc)
        self._log(request, str(uuid.uuid4()), path, input_doc, value if defined else None, engine)
        if not defined:
            raise sup.OpaError(404, "undefined_document", sup.MSG_UNDEFINED)
        return sup.json_response(value, pretty=sup.flag(request, "pretty"))

    def _path(self, request: web.Request) -> str:
        return "/".join(_SEGMENT.findall(request.match_info.get("path", "")))

    def _evaluate(self, engine: EmbeddedEngine, path: str, input_doc: Any) -> tuple[bool, Any]:
        """``engine.query``; on the decision path, with `EmbeddedEngine.evaluate`'s refusals."""
        if path == self.entrypoint:
            reason = check_input(input_doc)
            if reason is not None:
                return True, _deny_result(reason, engine.revision)
            try:
                return engine.query(path, input_doc)
            except PolicyEvalError:
                return True, _deny_result("policy:eval_error", engine.revision)
        try:
            return engine.query(path, input_doc)
        except PolicyEvalError as exc:
            raise sup.OpaError(
                500,
                "internal_error",
                "error(s) occurred while evaluating query",
                [{"code": "eval_error", "message": str(exc)}],
            ) from None

    def _answer(
        self,
        request: web.Request,
        input_doc: Any,
        has_input: bool,
        started: int,
        parsed_at: int,
    ) -> web.Response:
        path = self._path(request)
        engine = self._serving()
        revision = engine.revision
        defined, value = self._evaluate(engine, path, input_doc)
        done = time.perf_counter_ns()
        decision_id = str(uuid.uuid4())
        body: dict[str, Any] = {"decision_id": decision_id}
        if defined:
            body["result"] = value
        if not has_input:
            body["warning"] = {"code": "api_usage_warning", "message": sup.MSG_INPUT_MISSING}
        if sup.flag(request, "metrics") or sup.flag(request, "instrument"):
            body["metrics"] = {
                "timer_rego_input_parse_ns": parsed_at - started,
                "timer_rego_query_eval_ns": done - parsed_at,
                "timer_server_handler_ns": time.perf_counter_ns() - started,
            }
        if sup.flag(request, "provenance"):
            body["provenance"] = sup.provenance(BUNDLE_NAME, revision)
        self._log(request, decision_id, path, input_doc, value if defined else None, engine)
        return sup.json_response(body, pretty=sup.flag(request, "pretty"))

    def _log(
        self,
        request: web.Request,
        decision_id: str,
        path: str,
        input_doc: Any,
        result: Any,
        engine: EmbeddedEngine,
    ) -> None:
        """Decisions of the entry rule go to the decision log (OPA's format, masked there);
        `DecisionLog.record` never blocks or raises."""
        if self._decision_log is None or path != self.entrypoint:
            return
        decision = parse_result(result, engine.revision)
        self._decision_log.record(
            input_doc,
            decision,
            decision_id=decision_id,
            requested_by=request.remote,
            result=result,
        )

    # -- Policy API ----------------------------------------------------------------

    def _summaries(self, bundle: Bundle) -> dict[str, Any]:
        cached = self._asts.get(id(bundle))
        if cached is not None and cached[0] is bundle:
            return cached[1]
        summaries = sup.module_summaries(bundle)
        self._asts = {id(bundle): (bundle, summaries)}
        return summaries

    def _policy(self, bundle: Bundle, module_path: str) -> dict[str, Any]:
        return {
            "id": module_path,
            "raw": bundle.files[module_path].decode("utf-8"),
            "ast": self._summaries(bundle).get(module_path),
        }

    async def policies_list(self, request: web.Request) -> web.Response:
        bundle = self._serving().bundle
        result = [self._policy(bundle, p) for p in bundle.modules]
        return sup.json_response({"result": result}, pretty=sup.flag(request, "pretty"))

    async def policy_get(self, request: web.Request) -> web.Response:
        bundle = self._serving().bundle
        module_path = sup.module_path(request.match_info["id"])
        if module_path not in bundle.files:
            raise sup.not_found(request.match_info["id"])
        body = {"result": self._policy(bundle, module_path)}
        return sup.json_response(body, pretty=sup.flag(request, "pretty"))

    async def policy_put(self, request: web.Request) -> web.Response:
        raw = await sup.read_body(request, self.config.max_policy_bytes)
        try:
            source = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise sup.OpaError(400, "invalid_parameter", "policy is not UTF-8 text") from None
        if not source.strip():
            raise sup.OpaError(400, "invalid_parameter", "empty module")
        module_path = sup.module_path(request.match_info["id"])
        roots = self._serving().bundle.roots
        if not sup.within_roots(source, roots):
            raise sup.OpaError(
                400,
                "invalid_parameter",
                f"the module's package is outside the bundle's roots {list(roots)}",
            )
        return await self._change(request, module_path, raw)

    async def policy_delete(self, request: web.Request) -> web.Response:
        return await self._change(request, sup.module_path(request.match_info["id"]), None)

    async def _change(
        self, request: web.Request, module_path: str, content: bytes | None
    ) -> web.Response:
        """Replace (`content`) or delete (None) one module through compile → tests → swap."""
        holder = self.source
        if not isinstance(holder, PolicyHolder):
            raise sup.OpaError(405, "invalid_operation", "this policy service is read-only")
        started = time.perf_counter_ns()
        async with self._write_lock:
            old = self._serving().bundle
            if content is None and module_path not in old.files:
                raise sup.not_found(request.match_info["id"])
            if content is not None and old.files.get(module_path) == content:
                return sup.json_response({}, pretty=sup.flag(request, "pretty"))
            files = {p: b for p, b in old.files.items() if p not in (MANIFEST, SIGNATURES)}
            if content is None:
                del files[module_path]
            else:
                files[module_path] = content
            try:
                new = Bundle.build(
                    files, revision=sup.api_revision(old.revision, files), roots=old.roots
                )
            except BundleError as exc:
                raise sup.OpaError(400, "invalid_parameter", str(exc)) from None
            code = "invalid_parameter" if content is not None else "invalid_operation"
            errors = await asyncio.to_thread(check_bundle, new, entrypoint=self.entrypoint)
            if errors:
                raise sup.OpaError(
                    400, code, sup.MSG_COMPILE, [sup.compile_error(e) for e in errors]
                )
            if holder.revision != old.revision:
                # A bundle rollout landed meanwhile: do not revert it with a stale base.
                # (The window between this check and `load`'s swap remains; a
                # compare-and-swap `load` would close it.)
                raise sup.OpaError(
                    409, "resource_conflict", "the active bundle changed meanwhile; retry"
                )
            outcome = await holder.load(new)
            if not outcome.ok:
                raise sup.OpaError(
                    400, code, sup.refusal_message(outcome), sup.load_errors(outcome)
                )
        log.info(
            "policy module changed through the API",
            extra={
                "event": "policy.api_change",
                "policy_module": module_path,
                "op": "delete" if content is None else "put",
                "from_revision": old.revision,
                "revision": new.revision,
            },
        )
        body: dict[str, Any] = {}
        if sup.flag(request, "metrics"):
            body["metrics"] = {"timer_server_handler_ns": time.perf_counter_ns() - started}
        return sup.json_response(body, pretty=sup.flag(request, "pretty"))

    # -- Health API ----------------------------------------------------------------

    async def health(self, request: web.Request) -> web.Response:
        """200 ``{}`` when a bundle is active and answers; 500 ``{"error": …}`` otherwise."""
        engine = self.engine()
        if engine is None:
            message = (
                "not all configured bundles have been activated"
                if "bundles" in request.query or request.match_info.get("check") == "ready"
                else "unable to perform evaluation"
            )
            return sup.json_response({"error": message}, status=500)
        return sup.json_response({})


def _deny_result(reason: str, revision: str) -> dict[str, Any]:
    """The raw-result form of `policy.decision.deny` (what `parse_result` maps back to it)."""
    doc = deny(reason, revision).as_json()
    del doc["revision"]
    return doc


@dataclass
class RunningPolicyServer:
    url: str
    port: int
    admin_token: str
    """'' when the Policy API's writes are disabled."""
    runner: web.AppRunner

    async def stop(self) -> None:
        await self.runner.cleanup()


LINGER: Final = 2.0
"""Seconds a refused (413) streaming body is still read and discarded so that its client
sees the answer (aiohttp's default: 10); the policy service's clients are near."""
MAX_HEADER: Final = 64 * 1024
"""As the authentication service: anything the edge forwards gets a JSON error, not the
HTTP parser's plain-text 400."""


async def start_policy_server(
    source: PolicySource,
    *,
    config: PolicyServerConfig | None = None,
    admin_token: str | None = None,
    decision_log: DecisionLog | None = None,
    ssl_context: ssl.SSLContext | None = None,
) -> RunningPolicyServer:
    """Serve OPA's REST API for `source` on ``config.host:config.port`` (0: a free port).

    `admin_token`: None → a fresh random one (returned in `RunningPolicyServer`);
    '' → the Policy API's writes are refused. On a loopback host, IPv6 loopback
    is bound too when available.
    """
    cfg = config or PolicyServerConfig()
    token = secrets.token_urlsafe(32) if admin_token is None else admin_token
    if cfg.host not in _LOOPBACK and ssl_context is None:
        log.warning(
            "policy service on a non-loopback address without TLS", extra={"host": cfg.host}
        )
    app = create_policy_app(source, config=cfg, admin_token=token, decision_log=decision_log)
    runner = web.AppRunner(
        app,
        access_log=None,
        max_line_size=MAX_HEADER,
        max_field_size=MAX_HEADER,
        lingering_time=LINGER,
    )
    await runner.setup()
    site = web.TCPSite(runner, cfg.host, cfg.port, ssl_context=ssl_context)
    await site.start()
    port = cfg.port or int(runner.addresses[0][1])
    if cfg.host in _LOOPBACK:
        with contextlib.suppress(OSError):  # IPv6 loopback is optional
            await web.TCPSite(runner, "::1", port, ssl_context=ssl_context).start()
    scheme = "https" if ssl_context else "http"
    host = f"[{cfg.host}]" if ":" in cfg.host else cfg.host
    url = f"{scheme}://{host}:{port}"
    log.info(
        "policy service listening",
        extra={"url": url, "revision": source.revision, "writable": bool(token)},
    )
    return RunningPolicyServer(url, port, token, runner)


_LOOPBACK: Final = ("127.0.0.1", "localhost", "::1")
