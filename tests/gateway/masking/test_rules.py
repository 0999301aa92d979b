"""Rules files: the shipped one loads, and a broken one is refused naming the rule."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from gateway.config_schema import check_schema
from gateway.masking.classification import Classification, Kind
from gateway.masking.profiles import STRICT, Action
from gateway.masking.rules import RulesError, default_rules, load_rules, parse_rules, rules_schema

DEFAULT = Path(__file__).parents[3] / "gateway" / "masking" / "rules" / "default.json"
GATEWAY_ROUTES = Path(__file__).parents[3] / "gateway" / "defaults" / "gateway.json"


def _doc() -> dict[str, Any]:
    return copy.deepcopy(json.loads(DEFAULT.read_text("utf-8")))


def test_the_shipped_rules_load() -> None:
    rules = default_rules()
    assert set(rules.profiles) >= {"customer", "partner", "staff_restricted", "staff_minimal"}
    assert rules.profile("nonsense") is STRICT and rules.profile("strict") is STRICT
    cvn = [r for r in rules.global_rules if r.selector.text == "$..cvn"]
    assert cvn and cvn[0].classification is Classification.C3
    assert rules.profiles["partner"].action(Kind.CARD_NUMBER) is Action.PSEUDONYM
    check_schema(dict(rules_schema()))


def test_route_rules_name_masked_routes_of_the_gateway_config() -> None:
    config = json.loads(GATEWAY_ROUTES.read_text("utf-8"))
    masked = {r["id"] for r in config["routes"] if r.get("masking")}
    assert set(default_rules().routes) <= masked


def test_route_rules_come_before_the_global_ones() -> None:
    rules = default_rules()
    own = rules.rules_for("ob.accounts.list")
    assert own[0].where == "routes.ob.accounts.list[0]"
    assert rules.rules_for("no.such.route") == rules.global_rules
    assert rules.rules_for(None) == rules.global_rules


def test_profiles_the_policy_emits_are_defined() -> None:
    bundle = Path(__file__).parents[3] / "policy" / "bundles" / "default" / "ztgate"
    data = json.loads((bundle / "config" / "data.json").read_text("utf-8"))
    emitted = {c["mask_profile"] for c in data["classifications"].values()}
    emitted |= {r["mask_profile"] for r in data["routes"].values() if "mask_profile" in r}
    assert emitted <= set(default_rules().profiles) | {"strict"}


def _broken(edit: Any) -> str:
    doc = _doc()
    edit(doc)
    with pytest.raises(RulesError) as raised:
        parse_rules(doc)
    return str(raised.value)


def test_errors_name_the_offending_rule() -> None:
    def bad_selector(d: dict[str, Any]) -> None:
        d["routes"]["cards.detail"][1]["select"] = "$.cvn[?(@)]"

    message = _broken(bad_selector)
    assert message.startswith("routes.cards.detail[1] ($.cvn[?(@)]): unsupported bracket")

    def bad_class(d: dict[str, Any]) -> None:
        d["global"][3]["class"] = "C4"

    assert "global[3].class" in _broken(bad_class)

    def missing_kind(d: dict[str, Any]) -> None:
        del d["global"][12]["kind"]

    assert _broken(missing_kind).startswith("global[12] ($..account_number): a C2 rule names")

    def kind_on_c3(d: dict[str, Any]) -> None:
        d["global"][0]["kind"] = "card_number"

    assert "global[0] ($..cvn): only C2 rules take a kind" in _broken(kind_on_c3)

    def unknown_profile(d: dict[str, Any]) -> None:
        d["routes"]["staff.customers.search"][0]["needed_by"] = ["staf_restricted"]

    assert "no profile named staf_restricted" in _broken(unknown_profile)

    def bad_generalise(d: dict[str, Any]) -> None:
        d["profiles"]["partner"]["actions"]["mobile"] = "generalise"

    assert _broken(bad_generalise).startswith("profiles.partner: generalise has no meaning")

    def keep(d: dict[str, Any]) -> None:
        d["profiles"]["customer"]["actions"]["mobile"] = "keep"

    assert "profiles.customer.actions.mobile" in _broken(keep)

    def strict(d: dict[str, Any]) -> None:
        d["profiles"]["strict"] = {"default": "partial"}

    assert "built in" in _broken(strict)

    def extra(d: dict[str, Any]) -> None:
        d["global"][0]["clas"] = "C3"

    assert "global[0]" in _broken(extra)

    def text_action(d: dict[str, Any]) -> None:
        d["profiles"]["audit"]["actions"]["text"] = "remove"

    assert _broken(text_action).startswith("profiles.audit.actions.text: free text takes no")

    def text_rule_action(d: dict[str, Any]) -> None:
        rule = next(r for r in d["global"] if r["select"] == "$..memo")
        rule["actions"] = {"audit": "remove"}

    assert "($..memo): actions: free text takes no action" in _broken(text_rule_action)


def test_load_rules_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "rules.json"
    path.write_text("{not json", "utf-8")
    with pytest.raises(RulesError, match=r"rules\.json: cannot read"):
        load_rules(path)
    doc = _doc()
    doc["version"] = 2
    path.write_text(json.dumps(doc), "utf-8")
    with pytest.raises(RulesError, match=r"rules.json: version"):
        load_rules(path)
    path.write_text(DEFAULT.read_text("utf-8"), "utf-8")
    assert load_rules(path).global_rules == default_rules().global_rules
