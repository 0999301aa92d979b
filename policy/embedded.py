"""The embedded Rego engine: `regorus` (PyPI ``gordon-to-regorus``, pinned) in-process.

Chosen by measurement (../shared/STANDARDS.md, "Embedded Rego engines"): the best
OPA-conformance/latency trade-off available here, readable errors with
file:line:col, and a missing builtin is an explicit error (fails closed) rather
than a silent undefined.

Compile once per thread, evaluate many times. Each thread that evaluates gets
its own prepared regorus engine with the bundle's policy modules (``*_test.rego``
excluded) and data — built from the sources on its first decision (~2 ms for
the default bundle), then reused for every later decision on that thread.

Thread safety: `EmbeddedEngine` may be shared by any number of threads and
used from any of them. A regorus ``Engine`` holds the GIL while it evaluates
and is *unsendable*: used, cloned or freed on any thread but its creator's,
pyo3 panics (or leaks it). So no regorus object is ever shared or handed
between threads, nor even kept in the `EmbeddedEngine` (which may be dropped
on any thread): each thread's engines live in that thread's own storage and
are freed by it (see `_thread`). An event loop's coroutines (`decide`) run on
the loop's thread, one evaluation at a time. An `EmbeddedEngine` never changes
after construction (a new bundle means a new `EmbeddedEngine`, see
`policy.reload`), so every decision it makes carries the revision of the one
bundle it was compiled from.

Only the entry rule is evaluated (``eval_rule``), never the whole ``data``
tree, and it is given only the members of the input the policy's modules can
read (`policy.projection`: a third of the 2 KB example for the default
bundle). Input is validated first, whole (`policy.contract.check_input`:
shape, types, depth, size — issue 4, acceptance check 4); the engine never
sees a document that could exhaust its stack. Any engine error is a deny with the reason
``policy:eval_error``; the log records the error's type and the rule, never
the input (it carries tokens and personal data).
"""

from __future__ import annotations

import itertools
import json
import logging
import re
import threading
import weakref
from collections.abc import Mapping
from typing import Any, Final

import regorus

from policy.bundle import Bundle
from policy.contract import MAX_DEPTH, check_input
from policy.decision import Decision, deny, parse_result
from policy.engine import DEFAULT_ENTRYPOINT
from policy.projection import Projection
from policy.rego_ast import input_paths

__all__ = ["EmbeddedEngine", "PolicyCompileError", "PolicyEvalError", "parse_errors"]

log = logging.getLogger("ztgate.policy.embedded")

_LOCATION: Final = re.compile(
    r"-->\s*(?P<file>[^\n]+?):(?P<line>\d+):(?P<col>\d+)\s*\n.*?^error:\s*(?P<msg>[^\n]*)",
    re.MULTILINE | re.DOTALL,
)
_BACKTRACE: Final = "\n\nStack backtrace"
_SEGMENT: Final = re.compile(r"[^/]+")


class PolicyCompileError(ValueError):
    """A bundle whose Rego does not parse or compile.

    `errors` lists ``(file, line, message)``; line 0 when regorus named no place.
    """

    def __init__(self, errors: list[tuple[str, int, str]]) -> None:
        self.errors = errors
        first = errors[0] if errors else ("", 0, "compile error")
        where = f"{first[0]}:{first[1]}: " if first[0] else ""
        more = f" (+{len(errors) - 1} more)" if len(errors) > 1 else ""
        super().__init__(f"{where}{first[2]}{more}")


class PolicyEvalError(RuntimeError):
    """`EmbeddedEngine.query` could not evaluate (the OPA REST API answers 500)."""


def error_text(exc: BaseException) -> str:
    """regorus's message without the Rust backtrace it appends when RUST_BACKTRACE is set."""
    return str(exc).split(_BACKTRACE, 1)[0].strip()


def parse_errors(exc: BaseException, default_file: str = "") -> list[tuple[str, int, int, str]]:
    """``(file, line, col, message)`` for each place regorus's error text names.

    regorus reports ``--> file:line:col`` followed by the source line, a caret
    and ``error: message``; an error without a location yields one entry with
    line and column 0.
    """
    text = error_text(exc)
    found = [
        (m["file"].strip(), int(m["line"]), int(m["col"]), m["msg"].strip())
        for m in _LOCATION.finditer(text)
    ]
    if found:
        return found
    message = text.splitlines()[0] if text else type(exc).__name__
    return [(default_file, 0, 0, message)]


def rule_path(entrypoint: str) -> str:
    """``ztgate/main/decision`` → ``data.ztgate.main.decision`` (OPA's path form)."""
    parts = _SEGMENT.findall(entrypoint)
    if not parts or not all(p.isidentifier() for p in parts):
        raise ValueError(f"entrypoint {entrypoint!r} is not a /-separated rule path")
    return "data." + ".".join(parts)


def data_query(path: str) -> str:
    """A query for ``data.<path>`` that cannot be injected into: every segment quoted."""
    return "data" + "".join(f"[{json.dumps(p)}]" for p in _SEGMENT.findall(path))


_SURROGATE: Final = re.compile("[\ud800-\udfff]")
_SCALARS: Final = (str, int, float, bool, type(None))


def _json_problem(doc: object, limit: int = MAX_DEPTH) -> str | None:
    """Why regorus must not be handed `doc`, or None.

    regorus converts input recursively (deep nesting exhausts the stack) and a
    string with a lone UTF-16 surrogate — which ``json.loads`` produces from a
    ``"\\ud800"`` escape — crashes the process (segfault) in ``set_input``. So
    before any input reaches it: JSON types only, string keys, finite numbers, no
    lone surrogates, at most `limit` levels (iterative, so no recursion here).
    """
    stack: list[tuple[object, int]] = [(doc, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, str):
            if not node.isascii() and _SURROGATE.search(node):
                return "input:not_json"
        elif isinstance(node, float):
            if node != node or node in (float("inf"), float("-inf")):
                return "input:not_json"
        elif isinstance(node, dict | list):
            if depth > limit:
                return "input:too_deep"
            if isinstance(node, dict):
                for key in node:
                    if not isinstance(key, str):
                        return "input:not_json"
                    if not key.isascii() and _SURROGATE.search(key):
                        return "input:not_json"
                stack.extend((child, depth + 1) for child in node.values())
            else:
                stack.extend((child, depth + 1) for child in node)
        elif not isinstance(node, _SCALARS):
            return "input:not_json"
    return None


def compile_engine(modules: Mapping[str, str], data: Mapping[str, Any]) -> Any:
    """A fresh regorus engine with `modules` and `data`; parse errors raised, all files'."""
    engine = regorus.Engine()
    errors: list[tuple[str, int, str]] = []
    for path, source in modules.items():
        try:
            engine.add_policy(path, source)
        except RuntimeError as exc:
            errors.extend((f, ln, msg) for f, ln, _c, msg in parse_errors(exc, path))
    problem = data_problem(data)
    if problem is not None:
        errors.append(("data.json", 0, problem))
    if errors:
        del engine  # freed here: the exception's frames may be dropped on another thread
        raise PolicyCompileError(errors)
    engine.add_data(dict(data))
    return engine


DATA_MAX_DEPTH: Final = 512


def data_problem(data: Mapping[str, Any]) -> str | None:
    """Why a bundle's data must not be handed to regorus (see `_json_problem`), or None:
    a ``data.json`` with a ``"\\ud800"`` escape would crash the process in ``add_data``."""
    problem = _json_problem(dict(data), DATA_MAX_DEPTH)
    if problem is None:
        return None
    what = problem.removeprefix("input:").replace("_", " ")
    return f"bundle data is {what} (lone surrogate, NaN/Infinity or nesting over {DATA_MAX_DEPTH})"


def _probe(engine: Any, rule: str) -> list[tuple[str, int, str]]:
    """Errors from a first evaluation of `rule` with an empty input (none: it compiles)."""
    engine.set_input({})
    try:
        engine.eval_rule(rule)
    except RuntimeError as exc:
        if "not a valid rule path" in error_text(exc):
            return [("", 0, f"entry rule {rule} is not defined")]
        return [(f, ln, msg) for f, ln, _c, msg in parse_errors(exc)]
    return []


class _Prepared:
    """One thread's engines for one `EmbeddedEngine`: `working` gets each input;
    `pristine` never has one (OPA leaves ``input`` undefined when none is sent)."""

    __slots__ = ("owner", "pristine", "working")

    def __init__(self, owner: EmbeddedEngine, pristine: Any) -> None:
        self.owner = weakref.ref(owner)
        self.pristine = pristine
        self.working = pristine.clone()


_thread = threading.local()
"""Per thread: ``{EmbeddedEngine serial: _Prepared}``. regorus objects are *unsendable*
(used, cloned or even freed on another thread, they panic or leak), so they live in
storage owned by their thread — not in the `EmbeddedEngine`, which any thread may
drop — and are freed by that thread: when it ends, or when it next prepares an engine
and finds the owners of older ones gone or closed."""
_serials = itertools.count(1)


class EmbeddedEngine:
    """`policy.engine.PolicyEngine` over an in-process regorus (see the module docstring)."""

    def __init__(self, bundle: Bundle, *, entrypoint: str = DEFAULT_ENTRYPOINT) -> None:
        self._bundle = bundle
        self._rule = rule_path(entrypoint)
        self._entry = _SEGMENT.findall(entrypoint)
        self._modules = dict(bundle.policy_modules)
        self._data = bundle.data
        self._serial = next(_serials)
        self._closed = False
        # regorus analyses every module (unsafe variables, bad references) on the first
        # evaluation: do it now, so a bad bundle fails here, and the entry rule is known
        # to exist. The engines built for it serve this thread afterwards.
        prepared = _Prepared(self, compile_engine(self._modules, self._data))
        problems = _probe(prepared.working, self._rule)
        if problems:
            del prepared  # freed here, not with the exception's frames on another thread
            raise PolicyCompileError(problems)
        self._projection = _projection(prepared.working)
        self._install(prepared)

    @property
    def revision(self) -> str:
        return self._bundle.revision

    @property
    def bundle(self) -> Bundle:
        return self._bundle

    @property
    def rule(self) -> str:
        """The entry rule, as a ``data.`` reference."""
        return self._rule

    def _install(self, prepared: _Prepared) -> None:
        table: dict[int, _Prepared] | None = getattr(_thread, "engines", None)
        if table is None:
            table = _thread.engines = {}
        for serial, other in list(table.items()):
            owner = other.owner()
            if owner is None or owner._closed:
                del table[serial]  # freed here, on the thread that made it
        table[self._serial] = prepared

    def _prepared(self) -> _Prepared:
        table: dict[int, _Prepared] | None = getattr(_thread, "engines", None)
        prepared = None if table is None else table.get(self._serial)
        if prepared is None:
            if self._closed:
                raise RuntimeError("policy engine closed")
            prepared = _Prepared(self, compile_engine(self._modules, self._data))
            self._install(prepared)
        return prepared

    def evaluate(self, input_doc: object) -> Decision:
        """The decision for `input_doc`; never raises (malformed input or any error → deny)."""
        reason = check_input(input_doc)
        if reason is not None:
            return deny(reason, self.revision)
        try:
            engine = self._prepared().working
            engine.set_input(self._projection.apply(input_doc))
            raw = engine.eval_rule(self._rule)
        except BaseException as exc:  # fail closed on anything the engine raises
            if not _engine_error(exc):
                raise
            log.warning(
                "policy evaluation failed",
                extra={
                    "event": "policy.eval_error",
                    "error_type": type(exc).__name__,
                    "error": error_text(exc).splitlines()[-1][:200] if str(exc) else "",
                    "rule": self._rule,
                    "revision": self.revision,
                },
            )
            return deny("policy:eval_error", self.revision)
        return parse_result(raw, self.revision)

    def query(self, path: str, input_doc: object | None = None) -> tuple[bool, Any]:
        """The value of ``data.<path>`` (``/``-separated) as JSON-ready Python.

        ``(False, None)`` when undefined. For the OPA REST API (``POST
        /v1/data/{path}``): any path, not only the entry rule, so the input is only
        checked to be JSON regorus can take safely (see `_json_problem`). Sets come
        back as sorted lists, as OPA returns them. Raises `PolicyEvalError` when
        evaluation fails or the input is refused.

        The entry rule is evaluated as `evaluate` does (``eval_rule``, ~20% faster
        than a query); there a ``null`` value reads as undefined — both are a deny.
        """
        problem = None if input_doc is None else _json_problem(input_doc)
        if problem is not None:
            raise PolicyEvalError(problem)
        failure = self._query(path, input_doc)
        if isinstance(failure, str):
            # Raised here, where no regorus object is in scope: an exception's frames
            # may be freed on another thread, and regorus objects must not be.
            raise PolicyEvalError(failure)
        rows = failure.get("result") or []
        if not rows:
            return False, None
        return True, _jsonable(rows[0]["expressions"][0]["value"])

    def _query(self, path: str, input_doc: object | None) -> dict[str, Any] | str:
        """regorus's query result, or the error message."""
        try:
            prepared = self._prepared()
            entry = _SEGMENT.findall(path) == self._entry
            if input_doc is None:
                engine = prepared.pristine
            else:
                engine = prepared.working
                # The entry rule gets the projection `evaluate` gives it; other paths,
                # which the security team queries by hand, get the whole input.
                engine.set_input(self._projection.apply(input_doc) if entry else input_doc)
            result: dict[str, Any]
            if entry:
                value = engine.eval_rule(self._rule)
                result = {"result": [] if value is None else [{"expressions": [{"value": value}]}]}
            else:
                result = engine.eval_query(data_query(path))
        except BaseException as exc:  # reported to the caller as one error type
            if not _engine_error(exc):
                raise
            log.warning(
                "policy query failed",
                extra={"event": "policy.query_error", "error_type": type(exc).__name__},
            )
            text = error_text(exc)
            return text.splitlines()[-1][:200] if text else type(exc).__name__
        return result

    async def decide(self, input_doc: Mapping[str, Any]) -> Decision:
        """`evaluate` on the calling (event-loop) thread: a decision costs well under a
        thread hop, and the loop's thread keeps its own prepared engine."""
        return self.evaluate(input_doc)

    async def close(self) -> None:
        """Refuse to prepare engines for more threads; each thread frees its own engines
        for this one when it ends or next prepares another `EmbeddedEngine`."""
        self._closed = True


def _projection(engine: Any) -> Projection:
    """The input projection of `engine`'s modules; the whole input if their AST cannot
    be read (a projection must never drop what a rule could read)."""
    try:
        return Projection(input_paths(engine))
    except Exception as exc:
        log.warning(
            "policy input paths unavailable; evaluating with the whole input",
            extra={"event": "policy.input_paths_error", "error_type": type(exc).__name__},
        )
        return Projection([()])


def _engine_error(exc: BaseException) -> bool:
    """An error from evaluation — including pyo3's ``PanicException``, which derives
    from BaseException — as opposed to KeyboardInterrupt, SystemExit and the like."""
    return isinstance(exc, Exception) or type(exc).__name__ == "PanicException"


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, set | frozenset):
        items = [_jsonable(v) for v in value]
        try:
            return sorted(items)
        except TypeError:
            return sorted(items, key=lambda v: json.dumps(v, sort_keys=True))
    return value
