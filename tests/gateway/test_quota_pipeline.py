"""Quotas in the agent's pipeline: after the policy allows, the decision's
``rate_limit_tier`` meters the caller per API product; over quota is 429 with
Retry-After and the RateLimit fields, and allowed answers carry the fields too."""

from __future__ import annotations

from pathlib import Path

from gateway.quotas import QuotaTier
from tests.gateway.harness import allowed, check_request, denied, signals, start_edge


def _response_headers(response: object) -> dict[str, str]:
    ok = response.ok_response  # type: ignore[attr-defined]
    return {h.header.key: h.header.value for h in ok.response_headers_to_add}


async def test_over_quota_is_429_with_retry_after_and_ratelimit_fields(tmp_path: Path) -> None:
    tiers = (QuotaTier("customer", 3, 60.0), QuotaTier("default", 100, 60.0))
    edge = await start_edge(tmp_path, quota_tiers=tiers)
    try:
        subject = await edge.user()
        token = await edge.token(subject)
        headers = {"authorization": f"Bearer {token}", "x-device-signals": signals("d", subject)}
        seen = []
        for _ in range(3):
            response = await edge.check(check_request(headers=headers))
            allowed(response)
            seen.append(_response_headers(response))
        assert seen[0]["ratelimit-policy"] == '"customer";q=3;w=60'
        assert [h["ratelimit"].split(";")[1] for h in seen] == ["r=2", "r=1", "r=0"]
        refused = denied(await edge.check(check_request(headers=headers)))
        assert (refused.status, refused.body["error"]) == (429, "rate_limited")
        assert refused.body["reason"] == ["quota:exceeded"]
        assert 19 <= int(refused.headers["retry-after"]) <= 20
        assert refused.headers["ratelimit"].startswith('"customer";r=0;')
        # Another customer has a bucket of their own.
        other = await edge.user("bob")
        other_token = await edge.token(other)
        other_headers = {
            "authorization": f"Bearer {other_token}",
            "x-device-signals": signals("d2", other),
        }
        allowed(await edge.check(check_request(headers=other_headers)))
    finally:
        await edge.close()


async def test_a_tier_nobody_configured_is_refused(tmp_path: Path) -> None:
    edge = await start_edge(tmp_path, quota_tiers=(QuotaTier("default", 100),))
    try:
        subject = await edge.user()
        token = await edge.token(subject)
        headers = {"authorization": f"Bearer {token}", "x-device-signals": signals("d", subject)}
        refused = denied(await edge.check(check_request(headers=headers)))
        assert (refused.status, refused.body["reason"]) == (
            403,
            ["gateway:unknown_rate_limit_tier"],
        )
    finally:
        await edge.close()
