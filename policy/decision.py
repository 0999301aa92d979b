"""The policy result contract: what a Rego decision must look like, and the deny it
becomes when it does not.

The entry rule (``data.ztgate.main.decision`` in the default bundle) evaluates
to an object::

    {"allow": bool, "reasons": [str, ...],
     "obligations": {"step_up": {"acr": str, "max_age": int} | null,
                     "mask_profile": str, "headers": {str: str},
                     "rate_limit_tier": str, "audit": "none"|"standard"|"full"}}

`parse_result` turns whatever the engine returned into a `Decision`. Fail
closed: an undefined result, a missing or non-boolean ``allow``, or any
malformed member is a deny whose reason says what was wrong — never an
exception, never an allow. Extra members are ignored (forward compatible).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Final, Literal

__all__ = ["AUDIT_LEVELS", "Decision", "Obligations", "StepUp", "deny", "parse_result"]

AUDIT_LEVELS: Final = ("none", "standard", "full")
AuditLevel = Literal["none", "standard", "full"]
MAX_REASONS: Final = 32
MAX_REASON_LENGTH: Final = 200
MAX_HEADERS: Final = 16
_HEADER_NAME: Final = re.compile(r"x-ztgate-[a-z0-9-]{1,64}")
_TOKEN: Final = re.compile(r"[A-Za-z0-9_.:-]{1,64}")


@dataclass(frozen=True)
class StepUp:
    """RFC 9470 requirement the caller must meet before the request may pass."""

    acr: str | None = None
    max_age: int | None = None


@dataclass(frozen=True)
class Obligations:
    step_up: StepUp | None = None
    mask_profile: str = "strict"
    """Response masking profile; the most restrictive one unless the policy relaxes it."""
    headers: tuple[tuple[str, str], ...] = ()
    """Headers added upstream; names must start with ``x-ztgate-`` so a policy cannot
    overwrite hop or identity headers the gateway sets itself."""
    rate_limit_tier: str = "default"
    audit: AuditLevel = "standard"


@dataclass(frozen=True)
class Decision:
    allow: bool
    reasons: tuple[str, ...]
    obligations: Obligations = field(default_factory=Obligations)
    revision: str = ""
    """Revision of the bundle that made the decision (empty: no bundle)."""

    def as_json(self) -> dict[str, Any]:
        ob = self.obligations
        return {
            "allow": self.allow,
            "reasons": list(self.reasons),
            "obligations": {
                "step_up": None
                if ob.step_up is None
                else {"acr": ob.step_up.acr, "max_age": ob.step_up.max_age},
                "mask_profile": ob.mask_profile,
                "headers": dict(ob.headers),
                "rate_limit_tier": ob.rate_limit_tier,
                "audit": ob.audit,
            },
            "revision": self.revision,
        }


def deny(reason: str, revision: str = "") -> Decision:
    """A deny with one reason and the strictest obligations (full audit)."""
    return Decision(False, (reason,), Obligations(audit="full"), revision)


def _reasons(value: object) -> tuple[str, ...] | None:
    if value is None:
        return ()
    if not isinstance(value, list | tuple | set | frozenset):
        return None
    out: list[str] = []
    for item in value:
        if not isinstance(item, str):
            return None
        out.append(item[:MAX_REASON_LENGTH])
    return tuple(sorted(out)[:MAX_REASONS])


def _step_up(value: object) -> StepUp | Literal[False] | None:
    if value is None:
        return None
    if not isinstance(value, dict) or not value.keys() <= {"acr", "max_age"}:
        return False
    acr, max_age = value.get("acr"), value.get("max_age")
    if acr is not None and not isinstance(acr, str):
        return False
    if max_age is not None and (
        isinstance(max_age, bool) or not isinstance(max_age, int) or max_age < 0
    ):
        return False
    if acr is None and max_age is None:
        return False
    return StepUp(acr, max_age)


def _obligations(value: object) -> Obligations | str:
    """Obligations, or the reason they are malformed."""
    if value is None:
        return Obligations()
    if not isinstance(value, dict):
        return "obligations is not an object"
    step_up = _step_up(value.get("step_up"))
    if step_up is False:
        return "obligations.step_up is malformed"
    mask = value.get("mask_profile", "strict")
    if not isinstance(mask, str) or not _TOKEN.fullmatch(mask):
        return "obligations.mask_profile is malformed"
    tier = value.get("rate_limit_tier", "default")
    if not isinstance(tier, str) or not _TOKEN.fullmatch(tier):
        return "obligations.rate_limit_tier is malformed"
    audit = value.get("audit", "standard")
    if audit not in AUDIT_LEVELS:
        return "obligations.audit is malformed"
    headers = value.get("headers", {})
    if not isinstance(headers, dict) or len(headers) > MAX_HEADERS:
        return "obligations.headers is malformed"
    pairs: list[tuple[str, str]] = []
    for name, text in headers.items():
        if (
            not isinstance(name, str)
            or not _HEADER_NAME.fullmatch(name)
            or not isinstance(text, str)
            or len(text) > 256
            or not text.isprintable()
        ):
            return "obligations.headers is malformed"
        pairs.append((name, text))
    return Obligations(step_up, mask, tuple(sorted(pairs)), tier, audit)


def parse_result(result: object, revision: str = "") -> Decision:
    """The `Decision` a raw engine result stands for; malformed → deny (fail closed)."""
    if result is None:
        return deny("policy:undefined_result", revision)
    if not isinstance(result, dict):
        return deny("policy:malformed_result", revision)
    allow = result.get("allow")
    if not isinstance(allow, bool):
        return deny("policy:malformed_result:allow", revision)
    reasons = _reasons(result.get("reasons"))
    if reasons is None:
        return deny("policy:malformed_result:reasons", revision)
    obligations = _obligations(result.get("obligations"))
    if isinstance(obligations, str):
        return deny(f"policy:malformed_result:{obligations.split(' ')[0]}", revision)
    if allow and obligations.step_up is not None:
        # A step-up obligation means "not yet": the request is refused with a challenge.
        return Decision(False, reasons or ("step_up_required",), obligations, revision)
    return Decision(allow, reasons, obligations, revision)
