"""Staff tasks beyond lookups: a supervisor unlocks online banking, an auditor reviews
a customer's activity — and who else is refused."""

from __future__ import annotations

from gateway import pii
from gateway.corebank import vocab
from gateway.corebank.synthetic import generate
from tests.corebank.harness import AS_OF, Bank, customer, staff


def _staff_in(bank: Bank, role: str) -> str:
    return str(bank.rows("SELECT staff_id FROM staff WHERE role = ? LIMIT 1", role)[0][0])


def test_every_staff_role_has_someone() -> None:
    roles = {s.role for s in generate(3, 5, AS_OF).staff}
    assert roles == {role for role, _ in vocab.STAFF_ROLES}


async def test_staff_lists_a_customers_accounts(bank: Bank) -> None:
    me = bank.customers_with()[0]
    agent = _staff_in(bank, "customer_service")
    listed = await bank.request("GET", f"/api/staff/customers/{me}/accounts", staff(agent))
    assert listed.status == 200 and listed.body["customer_id"] == me
    stored = bank.rows("SELECT account_id FROM accounts WHERE customer_id = ?", me)
    assert {a["account_id"] for a in listed.body["accounts"]} == {r[0] for r in stored}
    assert all(pii.luhn_valid(a["account_number"]) for a in listed.body["accounts"])
    missing = await bank.request(
        "GET", "/api/staff/customers/cst_0000000000000000/accounts", staff(agent)
    )
    assert (missing.status, missing.error) == (404, "customer_not_found")
    as_customer = await bank.request("GET", f"/api/staff/customers/{me}/accounts", customer(me))
    assert (as_customer.status, as_customer.error) == (403, "forbidden")


async def test_supervisor_unlocks_and_the_unlock_is_recorded(bank: Bank) -> None:
    me = bank.customers_with()[0]
    boss = _staff_in(bank, "supervisor")
    bank.rows("INSERT INTO online_access VALUES (?, 'locked', 5, 0)", me)
    path = f"/api/staff/customers/{me}/unlock"
    done = await bank.request("POST", path, staff(boss), json_body={"reason": "5 failed logins"})
    assert done.status == 200, done.body
    assert done.body["online_banking"] == {
        "status": "active",
        "previous_status": "locked",
        "failed_logins_cleared": 5,
    }
    assert done.body["unlocked_by"]["staff_id"] == boss
    assert done.body["customer"]["customer_id"] == me  # the echoed record the edge masks
    assert bank.rows(
        "SELECT status, failed_logins FROM online_access WHERE customer_id = ?", me
    ) == [("active", 0)]
    recorded = bank.rows("SELECT staff_id, customer_id, action, reason FROM staff_actions")
    assert recorded == [(boss, me, "unlock_online_banking", "5 failed logins")]
    again = await bank.request("POST", path, staff(boss), json_body={"reason": "caller asked"})
    assert again.body["online_banking"]["previous_status"] == "active"
    assert len(bank.rows("SELECT 1 FROM staff_actions")) == 2  # every unlock is on record


async def test_unlock_refuses_everyone_else_and_bad_input(bank: Bank) -> None:
    me = bank.customers_with()[0]
    boss, agent = _staff_in(bank, "supervisor"), _staff_in(bank, "customer_service")
    path = f"/api/staff/customers/{me}/unlock"
    body = {"reason": "locked out"}
    for headers in (staff(agent), staff("E999999"), customer(me)):
        refused = await bank.request("POST", path, headers, json_body=body)
        assert (refused.status, refused.error) == (403, "forbidden"), headers
    anonymous = await bank.request("POST", path, json_body=body)
    assert anonymous.status == 401
    for bad in ({}, {"reason": ""}, {"reason": "x" * 201}, {"reason": 7}, {"reason": "a\nb"}):
        reply = await bank.request("POST", path, staff(boss), json_body=bad)
        assert (reply.status, reply.error) == (400, "invalid_request"), bad
    wrong_type = await bank.request("POST", path, staff(boss), data=b"reason=x")
    assert wrong_type.status == 415
    missing = await bank.request(
        "POST", "/api/staff/customers/cst_0000000000000000/unlock", staff(boss), json_body=body
    )
    assert (missing.status, missing.error) == (404, "customer_not_found")
    assert bank.rows("SELECT count(*) FROM staff_actions") == [(0,)]
    bank.rows("UPDATE staff SET active = 0 WHERE staff_id = ?", boss)
    former = await bank.request("POST", path, staff(boss), json_body=body)
    assert former.status == 403


async def test_auditor_reviews_a_customers_activity(bank: Bank) -> None:
    me, payee = bank.customers_with("balance_fen >= 10000 AND status = 'active'")[:2]
    boss, auditor = _staff_in(bank, "supervisor"), _staff_in(bank, "auditor")
    [(source,)] = bank.rows(
        "SELECT account_id FROM accounts WHERE customer_id = ? AND balance_fen >= 10000"
        " AND status = 'active' LIMIT 1",
        me,
    )
    [(target,)] = bank.rows("SELECT number FROM accounts WHERE customer_id = ? LIMIT 1", payee)
    order = {"from_account_id": source, "to_account_number": target}
    order |= {"amount": "12.34", "currency": "CNY", "memo": "房租"}
    paid = await bank.request(
        "POST", "/api/transfers", {**customer(me), "Idempotency-Key": "k1"}, json_body=order
    )
    assert paid.status == 201, paid.body
    await bank.request(
        "POST", f"/api/staff/customers/{me}/unlock", staff(boss), json_body={"reason": "locked"}
    )
    path = f"/api/audit/customers/{me}/activity"
    review = await bank.request("GET", path, staff(auditor))
    assert review.status == 200, review.body
    who = review.body["customer"]
    assert who["customer_id"] == me and pii.mobile_valid(who["mobile"])
    assert pii.resident_id_valid(who["resident_id"], today=AS_OF)
    assert who["online_banking"] == {"status": "active", "failed_logins": 0}
    stored = bank.rows("SELECT number FROM accounts WHERE customer_id = ?", me)
    assert {a["account_number"] for a in review.body["accounts"]} == {r[0] for r in stored}
    [action] = review.body["staff_actions"]
    assert (action["staff"]["staff_id"], action["reason"]) == (boss, "locked")
    assert [t["transfer_id"] for t in review.body["transfers"]] == [paid.body["transfer_id"]]
    received = await bank.request("GET", f"/api/audit/customers/{payee}/activity", staff(auditor))
    assert received.body["transfers"] == review.body["transfers"]  # the payee's side too
    assert received.body["staff_actions"] == []
    for other in (_staff_in(bank, "customer_service"), boss):
        refused = await bank.request("GET", path, staff(other))
        assert (refused.status, refused.error) == (403, "forbidden")
    as_customer = await bank.request("GET", path, customer(me))
    assert as_customer.status == 403
    missing = await bank.request(
        "GET", "/api/audit/customers/cst_0000000000000000/activity", staff(auditor)
    )
    assert (missing.status, missing.error) == (404, "customer_not_found")
