"""The engine: C3 always removed, C2 per profile, the detector everywhere else."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway import pii
from gateway.masking.detector import find
from gateway.masking.engine import MAX_DEPTH, MaskingEngine, Request, TooDeep
from gateway.masking.maskers import PseudonymKeys
from gateway.masking.rules import default_rules, parse_rules
from tests.gateway.masking.strategies import TODAY, identifiers, separators

ENGINE = MaskingEngine(default_rules(), PseudonymKeys(b"\x05" * 32), today=lambda: TODAY)
PROFILES = (
    "customer",
    "partner",
    "staff_restricted",
    "staff_minimal",
    "audit",
    "public",
    "strict",
    "no-such-profile",
)
CARD = pii.card_number("622208", "1234567890123", 19)
ID = pii.resident_id("110101", date(1990, 3, 7), 123)
MOBILE = "13812345678"


def _mask(doc: Any, route: str | None, profile: str, partner: str | None = None) -> Any:
    return ENGINE.mask(doc, Request(route, profile, partner))


def _text(doc: Any) -> str:
    return json.dumps(doc, ensure_ascii=False)


@pytest.mark.parametrize("profile", PROFILES)
def test_c3_is_removed_under_every_profile(profile: str) -> None:
    card = {"card_number": CARD, "expiry": "09/29", "cvn": "123", "nested": [{"pin": "0000"}]}
    out = _mask(card, "cards.detail", profile, "fintech-budgetly")
    assert "expiry" not in out and "cvn" not in out and out["nested"] == [{}]
    assert "09/29" not in _text(out) and CARD not in _text(out)


def test_a_c3_selection_wins_over_a_c2_one_whatever_the_order() -> None:
    rules = parse_rules(
        {
            "version": 1,
            "profiles": {"p": {"default": "partial"}},
            "global": [
                {"select": "$..secret", "class": "C2", "kind": "identifier"},
                {"select": "$.a.secret", "class": "C3"},
            ],
            "routes": {},
        }
    )
    engine = MaskingEngine(rules, PseudonymKeys(b"k" * 32))
    out = engine.mask({"a": {"secret": "abcdef"}, "b": {"secret": "abcdef"}}, Request(None, "p"))
    assert out == {"a": {}, "b": {"secret": "ab**ef"}}


def test_profiles_mask_c2_their_own_way() -> None:
    doc = {"customers": [{"customer_id": "cst_1", "name": "欧阳娜娜", "mobile": MOBILE}]}
    route = "staff.customers.search"
    assert _mask(doc, route, "staff_restricted")["customers"] == [
        {"customer_id": "cst_1", "name": "欧***", "mobile": "138****5678"}
    ]
    assert _mask(doc, route, "staff_minimal")["customers"] == [{"customer_id": "cst_1"}]
    assert _mask(doc, route, "strict")["customers"] == [{"customer_id": "cst_1"}]
    assert _mask(doc, route, "customer")["customers"][0]["name"] == "欧***"


def test_partners_get_per_partner_pseudonyms_and_nothing_without_a_partner() -> None:
    doc = {"account": {"bban": CARD, "currency": "CNY"}}
    a = _mask(doc, "ob.accounts.balances", "partner", "fintech-budgetly")
    b = _mask(doc, "ob.accounts.balances", "partner", "insurer-harbourshield")
    assert a["account"]["bban"].startswith("pn_") and a != b
    assert a == _mask(doc, "ob.accounts.balances", "partner", "fintech-budgetly")
    # No partner id in the decision: no key to scope the pseudonym, so removed.
    assert _mask(doc, "ob.accounts.balances", "partner") == {"account": {"currency": "CNY"}}
    audit = _mask(doc, "ob.accounts.balances", "audit")
    assert audit["account"]["bban"].startswith("pn_") and audit != a


def test_staff_see_only_what_their_task_needs() -> None:
    profile = {
        "customer_id": "cst_1",
        "name": "王芳",
        "mobile": MOBILE,
        "email": "wangfang@qq.com",
        "address": {"province": "北京市", "city": "北京市", "street": "东华门街道 1 号"},
        "kyc": {"occupation": "教师", "annual_income_cny": "100000-200000"},
        "id_document": {"type": "resident_identity_card", "number": ID, "issuing_region": "110101"},
    }
    out = _mask({"profile": profile, "accounts": [], "cards": []}, "staff.customers.view",
                "staff_restricted")["profile"]  # fmt: skip
    assert out == {
        "customer_id": "cst_1",
        "name": "王*",
        "mobile": "138****5678",
        "id_document": {"type": "resident_identity_card", "number": "1****************" + ID[-1]},
    }


def test_personal_data_planted_in_unlabelled_fields_is_found() -> None:
    planted = {
        "note": f"客户{ID}来电 手机{MOBILE} 卡号{CARD} 邮箱 wang.fang@163.com",
        "ref": CARD,
        "numbers": [int(MOBILE), 12345, -int(MOBILE), float(MOBILE)],
        f"by_{MOBILE}": True,
        "deep": [[{"x": {"y": f"ID:{ID}"}}]],
    }
    for profile in PROFILES:
        out = _text(_mask(planted, "accounts.balances", profile, "fintech-budgetly"))
        for value in (ID, MOBILE, CARD, "wang.fang@163.com"):
            assert value not in out, (profile, value)
    customer = _mask(planted, "accounts.balances", "customer")
    assert customer["ref"] == "622208*********" + CARD[-4:]
    assert customer["numbers"] == ["138****5678", 12345, "-138****5678", "138****5678"]
    assert "by_138****5678" in customer


def test_echoes_of_a_masked_value_in_free_text_are_masked_too() -> None:
    doc = {"description": "转账 李明华 到 622262", "counterparty": {"name": "李明华"}}
    out = _mask(doc, "accounts.transactions", "customer")
    assert out == {"description": "转账 李** 到 622262", "counterparty": {"name": "李**"}}


def test_a_c1_rule_does_not_switch_the_detector_off() -> None:
    out = _mask({"customer_id": f"cst {MOBILE}"}, "customers.profile", "customer")
    assert out == {"customer_id": "cst 138****5678"}


def test_a_nesting_bomb_is_refused() -> None:
    doc: Any = "x"
    for _ in range(MAX_DEPTH + 2):
        doc = [doc]
    with pytest.raises(TooDeep):
        _mask(doc, None, "customer")


def test_the_input_is_not_modified() -> None:
    doc = {"card_number": CARD, "cvn": "123", "list": [{"mobile": MOBILE}]}
    before = json.dumps(doc)
    _mask(doc, "cards.detail", "strict")
    assert json.dumps(doc) == before


_json = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=20), identifiers),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(
            st.one_of(
                st.sampled_from(["mobile", "name", "cvn", "note", "bban"]), st.text(max_size=8)
            ),
            inner,
            max_size=4,
        ),
    ),
    max_leaves=20,
)


@given(_json, st.lists(st.tuples(identifiers, separators), max_size=3), st.sampled_from(PROFILES))
def test_masked_output_never_holds_a_planted_identifier_or_c3(
    doc: Any, planted: list[tuple[str, str]], profile: str
) -> None:
    wrapped = {
        "doc": doc,
        "text": "".join(sep + value for value, sep in planted) + "。",
        "cvn": "987",
        "expiry": "12/30",
    }
    out = _mask(wrapped, "cards.detail", profile, "fintech-budgetly")
    assert "cvn" not in out and "expiry" not in out
    text = _text(out)
    for value in [v for v, _ in planted] + _identifiers_in(doc):
        assert value not in text


def _identifiers_in(doc: Any) -> list[str]:
    if isinstance(doc, str):
        return [doc] if find(doc) and len(find(doc)) == 1 and find(doc)[0].start == 0 else []
    if isinstance(doc, list):
        return [v for item in doc for v in _identifiers_in(item)]
    if isinstance(doc, dict):
        return [v for item in doc.values() for v in _identifiers_in(item)]
    return []


@pytest.mark.parametrize(
    "doc",
    [
        {"name": "王芳", "note": "转账 王芳\n王芳\t", "list": ["王芳", {"王芳": 1}]},
        {"name": 'O"Brien Li', "note": 'to O"Brien Li\\'},
        {"name": "u001f王", "note": "\x1f王 u001f王"},
        {"account_number": "00123456", "note": "ref 00123456", "n": 123456},
        # Only the shorter of two masked values recurs; then both kinds of value at once.
        {"name": "李明华", "payee_name": "李明", "note": "to 李明, 李明华's"},
        {"name": "王芳", "account_number": "00123456", "note": "王芳 00123456"},
    ],
)
def test_echoes_in_text_and_by_walk_agree(doc: dict[str, Any]) -> None:
    text = ENGINE.mask_json(doc, Request("accounts.transactions", "customer"))
    out = json.loads(text)
    assert out == ENGINE.mask(doc, Request("accounts.transactions", "customer"))
    original = doc.get("name") or doc["account_number"]
    assert not [s for s in _all_strings(out) if original in s]


def _all_strings(doc: Any) -> list[str]:
    if isinstance(doc, str):
        return [doc]
    if isinstance(doc, list):
        return [s for item in doc for s in _all_strings(item)]
    if isinstance(doc, dict):
        return [s for k, v in doc.items() for s in [k, *_all_strings(v)]]
    return []


@given(
    st.text(min_size=2, max_size=8).filter(lambda s: "*" not in s),
    st.text(max_size=10),
    st.text(max_size=10),
)
def test_a_labelled_name_never_survives_elsewhere(name: str, before: str, after: str) -> None:
    doc = {"name": name, "note": before + name + after, "by": {name: [f"{name}{after}"]}}
    text = ENGINE.mask_json(doc, Request("accounts.transactions", "customer"))
    assert not [s for s in _all_strings(json.loads(text)) if name in s]


def test_object_shapes_are_planned_per_route() -> None:
    # Two routes with as many rules each: their automata have equal states, which
    # mean different rules; a shape planned on one must not be reused on the other.
    rules = parse_rules(
        {
            "version": 1,
            "profiles": {"p": {"default": "partial"}},
            "global": [],
            "routes": {
                "a": [{"select": "$.x.secret", "class": "C3"}],
                "b": [{"select": "$.x.other", "class": "C3"}],
            },
        }
    )
    engine = MaskingEngine(rules, PseudonymKeys(b"k" * 32))
    doc = {"x": {"secret": "s", "other": "o"}}
    assert engine.mask(doc, Request("a", "p")) == {"x": {"other": "o"}}
    assert engine.mask(doc, Request("b", "p")) == {"x": {"secret": "s"}}
    assert engine.mask(doc, Request("a", "p")) == {"x": {"other": "o"}}
