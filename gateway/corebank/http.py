"""Request plumbing of the core-banking app: who is calling, what they may see, and
strict parsing of paths, queries and bodies.

Errors travel as `authn.errors.AuthnError` and are rendered by
`authn.service.http.errors_middleware`: the project's one JSON error shape,
``{"error", "error_description"}`` with a 4xx status (unknown routes, wrong
methods, oversized and malformed bodies included), ``500 server_error`` with no
detail for anything unexpected — never a stack trace.

Ownership is enforced here as well as at the edge (defence in depth): an
account, card, transfer or profile the caller may not see is answered exactly
like one that does not exist (404), so ids cannot be probed.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any, Final

from aiohttp import web

from authn.errors import AuthnError, invalid_request
from gateway.corebank.callers import Authenticator, Caller, CallerKind, valid_identifier
from gateway.corebank.model import CST, Account, StaffUser
from gateway.corebank.store import BankStore

STORE: web.AppKey[BankStore] = web.AppKey("corebank_store", BankStore)
AUTHENTICATE: web.AppKey[Authenticator] = web.AppKey("corebank_authenticate")

DEFAULT_PAGE: Final = 50
MAX_PAGE: Final = 200
DEFAULT_WINDOW_DAYS: Final = 90
_CURSOR: Final = re.compile(r"([0-9]{1,12}):(txn_[0-9a-f]{16})")
_ACCOUNT_NUMBER: Final = re.compile(r"[0-9]{8,32}")
_DATE: Final = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_LIMIT: Final = re.compile(r"[0-9]{1,4}")
IDEMPOTENCY_KEY: Final = re.compile(r"[A-Za-z0-9._:-]{1,128}")


def store(request: web.Request) -> BankStore:
    return request.app[STORE]


def dumps(body: Any) -> str:
    """UTF-8 JSON as core systems send it: Chinese text as text, not ``\\uXXXX``."""
    return json.dumps(body, ensure_ascii=False)


def json_ok(body: Any, status: int = 200, *, cache: str = "no-store") -> web.Response:
    response = web.json_response(body, status=status, dumps=dumps)
    response.headers["Cache-Control"] = cache
    return response


def not_found(what: str) -> AuthnError:
    return AuthnError(f"{what}_not_found", f"no such {what}", 404)


async def require_caller(request: web.Request, *kinds: CallerKind) -> Caller:
    """The authenticated caller, of one of `kinds`; 401 if unknown, 403 if the wrong kind."""
    caller = await request.app[AUTHENTICATE](request)
    if caller is None:
        raise AuthnError("unauthenticated", "no verified identity for this request", 401)
    if caller.kind not in kinds:
        raise AuthnError("forbidden", f"this API is not available to {caller.kind} callers", 403)
    if caller.kind == "staff":
        member = await store(request).staff_member(caller.subject)
        if member is None or not member.active:
            raise AuthnError("forbidden", "not an active staff member", 403)
    return caller


async def require_staff(request: web.Request, *roles: str) -> StaffUser:
    """An active staff member whose role in the bank's own staff records is one of
    `roles` (the edge checked the caller's token roles; this is the bank's word)."""
    caller = await require_caller(request, "staff")
    member = await store(request).staff_member(caller.subject)
    if member is None or member.role not in roles:
        raise AuthnError("forbidden", f"this task is for staff in role {' or '.join(roles)}", 403)
    return member


def path_id(request: web.Request, name: str) -> str:
    value = request.match_info[name]
    if not valid_identifier(value):
        raise not_found(name.removesuffix("_id"))
    return value


async def owned_account(request: web.Request, caller: Caller, account_id: str) -> Account:
    """The account if `caller` may see it: a customer their own, a partner those the
    consent lists for the consenting customer."""
    account = await store(request).account(account_id)
    if account is None or account.customer_id != owner_of(caller):
        raise not_found("account")
    if caller.kind == "partner" and (
        caller.consent is None or account_id not in caller.consent.account_ids
    ):
        raise not_found("account")
    return account


def owner_of(caller: Caller) -> str:
    """The customer whose data this caller acts on."""
    if caller.kind == "customer":
        return caller.subject
    if caller.kind == "partner" and caller.consent is not None:
        return caller.consent.customer_id
    raise AuthnError("consent_required", "no valid consent accompanies this request", 403)


def account_number(value: object, field: str) -> str:
    if not isinstance(value, str) or _ACCOUNT_NUMBER.fullmatch(value) is None:
        raise invalid_request(f"{field} must be 8-32 digits")
    return value


def idempotency_key(request: web.Request) -> str:
    key = request.headers.get("Idempotency-Key")
    if key is None:
        raise AuthnError("idempotency_key_required", "an Idempotency-Key header is required", 400)
    if IDEMPOTENCY_KEY.fullmatch(key) is None:
        raise invalid_request("Idempotency-Key must be 1-128 characters of [A-Za-z0-9._:-]")
    return key


@dataclass(frozen=True)
class Window:
    since: int
    until: int
    limit: int
    before: tuple[int, str] | None


def _day(text: str, name: str) -> date:
    # fromisoformat alone would also take week dates and basic formats (2025W011).
    if _DATE.fullmatch(text) is not None:
        try:
            return date.fromisoformat(text)
        except ValueError:
            pass
    raise invalid_request(f"{name} must be a date YYYY-MM-DD")


def _start_of(day: date) -> int:
    return int(datetime.combine(day, time(), CST).timestamp())


def transaction_window(
    request: web.Request, today: date, *, start: str = "from", end: str = "to"
) -> Window:
    """The `start`/`end` dates (inclusive, CST; default the last 90 days), ``limit``
    (1-200, default 50) and the opaque ``cursor`` of the previous page."""
    query = request.query
    for name in query:
        if len(query.getall(name)) != 1:
            raise invalid_request(f"parameter {name} must appear once")
    last = _day(query[end], end) if end in query else today
    first = _day(query[start], start) if start in query else last - timedelta(DEFAULT_WINDOW_DAYS)
    if first > last:
        raise invalid_request(f"{start} must not be after {end}")
    raw_limit = query.get("limit", str(DEFAULT_PAGE))
    if _LIMIT.fullmatch(raw_limit) is None or not 1 <= int(raw_limit) <= MAX_PAGE:
        raise invalid_request(f"limit must be an integer from 1 to {MAX_PAGE}")
    before = decode_cursor(query["cursor"]) if "cursor" in query else None
    return Window(_start_of(first), _start_of(last + timedelta(1)), int(raw_limit), before)


def encode_cursor(position: tuple[int, str]) -> str:
    raw = f"{position[0]}:{position[1]}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(text: str) -> tuple[int, str]:
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode("ascii")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise invalid_request("cursor is not one this API issued") from None
    match = _CURSOR.fullmatch(raw)
    if match is None:
        raise invalid_request("cursor is not one this API issued")
    return int(match[1]), match[2]


def today_cst() -> date:
    return datetime.now(CST).date()


def as_of_now() -> str:
    return datetime.now(CST).replace(microsecond=0).isoformat()
