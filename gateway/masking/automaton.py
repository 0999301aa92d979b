"""All of a route's selectors as one lazily built, memoised automaton.

Following each rule's selector separately costs a loop over every rule at every
member of every response. Instead the live (rule, step) pairs form one state,
and the move from a state on a member name is computed once and remembered:
responses of one route repeat the same member names, so after the first few
bodies a move is one dictionary lookup. Array indices all move alike unless
some selector names an index, so they share one entry.

The memo is bounded (`MAX_MOVES`): member names come from upstream bodies, and
a body with a million distinct names must not grow memory without limit; past
the bound the memo starts over.
"""

from __future__ import annotations

from typing import Final

from gateway.masking.classification import Classification
from gateway.masking.rules import Rule
from gateway.masking.selector import Segment

__all__ = ["Automaton", "State"]

State = frozenset[tuple[int, int]]
"""Live (rule index, step index) pairs."""

MAX_MOVES: Final = 50_000
_ANY_INDEX: Final = -1


class Automaton:
    """The selectors of `rules` (in priority order) as one automaton."""

    def __init__(self, rules: tuple[Rule, ...]) -> None:
        self.rules = rules
        self.start: State = frozenset((i, 0) for i in range(len(rules)))
        self.exact_indices = any(
            step.index is not None for rule in rules for step in rule.selector.steps
        )
        """Whether some selector names an array index (else every index moves alike)."""
        self.memo: dict[tuple[State, Segment], tuple[State, Rule | None]] = {}
        """The moves computed so far: the walk looks a member name up here first
        (read-only outside `move`; an index is stored as `_ANY_INDEX` unless
        `exact_indices`)."""

    def move(self, state: State, segment: Segment) -> tuple[State, Rule | None]:
        """The state after `segment`, and the rule that selects this position (the
        first in priority order, a C3 rule before any other), if any."""
        if not state:
            return state, None
        key_segment = segment
        if isinstance(segment, int) and not self.exact_indices:
            key_segment = _ANY_INDEX
        key = (state, key_segment)
        found = self.memo.get(key)
        if found is None:
            found = self._compute(state, segment)
            if len(self.memo) >= MAX_MOVES:
                self.memo.clear()
            self.memo[key] = found
        return found

    def _compute(self, state: State, segment: Segment) -> tuple[State, Rule | None]:
        after: set[tuple[int, int]] = set()
        chosen: int | None = None
        c3: int | None = None
        for index, pos in state:
            steps = self.rules[index].selector.steps
            if pos >= len(steps):
                continue
            step = steps[pos]
            if step.descendant:
                after.add((index, pos))
            if step.matches(segment):
                after.add((index, pos + 1))
                if pos + 1 == len(steps):
                    if chosen is None or index < chosen:
                        chosen = index
                    if self.rules[index].classification is Classification.C3 and (
                        c3 is None or index < c3
                    ):
                        c3 = index
        pick = c3 if c3 is not None else chosen
        return frozenset(after), self.rules[pick] if pick is not None else None
