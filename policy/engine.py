"""One interface for every way ztgate evaluates Rego.

`PolicyEngine.decide` takes a policy input document (see
policy/schema/input-v1.json and `policy.contract`) and returns a `Decision`.
Implementations: the embedded engine (`policy.embedded`), a remote OPA over
its REST API (`policy.remote_opa`). Every implementation fails closed: an
evaluation error, a timeout or a malformed result is a deny with a reason,
never an exception to the caller and never an allow.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from policy.decision import Decision

DEFAULT_ENTRYPOINT = "ztgate/main/decision"
"""OPA data path of the decision rule (``data.ztgate.main.decision``)."""


class PolicyEngine(Protocol):
    @property
    def revision(self) -> str:
        """Revision of the bundle currently serving ('' when unknown)."""
        ...

    async def decide(self, input_doc: Mapping[str, Any]) -> Decision:
        """Evaluate the decision rule for `input_doc`; never raises for bad input."""
        ...

    async def close(self) -> None: ...
