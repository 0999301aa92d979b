"""Check digits of resident ID and card numbers, mobile prefixes: known values,
then properties over every valid number hypothesis can build."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway import pii
from gateway.corebank.vocab import REGIONS

TODAY = date(2025, 6, 30)

# GB 11643-1999 Annex A's worked example: 11010519491231002X (check character X).
GB_EXAMPLE = "11010519491231002X"


def test_gb11643_worked_example() -> None:
    assert pii.resident_id_check_char("11010519491231002") == "X"
    assert pii.resident_id_valid(GB_EXAMPLE, today=TODAY)
    assert pii.resident_id_valid(GB_EXAMPLE.lower(), today=TODAY)  # as people type it
    assert pii.resident_id_birth_date(GB_EXAMPLE) == date(1949, 12, 31)
    assert pii.resident_id_gender(GB_EXAMPLE) == "F"  # sequence 002: even
    assert pii.resident_id("110105", date(1949, 12, 31), 2) == GB_EXAMPLE


def test_weights_are_iso7064_mod11_2() -> None:
    assert pii.RESIDENT_ID_WEIGHTS == (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)


@pytest.mark.parametrize(
    "number",
    [
        "11010519491231002",  # 17 characters
        "110105194912310021X",  # 19
        "11010519491231002Y",  # bad check character
        "110105194912310029",  # wrong check digit
        "99010519491231002X",  # no province 99
        "110105194902300027",  # 30 February
        "110105189912310027",  # born before 1900
        "\uff1110105194912310021",  # full-width digit one
        "11010520991231002X",  # born in the future
    ],
)
def test_resident_id_rejects(number: str) -> None:
    assert not pii.resident_id_valid(number, today=TODAY)


def test_luhn_known_numbers() -> None:
    # ISO/IEC 7812 Annex B example payload 7992739871 → check digit 3.
    assert pii.luhn_check_digit("7992739871") == "3"
    assert pii.luhn_valid("79927398713")
    assert not pii.luhn_valid("79927398710")
    assert pii.luhn_valid("00000000000") and not pii.card_number_valid("00000000000")  # 11 digits
    assert pii.card_number_valid("4111111111111111")  # the well-known Visa test PAN
    assert not pii.card_number_valid(pii.card_number("62", "1", 20))  # longer than ISO allows
    for bad in ("", "7", "7992739871a", "79927398713 ", "٧٩٩٢٧٣٩٨٧١٣"):
        assert not pii.luhn_valid(bad)


def test_mobile_prefixes() -> None:
    assert pii.mobile_carrier("13800138000") == "China Mobile"
    assert pii.mobile_carrier("18612345678") == "China Unicom"
    assert pii.mobile_carrier("18912345678") == "China Telecom"
    assert pii.mobile_carrier("19212345678") == "China Broadnet"
    for bad in ("12012345678", "1381234567", "138123456789", "1381234567a", "23800138000"):
        assert not pii.mobile_valid(bad)


def test_composers_refuse_bad_parts() -> None:
    with pytest.raises(ValueError):
        pii.resident_id("990101", TODAY, 1)
    with pytest.raises(ValueError):
        pii.resident_id("11010", TODAY, 1)
    with pytest.raises(ValueError):
        pii.resident_id("110101", TODAY, 1000)
    with pytest.raises(ValueError):
        pii.card_number("62220812345678901234", "1", 19)
    with pytest.raises(ValueError):
        pii.luhn_check_digit("")


births = st.dates(min_value=date(1900, 1, 1), max_value=TODAY)
resident_ids = st.builds(
    pii.resident_id,
    st.sampled_from([r.code for r in REGIONS]),
    births,
    st.integers(min_value=1, max_value=999),
)
card_numbers = st.builds(
    pii.card_number,
    st.sampled_from(["62", "622208", "621226", "625330", "4", "51"]),
    st.text("0123456789", min_size=1, max_size=19),
    st.integers(min_value=13, max_value=19),
)


@given(resident_ids)
def test_composed_resident_ids_are_valid(number: str) -> None:
    assert pii.resident_id_valid(number, today=TODAY)


@given(resident_ids, st.integers(min_value=0, max_value=17), st.sampled_from("0123456789X"))
def test_any_single_character_change_breaks_a_resident_id(
    number: str, position: int, replacement: str
) -> None:
    """MOD 11-2 detects every single-character substitution."""
    if number[position] == replacement:
        return  # no change, no error
    mutated = number[:position] + replacement + number[position + 1 :]
    assert not pii.resident_id_valid(mutated, today=TODAY)


@given(resident_ids, st.integers(min_value=0, max_value=16))
def test_any_adjacent_transposition_breaks_a_resident_id(number: str, position: int) -> None:
    """MOD 11-2 detects every transposition of two adjacent, different characters."""
    a, b = number[position], number[position + 1]
    if a == b:
        return  # nothing transposed
    mutated = number[:position] + b + a + number[position + 2 :]
    assert not pii.resident_id_valid(mutated, today=TODAY)


@given(card_numbers)
def test_composed_card_numbers_are_luhn_valid(number: str) -> None:
    assert pii.card_number_valid(number)


@given(card_numbers, st.data())
def test_any_single_digit_change_breaks_luhn(number: str, data: st.DataObject) -> None:
    position = data.draw(st.integers(min_value=0, max_value=len(number) - 1))
    digit = data.draw(st.sampled_from("0123456789").filter(lambda d: d != number[position]))
    assert not pii.luhn_valid(number[:position] + digit + number[position + 1 :])


@given(card_numbers, st.data())
def test_adjacent_transpositions_break_luhn_except_09(number: str, data: st.DataObject) -> None:
    """Luhn detects adjacent transpositions except 09 <-> 90 (ISO/IEC 7812-1 Annex B)."""
    position = data.draw(st.integers(min_value=0, max_value=len(number) - 2))
    a, b = number[position], number[position + 1]
    mutated = number[:position] + b + a + number[position + 2 :]
    if a == b:
        return
    if {a, b} == {"0", "9"}:
        assert pii.luhn_valid(mutated)  # the documented blind spot, demonstrated
    else:
        assert not pii.luhn_valid(mutated)


@given(st.text(max_size=25))
def test_validators_never_raise(text: str) -> None:
    pii.resident_id_valid(text, today=TODAY)
    pii.luhn_valid(text)
    pii.card_number_valid(text)
    pii.mobile_valid(text)
    pii.resident_id_birth_date(text)


@given(st.dates(min_value=date(1900, 1, 1), max_value=TODAY - timedelta(days=1)))
def test_birth_date_round_trips(born: date) -> None:
    number = pii.resident_id("310104", born, 17)
    assert pii.resident_id_birth_date(number) == born
    assert pii.resident_id_gender(number) == "M"
