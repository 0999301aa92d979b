"""The generator's data is valid the way real data is, and reproducible."""

from __future__ import annotations

import re
from collections import defaultdict
from datetime import datetime, time, timedelta

from gateway import pii
from gateway.corebank import vocab
from gateway.corebank.model import CST, Bank, Transaction, add_years
from gateway.corebank.synthetic import CREDIT_PRODUCTS, DEBIT_PRODUCTS, SAVINGS_PREFIX, generate
from tests.corebank.harness import AS_OF

SURNAMES = {s for s, _, _ in vocab.SURNAMES}


def test_same_seed_same_bank_other_seed_other_bank() -> None:
    assert generate(3, 20, AS_OF) == generate(3, 20, AS_OF)
    assert generate(3, 20, AS_OF).customers != generate(4, 20, AS_OF).customers


def test_resident_ids(generated: Bank) -> None:
    seen: set[str] = set()
    for c in generated.customers:
        number = c.resident_id
        assert pii.resident_id_valid(number, today=AS_OF), number
        assert pii.resident_id_check_char(number[:17]) == number[17]
        region = vocab.REGIONS_BY_CODE[number[:6]]  # a real code from the table
        assert number[:2] in pii.PROVINCE_CODES
        assert pii.resident_id_birth_date(number) == c.birth_date
        assert pii.resident_id_gender(number) == c.gender
        assert 19 <= (AS_OF - c.birth_date).days // 365 <= 75
        assert region.province and region.district
        assert number not in seen
        seen.add(number)


def test_id_card_validity_follows_the_law(generated: Bank) -> None:
    for c in generated.customers:
        age_at_issue = (c.id_issued_on - c.birth_date).days // 365
        assert c.id_issued_on <= AS_OF
        if c.id_expires_on is None:
            assert age_at_issue >= 46
        else:
            years = 5 if age_at_issue < 16 else 10 if age_at_issue <= 25 else 20
            assert c.id_expires_on == add_years(c.id_issued_on, years)
            assert c.id_expires_on > AS_OF


def test_names_mobiles_emails_addresses(generated: Bank) -> None:
    mobiles = [c.mobile for c in generated.customers]
    assert len(set(mobiles)) == len(mobiles)
    assert {c.surname for c in generated.customers} & {"欧阳", "司马", "上官", "诸葛", "司徒"}
    for c in generated.customers:
        assert c.surname in SURNAMES and c.name == c.surname + c.given_name
        assert 1 <= len(c.given_name) <= 2
        assert pii.mobile_valid(c.mobile) and c.mobile[:3] in pii.MOBILE_PREFIXES
        assert re.fullmatch(r"[a-z0-9]+@[a-z0-9]+\.com", c.email), c.email
        region = vocab.REGIONS_BY_CODE[c.address.region_code]
        assert (c.address.province, c.address.district) == (region.province, region.district)
        assert c.address.full.startswith(c.address.province)
        assert c.address.full.endswith("室")
        assert c.customer_since >= add_years(c.birth_date, 18)


def test_cards(generated: Bank) -> None:
    lengths = {p: n for p, n, _ in (*DEBIT_PRODUCTS, *CREDIT_PRODUCTS)}
    accounts = {a.account_id: a for a in generated.accounts}
    numbers = [c.number for c in generated.cards]
    assert len(set(numbers)) == len(numbers)
    assert {c.kind for c in generated.cards} == {"debit", "credit"}
    for card in generated.cards:
        assert pii.card_number_valid(card.number) and card.number.startswith("62")
        assert len(card.number) == lengths[card.number[:6]]
        assert re.fullmatch(r"[0-9]{3}", card.cvn)
        assert (card.expiry_year, card.expiry_month) > (AS_OF.year, AS_OF.month)
        assert re.fullmatch(r"(0[1-9]|1[0-2])/[0-9]{2}", card.expiry)
        if card.kind == "debit":
            assert card.account_id is not None
            assert accounts[card.account_id].number == card.number  # I类 account = card
        else:
            assert card.account_id is None
            assert 0 <= card.outstanding_fen <= card.credit_limit_fen


def test_accounts(generated: Bank) -> None:
    numbers = [a.number for a in generated.accounts]
    assert len(set(numbers)) == len(numbers)
    customers = {c.customer_id for c in generated.customers}
    for a in generated.accounts:
        assert a.customer_id in customers
        assert pii.luhn_valid(a.number) and len(a.number) == 19
        assert a.kind == "settlement" or a.number.startswith(SAVINGS_PREFIX)
        assert a.balance_fen >= 0 and a.currency == "CNY"
    assert {a.status for a in generated.accounts} == {"active", "frozen"}


def test_transaction_histories_add_up(generated: Bank) -> None:
    by_account: dict[str, list[Transaction]] = defaultdict(list)
    for t in generated.transactions:
        by_account[t.account_id].append(t)
    end = datetime.combine(AS_OF + timedelta(days=1), time(), CST)
    kinds: set[str] = set()
    for account in generated.accounts:
        txns = by_account[account.account_id]
        assert txns, "every account has a history"
        balance = txns[0].balance_after_fen - txns[0].amount_fen
        for t in txns:
            assert t.amount_fen != 0 and t.booked_at < end and t.booked_at.tzinfo is not None
            assert t.balance_after_fen == balance + t.amount_fen >= 0
            balance = t.balance_after_fen
            kinds.add(t.kind)
            if t.counterparty_account and t.kind.startswith("transfer"):
                assert pii.card_number_valid(t.counterparty_account)
        assert balance == account.balance_fen
        assert [t.booked_at for t in txns] == sorted(t.booked_at for t in txns)
    assert {"salary", "pension", "card_payment", "transfer_in", "transfer_out", "interest"} <= kinds
    ids = [t.txn_id for t in generated.transactions]
    assert len(set(ids)) == len(ids)


def test_staff(generated: Bank) -> None:
    assert len(generated.staff) == 12
    assert len({s.staff_id for s in generated.staff}) == 12
    for s in generated.staff:
        assert re.fullmatch(r"E[0-9]{6}", s.staff_id) and pii.mobile_valid(s.mobile)
