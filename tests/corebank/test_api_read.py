"""Reading the bank: what each kind of caller sees, and what it never sees."""

from __future__ import annotations

from gateway import pii
from tests.corebank.harness import AS_OF, Bank, customer, partner, staff


def _two_customers(bank: Bank) -> tuple[str, str]:
    first, second = bank.customers_with()[:2]
    return first, second


def _accounts(bank: Bank, customer_id: str) -> list[str]:
    return [
        r[0]
        for r in bank.rows("SELECT account_id FROM accounts WHERE customer_id = ?", customer_id)
    ]


async def test_public_routes(bank: Bank) -> None:
    health = await bank.request("GET", "/healthz")
    assert (health.status, health.body) == (200, {"status": "ok"})
    products = await bank.request("GET", "/api/products")
    assert products.status == 200 and products.body["products"]
    assert all("interest_rate" in p or "annual_fee" in p for p in products.body["products"])


async def test_customer_sees_own_profile_accounts_and_cards(bank: Bank) -> None:
    me, _ = _two_customers(bank)
    profile = await bank.request("GET", f"/api/customers/{me}/profile", customer(me))
    assert profile.status == 200
    doc = profile.body
    assert pii.resident_id_valid(doc["id_document"]["number"], today=AS_OF)
    assert pii.mobile_valid(doc["mobile"]) and doc["name"] == doc["surname"] + doc["given_name"]
    assert doc["name"] in profile.text  # UTF-8 text, not \\u escapes, as core systems send it

    accounts = await bank.request("GET", "/api/accounts", customer(me))
    assert accounts.status == 200
    assert {a["account_id"] for a in accounts.body["accounts"]} == set(_accounts(bank, me))
    first = accounts.body["accounts"][0]
    assert pii.luhn_valid(first["account_number"])
    assert first["balance"]["currency"] == "CNY"
    stored = bank.rows("SELECT balance_fen FROM accounts WHERE account_id = ?", first["account_id"])
    assert first["balance"]["amount"] == f"{stored[0][0] // 100}.{stored[0][0] % 100:02d}"

    one = await bank.request("GET", f"/api/accounts/{first['account_id']}", customer(me))
    assert one.body == first
    balance = await bank.request(
        "GET", f"/api/accounts/{first['account_id']}/balance", customer(me)
    )
    assert balance.body["ledger"] == first["balance"]

    cards = await bank.request("GET", "/api/cards", customer(me))
    assert cards.status == 200 and cards.body["cards"]
    assert all("cvn" not in c and "expiry" not in c for c in cards.body["cards"])
    detail = await bank.request(
        "GET", f"/api/cards/{cards.body['cards'][0]['card_id']}", customer(me)
    )
    assert detail.status == 200
    assert len(detail.body["cvn"]) == 3 and len(detail.body["expiry"]) == 5  # C3, on purpose
    assert detail.body["cardholder_name"] == doc["name"]
    assert pii.card_number_valid(detail.body["card_number"])


async def test_other_customers_data_is_404_like_nonexistent(bank: Bank) -> None:
    me, other = _two_customers(bank)
    theirs = _accounts(bank, other)[0]
    card = bank.rows("SELECT card_id FROM cards WHERE customer_id = ?", other)[0][0]
    probes = [
        (f"/api/accounts/{theirs}", "/api/accounts/acc_0000000000000000"),
        (f"/api/accounts/{theirs}/balance", "/api/accounts/acc_0000000000000000/balance"),
        (f"/api/accounts/{theirs}/transactions", "/api/accounts/acc_0000000000000000/transactions"),
        (f"/api/cards/{card}", "/api/cards/crd_0000000000000000"),
        (f"/api/customers/{other}/profile", "/api/customers/cst_0000000000000000/profile"),
    ]
    for existing, missing in probes:
        a = await bank.request("GET", existing, customer(me))
        b = await bank.request("GET", missing, customer(me))
        assert a.status == b.status == 404, existing
        assert a.body == b.body, existing  # nothing tells "exists, not yours" from "no such"
    assert (await bank.request("GET", "/api/accounts", customer("cst_0000000000000000"))).body == {
        "accounts": []
    }


async def test_caller_kinds_are_enforced(bank: Bank) -> None:
    me, _ = _two_customers(bank)
    employee = bank.rows("SELECT staff_id FROM staff LIMIT 1")[0][0]
    nobody = await bank.request("GET", "/api/accounts")
    assert (nobody.status, nobody.error) == (401, "unauthenticated")
    bad_kind = await bank.request(
        "GET", "/api/accounts", {"x-ztgate-subject": me, "x-ztgate-subject-kind": "admin"}
    )
    assert bad_kind.status == 401
    as_staff = await bank.request("GET", "/api/accounts", staff(employee))
    assert (as_staff.status, as_staff.error) == (403, "forbidden")
    as_customer = await bank.request("GET", f"/api/staff/customers/{me}", customer(me))
    assert as_customer.status == 403
    impostor = await bank.request("GET", f"/api/staff/customers/{me}", staff("E999999x"))
    assert impostor.status == 403
    bank.rows("UPDATE staff SET active = 0 WHERE staff_id = ?", employee)
    former = await bank.request("GET", f"/api/staff/customers/{me}", staff(employee))
    assert former.status == 403


async def test_staff_customer_view_and_mobile_search(bank: Bank) -> None:
    me, _ = _two_customers(bank)
    employee = bank.rows("SELECT staff_id FROM staff LIMIT 1")[0][0]
    view = await bank.request("GET", f"/api/staff/customers/{me}", staff(employee))
    assert view.status == 200
    assert view.body["profile"]["customer_id"] == me
    assert {a["account_id"] for a in view.body["accounts"]} == set(_accounts(bank, me))
    assert all("cvn" not in c for c in view.body["cards"])
    mobile = view.body["profile"]["mobile"]
    found = await bank.request("GET", f"/api/staff/customers?mobile={mobile}", staff(employee))
    assert found.status == 200
    assert [c["customer_id"] for c in found.body["customers"]] == [me]
    for bad in ("?mobile=12345", "", f"?mobile={mobile}&mobile={mobile}", "?mobile=12012345678"):
        reply = await bank.request("GET", f"/api/staff/customers{bad}", staff(employee))
        assert (reply.status, reply.error) == (400, "invalid_request"), bad
    missing = await bank.request(
        "GET", "/api/staff/customers/cst_0000000000000000", staff(employee)
    )
    assert missing.status == 404


async def test_transactions_pages_cover_the_window_exactly_once(bank: Bank) -> None:
    me, _ = _two_customers(bank)
    account = _accounts(bank, me)[0]
    path = f"/api/accounts/{account}/transactions?from=2025-04-01&to=2025-06-30&limit=7"
    seen: list[str] = []
    cursor = None
    while True:
        reply = await bank.request(
            "GET", path + (f"&cursor={cursor}" if cursor else ""), customer(me)
        )
        assert reply.status == 200
        page = reply.body["transactions"]
        assert len(page) <= 7
        seen.extend(t["transaction_id"] for t in page)
        cursor = reply.body["next_cursor"]
        if cursor is None:
            break
    expected = bank.rows(
        "SELECT txn_id FROM transactions WHERE account_id = ? AND booked_at >= ? AND booked_at < ?"
        " ORDER BY booked_at DESC, txn_id DESC",
        account,
        1743436800,  # 2025-04-01T00:00:00+08:00
        1751299200,  # 2025-07-01T00:00:00+08:00
    )
    assert seen == [r[0] for r in expected] and len(seen) > 7
    one = await bank.request(
        "GET", f"/api/accounts/{account}/transactions?limit=1&to=2025-06-30", customer(me)
    )
    first = one.body["transactions"][0]
    assert set(first) >= {"booked_at", "amount", "balance_after", "kind", "description"}
    assert first["booked_at"].endswith("+08:00")


async def test_partner_sees_only_consented_accounts(bank: Bank) -> None:
    owners = [c for c in bank.customers_with() if len(_accounts(bank, c)) >= 2]
    holder = owners[0]
    consented, hidden = _accounts(bank, holder)[:2]
    other = next(c for c in bank.customers_with() if c != holder)
    headers = partner("fintech-1", holder, consented)
    listing = await bank.request("GET", "/open/v1/accounts", headers)
    assert listing.status == 200
    assert [a["resourceId"] for a in listing.body["accounts"]] == [consented]
    assert listing.body["accounts"][0]["cashAccountType"] in ("CACC", "SVGS")
    balances = await bank.request("GET", f"/open/v1/accounts/{consented}/balances", headers)
    assert balances.status == 200
    assert {b["balanceType"] for b in balances.body["balances"]} == {
        "interimAvailable",
        "interimBooked",
    }
    query = "dateFrom=2025-03-01&dateTo=2025-06-30&limit=3"
    txns = await bank.request("GET", f"/open/v1/accounts/{consented}/transactions?{query}", headers)
    assert txns.status == 200 and len(txns.body["transactions"]["booked"]) == 3
    follow = await bank.request("GET", txns.body["transactions"]["_links"]["next"]["href"], headers)
    assert follow.status == 200 and len(follow.body["transactions"]["booked"]) == 3
    first_ids = {t["transactionId"] for t in txns.body["transactions"]["booked"]}
    assert first_ids.isdisjoint(t["transactionId"] for t in follow.body["transactions"]["booked"])
    for path in (
        f"/open/v1/accounts/{hidden}/balances",
        f"/open/v1/accounts/{hidden}/transactions",
    ):
        assert (await bank.request("GET", path, headers)).status == 404
    # A consent naming another customer's account as if it were this customer's.
    stolen = _accounts(bank, other)[0]
    forged = partner("fintech-1", holder, stolen)
    assert (await bank.request("GET", f"/open/v1/accounts/{stolen}/balances", forged)).status == 404
    no_consent = {k: v for k, v in headers.items() if k != "x-ztgate-consent"}
    reply = await bank.request("GET", "/open/v1/accounts", no_consent)
    assert (reply.status, reply.error) == (403, "consent_required")
    malformed = {**headers, "x-ztgate-consent": f"customer={holder}; accounts={consented}"}
    assert (await bank.request("GET", "/open/v1/accounts", malformed)).status == 403
    as_customer = await bank.request("GET", "/open/v1/accounts", customer(holder))
    assert as_customer.status == 403
