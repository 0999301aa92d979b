"""Selectors: the grammar, matching positions, and errors that say where."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.masking.selector import Selector, SelectorError, Step, parse_selector


@pytest.mark.parametrize(
    ("text", "steps"),
    [
        ("$.card_no", (Step(name="card_no"),)),
        ("$.accounts[*].card_no", (Step(name="accounts"), Step(), Step(name="card_no"))),
        ("$..mobile", (Step(name="mobile", descendant=True),)),
        ("$.a[2].b", (Step(name="a"), Step(index=2), Step(name="b"))),
        ("$['odd key.x'].y", (Step(name="odd key.x"), Step(name="y"))),
        ("$['it\\'s']", (Step(name="it's"),)),
        ("$.*", (Step(),)),
        ("$..*", (Step(descendant=True),)),
        ("$..[0]", (Step(index=0, descendant=True),)),
        ("$.id_document.number", (Step(name="id_document"), Step(name="number"))),
    ],
)
def test_parses(text: str, steps: tuple[Step, ...]) -> None:
    assert parse_selector(text) == Selector(text, steps)


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("card_no", "starts with '$'"),
        ("$", "alone"),
        ("$.a[?(@.x)]", "unsupported bracket at 3"),
        ("$.a[1:3]", "unsupported bracket"),
        ("$.a[01]", "unsupported bracket"),
        ("$.a['x','y']", "expected ']'"),
        ("$['']", "empty member name"),
        ("$.['x']", "expected a member name at 2"),
        ("$.a['x", "unterminated"),
        ("$.1abc", "expected a member name at 2"),
        ("$a", "unexpected 'a' at 1"),
        ("$.a.", "expected a member name at 4"),
    ],
)
def test_refuses_with_the_position(text: str, where: str) -> None:
    with pytest.raises(SelectorError, match=re.escape(where)):
        parse_selector(text)


@pytest.mark.parametrize(
    ("selector", "path", "matched"),
    [
        ("$.accounts[*].card_no", ("accounts", 3, "card_no"), True),
        ("$.accounts[*].card_no", ("accounts", "x", "card_no"), True),
        ("$.accounts[*].card_no", ("accounts", 3, "card_no", "x"), False),
        ("$.accounts[*].card_no", ("card_no",), False),
        ("$..mobile", ("mobile",), True),
        ("$..mobile", ("a", 1, "b", "mobile"), True),
        ("$..mobile", ("a", "mobile", "b"), False),
        ("$.a..b.c", ("a", "x", "y", "b", "c"), True),
        ("$.a..b.c", ("a", "b", "c"), True),
        ("$.a..b.c", ("b", "c"), False),
        ("$..b..c", ("b", "b", "c", "c"), True),
        ("$.a[1]", ("a", 1), True),
        ("$.a[1]", ("a", 2), False),
        ("$.a[1]", ("a", "1"), False),
    ],
)
def test_matches_positions(selector: str, path: tuple[str | int, ...], matched: bool) -> None:
    assert parse_selector(selector).matches(path) is matched


_names = st.from_regex(r"[A-Za-z_][A-Za-z0-9_-]{0,10}", fullmatch=True)
_quoted = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=10)
_steps = st.lists(
    st.one_of(
        st.builds(Step, name=_names, descendant=st.booleans()),
        st.builds(Step, name=_quoted),
        st.builds(Step, index=st.integers(0, 10**6), descendant=st.booleans()),
        st.builds(Step, descendant=st.booleans()),
    ),
    min_size=1,
    max_size=8,
)


def _render(step: Step, quote: bool) -> str:
    dots = ".." if step.descendant else ""
    if step.index is not None:
        return f"{dots}[{step.index}]"
    if step.name is None:
        return f"{dots}*" if step.descendant else ".*"
    if quote and not step.descendant:
        escaped = step.name.replace("\\", "\\\\").replace("'", "\\'")
        return f"['{escaped}']"
    return f"{dots or '.'}{step.name}"


_PLAIN = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")


@given(_steps, st.booleans())
def test_rendered_steps_parse_back(steps: list[Step], quote: bool) -> None:
    # Names outside the dotted grammar are written quoted (only non-descendant
    # steps are generated with such names: ..['x'] is not in the grammar).
    text = "$" + "".join(
        _render(s, quote or (s.name is not None and not _PLAIN.fullmatch(s.name))) for s in steps
    )
    assert parse_selector(text).steps == tuple(steps)


@given(st.text(max_size=40))
def test_any_text_parses_or_is_refused_cleanly(text: str) -> None:
    try:
        selector = parse_selector(text)
    except SelectorError:
        return
    assert selector.steps and selector.text == text
