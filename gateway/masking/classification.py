"""Data classes and data kinds of JR/T 0171-2020 (personal financial information).

The standard sorts personal financial information by the harm its disclosure does:

* **C3** — authentication data: passwords, PINs, card track data, CVN/CVV, card
  expiry, biometric templates. It never leaves the bank (§5: not displayed, not
  transmitted to third parties); the edge removes it from every response under
  every profile, and no configuration can change that.
* **C2** — data that identifies a person or an account: card and account numbers,
  resident ID numbers, mobile numbers, e-mail and postal addresses, names, KYC
  data. It is masked for display; which masking depends on who asks (the profile).
* **C1** — internal, low-harm data (account opening dates, product names, amounts
  without a holder): passes unchanged.

A rule labels a JSON field with a class and, for C2, a *kind*: the kind picks the
masker (a card is shown 6 + 4, a name keeps one character, an address becomes a
city). The automatic detector labels what it finds with the same kinds.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = ["C2_KINDS", "Classification", "Kind"]


class Classification(StrEnum):
    """JR/T 0171-2020 information class."""

    C1 = "C1"
    C2 = "C2"
    C3 = "C3"


class Kind(StrEnum):
    """What a C2 value is, which decides how it is masked."""

    CARD_NUMBER = "card_number"
    ACCOUNT_NUMBER = "account_number"
    RESIDENT_ID = "resident_id"
    MOBILE = "mobile"
    EMAIL = "email"
    NAME = "name"
    ADDRESS = "address"
    BIRTH_DATE = "birth_date"
    KYC = "kyc"
    IDENTIFIER = "identifier"
    """Any other identifying value (a document number, a partner-facing id)."""
    TEXT = "text"
    """Free text: only what the detector finds in it is masked."""


C2_KINDS: frozenset[Kind] = frozenset(Kind)
