"""The rules a bundle defines, read from regorus's AST (``Engine.get_ast_as_json``).

Shared by `policy.check` (which rules to compile and evaluate) and
`policy.testing` (which rules are ``test_`` rules). Only what those need: each
rule's package, name, full ``data.`` path, place and whether it is a function.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

__all__ = ["Rule", "bundle_rules", "evaluable_lines"]


@dataclass(frozen=True)
class Rule:
    file: str
    package: str
    """``data.``-prefixed package path, e.g. ``data.ztgate.main``."""
    name: str
    """The rule's reference inside its package, e.g. ``decision`` or ``a.b``."""
    line: int
    col: int
    function: bool

    @property
    def path(self) -> str:
        return f"{self.package}.{self.name}"


def _segments(ref: Any) -> list[str] | None:
    """``a.b["c"]`` → ``["a", "b", "c"]``; None when a segment is not a constant."""
    if not isinstance(ref, dict) or len(ref) != 1:
        return None
    ((kind, node),) = ref.items()
    if kind == "Var":
        return [str(node["value"])]
    if kind == "RefDot":
        head = _segments(node["refr"])
        return None if head is None else [*head, str(node["field"][1])]
    if kind == "RefBrack":
        head = _segments(node["refr"])
        index = node.get("index", {})
        if head is None:
            return None
        if isinstance(index, dict) and "String" in index:
            return [*head, str(index["String"]["value"])]
        return head  # a variable key (`r[k] := v`): the rule is the whole object
    return None


def _rule(file: str, package: str, rule: dict[str, Any]) -> Rule | None:
    ((kind, node),) = rule.items()
    if kind == "Default":
        head, function = node, bool(node.get("args"))
    elif kind == "Spec":
        ((head_kind, head),) = node["head"].items()
        function = head_kind == "Func"
    else:
        return None
    parts = _segments(head.get("refr"))
    if not parts:
        return None
    span = head.get("span", {})
    return Rule(
        file, package, ".".join(parts), int(span.get("line", 0)), int(span.get("col", 0)), function
    )


def bundle_rules(engine: Any) -> list[Rule]:
    """Every rule of every module loaded in a regorus `engine`, in source order."""
    out: list[Rule] = []
    for module in json.loads(engine.get_ast_as_json()):
        file = module["source"]["file"]
        ast = module["ast"]
        pkg = _segments(ast["package"]["refr"]) or []
        package = ".".join(["data", *pkg])
        for rule in ast.get("rules", []):
            found = _rule(file, package, rule)
            if found is not None:
                out.append(found)
    return out


def _statement_lines(node: Any, out: set[int]) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "stmts" and isinstance(value, list):
                out.update(int(st["span"]["line"]) for st in value if "span" in st)
            _statement_lines(value, out)
    elif isinstance(node, list):
        for value in node:
            _statement_lines(value, out)


def evaluable_lines(engine: Any) -> dict[str, set[int]]:
    """Per file, the lines of rule heads and body statements: what regorus's coverage
    counts, for the files it leaves out of its report because nothing there ran."""
    out: dict[str, set[int]] = {}
    for module in json.loads(engine.get_ast_as_json()):
        lines = out.setdefault(module["source"]["file"], set())
        for rule in module["ast"].get("rules", []):
            ((_kind, node),) = rule.items()
            if "span" in node:
                lines.add(int(node["span"]["line"]))
            _statement_lines(node, lines)
    return out
