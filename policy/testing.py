"""Run a bundle's Rego unit tests (``test_*`` rules) with line coverage, as ``opa test``
does: ``ztgate policy test`` and the reloader's gate (a bundle whose tests fail
never takes effect — issue 4, "Atomic hot reload").

A test is a complete rule whose name starts with ``test_`` in any module
(https://www.openpolicyagent.org/docs/policy-testing). It passes when it
evaluates to ``true``; ``false``, undefined or an evaluation error fail it, with
the reason. Rego merges same-named rules, so a test defined twice in one package
would pass if either body held and hide the other: such a name fails, with that
reason, instead of silently passing.

Coverage comes from regorus's coverage report over the run of every test: the
fraction of the *policy* modules' (not the tests') evaluable lines that some
test executed, with the lines and rules no test reached, per file.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from typing import Any

import regorus

from policy.bundle import Bundle, BundleError
from policy.embedded import data_problem, parse_errors
from policy.rego_ast import bundle_rules, evaluable_lines

__all__ = ["FileCoverage", "TestReport", "run_tests"]


@dataclass(frozen=True)
class FileCoverage:
    file: str
    covered: int
    total: int
    not_covered: tuple[int, ...]
    """Evaluable lines no test executed."""
    uncovered_rules: tuple[str, ...] = ()
    """Rules (by name) whose head line no test executed."""

    @property
    def fraction(self) -> float:
        return self.covered / self.total if self.total else 1.0


@dataclass(frozen=True)
class TestReport:
    passed: tuple[str, ...]
    failed: tuple[tuple[str, str], ...]
    """``(test, why)``; a bundle that does not compile fails as ``("<compile>", error)``."""
    coverage: float | None
    """Covered fraction of policy-module lines (None when there is nothing to cover)."""
    files: tuple[FileCoverage, ...] = ()

    __test__ = False  # not a pytest test class

    @property
    def ok(self) -> bool:
        return not self.failed

    def as_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "passed": list(self.passed),
            "failed": [{"test": name, "why": why} for name, why in self.failed],
            "coverage": self.coverage,
            "files": [
                {
                    "file": f.file,
                    "coverage": round(f.fraction, 4),
                    "not_covered": list(f.not_covered),
                    "uncovered_rules": list(f.uncovered_rules),
                }
                for f in self.files
            ],
        }


def _compile_failure(errors: list[str]) -> TestReport:
    return TestReport((), tuple(("<compile>", e) for e in errors), None)


def run_tests(bundle: Bundle) -> TestReport:
    """Evaluate every ``test_`` rule of `bundle` (tests included) against its data."""
    try:
        modules, data = bundle.modules, bundle.data
    except (BundleError, UnicodeDecodeError) as exc:
        return _compile_failure([str(exc)])
    engine = regorus.Engine()
    errors: list[str] = []
    for path, source in modules.items():
        try:
            engine.add_policy(path, source)
        except RuntimeError as exc:
            errors.extend(f"{f}:{ln}:{c}: {m}" for f, ln, c, m in parse_errors(exc, path))
    problem = data_problem(data)
    if problem is not None:
        errors.append(f"data.json: {problem}")
    if errors:
        return _compile_failure(errors)
    engine.add_data(data)
    engine.set_gather_prints(True)
    engine.set_enable_coverage(True)

    rules = bundle_rules(engine)
    tests = [r for r in rules if r.name.startswith("test_") and not r.function]
    counts = Counter(r.path for r in tests)
    passed: list[str] = []
    failed: list[tuple[str, str]] = []
    for path in sorted(counts):
        if counts[path] > 1:
            failed.append((path, f"defined {counts[path]} times; give each test its own name"))
            continue
        why = _run_one(engine, path)
        if why is None:
            passed.append(path)
        else:
            failed.append((path, why))
    files = _coverage(engine, bundle, rules)
    total = sum(f.total for f in files)
    coverage = sum(f.covered for f in files) / total if total else None
    return TestReport(tuple(passed), tuple(failed), coverage, files)


def _run_one(engine: Any, path: str) -> str | None:
    """None when the test passed, else why it failed."""
    try:
        value = engine.eval_rule(path)
    except RuntimeError as exc:
        found = parse_errors(exc)
        f, ln, c, msg = found[0]
        where = f"{f}:{ln}:{c}: " if f else ""
        return f"error: {where}{msg}"
    finally:
        prints = engine.take_prints()
    if value is True:
        return None
    what = "undefined" if value is None else f"{json.dumps(value, default=str)[:200]}"
    shown = "; ".join(str(p) for p in prints)[:500]
    return what + (f" (prints: {shown})" if shown else "")


def _coverage(engine: Any, bundle: Bundle, rules: list[Any]) -> tuple[FileCoverage, ...]:
    try:
        report = json.loads(engine.get_coverage_report_as_json())
    except (RuntimeError, ValueError):
        return ()
    policy_files = set(bundle.policy_modules)
    out: list[FileCoverage] = []
    for entry in report.get("files", []):
        path = entry.get("path")
        if path not in policy_files:
            continue
        covered = {int(n) for n in entry.get("covered", [])}
        missed = {int(n) for n in entry.get("not_covered", [])} - covered
        heads = {r.line: r.name for r in rules if r.file == path}
        uncovered = tuple(f"{heads[n]} (line {n})" for n in sorted(missed) if n in heads)
        out.append(
            FileCoverage(
                path, len(covered), len(covered) + len(missed), tuple(sorted(missed)), uncovered
            )
        )
    # regorus leaves out files where nothing ran: every line of those is uncovered.
    lines = evaluable_lines(engine)
    for path in sorted(policy_files - {f.file for f in out}):
        missed = lines.get(path, set())
        heads = {r.line: r.name for r in rules if r.file == path}
        uncovered = tuple(f"{heads[n]} (line {n})" for n in sorted(missed) if n in heads)
        out.append(FileCoverage(path, 0, len(missed), tuple(sorted(missed)), uncovered))
    return tuple(sorted(out, key=lambda f: f.file))
