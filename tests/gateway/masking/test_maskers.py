"""The maskers, one by one."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crypto import sm3
from gateway import pii
from gateway.masking.classification import Kind
from gateway.masking.detector import find
from gateway.masking.maskers import (
    PseudonymKeys,
    age_band,
    city_of,
    generalise,
    partial,
    partial_email,
    pseudonym,
    token,
)
from tests.gateway.masking.strategies import card_numbers, mobiles, resident_ids

KEY = b"\x01" * 32


@pytest.mark.parametrize(
    ("value", "head", "tail", "masked"),
    [
        ("6222081234567890128", 6, 4, "622208*********0128"),
        ("13812345678", 3, 4, "138****5678"),
        ("11010119900307123X", 1, 1, "1****************X"),
        ("欧阳娜娜", 1, 0, "欧***"),
        ("王芳", 0, 1, "*芳"),
        ("王", 1, 0, "*"),  # too short to keep anything
        ("1234", 2, 2, "****"),
        ("", 1, 1, ""),
    ],
)
def test_partial(value: str, head: int, tail: int, masked: str) -> None:
    assert partial(value, head, tail) == masked


def test_partial_email_keeps_the_provider() -> None:
    assert partial_email("zhangsan@qq.com", 1) == "z*******@qq.com"
    assert partial_email("not-an-address", 1) == "**************"


def test_pseudonyms_are_keyed_per_scope_and_deterministic() -> None:
    keys = PseudonymKeys(b"m" * 32)
    a, b = keys.for_scope("fintech-budgetly"), keys.for_scope("insurer-harbourshield")
    assert a == sm3.hmac(b"m" * 32, b"ztgate/masking/pseudonym/v1\x00fintech-budgetly")
    card = "6222081234567890128"
    one = pseudonym(a, Kind.CARD_NUMBER, card)
    assert one == pseudonym(a, Kind.CARD_NUMBER, card)  # a partner can correlate
    assert one != pseudonym(b, Kind.CARD_NUMBER, card)  # two partners cannot join
    assert one != pseudonym(a, Kind.ACCOUNT_NUMBER, card)  # kinds are separated
    assert one.startswith("pn_") and len(one) == 23 and card not in one
    assert "m" * 32 not in repr(keys)
    with pytest.raises(ValueError, match="32 bytes"):
        PseudonymKeys(b"short")


@given(st.one_of(card_numbers, mobiles, resident_ids, st.text(max_size=30)))
def test_tokens_preserve_the_format_and_are_never_valid_data(value: str) -> None:
    out = token(KEY, Kind.IDENTIFIER, value)
    assert out == token(KEY, Kind.IDENTIFIER, value)
    assert len(out) == len(value)
    for a, b in zip(value, out, strict=True):
        if a.isascii() and a.isdigit():
            assert b.isascii() and b.isdigit()
        elif a.isascii() and a.isalpha():
            assert b.isascii() and b.isalpha() and a.islower() == b.islower()
    if any(ch.isascii() and ch.isalnum() for ch in value):
        assert out != value
    assert all(f.kind is Kind.EMAIL for f in find(out))  # never a card, ID or mobile


def test_tokens_of_identifiers_are_not_identifiers() -> None:
    card = pii.card_number("622208", "1234567890123", 19)
    out = token(KEY, Kind.CARD_NUMBER, card)
    assert not pii.card_number_valid(out) and out != card and len(out) == 19
    assert token(b"\x02" * 32, Kind.CARD_NUMBER, card) != out
    name = token(KEY, Kind.NAME, "王芳")
    assert len(name) == 2 and name != "王芳" and all("\u4e00" <= c <= "\u9fa5" for c in name)


@pytest.mark.parametrize(
    ("born", "today", "band"),
    [
        (date(1990, 3, 7), date(2026, 3, 6), "30-39"),
        (date(1990, 3, 7), date(2030, 3, 6), "30-39"),
        (date(1990, 3, 7), date(2030, 3, 7), "40-49"),
        (date(1930, 1, 1), date(2026, 1, 1), "90+"),
        (date(2027, 1, 1), date(2026, 1, 1), "unknown"),
    ],
)
def test_age_band(born: date, today: date, band: str) -> None:
    assert age_band(born, today) == band


def test_generalise() -> None:
    today = date(2026, 11, 1)
    rid = pii.resident_id("110101", date(1990, 3, 7), 123)
    assert generalise(Kind.RESIDENT_ID, rid, today) == "30-39"
    assert generalise(Kind.BIRTH_DATE, "1990-03-07", today) == "30-39"
    assert generalise(Kind.BIRTH_DATE, "March 1990", today) is None
    address = {"province": "云南省", "city": "昆明市", "street": "青年路 12 号", "full": "…"}
    assert generalise(Kind.ADDRESS, address, today) == {"province": "云南省", "city": "昆明市"}
    assert generalise(Kind.CARD_NUMBER, "6222081234567890128", today) is None


@pytest.mark.parametrize(
    ("address", "city"),
    [
        ("北京市东城区东华门街道 12 号", "北京市"),
        ("云南省昆明市五华区青年路 3 号", "云南省昆明市"),
        ("广西壮族自治区南宁市青秀区民族大道 1 号", "广西壮族自治区南宁市"),
        ("吉林省延边朝鲜族自治州延吉市", "吉林省延边朝鲜族自治州"),
        ("somewhere", "******"),
    ],
)
def test_city_of(address: str, city: str) -> None:
    assert city_of(address) == city
