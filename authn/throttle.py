"""Back-off after failed password (or OTP) attempts, per account and per source address.

Design (numbers are the `ThrottlePolicy` defaults):

* **Per account** (key ``acct:<subject or username>``): the first 5 failures
  within a sliding 4-hour window are free; after that, each attempt must wait
  1 s after the latest failure, doubling per further failure (1, 2, 4, … s)
  and capped at 15 min. Failures older than the window no longer count, so
  the delay decays by itself. There is **no permanent lock**: whatever an
  attacker does, the account is usable again at most 15 min after the
  attacker's latest failure. Even with unlimited source addresses an attacker
  gets about 100 guesses per account per day (86 400 s / 900 s plus the
  ramp), the ceiling NIST SP 800-63B §5.2.2 sets, without the lock-out it
  pairs with.
* **Per source** (key ``ip:<address>``, IPv6 by /64 since one host usually
  owns a whole /64 and could rotate through it): credential stuffing tries
  one or two passwords on many accounts and never trips the account rule, so
  the address gets its own budget across all accounts: 20 failures per
  24 hours, then 1 s doubling up to 1 h, i.e. about 40 guesses a day per
  address. Not cleared by a success (else an attacker interleaves logins to
  an account of their own). IPv4-mapped IPv6 counts as the IPv4 address;
  unparseable sources share one bucket, so garbage cannot dodge the budget.
* While throttled, *every* attempt is refused before the password is even
  checked, including a correct one (otherwise the back-off could be
  bypassed by guessing during it). The error says when to retry
  (``Retry-After``, RFC 9110 §10.2.3; 429, RFC 6585 §4). Refused attempts are
  not failures: the caller records only attempts that were actually checked
  and wrong, so hammering during a back-off costs nothing and re-arms nothing.
* A successful login clears the account counter (`record_success`).

Known residual risk: an attacker who knows a username can keep it in
back-off by spending a guess each time the delay ends (~100 requests a day),
refusing the real user in between. That is the price of any per-account
rule that cannot tell the user from the attacker; the remedy is to exempt
devices that have logged in before (OWASP "device cookies"), which needs a
session-layer token this module does not see.

Parallel requests that all pass `check` before any failure is recorded are
each verified; the burst is bounded by the gateway's per-client concurrency.
"""

from __future__ import annotations

import ipaddress
import math
from dataclasses import dataclass
from typing import Literal

from authn.errors import AuthnError
from authn.store.base import Store
from crypto import sm3

__all__ = [
    "ThrottlePolicy",
    "account_bucket",
    "check",
    "record_failure",
    "record_success",
    "retry_after",
    "source_bucket",
]


@dataclass(frozen=True)
class ThrottlePolicy:
    """Back-off parameters; times in seconds. Each ``*_max_delay`` must fit in its window."""

    account_threshold: int = 5
    account_window: float = 4 * 3600.0
    account_base_delay: float = 1.0
    account_max_delay: float = 15 * 60.0
    source_threshold: int = 20
    source_window: float = 24 * 3600.0
    source_base_delay: float = 1.0
    source_max_delay: float = 3600.0

    def __post_init__(self) -> None:
        for prefix in ("account", "source"):
            threshold = getattr(self, f"{prefix}_threshold")
            window = getattr(self, f"{prefix}_window")
            base = getattr(self, f"{prefix}_base_delay")
            cap = getattr(self, f"{prefix}_max_delay")
            if threshold < 1 or not 0 < base <= cap <= window:
                # cap > window would be silently shortened to the window (the
                # last failure ages out), so refuse the misleading setting.
                raise ValueError(f"need {prefix}_threshold >= 1 and 0 < base <= max <= window")

    def wait(
        self, kind: Literal["account", "source"], count: int, last: float, now: float
    ) -> float:
        """`retry_after` with this policy's numbers for the `kind` counter."""
        return retry_after(
            count,
            last,
            now,
            getattr(self, f"{kind}_threshold"),
            getattr(self, f"{kind}_base_delay"),
            getattr(self, f"{kind}_max_delay"),
        )


_MAX_IDENTIFIER = 200


def account_bucket(account: str) -> str:
    """Store key for an account: ``acct:<subject or username>``.

    Callers pass the subject when the user exists (stable across renames)
    and the username as typed when it does not, so unknown names are
    throttled the same way and the response does not reveal existence.
    Absurdly long identifiers are hashed to keep keys bounded.
    """
    if len(account) > _MAX_IDENTIFIER:
        account = "#" + sm3.digest(account.encode("utf-8", "surrogatepass")).hex()
    return "acct:" + account


def source_bucket(address: str) -> str:
    """Store key for a client address: ``ip:<IPv4>`` or ``ip:<IPv6 /64 network>``."""
    text = address.strip()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    text = text.split("%", 1)[0]  # drop an IPv6 zone id
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        return "ip:invalid"
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return f"ip:{ip.ipv4_mapped}"
        return f"ip:{ipaddress.IPv6Network((ip, 64), strict=False)}"
    return f"ip:{ip}"


def retry_after(
    count: int, last: float, now: float, threshold: int, base: float, cap: float
) -> float:
    """Seconds until the next attempt is allowed (0: now) given `count` recent failures.

    delay = min(cap, base * 2**(count - threshold)) after the latest failure,
    once `count` reaches `threshold`. Clamped to `cap` so a clock skew
    between workers (`now` < `last`) cannot extend it.
    """
    if count < threshold:
        return 0.0
    delay = min(cap, base * 2.0 ** min(count - threshold, 64))
    return max(0.0, min(cap, last + delay - now))


def _too_many(wait: float) -> AuthnError:
    secs = max(1, math.ceil(wait))
    return AuthnError(
        "too_many_attempts",
        f"too many failed attempts; retry after {secs} s",
        429,
        {"Retry-After": str(secs)},
    )


async def check(
    store: Store, *, account_key: str, source: str, now: float, policy: ThrottlePolicy
) -> None:
    """Raise AuthnError("too_many_attempts", 429, Retry-After) if this attempt must wait.

    `account_key` is the subject (or the username if unknown), `source` the
    client address. Call before verifying the credential.
    """
    a_count, a_last = await store.failure_state(
        account_bucket(account_key), now, policy.account_window
    )
    s_count, s_last = await store.failure_state(source_bucket(source), now, policy.source_window)
    wait = max(
        policy.wait("account", a_count, a_last, now), policy.wait("source", s_count, s_last, now)
    )
    if wait > 0:
        raise _too_many(wait)


async def record_failure(
    store: Store, *, account_key: str, source: str, now: float, policy: ThrottlePolicy
) -> None:
    """Count a checked-and-wrong attempt against both the account and the source."""
    await store.record_failure(account_bucket(account_key), now, policy.account_window)
    await store.record_failure(source_bucket(source), now, policy.source_window)


async def record_success(store: Store, *, account_key: str) -> None:
    """Clear the account's counter after a successful login (the source's is kept)."""
    await store.clear_failures(account_bucket(account_key))
