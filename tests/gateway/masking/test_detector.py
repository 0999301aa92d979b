"""The automatic detector: every valid identifier in any text, and few false alarms."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway import pii
from gateway.masking.classification import Kind
from gateway.masking.detector import classify, find
from tests.gateway.masking.strategies import (
    card_numbers,
    emails,
    mobiles,
    resident_ids,
    separators,
)

ID = pii.resident_id("110101", date(1990, 3, 7), 123)
CARD = pii.card_number("622208", "1234567890123", 19)
MOBILE = "13812345678"


@pytest.mark.parametrize(
    ("text", "found"),
    [
        (f"账户{CARD}余额不足", [(CARD, Kind.CARD_NUMBER)]),
        (f"insufficient funds in account {CARD}: available", [(CARD, Kind.CARD_NUMBER)]),
        (f"call {MOBILE} or +86{MOBILE}", [(MOBILE, Kind.MOBILE), ("86" + MOBILE, Kind.MOBILE)]),
        (f"身份证{ID}。", [(ID, Kind.RESIDENT_ID)]),
        (f"id {ID.lower()}", [(ID.lower(), Kind.RESIDENT_ID)]),
        ("mail zhang.san@bank.example.cn now", [("zhang.san@bank.example.cn", Kind.EMAIL)]),
        ("13812345678@163.com", [("13812345678@163.com", Kind.EMAIL)]),
        ("6222 0812 3456 7890 12", []),
        ("138 1234 5678", [("138 1234 5678", Kind.MOBILE)]),
        (f"{CARD}x", [(CARD, Kind.CARD_NUMBER)]),
    ],
)
def test_finds(text: str, found: list[tuple[str, Kind]]) -> None:
    assert [(text[f.start : f.end], f.kind) for f in find(text)] == found


def test_grouped_card_numbers_are_found() -> None:
    card = pii.card_number("625330", "123456789", 16)
    grouped = " ".join(card[i : i + 4] for i in range(0, 16, 4))
    assert [(f.kind) for f in find(f"卡号 {grouped} 已冻结")] == [Kind.CARD_NUMBER]
    assert [(f.kind) for f in find(f"卡号 {grouped} 12")] == [Kind.CARD_NUMBER]


@pytest.mark.parametrize(
    "text",
    [
        "",
        "txn_250741818d1fb540",
        "2026-07-10T15:25:56+08:00",
        "130499.56",
        "1700000000123",  # a millisecond timestamp: 13 digits, not Luhn-valid
        CARD[:-1] + str((int(CARD[-1]) + 1) % 10),  # wrong check digit
        ID[:17] + ("0" if ID[17] != "0" else "1"),
        "12812345678",  # no carrier has 128
        f"9{CARD}9",  # inside a longer run: some other number
    ],
)
def test_leaves_alone(text: str) -> None:
    assert find(text) == []


def test_classify_whole_tokens() -> None:
    assert classify(ID) is Kind.RESIDENT_ID
    assert classify(CARD) is Kind.CARD_NUMBER
    assert classify(MOBILE) is Kind.MOBILE
    assert classify("0086" + MOBILE) is Kind.MOBILE


def test_full_width_digits_are_digits() -> None:
    wide = "".join(chr(0xFF10 + int(d)) for d in MOBILE)
    assert [(f.start, f.end, f.kind) for f in find(f"电话{wide}。")] == [(2, 13, Kind.MOBILE)]


@given(
    st.one_of(resident_ids, card_numbers, mobiles, emails),
    separators,
    separators,
)
def test_no_false_negative_on_generated_identifiers(value: str, before: str, after: str) -> None:
    text = f"{before}{value}{after}"
    spans = [text[f.start : f.end] for f in find(text)]
    assert value in spans


@given(st.lists(st.one_of(resident_ids, card_numbers, mobiles), min_size=1, max_size=5), separators)
def test_every_identifier_of_a_list_is_found(values: list[str], sep: str) -> None:
    text = sep.join(values)
    assert [text[f.start : f.end] for f in find(text)] == values
