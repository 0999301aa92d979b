"""``ztgate policy check``: parse and compile every module of a bundle, tests included,
and report each error with file:line:col (issue 4, acceptance check 1).

regorus checks in three places, and each is run here so that a broken policy
fails *before* it is deployed rather than at its first request:

1. parsing (``add_policy``) — syntax errors; each module parsed on its own so
   every broken file is reported, not only the first;
2. analysis, which regorus runs over all modules on the first evaluation —
   unsafe variables, bad references;
3. function resolution, which the interpreter only does when a call is reached:
   the policy modules' rules are compiled ahead of time with regorus's compiler
   (``Program.compile_from_modules``) so an unknown function or a builtin this
   engine lacks (e.g. ``io.jwt.*``) is reported statically. Only errors that
   name a function are taken from the compiler: it does not support every
   construct the interpreter does (``with``, for instance), and what it cannot
   compile the interpreter still evaluates correctly.

Rule conflicts (two complete definitions with different values) are evaluation
errors in regorus as in OPA; every complete rule is evaluated once with an
empty input to surface the ones that conflict without depending on input.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Final

import regorus

from policy.bundle import Bundle, BundleError
from policy.embedded import data_problem, error_text, parse_errors, rule_path
from policy.engine import DEFAULT_ENTRYPOINT
from policy.rego_ast import Rule, bundle_rules

__all__ = ["CheckError", "check_bundle"]

_FUNCTION_ERRORS: Final = ("unknown function", "could not find function")
_CONFLICT_ERRORS: Final = ("conflict",)


@dataclass(frozen=True, order=True)
class CheckError:
    file: str
    line: int
    col: int
    message: str

    def __str__(self) -> str:
        if not self.file:
            return self.message
        return f"{self.file}:{self.line}:{self.col}: {self.message}"


def _errors(exc: BaseException, default_file: str = "") -> list[CheckError]:
    return [CheckError(f, ln, c, m) for f, ln, c, m in parse_errors(exc, default_file)]


def check_bundle(
    bundle: Bundle, *, entrypoint: str | None = DEFAULT_ENTRYPOINT
) -> list[CheckError]:
    """Every error in `bundle`'s Rego and data, sorted; empty when it compiles.

    `entrypoint` (``/``-separated), when given, must be defined by a policy module.
    """
    try:
        modules = bundle.modules
        data = bundle.data
    except (BundleError, UnicodeDecodeError) as exc:
        return [CheckError("", 0, 0, str(exc))]
    errors: list[CheckError] = []
    for path, source in modules.items():
        probe = regorus.Engine()
        try:
            probe.add_policy(path, source)
        except RuntimeError as exc:
            errors.extend(_errors(exc, path))
    problem = data_problem(data)
    if problem is not None:
        errors.append(CheckError("data.json", 0, 0, problem))
    if errors:
        return sorted(set(errors))

    engine = regorus.Engine()
    for path, source in modules.items():
        engine.add_policy(path, source)
    engine.add_data(data)
    try:
        engine.eval_query("true")  # runs regorus's analysis over every module
    except RuntimeError as exc:
        return sorted(set(_errors(exc)))

    policy_files = set(bundle.policy_modules)
    rules = [r for r in bundle_rules(engine) if r.file in policy_files]
    errors.extend(_function_errors(bundle, data, rules))
    seen = {(e.file, e.line) for e in errors}
    errors.extend(e for e in _conflict_errors(engine, rules) if (e.file, e.line) not in seen)
    if entrypoint is not None:
        wanted = rule_path(entrypoint)
        if not any(r.path == wanted for r in rules):
            errors.append(CheckError("", 0, 0, f"entry rule {wanted} is not defined"))
    return sorted(set(errors))


def _function_errors(bundle: Bundle, data: dict[str, Any], rules: list[Rule]) -> list[CheckError]:
    entry_points = sorted({r.path for r in rules if not r.function})
    if not entry_points:
        return []
    try:
        regorus.Program.compile_from_modules(
            json.dumps(data), list(bundle.policy_modules.items()), entry_points
        )
    except RuntimeError as exc:
        found = _errors(exc)
        return [e for e in found if any(k in e.message.lower() for k in _FUNCTION_ERRORS)]
    return []


def _conflict_errors(engine: Any, rules: list[Rule]) -> list[CheckError]:
    out: list[CheckError] = []
    engine.set_input({})
    for path in sorted({r.path for r in rules if not r.function}):
        try:
            engine.eval_rule(path)
        except RuntimeError as exc:
            text = error_text(exc).lower()
            if any(k in text for k in _CONFLICT_ERRORS + _FUNCTION_ERRORS):
                out.extend(_errors(exc))
    return out
