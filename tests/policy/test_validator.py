"""policy.validator: the compiled check behind policy.contract.check_input. Agreement with
the JSON Schema is proven in test_contract.py; here, what the compiled form adds: the
remembered header names, and optional and nullable members."""

from __future__ import annotations

from typing import Any

from policy.contract import check_input, example_input
from policy.validator import Headers, Int, Obj, Str, compile_check


class _Claims(str):
    """A str subclass that claims to equal (and hashes like) a valid header name."""

    __slots__ = ()

    def __eq__(self, other: object) -> bool:
        return True

    def __hash__(self) -> int:
        return hash("accept")


def test_a_remembered_header_name_is_not_a_pass_for_lookalikes() -> None:
    assert check_input(example_input()) is None  # "accept" is remembered now
    doc: dict[str, Any] = example_input()
    doc["request"]["headers"] = {_Claims("BAD NAME"): "x"}
    assert check_input(doc) == "input:value:request.headers"


def test_header_names_stay_checked_once_the_memory_is_full() -> None:
    check = compile_check(Obj("", {"h": Headers("h", 64, 100, known_names=3)}))
    for i in range(5):
        assert check({"h": {f"x-{i}": "v", "accept": "v"}}) is None
    assert check({"h": {"x-1": "v"}}) is None
    assert check({"h": {"X-Upper": "v"}}) == "input:value:h"
    assert check({"h": {"x-9": "\x00"}}) == "input:value:h"


def test_optional_and_nullable_members() -> None:
    check = compile_check(
        Obj(
            "",
            {
                "a": Int("a", 0, 9, nullable=True),
                "b": Str("b", max_len=2, nullable=True),
                "o": Obj("o", {"x": Int("o.x", 0, 1)}, nullable=True),
            },
            optional=frozenset({"b"}),
        )
    )
    assert check({"a": None, "o": None}) is None
    assert check({"a": 1, "b": "ab", "o": {"x": 1}}) is None
    assert check({"a": 1, "b": "abc", "o": None}) == "input:too_long:b"
    assert check({"a": True, "o": None}) == "input:type:a"
    assert check({"a": 10, "o": None}) == "input:value:a"
    assert check({"a": 1.0, "o": {"x": 2}}) == "input:value:o.x"
    assert check({"a": 1, "o": {"x": 1, "y": 2}}) == "input:unknown:o"
    assert check({"a": 1, "o": None, "z": 1}) == "input:unknown:$"
    assert check({"o": None}) == "input:missing:a"
