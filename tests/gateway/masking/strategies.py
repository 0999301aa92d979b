"""Hypothesis strategies for structurally valid Chinese personal identifiers."""

from __future__ import annotations

from datetime import date

from hypothesis import strategies as st

from gateway import pii
from gateway.corebank import vocab

TODAY = date(2026, 11, 1)

resident_ids = st.builds(
    pii.resident_id,
    st.sampled_from([r.code for r in vocab.REGIONS]),
    st.dates(date(1900, 1, 1), TODAY),
    st.integers(1, 999),
)
card_numbers = st.builds(
    pii.card_number,
    st.sampled_from(["622208", "621226", "625330", "628288", "4", "51"]),
    st.text("0123456789", min_size=1, max_size=18),
    st.integers(12, 19),
)
mobiles = st.builds(
    lambda prefix, rest: prefix + rest,
    st.sampled_from(sorted(pii.MOBILE_PREFIXES)),
    st.text("0123456789", min_size=8, max_size=8),
)
emails = st.builds(
    lambda local, domain: f"{local}@{domain}",
    st.from_regex(r"[a-z][a-z0-9._]{0,15}", fullmatch=True),
    st.sampled_from(["qq.com", "163.com", "bank.example.cn", "mail.example"]),
)
identifiers = st.one_of(resident_ids, card_numbers, mobiles, emails)
separators = st.text(
    st.characters(
        blacklist_categories=("Cs",),
        blacklist_characters="0123456789@._%+-abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ",
    ),
    min_size=1,
    max_size=6,
)
"""What may sit beside an identifier: anything but ASCII letters, digits and e-mail
punctuation (those would make it part of a longer token)."""
