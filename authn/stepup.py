"""Step-up authentication challenges (RFC 9470).

A protected resource states what it needs — an authentication context class
at least as strong as ``acr`` and/or an authentication no older than
``max_age`` seconds. If the token falls short, the resource answers ``401``
with ``WWW-Authenticate: Bearer error="insufficient_user_authentication",
acr_values="…", max_age=…`` (RFC 9470 §3); the client performs the extra
factor while presenting its current token and receives a token that satisfies
the requirement (the service merges the factors, see `authn.acr`).
"""

from __future__ import annotations

from dataclasses import dataclass

from authn import acr as acr_levels
from authn.errors import AuthnError


@dataclass(frozen=True)
class StepUpRequirement:
    acr: str | None = None
    max_age: int | None = None

    def www_authenticate(self, description: str, scheme: str = "Bearer") -> str:
        parts = [
            'error="insufficient_user_authentication"',
            f'error_description="{description}"',
        ]
        if self.acr:
            parts.append(f'acr_values="{self.acr}"')
        if self.max_age is not None:
            parts.append(f"max_age={self.max_age}")
        return f"{scheme} " + ", ".join(parts)


def check(
    requirement: StepUpRequirement,
    *,
    token_acr: str | None,
    auth_time: float | None,
    now: float,
    scheme: str = "Bearer",
) -> None:
    """Raise the RFC 9470 §3 challenge unless the token meets `requirement`."""
    problem = None
    if requirement.acr and not acr_levels.satisfies(token_acr, requirement.acr):
        problem = "a stronger authentication is required"
    elif requirement.max_age is not None and (
        auth_time is None or now - auth_time > requirement.max_age
    ):
        problem = "a more recent authentication is required"
    if problem is None:
        return
    raise AuthnError(
        "insufficient_user_authentication",
        problem,
        401,
        {"WWW-Authenticate": requirement.www_authenticate(problem, scheme)},
    )
