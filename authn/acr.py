"""Authentication context classes (acr) and methods (amr) of ztgate tokens.

Levels, weakest to strongest (a token satisfies a requirement when its level
is at least the required one):

1. ``urn:ztgate:acr:pwd`` — password only; amr ``pwd``.
2. ``urn:ztgate:acr:mfa`` — password + TOTP; amr ``pwd``, ``otp``, ``mfa``.
3. ``urn:ztgate:acr:passkey`` — WebAuthn passkey with user verification
   (biometric or device PIN), phishing-resistant and multi-factor by itself;
   amr ``hwk``, ``user``, ``mfa`` (plus any earlier factors).

``user`` records that the authenticator verified the user (UV flag); ``hwk``
that the key is held by an authenticator (proof of possession). Why passkey
ranks above password+TOTP: both are two factors, but a TOTP code can be
phished and relayed in real time, a WebAuthn assertion is bound to the origin.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

PWD: Final = "urn:ztgate:acr:pwd"  # noqa: S105 (an acr URI, not a password)
MFA: Final = "urn:ztgate:acr:mfa"
PASSKEY: Final = "urn:ztgate:acr:passkey"

LEVELS: Final[dict[str, int]] = {PWD: 1, MFA: 2, PASSKEY: 3}


def level(acr: str | None) -> int:
    """Numeric level of `acr`; unknown or missing → 0 (satisfies nothing)."""
    return LEVELS.get(acr or "", 0)


def satisfies(acr: str | None, required: str) -> bool:
    return level(acr) >= level(required) > 0


def from_amr(amr: Iterable[str]) -> str | None:
    """The acr that a set of completed factors earns (None: no factor)."""
    methods = set(amr)
    if {"hwk", "user"} <= methods:
        return PASSKEY
    if {"pwd", "otp"} <= methods:
        return MFA
    if "pwd" in methods:
        return PWD
    return None


def amr_for(methods: Iterable[str]) -> list[str]:
    """Sorted amr list, adding ``mfa`` when two independent factors are present."""
    out = set(methods)
    if {"hwk", "user"} <= out or {"pwd", "otp"} <= out:
        out.add("mfa")
    return sorted(out)
