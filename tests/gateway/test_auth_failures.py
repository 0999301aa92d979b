"""Failed token verifications reach the risk scorer's failure streaks (by client
address), except the lapses a legitimate client produces (an expired token)."""

from __future__ import annotations

import time
from pathlib import Path

from authn.tokens import TokenConfig, TokenIssuer
from gateway.pipeline import Components
from tests.gateway.doubles import SignalsDevice, TableRisk
from tests.gateway.harness import (
    CLIENT_ADDRESS,
    ISSUER,
    PEPPER,
    check_request,
    denied,
    signals,
    start_edge,
)


class Failures:
    def __init__(self) -> None:
        self.seen: list[tuple[str | None, str]] = []

    async def record_auth_failure(self, subject: str | None, client_ip: str, at: float) -> bool:
        assert abs(at - time.time()) < 60
        self.seen.append((subject, client_ip))
        return True


async def test_forged_tokens_count_and_expired_ones_do_not(tmp_path: Path) -> None:
    failures = Failures()
    edge = await start_edge(
        tmp_path, Components(SignalsDevice(), TableRisk(), auth_failures=failures)
    )
    try:
        subject = await edge.user()
        good = await edge.token(subject)
        device = {"x-device-signals": signals("dev-1", subject)}
        forged = good[:-6] + ("AAAAAA" if not good.endswith("AAAAAA") else "BBBBBB")
        for credential in (forged, "not-a-jwt", good.replace(".", "", 1)):
            headers = {"authorization": f"Bearer {credential}", **device}
            result = denied(await edge.check(check_request(headers=headers)))
            assert result.body["reason"] == ["identity:invalid_token"]
        assert failures.seen == [(None, CLIENT_ADDRESS)] * 3
        past = TokenIssuer(
            edge.store,
            edge.token_ring,
            TokenConfig(issuer=ISSUER, audience=edge.config.token_audience),
            refresh_pepper=PEPPER,
            clock=lambda: time.time() - 3600,
        )
        lapsed = await past.issue(
            subject=subject,
            client_id="ztgate-app",
            acr="urn:ztgate:acr:mfa",
            amr=["pwd", "otp"],
            auth_time=int(time.time()) - 3600,
            with_refresh=False,
        )
        headers = {"authorization": f"Bearer {lapsed.access_token}", **device}
        result = denied(await edge.check(check_request(headers=headers)))
        assert result.status == 401 and "expired" in result.headers["www-authenticate"]
        assert len(failures.seen) == 3  # an expired token is a lapse, not an attack
        allowed = await edge.check(
            check_request(headers={"authorization": f"Bearer {good}", **device})
        )
        assert allowed.status.code == 0
        assert len(failures.seen) == 3  # a valid token records nothing
    finally:
        await edge.close()
