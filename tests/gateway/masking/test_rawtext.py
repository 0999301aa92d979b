"""The raw-text pass: suspects never miss a string the detector would mask, the fast
parser reads every body as the standard library does, and echoes are replaced as the
regular expression would replace them."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.masking import rawtext
from gateway.masking.body import mask_body
from gateway.masking.detector import find
from gateway.masking.engine import MaskingEngine, Request, replace_literals
from gateway.masking.maskers import PseudonymKeys
from gateway.masking.rules import default_rules
from tests.gateway.masking.strategies import (
    TODAY,
    card_numbers,
    identifiers,
    mobiles,
    separators,
)

_FULLWIDTH = {0x30 + i: 0xFF10 + i for i in range(10)}
ENGINE = MaskingEngine(default_rules(), PseudonymKeys(b"\x07" * 32), today=lambda: TODAY)
PROFILES = ("customer", "partner", "staff_restricted", "audit", "public")
ROUTES = ("accounts.transactions", "customers.profile", "cards.detail", None)

# Strings built around identifiers (in every position, with digits, spaces, hyphens,
# full-width digits and '@' beside them) as well as arbitrary text.
_digitish = st.text("0123456789 -@xX\uff10\uff11\uff19.", max_size=24)
_planted = st.builds(
    lambda a, ident, sep, b: a + sep + ident + sep + b,
    st.text(max_size=6),
    identifiers,
    separators,
    st.text(max_size=6),
)
_grouped = st.one_of(
    st.builds(
        lambda card, sep: sep.join(card[i : i + 4] for i in range(0, len(card), 4)),
        card_numbers,
        st.sampled_from(" -"),
    ),
    st.builds(lambda m, sep: f"{m[:3]}{sep}{m[3:7]}{sep}{m[7:]}", mobiles, st.sampled_from(" -")),
)
"""Card and mobile numbers written in groups ("6222 0812 3456 7890", "138-1234-5678")."""
_strings = st.one_of(
    st.text(max_size=24),
    _digitish,
    identifiers,
    _planted,
    _grouped,
    st.builds(lambda a, g, b: a + g + b, st.text(max_size=4), _grouped, st.text(max_size=4)),
)
_json = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.integers(min_value=-(2**70), max_value=2**70),
        st.floats(allow_nan=False, allow_infinity=False),
        _strings,
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(
            st.one_of(st.sampled_from(["mobile", "name", "cvn", "note", "bban"]), _strings),
            inner,
            max_size=4,
        ),
    ),
    max_leaves=24,
)


def _strings_in(doc: Any) -> list[str]:
    if isinstance(doc, str):
        return [doc]
    if isinstance(doc, list):
        return [s for item in doc for s in _strings_in(item)]
    if isinstance(doc, dict):
        return [s for k, v in doc.items() for s in [k, *_strings_in(v)]]
    return []


def _encodings(doc: Any) -> list[bytes]:
    return [
        json.dumps(doc, ensure_ascii=False).encode("utf-8", "surrogatepass"),
        json.dumps(doc, ensure_ascii=False, indent=1).encode("utf-8", "surrogatepass"),
        json.dumps(doc).encode(),  # every non-ASCII character escaped: no suspects
    ]


@given(_json)
def test_every_string_the_detector_would_touch_is_a_suspect(doc: Any) -> None:
    for body in _encodings(doc):
        try:
            suspects = rawtext.suspects(body)
        except UnicodeDecodeError:
            continue  # a lone surrogate: not UTF-8, blocked before any scan
        if suspects is None:
            continue
        for s in _strings_in(doc):
            if find(s):
                assert s in suspects


@given(_json, st.sampled_from(PROFILES), st.sampled_from(ROUTES))
def test_masking_a_body_equals_scanning_every_string(
    doc: Any, profile: str, route: str | None
) -> None:
    request = Request(route, profile, "fintech-budgetly")
    for body in _encodings(doc):
        outcome = mask_body(ENGINE, body, "application/json", request)
        if outcome.blocked:
            continue  # a lone surrogate cannot be sent as UTF-8
        reference = ENGINE.mask_json(json.loads(body), request)  # every string scanned
        assert json.loads(outcome.body) == json.loads(reference)


@given(_json)
def test_the_fast_parser_reads_what_the_standard_library_reads(doc: Any) -> None:
    for body in _encodings(doc):
        try:
            expected = json.loads(body.decode("utf-8"))
        except UnicodeDecodeError:
            continue
        assert rawtext.loads(body) == expected
        assert json.loads(rawtext.dumps(expected)) == expected


def test_plain_bodies_have_few_suspects() -> None:
    body = '{"name":"王芳","note":"到账 13812345678","id":"txn_1","n":12345678901}'.encode()
    # The text between the quotes around each digit run (a number's is not a string,
    # and scanning it is harmless): nothing else needs the detector.
    assert rawtext.suspects(body) == {"到账 13812345678", ":12345678901}"}


@pytest.mark.parametrize(
    "body",
    [
        b'{"note":"\\u0031\\u0033812345678"}',  # an escape hides a digit
        ('{"note":"' + "13812345678".translate(_FULLWIDTH) + '"}').encode(),  # full-width
    ],
)
def test_escapes_and_full_width_digits_mean_every_string_is_scanned(body: bytes) -> None:
    assert rawtext.suspects(body) is None
    out = mask_body(ENGINE, body, "application/json", Request(None, "customer")).body
    assert "12345678" not in json.loads(out)["note"].translate(
        {0xFF10 + i: 0x30 + i for i in range(10)}
    )


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b'{"n":123456789012345678901234567890}', {"n": 123456789012345678901234567890}),
        (b'{"n":-9223372036854775809}', {"n": -9223372036854775809}),
        (b'{"s":"\\ud800x"}', {"s": "\ud800x"}),
        (b"[1e400]", [float("inf")]),
    ],
)
def test_what_the_fast_parser_refuses_or_would_round_goes_to_the_standard_library(
    body: bytes, expected: Any
) -> None:
    assert rawtext.loads(body) == expected


def test_nan_is_not_json() -> None:
    with pytest.raises(ValueError, match="not JSON"):
        rawtext.loads(b'{"a":NaN}')


def test_a_lone_surrogate_is_blocked_not_raised() -> None:
    outcome = mask_body(ENGINE, b'{"s":"\\ud800"}', "application/json", Request(None, "customer"))
    assert outcome.blocked and outcome.reason == "unparseable_body"


@given(
    st.text("ab王芳*", max_size=40),
    st.lists(st.text("ab王芳", min_size=1, max_size=4), min_size=1, max_size=5, unique=True),
)
def test_literal_replacement_is_the_alternations(text: str, values: list[str]) -> None:
    values.sort(key=len, reverse=True)
    replacements = {v: "*" * (i + 1) for i, v in enumerate(values)}
    pattern = re.compile("|".join(map(re.escape, values)))
    expected = pattern.sub(lambda m: replacements[m.group()], text)
    assert replace_literals(text, values, replacements) == expected
