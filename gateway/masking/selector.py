"""JSONPath-like field selectors for masking rules, compiled to a tree walk.

The subset of JSONPath (RFC 9535) a masking rule needs, and no more:

* ``$`` — the document root; every selector starts with it;
* ``.name`` / ``['name']`` — a member of an object (the bracket form takes any name,
  including dots and spaces; ``\\'`` and ``\\\\`` escape inside it);
* ``[n]`` — the n-th element of an array (n ≥ 0);
* ``[*]`` / ``.*`` — every member of an object or element of an array;
* ``..name`` / ``..*`` / ``..[n]`` — descendant: the step matched at any depth below.

Filters, slices and unions are refused at load time (a rule that cannot be read
exactly is an error, not a guess). A selector matches a *position* in a document,
a path of member names and indices; `Walker` follows many selectors down the
document at once, the way an NFA follows a string, so a body is walked once
whatever the number of rules.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

__all__ = ["Selector", "SelectorError", "Step", "parse_selector"]

Segment = str | int
"""One step of a position: an object member name or an array index."""

_NAME: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")
_INDEX: Final = re.compile(r"0|[1-9][0-9]{0,8}")
MAX_SELECTOR: Final = 512


class SelectorError(ValueError):
    """A selector outside the supported grammar; the message says where."""


@dataclass(frozen=True)
class Step:
    """One selector step: a name, an index or a wildcard, optionally descendant."""

    name: str | None = None
    index: int | None = None
    descendant: bool = False

    @property
    def wildcard(self) -> bool:
        return self.name is None and self.index is None

    def matches(self, segment: Segment) -> bool:
        if self.name is not None:
            return isinstance(segment, str) and segment == self.name
        if self.index is not None:
            return isinstance(segment, int) and segment == self.index
        return True


@dataclass(frozen=True)
class Selector:
    """A parsed selector: its source text and its steps."""

    text: str
    steps: tuple[Step, ...]

    def matches(self, path: tuple[Segment, ...]) -> bool:
        """Whether the position `path` (from the root) is selected."""
        states = {0}
        for segment in path:
            states = advance(self.steps, states, segment)
            if not states:
                return False
        return len(self.steps) in states


def advance(steps: tuple[Step, ...], states: set[int], segment: Segment) -> set[int]:
    """The NFA states after reading `segment` from `states` (indices into `steps`)."""
    after: set[int] = set()
    for i in states:
        if i >= len(steps):
            continue
        step = steps[i]
        if step.descendant:
            after.add(i)  # the descendant step may match further down
        if step.matches(segment):
            after.add(i + 1)
    return after


def _bracket(text: str, pos: int) -> tuple[Step, int]:
    """Parse ``[...]`` starting at `pos` (the ``[``); return the step and the next pos."""
    if text.startswith("[*]", pos):
        return Step(), pos + 3
    if text.startswith("['", pos):
        out: list[str] = []
        i = pos + 2
        while i < len(text):
            ch = text[i]
            if ch == "\\" and i + 1 < len(text) and text[i + 1] in "'\\":
                out.append(text[i + 1])
                i += 2
            elif ch == "'":
                if not text.startswith("']", i):
                    raise SelectorError(f"expected ']' after the quoted name at {i + 1}")
                if not out:
                    raise SelectorError(f"empty member name at {pos}")
                return Step(name="".join(out)), i + 2
            else:
                out.append(ch)
                i += 1
        raise SelectorError(f"unterminated quoted name at {pos}")
    end = text.find("]", pos)
    inner = text[pos + 1 : end] if end != -1 else ""
    if end == -1 or _INDEX.fullmatch(inner) is None:
        raise SelectorError(
            f"unsupported bracket at {pos}: use [n], [*] or ['name'] (no filters, slices, unions)"
        )
    return Step(index=int(inner)), end + 1


def parse_selector(text: str) -> Selector:
    """Parse `text`; raise `SelectorError` naming the position of the first problem."""
    if not isinstance(text, str) or not text.startswith("$"):
        raise SelectorError("a selector starts with '$'")
    if len(text) > MAX_SELECTOR:
        raise SelectorError(f"a selector is at most {MAX_SELECTOR} characters")
    steps: list[Step] = []
    pos = 1
    while pos < len(text):
        descendant = False
        if text.startswith("..", pos):
            descendant, pos = True, pos + 2
            if pos < len(text) and text[pos] == "[":
                step, pos = _bracket(text, pos)
                steps.append(Step(step.name, step.index, descendant=True))
                continue
        elif text[pos] == ".":
            pos += 1
        elif text[pos] == "[":
            step, pos = _bracket(text, pos)
            steps.append(step)
            continue
        else:
            raise SelectorError(f"unexpected {text[pos]!r} at {pos}")
        if text.startswith("*", pos):
            steps.append(Step(descendant=descendant))
            pos += 1
            continue
        match = _NAME.match(text, pos)
        if match is None:
            raise SelectorError(f"expected a member name at {pos}")
        steps.append(Step(name=match.group(), descendant=descendant))
        pos = match.end()
    if not steps:
        raise SelectorError("'$' alone selects the whole document; name a field")
    return Selector(text, tuple(steps))
