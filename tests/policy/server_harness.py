"""A small bundle with every kind of decision, for the policy service and the remote
OPA client's tests (the default bundle is used where equality with the embedded
engine on realistic inputs is the point)."""

from __future__ import annotations

import asyncio
import http.client
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

from policy.bundle import Bundle
from policy.contract import example_input
from policy.server import PolicyServerConfig, PolicySource, RunningPolicyServer, start_policy_server

T = TypeVar("T")

MAIN_REGO = """package ztgate.main

default decision := {
  "allow": false,
  "reasons": ["default_deny"],
  "obligations": {"audit": "full"},
}

decision := {
  "allow": true,
  "reasons": ["public_route"],
  "obligations": {"mask_profile": "none", "audit": "none"},
} if input.route.classification == "public"

decision := {
  "allow": true,
  "reasons": ["customer_account_access"],
  "obligations": {"headers": {"x-ztgate-tier": "gold"}, "rate_limit_tier": "gold"},
} if {
  input.route.classification == "account"
  input.risk.score < data.ztgate.limits.max_risk
}

decision := {
  "allow": true,
  "reasons": ["transfer_needs_step_up"],
  "obligations": {"step_up": {"acr": "urn:ztgate:acr:passkey", "max_age": 300}},
} if input.route.classification == "transfer"

route_ids contains r if some r in data.ztgate.routes
"""

BOOM_REGO = """package ztgate.main

# Route id "boom" makes evaluation fail: two values for one complete rule.
decision := {"allow": true, "reasons": [sprintf("%v", [conflict])]} if {
  input.route.id == "boom"
}

conflict := 1 if input.route.id == "boom"

conflict := 2 if input.route.id == "boom"
"""

TEST_REGO = """package ztgate.main_test

import data.ztgate.main

test_public_allowed if {
  main.decision.allow with input as {"route": {"classification": "public"}}
}

test_default_deny if {
  not main.decision.allow with input as {"route": {"classification": "other"}}
}
"""

DATA_JSON = b'{"limits": {"max_risk": 40}, "routes": ["accounts.balances", "public.rates"]}'


def mini_bundle(revision: str = "mini-1", *, boom: bool = True) -> Bundle:
    """`boom`: include the module whose rules fail to evaluate for route id ``boom``."""
    files = {
        "ztgate/main.rego": MAIN_REGO.encode(),
        "ztgate/main_test.rego": TEST_REGO.encode(),
        "ztgate/data.json": DATA_JSON,
    }
    if boom:
        files["ztgate/boom.rego"] = BOOM_REGO.encode()
    return Bundle.build(files, revision=revision, roots=("ztgate",))


def route_input(classification: str, *, risk: int = 10, route_id: str = "r1") -> dict[str, Any]:
    """A valid input document for the route class `classification`."""
    doc = example_input()
    doc["route"]["classification"] = classification
    doc["route"]["id"] = route_id
    doc["risk"]["score"] = risk
    return doc


class ThreadedServer:
    """The policy service on its own event loop in a background thread, so that
    synchronous clients (``opa-python-client``, http.client under hypothesis) can call it
    from the test thread without blocking the server."""

    def __init__(self, source: PolicySource, **kwargs: Any) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()
        self.source = source
        self.server: RunningPolicyServer = self.run(
            start_policy_server(source, config=PolicyServerConfig(port=0), **kwargs)
        )

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run `coro` on the server's loop and wait for its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=60)

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def port(self) -> int:
        return self.server.port

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, dict[str, str], bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            resp = conn.getresponse()
            return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
        finally:
            conn.close()

    def close(self) -> None:
        self.run(self.server.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)
        self.loop.close()
