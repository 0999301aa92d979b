"""The consent header and the transaction cursor: parsers, so properties first."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from authn.errors import AuthnError
from gateway.corebank.callers import MAX_CONSENT_ACCOUNTS, Consent, parse_consent
from gateway.corebank.http import decode_cursor, encode_cursor

idents = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,40}", fullmatch=True)


@given(idents, idents, st.lists(idents, min_size=1, max_size=MAX_CONSENT_ACCOUNTS))
def test_consent_round_trips(consent_id: str, customer: str, accounts: list[str]) -> None:
    header = f"id={consent_id}; customer={customer}; accounts={','.join(accounts)}"
    assert parse_consent(header) == Consent(consent_id, customer, frozenset(accounts))


@given(st.text(max_size=300))
def test_consent_parser_never_raises(text: str) -> None:
    result = parse_consent(text)
    if result is not None:
        assert result.account_ids and all(result.account_ids)


@pytest.mark.parametrize(
    "header",
    [
        "",
        "id=c1; customer=cst_1",
        "id=c1; customer=cst_1; accounts=",
        "id=c1; customer=cst_1; accounts=a,,b",
        "id=c1; customer=cst_1; accounts=a; accounts=b",
        "customer=cst_1; id=c1; accounts=a",
        "id=c1; customer=cst 1; accounts=a",
        "id=c1; customer=cst_1; accounts=" + ",".join(f"a{i}" for i in range(51)),
        "id=c1; customer=cst_1; accounts=a\u0000",
    ],
)
def test_malformed_consents_are_refused(header: str) -> None:
    assert parse_consent(header) is None


@given(
    st.integers(min_value=0, max_value=10**12 - 1),
    st.from_regex(r"txn_[0-9a-f]{16}", fullmatch=True),
)
def test_cursor_round_trips(at: int, txn: str) -> None:
    assert decode_cursor(encode_cursor((at, txn))) == (at, txn)


@given(st.text(max_size=80))
def test_cursor_decoder_only_raises_invalid_request(text: str) -> None:
    try:
        decode_cursor(text)
    except AuthnError as exc:
        assert (exc.status, exc.code) == (400, "invalid_request")
