"""Dynamic data masking of response bodies (issue 7; JR/T 0171-2020).

What leaves the edge depends on who asks: rules label JSON fields of each route
as C1/C2/C3 (`rules`, with JSONPath-like `selector`s), an automatic `detector`
finds unlabelled personal data in any string, and the policy's ``mask_profile``
picks the `maskers` each kind of C2 value gets (`profiles`). `engine` walks a
document once and applies all of it; `body` turns a response body into a masked
body or a block. `gateway.ext_proc` calls it for every response on a masked route.
See docs/masking.md.
"""

from __future__ import annotations

from gateway.masking.body import BodyOutcome, mask_body
from gateway.masking.classification import Classification, Kind
from gateway.masking.engine import MaskingEngine, Request
from gateway.masking.maskers import PseudonymKeys
from gateway.masking.profiles import STRICT, Action, Profile
from gateway.masking.rules import RulesError, RuleSet, default_rules, load_rules, parse_rules

__all__ = [
    "STRICT",
    "Action",
    "BodyOutcome",
    "Classification",
    "Kind",
    "MaskingEngine",
    "Profile",
    "PseudonymKeys",
    "Request",
    "RuleSet",
    "RulesError",
    "default_rules",
    "load_rules",
    "mask_body",
    "parse_rules",
]
