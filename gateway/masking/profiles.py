"""Masking profiles: who is asking decides how each kind of C2 value is shown.

The policy decision names the profile (obligation ``mask_profile``, docs/policy.md);
the rules file defines what each profile does per kind of C2 value. Whatever the
file says, two things are fixed in code (JR/T 0171-2020):

* C3 is removed under every profile;
* no profile shows a C2 value in the clear — ``keep`` is not an action.

A profile the file does not define — a typo in the policy, a new profile not yet
rolled out, a decision without one — is `STRICT`: every C2 value removed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import Final

from gateway.masking.classification import Kind

__all__ = ["DEFAULT_PARTIAL", "STRICT", "Action", "Profile"]


class Action(StrEnum):
    """What a profile does with a C2 value of some kind."""

    PARTIAL = "partial"
    REMOVE = "remove"
    PSEUDONYM = "pseudonym"
    TOKEN = "token"  # noqa: S105 (an action name, not a secret)
    GENERALISE = "generalise"


DEFAULT_PARTIAL: Final[Mapping[Kind, tuple[int, int]]] = MappingProxyType(
    {
        Kind.CARD_NUMBER: (6, 4),
        Kind.ACCOUNT_NUMBER: (6, 4),
        Kind.MOBILE: (3, 4),
        Kind.RESIDENT_ID: (1, 1),
        Kind.NAME: (1, 0),
        Kind.EMAIL: (1, 0),
        Kind.IDENTIFIER: (2, 2),
        Kind.BIRTH_DATE: (4, 0),
        Kind.ADDRESS: (6, 0),
        Kind.KYC: (0, 0),
        Kind.TEXT: (0, 0),
    }
)
"""Display masking per kind (head, tail) unless a profile says otherwise: card
6 + 4, mobile 3 + 4, resident ID 1 + 1, a name keeping its first character."""


@dataclass(frozen=True)
class Profile:
    """One profile: an action per kind, the partial split per kind, and whether
    fields must be opted in (``need_to_know``: remote customer-service staff see
    only the fields whose rule names their profile in ``needed_by``; every other
    C2 value, detected ones included, is removed)."""

    name: str
    actions: Mapping[Kind, Action] = field(default_factory=lambda: MappingProxyType({}))
    partial: Mapping[Kind, tuple[int, int]] = field(default_factory=lambda: DEFAULT_PARTIAL)
    default: Action = Action.REMOVE
    need_to_know: bool = False
    pseudonym_scope: str | None = None
    """Scope of this profile's pseudonym key when it is not per partner (``audit``);
    None: the partner's client id, and without one pseudonyms are removed."""

    def action(self, kind: Kind) -> Action:
        return self.actions.get(kind, self.default)

    def split(self, kind: Kind) -> tuple[int, int]:
        return self.partial.get(kind, DEFAULT_PARTIAL[kind])


STRICT: Final = Profile("strict")
"""The default: every C2 value removed (and C3, as always)."""
