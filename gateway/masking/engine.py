"""The masking engine: one walk over a JSON document applies rules, detector and
profile (issue 7, JR/T 0171-2020).

For every position in the document the walk knows which rules' selectors are
still live (an NFA over the rules of the route, `gateway.masking.selector`), so a
body is visited once whatever the number of rules. At each member or element:

1. the first rule that selects it decides its class — the route's rules before
   the global ones — except that a C3 selection anywhere wins over everything;
2. C3: the member is removed (an array element becomes ``null``, so indices keep
   their meaning), under every profile;
3. C2: the profile's action for the rule's kind (a rule may override it per
   profile; a ``need_to_know`` profile removes every field whose rule does not
   list it in ``needed_by``). A C2 selection of an object or array applies to
   every value below it; C3 rules below still remove their fields;
4. every other string (C1 and unlabelled alike: a rule cannot switch the detector
   off, so a mislabelled field cannot leak a detectable number), every integer
   and every member name goes through the detector, and what it finds is masked
   as C2 of the kind found;
5. echoes: a C2 value masked in one place is often repeated in free text
   elsewhere (``"description": "转账 王芳"`` beside ``"name": "王芳"``), where no
   rule or check digit can see it. Every labelled C2 string of an identifying
   kind (names, numbers, contacts, addresses; two characters or more) is
   remembered, and a second pass over the output replaces its every occurrence
   with its masked form (or stars).

The engine never logs values.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any, Final

from gateway.masking import detector, maskers, rawtext
from gateway.masking.automaton import Automaton, State
from gateway.masking.classification import Classification, Kind
from gateway.masking.maskers import PseudonymKeys
from gateway.masking.profiles import Action, Profile
from gateway.masking.rules import Rule, RuleSet

__all__ = ["Label", "MaskingEngine", "Request"]

_REMOVED: Final = object()
"""Sentinel: the walk drops this member."""

ECHO_KINDS: Final = frozenset(
    {
        Kind.CARD_NUMBER,
        Kind.ACCOUNT_NUMBER,
        Kind.RESIDENT_ID,
        Kind.MOBILE,
        Kind.EMAIL,
        Kind.NAME,
        Kind.ADDRESS,
        Kind.IDENTIFIER,
    }
)
"""Kinds whose values are searched for again in the rest of the document."""

MAX_CLEAN_NAMES: Final = 10_000
"""Member names found free of personal data, remembered per engine (bounded)."""

_JSON_ESCAPED: Final = re.compile(r'["\\\x00-\x1f]')
"""Characters JSON escapes: a value holding one is not found as such in JSON text."""

_TEXT_SAFE: Final = re.compile(r"[^0-9a-zA-Z+.{}\[\],:\-]")
"""A character that occurs in JSON text only inside strings (not in numbers,
literals or structure)."""

MAX_DEPTH: Final = 64
"""Deeper documents are refused (the caller blocks the body): no recursion bomb."""


class TooDeep(ValueError):
    """The document nests deeper than `MAX_DEPTH`."""


@dataclass(frozen=True)
class Request:
    """Whose response is being masked: route, profile, and the partner (pseudonym scope)."""

    route_id: str | None
    profile: str
    partner: str | None = None


@dataclass(frozen=True)
class Label:
    """The class a position inherits from the rule that selected it (or an ancestor)."""

    classification: Classification
    kind: Kind | None
    rule: Rule


def _action_for(profile: Profile, kind: Kind, rule: Rule | None) -> Action:
    name = profile.name
    if profile.need_to_know and (rule is None or name not in rule.needed_by):
        return Action.REMOVE
    if rule is not None and name in rule.actions:
        return rule.actions[name]
    return profile.action(kind)


_Step = tuple[str | None, bool, State, "Label | None", bool]
"""One member of a planned object: its name (None: a C3 member, dropped), whether the
name is free of personal data, the automaton's state below it, its label, and
whether its label leaves it to the detector (``plain``: none, C1, or C2 free text;
the walk's fast path)."""
_C3_STEP: Final[_Step] = (None, True, frozenset(), None, False)
MAX_PLANS: Final = 10_000
"""Object shapes remembered per route (bounded: names come from upstream bodies)."""
MAX_PLANNED_MEMBERS: Final = 64
"""Larger objects (maps keyed by data) are planned each time, not remembered."""


_Masking = tuple[Action, int, int, bool, bool]
"""How a profile masks what a rule labels: the action, the partial split (head,
tail), whether the value is remembered as an echo, and whether the action is the
plain `maskers.partial` (most labelled values: no other dispatch)."""


def _masking(profile: Profile, rule: Rule) -> _Masking:
    kind = rule.kind or Kind.TEXT
    action = _action_for(profile, kind, rule)
    head, tail = profile.split(kind)
    simple = action is Action.PARTIAL and kind not in (Kind.EMAIL, Kind.ADDRESS)
    return action, head, tail, kind in ECHO_KINDS, simple


class _Pass:
    """One masking pass: the request's profile, key and rules, and the walk itself."""

    def __init__(
        self, engine: MaskingEngine, request: Request, suspects: frozenset[str] | None = None
    ) -> None:
        self.automaton = engine.automaton(request.route_id)
        self.profile: Profile = engine.rules.profile(request.profile)
        self.suspects = suspects
        """The strings that may hold a detector finding (`rawtext.suspects`); None: any."""
        scope = self.profile.pseudonym_scope or request.partner
        self.key = engine.keys.for_scope(scope) if scope else None
        self._clock = engine.today
        self._today: date | None = None
        self.echoes: dict[str, str] = {}
        self.clean_names = engine.clean_names
        self.plans = engine.plans(self.automaton)
        self.labels = engine.labels(self.automaton)
        """The label each rule of the route gives, by the rule's identity."""
        self.actions = engine.actions(self.automaton, self.profile)
        """How the profile masks what each rule of the route labels, by the rule's identity."""

    def today(self) -> date:
        """Today, read once per pass and only to generalise (reading the clock costs)."""
        if self._today is None:
            self._today = self._clock()
        return self._today

    # -- C2 ---------------------------------------------------------------------------

    def action_for(self, kind: Kind, rule: Rule | None) -> Action:
        return _action_for(self.profile, kind, rule)

    def mask_value(self, value: str, kind: Kind, action: Action) -> str | None:
        """The masked string, or None to remove it."""
        if action is Action.PARTIAL:
            head, tail = self.profile.split(kind)
            if kind is Kind.EMAIL:
                return maskers.partial_email(value, head)
            if kind is Kind.ADDRESS:
                return maskers.city_of(value)
            return maskers.partial(value, head, tail)
        if action is Action.PSEUDONYM and self.key is not None:
            return maskers.pseudonym(self.key, kind, value)
        if action is Action.TOKEN and self.key is not None:
            return maskers.token(self.key, kind, value)
        if action is Action.GENERALISE:
            general = maskers.generalise(kind, value, self.today())
            return general if isinstance(general, str) else None
        return None  # REMOVE, or a keyed action without a key: fail closed

    def mask_text(self, text: str, rule: Rule | None) -> str:
        """`text` with every detector finding masked (removed ones starred)."""
        findings = detector.find(text)
        if not findings:
            return text
        out: list[str] = []
        at = 0
        for f in findings:
            piece = text[f.start : f.end]
            masked = self.mask_value(piece, f.kind, self.action_for(f.kind, None))
            out.append(text[at : f.start])
            out.append(masked if masked is not None else maskers.STAR * len(piece))
            at = f.end
        out.append(text[at:])
        return "".join(out)

    def scan(self, text: str) -> str:
        """`text` through the detector, unless the raw body shows it holds nothing."""
        if self.suspects is not None and text not in self.suspects:
            return text
        return self.mask_text(text, None)

    def mask_name(self, name: str) -> str:
        if self.suspects is not None and name not in self.suspects:
            masked = name
        else:
            masked = self.mask_text(name, None)
        if masked == name and len(self.clean_names) < MAX_CLEAN_NAMES:
            self.clean_names.add(name)  # member names repeat: scan each once per engine
        return masked

    def labelled(self, value: Any, label: Label) -> Any:
        """A scalar under a C2 label."""
        kind = label.kind or Kind.TEXT
        if kind is Kind.TEXT:
            return self.detected(value)
        if type(value) is str:
            text = value
        elif value is None or isinstance(value, bool):
            return value
        elif isinstance(value, (str, int, float)):
            text = str(value)
        else:
            return _REMOVED
        action, head, tail, echo, simple = self.actions[id(label.rule)]
        masked = (
            maskers.partial(text, head, tail) if simple else self.mask_value(text, kind, action)
        )
        if echo and len(text) >= 2:
            self.echoes[text] = maskers.STAR * len(text) if masked is None else masked
        return _REMOVED if masked is None else masked

    def detected(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.scan(value)
        # A number long enough to be an identifier (a card or mobile number sent as a
        # JSON number, 13812345678 or 13812345678.0) is scanned as its decimal text.
        if isinstance(value, int | float) and not isinstance(value, bool) and abs(value) >= 1e10:
            text = (
                str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)
            )
            masked = self.mask_text(text, None)
            return value if masked == text else masked
        return value

    # -- the walk ---------------------------------------------------------------------

    def container_label(self, value: Any, label: Label) -> Any:
        """A C2 object or array as a whole: generalise an address object, remove a
        container the profile removes; None to walk into it instead."""
        kind = label.kind or Kind.TEXT
        if kind is Kind.TEXT:
            return None
        action = self.action_for(kind, label.rule)
        if action is Action.REMOVE:
            return _REMOVED
        if action is Action.GENERALISE and kind is Kind.ADDRESS:
            general = maskers.generalise(kind, value, self.today())
            return _REMOVED if general is None else general
        return None

    def child(self, value: Any, states: State, label: Label | None, depth: int) -> Any:
        if depth > MAX_DEPTH:
            raise TooDeep(f"the document nests deeper than {MAX_DEPTH}")
        if isinstance(value, dict | list):
            if label is not None and label.classification is Classification.C2:
                whole = self.container_label(value, label)
                if whole is not None:
                    return whole
            if isinstance(value, dict):
                return self.walk_object(value, states, label, depth)
            return self.walk_array(value, states, label, depth)
        if label is not None and label.classification is Classification.C2:
            return self.labelled(value, label)
        return self.detected(value)

    def member(self, value: Any, moved: State, label: Label | None, depth: int) -> Any:
        """One member or element whose label is decided (`labelled_child` after the
        move): the walk's common cases inline, `child` for the rest."""
        if label is None or label.classification is not Classification.C2:
            kind = type(value)
            if kind is str:
                # An unlabelled string too short to hold a number or an e-mail address
                # (`detector.find`'s own bounds) passes as it is.
                if len(value) < 11 and "@" not in value:
                    return value
                return self.scan(value)
            if kind is dict:
                return self.walk_object(value, moved, label, depth + 1)
            if kind is list:
                return self.walk_array(value, moved, label, depth + 1)
            if value is None or kind is bool or (kind in (int, float) and -1e10 < value < 1e10):
                return value
        return self.child(value, moved, label, depth + 1)

    def walk_object(
        self, doc: dict[str, Any], states: State, label: Label | None, depth: int
    ) -> dict[str, Any]:
        if doc and depth >= MAX_DEPTH:
            # Every member but a removed one would be a child beyond the bound.
            for name in doc:
                rule = self.automaton.move(states, name)[1]
                if rule is None or rule.classification is not Classification.C3:
                    raise TooDeep(f"the document nests deeper than {MAX_DEPTH}")
        names = tuple(doc)
        plan_key = (states, id(label), names)
        plan = self.plans.get(plan_key)
        if plan is None:
            plan = self.plan(names, states, label)
            if len(names) <= MAX_PLANNED_MEMBERS:
                if len(self.plans) >= MAX_PLANS:
                    self.plans.clear()
                self.plans[plan_key] = plan
        out: dict[str, Any] = {}
        member = self.member
        suspects = self.suspects
        for (key, clean, moved, sub, plain), value in zip(plan, doc.values(), strict=False):
            if key is None:
                continue  # C3: removed under every profile
            if not clean:
                key = self.mask_name(key)
            kind = type(value)
            if plain:
                # Most members: unlabelled. A string the raw body shows holds nothing for
                # the detector (or, without suspects, too short to hold a number or an
                # e-mail address), a small number, a literal: passes as it is.
                if kind is str:
                    if (
                        value not in suspects
                        if suspects is not None
                        else len(value) < 11 and "@" not in value
                    ):
                        out[key] = value
                    else:
                        out[key] = self.mask_text(value, None)
                    continue
                if (kind is int or kind is float) and -1e10 < value < 1e10:
                    out[key] = value
                    continue
                if value is None or kind is bool:
                    out[key] = value
                    continue
                if kind is dict:
                    out[key] = self.walk_object(value, moved, sub, depth + 1)
                    continue
            elif kind is str:
                # A labelled string: depth + 1 is within bounds (checked above).
                masked = self.labelled(value, sub)  # type: ignore[arg-type]
                if masked is not _REMOVED:
                    out[key] = masked
                continue
            masked = member(value, moved, sub, depth)
            if masked is not _REMOVED:
                out[key] = masked
        return out

    def plan(self, names: tuple[str, ...], states: State, label: Label | None) -> tuple[_Step, ...]:
        """What the walk does with each member of an object with `names` below
        (`states`, `label`): objects of one route repeat their names (every element
        of a list of transactions), so this is worked out once per shape."""
        inherited_c2 = label is not None and label.classification is Classification.C2
        steps: list[_Step] = []
        for name in names:
            moved, rule = self.automaton.move(states, name)
            sub = label
            if rule is not None:
                if rule.classification is Classification.C3:
                    steps.append(_C3_STEP)
                    continue
                # A C1 rule under a C2 ancestor does not unmask what the ancestor covers.
                if not (rule.classification is Classification.C1 and inherited_c2):
                    sub = self.labels[id(rule)]
            # A C2 label of kind text (free text: descriptions, memos) does what no label
            # does: the detector masks what it finds. The label is still passed down.
            plain = (
                sub is None
                or sub.classification is not Classification.C2
                or sub.kind in (None, Kind.TEXT)
            )
            steps.append((name, not detector.find(name), moved, sub, plain))
        return tuple(steps)

    def walk_array(
        self, items: list[Any], states: State, label: Label | None, depth: int
    ) -> list[Any]:
        out: list[Any] = []
        automaton = self.automaton
        inherited_c2 = label is not None and label.classification is Classification.C2
        member = self.member
        labels = self.labels
        same = not automaton.exact_indices  # every index moves alike: move once
        moved, rule = automaton.move(states, 0) if same else (states, None)
        for i, value in enumerate(items):
            if not same:
                moved, rule = automaton.move(states, i)
            sub = label
            if rule is not None:
                if rule.classification is Classification.C3:
                    out.append(None)  # removed; the indices keep their meaning
                    continue
                if not (rule.classification is Classification.C1 and inherited_c2):
                    sub = labels[id(rule)]
            if depth >= MAX_DEPTH:
                raise TooDeep(f"the document nests deeper than {MAX_DEPTH}")
            masked = member(value, moved, sub, depth)
            out.append(None if masked is _REMOVED else masked)
        return out


def replace_literals(text: str, values: list[str], replacements: dict[str, str]) -> str:
    """`text` with `values` replaced as ``re.sub`` of their alternation (in this
    order) would replace them — leftmost first, at one position the first value of
    the list that occurs there, no overlap — without compiling one: the values
    differ from one response to the next, and compiling costs more than finding each
    with ``str.find`` (in C)."""
    hits: list[tuple[int, int, str]] = []
    for rank, value in enumerate(values):
        at = text.find(value)
        while at >= 0:
            hits.append((at, rank, value))
            at = text.find(value, at + 1)
    hits.sort()
    out: list[str] = []
    end = 0
    for start, _, value in hits:
        if start < end:
            continue  # inside the previous replacement
        out.append(text[end:start])
        out.append(replacements[value])
        end = start + len(value)
    out.append(text[end:])
    return "".join(out)


def _alternation(values: list[str]) -> re.Pattern[str]:
    return re.compile("|".join(map(re.escape, values)))


_dumps: Final = rawtext.dumps


def _unecho(value: Any, pattern: re.Pattern[str], echoes: dict[str, str]) -> Any:
    def replace(text: str) -> str:
        return pattern.sub(lambda m: echoes[m.group()], text)

    if isinstance(value, str):
        return replace(value)
    if isinstance(value, dict):
        return {replace(k): _unecho(v, pattern, echoes) for k, v in value.items()}
    if isinstance(value, list):
        return [_unecho(v, pattern, echoes) for v in value]
    return value


class MaskingEngine:
    """Rules, profiles and the pseudonym key: `mask` applies them to a document."""

    def __init__(
        self,
        rules: RuleSet,
        keys: PseudonymKeys,
        *,
        today: Callable[[], date] = date.today,
    ) -> None:
        self.rules = rules
        self.keys = keys
        self.today = today
        self._automata: dict[str | None, Automaton] = {}
        self._labels: dict[int, dict[int, Label]] = {}
        self._actions: dict[tuple[int, int], dict[int, _Masking]] = {}
        self.clean_names: set[str] = set()
        self._plans: dict[int, dict[tuple[State, int, tuple[str, ...]], tuple[_Step, ...]]] = {}

    def automaton(self, route_id: str | None) -> Automaton:
        """The route's selectors as one automaton (routes without rules share one)."""
        key = route_id if route_id in self.rules.routes else None
        found = self._automata.get(key)
        if found is None:
            found = self._automata[key] = Automaton(self.rules.rules_for(key))
        return found

    def plans(
        self, automaton: Automaton
    ) -> dict[tuple[State, int, tuple[str, ...]], tuple[_Step, ...]]:
        """The object plans of `automaton` (`_Pass.plan`), by (state, label's identity,
        member names). Per automaton: a state is only (rule, step) indices, which mean
        other rules in another route's automaton."""
        found = self._plans.get(id(automaton))
        if found is None:
            found = self._plans[id(automaton)] = {}
        return found

    def labels(self, automaton: Automaton) -> dict[int, Label]:
        """The label each rule of `automaton` gives, by the rule's identity (built once
        per automaton: the walk looks one up at every labelled position)."""
        found = self._labels.get(id(automaton))
        if found is None:
            found = self._labels[id(automaton)] = {
                id(rule): Label(rule.classification, rule.kind, rule) for rule in automaton.rules
            }
        return found

    def actions(self, automaton: Automaton, profile: Profile) -> dict[int, _Masking]:
        """How `profile` masks what each rule of `automaton` labels, by the rule's
        identity (built once per automaton and profile: the walk needs one per
        labelled value)."""
        # Automata and profiles live as long as the engine: their identities are stable.
        key = (id(automaton), id(profile))
        found = self._actions.get(key)
        if found is None:
            found = self._actions[key] = {
                id(rule): _masking(profile, rule) for rule in automaton.rules
            }
        return found

    def mask(self, doc: Any, request: Request) -> Any:
        """A masked copy of `doc` (never modified); `TooDeep` for a nesting bomb."""
        return rawtext.loads(self.mask_json(doc, request).encode())

    def mask_json(
        self, doc: Any, request: Request, *, suspects: frozenset[str] | None = None
    ) -> str:
        """`doc` masked and serialised (UTF-8 text, compact), as a response body is sent.
        `suspects`: the strings of the body `doc` was parsed from that may hold a
        detector finding (`rawtext.suspects`); None to scan every string."""
        job = _Pass(self, request, suspects)
        masked = job.child(doc, job.automaton.start, None, 0)
        # The document itself can only be removed by a label, and the root has none.
        text = _dumps(None if masked is _REMOVED else masked)
        if not job.echoes:
            return text
        # Longest first, so a full name is replaced before a shorter name inside it.
        alternatives = sorted(job.echoes, key=len, reverse=True)
        if any(_JSON_ESCAPED.search(v) for v in alternatives):
            # A value JSON escapes cannot be searched for in the text at all: walk.
            return _dumps(_unecho(masked, _alternation(alternatives), job.echoes))
        # Usually a masked value occurs only where it was masked. A value JSON writes
        # as it is occurs inside a string of the output only if it occurs in the text,
        # so a substring search per value (in C) finds the few that can: no regular
        # expression is compiled for the others (compiling an alternation of a
        # response's values costs more than the walk, and the values differ from one
        # response to the next). Values not in the text cannot match anywhere, and a
        # longer value present implies its substrings are: the alternation of the
        # present values, longest first, replaces exactly what that of all would.
        present = [v for v in alternatives if v in text]
        if not present:
            return text
        # Values holding a character that cannot occur outside a JSON string can only
        # match inside strings: replaced in the text (checked to parse). Any other
        # value found in the text (digits, say) needs the walk.
        if all(_TEXT_SAFE.search(v) for v in present):
            replaced = replace_literals(text, present, job.echoes)
            if rawtext.is_json(replaced):
                return replaced
            # e.g. a match inside an escape sequence: walk instead
        return _dumps(_unecho(masked, _alternation(present), job.echoes))

    def mask_text(self, text: str, request: Request) -> str:
        """`text` (a body with no fields) with the detector's findings masked."""
        return _Pass(self, request).mask_text(text, None)
