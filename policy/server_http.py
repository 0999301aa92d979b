"""HTTP plumbing of the policy service (`policy.server`): OPA's error shape, bounded
body reading, strict JSON, query flags and the Policy API's module summaries.

OPA's errors (https://www.openpolicyagent.org/docs/rest-api#errors) are
``{"code", "message"}`` with optional ``errors: [{code, message, location{file,
row, col}}]``; the codes used are OPA's own (``invalid_parameter``,
``resource_not_found``, ``undefined_document``, ``unauthorized``,
``invalid_operation``, ``internal_error``). An unexpected exception becomes
``500 internal_error`` with the detail only in the log — never a stack trace.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import re
from collections import defaultdict
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Final

import regorus
from aiohttp import web

from policy.bundle import Bundle
from policy.check import CheckError
from policy.rego_ast import bundle_rules
from policy.reload import LoadResult

log = logging.getLogger("ztgate.policy.server")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

MSG_COMPILE: Final = "error(s) occurred while compiling module(s)"
MSG_UNDEFINED: Final = "document missing or undefined"
MSG_TOO_LARGE: Final = "request body too large"
MSG_INPUT_MISSING: Final = "'input' key missing from the request"
MSG_UNAUTHORIZED: Final = "missing or invalid bearer token"
ENVELOPE_SLACK: Final = 1024
"""Room for ``{"input": …}`` and whitespace around a maximal input document."""
_API_SUFFIX: Final = re.compile(r"\+api\.[0-9a-f]{12}$")
_PACKAGE: Final = re.compile(r"^\s*package\s+([A-Za-z_][\w.]*)", re.MULTILINE)
HEADERS: Final = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
}


class OpaError(Exception):
    """An error answer in OPA's shape."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        errors: list[dict[str, Any]] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.errors = errors or []
        self.headers = dict(headers or {})

    def response(self) -> web.Response:
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.errors:
            body["errors"] = self.errors
        return json_response(body, status=self.status, headers=self.headers)


_HTTP_CODES: Final = {
    404: ("resource_not_found", "no such API endpoint"),
    405: ("invalid_operation", "method not allowed"),
    413: ("invalid_parameter", MSG_TOO_LARGE),
}


@web.middleware
async def errors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except OpaError as exc:
        if exc.status == 401:
            exc.headers.setdefault("WWW-Authenticate", 'Bearer realm="ztgate-policy"')
        return exc.response()
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code, message = _HTTP_CODES.get(exc.status, ("invalid_parameter", exc.reason))
        return OpaError(exc.status, code, message).response()
    except Exception:
        log.exception("policy API error", extra={"path": request.path, "method": request.method})
        return OpaError(500, "internal_error", "internal error").response()


def json_response(
    body: Any, *, status: int = 200, pretty: bool = False, headers: Mapping[str, str] | None = None
) -> web.Response:
    text = (
        json.dumps(body, indent=2, ensure_ascii=False)
        if pretty
        else json.dumps(body, separators=(",", ":"), ensure_ascii=False)
    )
    return web.Response(
        text=text + "\n",
        status=status,
        content_type="application/json",
        headers={**HEADERS, **(headers or {})},
    )


def flag(request: web.Request, name: str) -> bool:
    """OPA's boolean query parameter: present and empty, or ``true`` (any case)."""
    values = request.query.getall(name, [])
    return any(v == "" or v.lower() == "true" for v in values)


async def read_body(request: web.Request, limit: int) -> bytes:
    """The request body, refused with 413 past `limit` bytes (decompressed size)."""
    if request.content_length is not None and request.content_length > limit:
        raise OpaError(413, "invalid_parameter", MSG_TOO_LARGE)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.content.iter_chunked(64 * 1024):
        size += len(chunk)
        if size > limit:
            raise OpaError(413, "invalid_parameter", MSG_TOO_LARGE)
        chunks.append(chunk)
    return b"".join(chunks)


def _constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number {text[:20]} is out of range")
    return value


def parse_json(raw: bytes, what: str) -> Any:
    """Strict JSON (no NaN/Infinity, finite numbers); 400 naming the problem otherwise."""
    try:
        return json.loads(raw, parse_constant=_constant, parse_float=_finite)
    except RecursionError:
        raise OpaError(400, "invalid_parameter", f"{what}: nested too deeply") from None
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, int digit limit
        reason = str(exc).splitlines()[0][:120] if str(exc) else "not JSON"
        raise OpaError(400, "invalid_parameter", f"{what}: {reason}") from None


def parse_envelope(raw: bytes) -> tuple[Any, bool]:
    """``(input, present)`` from a Data API body ``{"input": …}``; an empty body, a
    missing key or ``null`` leave the input undefined, as in OPA."""
    if not raw.strip():
        return None, False
    doc = parse_json(raw, "body contains malformed input document")
    if not isinstance(doc, dict):
        raise OpaError(
            400, "invalid_parameter", "body contains malformed input document: not an object"
        )
    value = doc.get("input")
    return value, value is not None


def provenance(bundle_name: str, revision: str) -> dict[str, Any]:
    """OPA's provenance document (https://www.openpolicyagent.org/docs/rest-api#provenance)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        own = version("ztgate")
    except PackageNotFoundError:
        own = "unknown"
    return {
        "version": f"ztgate-{own}",
        "build_commit": "",
        "build_timestamp": "",
        "build_hostname": "",
        "bundles": {bundle_name: {"revision": revision}},
    }


def module_path(policy_id: str) -> str:
    """The bundle path a policy id names (``<id>`` or ``<id>.rego``); 400 if unsafe."""
    clean = policy_id.strip("/")
    parts = clean.split("/")
    if (
        not clean
        or len(clean) > 512
        or any(p in ("", ".", "..") for p in parts)
        or "\\" in clean
        or "\0" in clean
        or parts[0].startswith(".")
    ):
        raise OpaError(400, "invalid_parameter", "policy id must be a relative module path")
    return clean if clean.endswith(".rego") else f"{clean}.rego"


def within_roots(source: str, roots: tuple[str, ...]) -> bool:
    """Whether the module's package lies under one of the bundle's roots (OPA's bundle
    ownership rule: a bundle only defines paths under its roots)."""
    found = _PACKAGE.search(source)
    if found is None:
        return True  # no package clause: compilation reports it with its place
    path = found.group(1).replace(".", "/")
    return any(
        r.strip("/") == "" or path == r.strip("/") or path.startswith(r.strip("/") + "/")
        for r in roots
    )


def not_found(policy_id: str) -> OpaError:
    return OpaError(
        404, "resource_not_found", f"storage_not_found_error: policy id {json.dumps(policy_id)}"
    )


def compile_error(error: CheckError) -> dict[str, Any]:
    out: dict[str, Any] = {"code": "rego_compile_error", "message": error.message}
    if error.file:
        out["location"] = {"file": error.file, "row": error.line, "col": error.col}
    return out


def _term(kind: str, value: str) -> dict[str, str]:
    return {"type": kind, "value": value}


def module_summaries(bundle: Bundle) -> dict[str, Any]:
    """Per module path, OPA's AST reduced to what clients read: the package path and
    each rule's head (``name``, ``ref``) and location. Bodies are not rendered."""
    modules = bundle.modules
    rules_by_file: dict[str, list[dict[str, Any]]] = defaultdict(list)
    packages: dict[str, str] = {}
    engine = regorus.Engine()
    try:
        for path, source in modules.items():
            engine.add_policy(path, source)
        rules = bundle_rules(engine)
    except (RuntimeError, ValueError, KeyError):  # an active bundle parses; be safe anyway
        rules = []
    for rule in rules:
        parts = rule.name.split(".")
        packages.setdefault(rule.file, rule.package)
        rules_by_file[rule.file].append(
            {
                "head": {
                    "name": parts[0],
                    "ref": [_term("var", parts[0]), *(_term("string", p) for p in parts[1:])],
                },
                "location": {"file": rule.file, "row": rule.line, "col": rule.col},
            }
        )
    out: dict[str, Any] = {}
    for path, source in modules.items():
        package = packages.get(path)
        if package is None:
            found = _PACKAGE.search(source)
            package = f"data.{found.group(1)}" if found else "data"
        head, *rest = package.split(".")
        out[path] = {
            "package": {"path": [_term("var", head), *(_term("string", p) for p in rest)]},
            "rules": rules_by_file.get(path, []),
        }
    return out


def refusal_message(outcome: LoadResult) -> str:
    if outcome.stage == "tests":
        return "policy tests failed: the change was not applied"
    if outcome.stage == "signature":
        return "the active policy must come from a signed bundle: the change was not applied"
    return f"policy change refused at {outcome.stage}: the change was not applied"


def load_errors(outcome: LoadResult) -> list[dict[str, Any]]:
    if outcome.tests is not None and outcome.tests.failed:
        return [
            {"code": "rego_test_failure", "message": f"{name}: {why}" if why else name}
            for name, why in outcome.tests.failed
        ]
    return [{"code": f"ztgate_{outcome.stage}_error", "message": outcome.reason}]


def api_revision(base: str, files: dict[str, bytes]) -> str:
    """``<base>+api.<12 hex>``: a new revision for a bundle changed through the Policy API,
    derived from its content so repeated changes do not grow it."""
    digest = hashlib.sha256()
    for path, data in sorted(files.items()):
        digest.update(path.encode() + b"\0" + hashlib.sha256(data).digest())
    stem = _API_SUFFIX.sub("", base)[: 128 - 17]
    return f"{stem}+api.{digest.hexdigest()[:12]}"
