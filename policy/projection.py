"""The part of an input document a policy can read, and nothing else.

regorus converts the whole input (`Engine.set_input`) on every decision,
~12 µs for the 2 KB example, about half of it headers and query parameters
that the default bundle never reads. `Projection` keeps only the members at
the paths `policy.rego_ast.input_paths` found in the policy's modules (issue 4,
acceptance check 5: a prepared engine converts only what it needs).

Same decision by construction: every rule can read only through those paths,
so a member off them cannot change any value; a policy that reads ``input``
whole (or in a way the analysis cannot follow) gets the whole document. The
caller validates the *whole* document first (`policy.contract.check_input`):
a projection never makes a malformed input acceptable. Decision logs record
the document the gateway built, not the projection.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

__all__ = ["Projection"]

Tree = dict[str, "Tree | None"]
"""Members to keep, each with the tree of its own members to keep (None: all of it)."""


def _tree(paths: Iterable[tuple[str, ...]]) -> Tree | None:
    """The keep-tree of `paths`; None when one of them is the whole document."""
    root: Tree = {}
    for path in sorted(set(paths), key=len):
        if not path:
            return None
        node: Tree | None = root
        for i, key in enumerate(path):
            assert node is not None
            if key in node and node[key] is None:
                break  # a shorter path already keeps all of it
            if i == len(path) - 1:
                node[key] = None
            else:
                node = node.setdefault(key, {})
    return root


def _project(value: dict[str, Any], tree: Tree) -> dict[str, Any]:
    out = {}
    for key, sub in tree.items():
        if key in value:
            member = value[key]
            # A member that is not an object has no members to drop: kept whole.
            if sub is not None and isinstance(member, dict):
                member = _project(member, sub)
            out[key] = member
    return out


class Projection:
    """Drops the members of an input document outside a policy's input paths."""

    __slots__ = ("tree",)

    def __init__(self, paths: Iterable[tuple[str, ...]]) -> None:
        self.tree = _tree(paths)

    @property
    def whole(self) -> bool:
        """The policy may read all of ``input``: `apply` returns the document itself."""
        return self.tree is None

    def apply(self, doc: Any) -> Any:
        """`doc` with only the members the policy can read (new containers on the
        kept paths; the leaves are shared, not copied)."""
        tree = self.tree
        if tree is None or not isinstance(doc, dict):
            return doc
        return _project(doc, tree)
