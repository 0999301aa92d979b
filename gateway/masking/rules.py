"""Masking rules: which JSON fields of which route carry which class of data.

The rules file (``rules/default.json`` for the sample core bank; schema
``rules/schema.json``) has profiles, ``global`` rules applied to every masked
route, and ``routes`` rules keyed by the gateway's route id. Each rule is
``{"select": <selector>, "class": "C1"|"C2"|"C3", "kind": <kind>, "needed_by":
[profiles], "actions": {profile: action}}`` (`gateway.masking.selector` for the
selector grammar).

Loading validates everything a request would otherwise trip over, and every error
names the offending rule (``routes.cards.detail[3] ($.cvn): ...``): the JSON
Schema, then each selector's grammar, kinds only on C2 rules, profile names that
exist, and actions a kind can take (``generalise`` exists for birth dates,
resident IDs and addresses only). A file that fails is refused whole: the
processor keeps serving with the rules it has or, at start-up, does not start.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final

from gateway.config_schema import GatewayConfigError, check_schema, validate
from gateway.masking.classification import Classification, Kind
from gateway.masking.profiles import STRICT, Action, Profile
from gateway.masking.selector import Selector, SelectorError, parse_selector

__all__ = ["Rule", "RuleSet", "RulesError", "default_rules", "load_rules", "parse_rules"]

GENERALISABLE: Final = frozenset({Kind.BIRTH_DATE, Kind.RESIDENT_ID, Kind.ADDRESS})


class RulesError(ValueError):
    """A rules file that cannot be used; the message names the rule or profile."""


@dataclass(frozen=True)
class Rule:
    """One rule: a selector, its class, and for C2 the kind of data."""

    selector: Selector
    classification: Classification
    kind: Kind | None = None
    needed_by: frozenset[str] = frozenset()
    actions: Mapping[str, Action] = field(default_factory=lambda: MappingProxyType({}))
    where: str = ""
    """Where the rule is in its file (``routes.cards.detail[3]``), for errors and logs."""


@dataclass(frozen=True)
class RuleSet:
    """Profiles plus the rules of every route, ready to apply."""

    profiles: Mapping[str, Profile]
    global_rules: tuple[Rule, ...]
    routes: Mapping[str, tuple[Rule, ...]]

    def rules_for(self, route_id: str | None) -> tuple[Rule, ...]:
        """The route's own rules first (they win), then the global ones; for a route
        without rules (or unknown), the global rules alone."""
        own = self.routes.get(route_id, ()) if route_id is not None else ()
        return own + self.global_rules

    def profile(self, name: str) -> Profile:
        """The named profile, or `STRICT` for a name the file does not define."""
        return self.profiles.get(name, STRICT)


@cache
def rules_schema() -> Mapping[str, Any]:
    """The rules file's JSON Schema (``rules/schema.json``), checked to use only the
    keywords the gateway's validator implements (`gateway.config_schema`)."""
    schema: dict[str, Any] = json.loads(
        resources.files("gateway.masking").joinpath("rules/schema.json").read_text("utf-8")
    )
    check_schema(schema)
    return MappingProxyType(schema)


def _schema_errors(doc: Any) -> None:
    # The gateway configuration's validator: it names the offending key by path,
    # e.g. routes["cards.detail"][3].class.
    try:
        validate(doc, rules_schema())
    except GatewayConfigError as exc:
        raise RulesError(str(exc)) from None


_TEXT_TAKES_NO_ACTION: Final = (
    "free text takes no action: the detector masks what it finds in it, by that kind's action"
)


def _profile(name: str, doc: Mapping[str, Any]) -> Profile:
    actions = {Kind(k): Action(v) for k, v in doc.get("actions", {}).items()}
    if Kind.TEXT in actions:
        raise RulesError(f"profiles.{name}.actions.text: {_TEXT_TAKES_NO_ACTION}")
    for kind, action in actions.items():
        if action is Action.GENERALISE and kind not in GENERALISABLE:
            raise RulesError(
                f"profiles.{name}: generalise has no meaning for {kind.value}"
                f" (only {', '.join(sorted(k.value for k in GENERALISABLE))})"
            )
    partial = {Kind(k): (int(v[0]), int(v[1])) for k, v in doc.get("partial", {}).items()}
    default = Action(doc.get("default", "remove"))
    if default is Action.GENERALISE:
        raise RulesError(f"profiles.{name}: generalise cannot be a profile's default")
    return Profile(
        name=name,
        actions=MappingProxyType(actions),
        partial=MappingProxyType({**STRICT.partial, **partial}),
        default=default,
        need_to_know=bool(doc.get("need_to_know", False)),
        pseudonym_scope=doc.get("pseudonym_scope"),
    )


def _rule(where: str, doc: Mapping[str, Any], profiles: Mapping[str, Profile]) -> Rule:
    label = f"{where} ({doc['select']})"
    try:
        selector = parse_selector(doc["select"])
    except SelectorError as exc:
        raise RulesError(f"{label}: {exc}") from None
    classification = Classification(doc["class"])
    if classification is Classification.C2 and "kind" not in doc:
        raise RulesError(f"{label}: a C2 rule names the kind of data (card_number, name, ...)")
    kind = Kind(doc["kind"]) if "kind" in doc else None
    if kind is not None and classification is not Classification.C2:
        raise RulesError(f"{label}: only C2 rules take a kind ({classification.value} does not)")
    if classification is not Classification.C2 and ("needed_by" in doc or "actions" in doc):
        raise RulesError(f"{label}: needed_by and actions apply to C2 rules only")
    named = set(doc.get("needed_by", ())) | set(doc.get("actions", {}))
    unknown = sorted(named - set(profiles))
    if unknown:
        raise RulesError(f"{label}: no profile named {', '.join(unknown)}")
    actions = {p: Action(a) for p, a in doc.get("actions", {}).items()}
    if kind is Kind.TEXT and actions:
        raise RulesError(f"{label}: actions: {_TEXT_TAKES_NO_ACTION}")
    for profile, action in actions.items():
        if action is Action.GENERALISE and kind not in GENERALISABLE:
            raise RulesError(f"{label}: {profile}: generalise has no meaning for {kind}")
    return Rule(
        selector,
        classification,
        kind,
        frozenset(doc.get("needed_by", ())),
        MappingProxyType(actions),
        where,
    )


def parse_rules(doc: Any) -> RuleSet:
    """A `RuleSet` from a parsed rules document; `RulesError` naming what is wrong."""
    _schema_errors(doc)
    if STRICT.name in doc["profiles"]:
        raise RulesError("profiles.strict: the strict profile is built in and not configurable")
    profiles = {name: _profile(name, p) for name, p in doc["profiles"].items()}
    global_rules = tuple(_rule(f"global[{i}]", r, profiles) for i, r in enumerate(doc["global"]))
    routes = {
        route: tuple(_rule(f"routes.{route}[{i}]", r, profiles) for i, r in enumerate(rules))
        for route, rules in doc["routes"].items()
    }
    return RuleSet(MappingProxyType(profiles), global_rules, MappingProxyType(routes))


def load_rules(path: Path) -> RuleSet:
    """Read and validate a rules file."""
    try:
        doc = json.loads(path.read_text("utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RulesError(f"{path}: cannot read a JSON rules file ({exc})") from None
    try:
        return parse_rules(doc)
    except RulesError as exc:
        raise RulesError(f"{path}: {exc}") from None


@cache
def default_rules() -> RuleSet:
    """The rules shipped for the sample core bank (``rules/default.json``)."""
    text = resources.files("gateway.masking").joinpath("rules/default.json").read_text("utf-8")
    return parse_rules(json.loads(text))
