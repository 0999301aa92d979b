"""The automatic detector: personal data in any string, labelled or not (issue 7).

A rule can only label fields someone thought of. Core systems also put personal
data where nobody labelled it — an account number inside an error description, a
mobile number in a transfer memo — so every string that no rule classifies is
scanned, and what is found is masked as C2 (JR/T 0171-2020) under the profile's
masker for its kind:

* resident ID numbers: 18 characters with a known province, a real birth date and
  a correct ISO 7064 MOD 11-2 check character (`gateway.pii.resident_id_valid`);
* payment card numbers: 12-19 digits passing Luhn (`gateway.pii.card_number_valid`),
  also written in groups of four separated by spaces or hyphens;
* mainland mobile numbers: 11 digits with a carrier prefix, optionally after
  ``+86``/``0086``/``86``;
* e-mail addresses (a pragmatic RFC 5322 ``local@domain.tld`` subset).

A number is recognised when it stands alone as a digit run: the characters either
side are not digits (Chinese text, letters and punctuation all delimit); full-width
digits count as digits. A
digit run that is not itself valid is not searched for valid numbers inside it: a
longer run is some other number (a timestamp, a reference), and guessing
substrings would mask those instead. The check digits make a random digit run
rarely valid (1 in 10 for Luhn, 1 in 11 for MOD 11-2 after the structural checks),
so false positives are few and cost only an over-masked reference number.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from gateway import pii
from gateway.masking.classification import Kind

__all__ = ["Finding", "classify", "find"]

_D: Final = "[0-9\uff10-\uff19]"
"""A digit, ASCII or full-width (common in Chinese text input)."""
_NUMBERS: Final = (
    rf"(?<!{_D})(?:{_D}{{4}}(?:[ -]{_D}{{4}}){{2,3}}(?:[ -]{_D}{{1,3}})?"
    rf"|{_D}{{3}}[ -]{_D}{{4}}[ -]{_D}{{4}}|{_D}{{11,19}}[Xx\uff38\uff58]?)(?!{_D})"
)
_CANDIDATE: Final = re.compile(
    r"[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9-]{1,63}(?:\.[A-Za-z0-9-]{1,63})*\.[A-Za-z]{2,24}|"
    + _NUMBERS
)
_NUMBER_CANDIDATE: Final = re.compile(_NUMBERS)
"""Without an ``@`` in the text, only numbers: the e-mail branch would be tried (and
fail) at every position."""
_SEPARATORS: Final = re.compile(r"[ -]")
_FULLWIDTH: Final = {0xFF10 + i: 0x30 + i for i in range(10)} | {0xFF38: 0x58, 0xFF58: 0x78}
"""Full-width digits and X read as their ASCII forms."""
_MOBILE_COUNTRY: Final = ("0086", "86")


@dataclass(frozen=True)
class Finding:
    """One piece of personal data inside a string: where, and what it is."""

    start: int
    end: int
    kind: Kind


def classify(token: str) -> Kind | None:
    """The kind of a whole token (digits, grouped digits or an e-mail), or None."""
    if "@" in token:
        return Kind.EMAIL
    digits = _SEPARATORS.sub("", token).translate(_FULLWIDTH)
    if len(digits) == 18 and pii.resident_id_valid(digits):
        return Kind.RESIDENT_ID
    if digits[-1:] in ("X", "x") or not digits.isascii() or not digits.isdigit():
        return None
    if pii.mobile_valid(digits):
        return Kind.MOBILE
    for prefix in _MOBILE_COUNTRY:
        if digits.startswith(prefix) and pii.mobile_valid(digits[len(prefix) :]):
            return Kind.MOBILE
    if pii.card_number_valid(digits):
        return Kind.CARD_NUMBER
    return None


def find(text: str) -> list[Finding]:
    """Every piece of personal data in `text`, left to right, not overlapping."""
    if len(text) < 6:  # shortest e-mail the pattern takes: a@b.cd
        return []
    if "@" in text:
        pattern = _CANDIDATE
    elif len(text) < 11:  # shortest number: 11 digits
        return []
    else:
        pattern = _NUMBER_CANDIDATE
    found: list[Finding] = []
    for match in pattern.finditer(text):
        token, end = match.group(), match.end()
        kind = classify(token)
        if kind is None and token[-1] in "Xx\uff38\uff58" and "@" not in token:
            # Not a resident ID: the digits before a trailing letter may still be a card
            # or a mobile number ("...5678x").
            token, end = token[:-1], end - 1
            kind = classify(token)
        if (
            kind is None
            and "@" not in token
            and (cut := max(token.rfind(" "), token.rfind("-"))) > 0
        ):
            # Grouped digits followed by an unrelated short group ("6253 3012 3456 7890 12").
            token, end = token[:cut], match.start() + cut
            kind = classify(token)
        if kind is not None:
            found.append(Finding(match.start(), end, kind))
    return found
