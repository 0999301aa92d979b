"""The rules a bundle defines, read from regorus's AST (``Engine.get_ast_as_json``).

Shared by `policy.check` (which rules to compile and evaluate) and
`policy.testing` (which rules are ``test_`` rules). Only what those need: each
rule's package, name, full ``data.`` path, place and whether it is a function;
and, for `policy.embedded`, which parts of ``input`` the policy can read
(`input_paths`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

__all__ = ["Rule", "bundle_rules", "evaluable_lines", "input_paths"]


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


_REF_KINDS = ("RefDot", "RefBrack")


def _ref_chain(node: Any) -> tuple[Any, list[str | None], list[Any]]:
    """A ``RefDot``/``RefBrack`` chain: (its root node, its segments from the root —
    None for an index that is not a string constant —, the index expressions)."""
    segments: list[str | None] = []
    indexes: list[Any] = []
    while isinstance(node, dict) and len(node) == 1:
        ((kind, body),) = node.items()
        if kind == "RefDot":
            segments.append(str(body["field"][1]))
        elif kind == "RefBrack":
            index = body.get("index")
            indexes.append(index)
            if isinstance(index, dict) and "String" in index:
                segments.append(str(index["String"]["value"]))
            else:
                segments.append(None)
        else:
            break
        node = body["refr"]
    segments.reverse()
    return node, segments, indexes


def _is_input(node: Any) -> bool:
    return isinstance(node, dict) and node.get("Var", {}).get("value") == "input"


def input_paths(engine: Any) -> frozenset[tuple[str, ...]]:
    """Every path into ``input`` the loaded modules can read, e.g.
    ``("identity", "kind")``; ``()`` when one of them reads ``input`` whole.

    Conservative, so that dropping every member of an input document outside
    these paths cannot change any rule's value: a reference is cut at its first
    index that is not a string constant (``input.route[k]`` reads all of
    ``input.route``), and ``input`` anywhere but at the root of a constant
    reference — a function argument, ``walk(input)``, ``with input as``, a shape
    of the AST this walk does not know — counts as reading all of it.
    """
    paths: set[tuple[str, ...]] = set()

    def walk(node: Any) -> None:
        if isinstance(node, list):
            for item in node:
                walk(item)
            return
        if not isinstance(node, dict):
            return
        if len(node) == 1:
            ((kind, _),) = node.items()
            if kind in _REF_KINDS:
                root, segments, indexes = _ref_chain(node)
                if _is_input(root):
                    path: list[str] = []
                    for segment in segments:
                        if segment is None:
                            break
                        path.append(segment)
                    paths.add(tuple(path))
                else:
                    walk(root)
                walk(indexes)
                return
            if _is_input(node):
                paths.add(())
                return
        for value in node.values():
            walk(value)

    for module in json.loads(engine.get_ast_as_json()):
        walk(module["ast"])
    return frozenset(paths)
