"""The one exception type of `authn`, carrying a machine-readable code.

`code` is the OAuth/RFC error name where one exists (RFC 6749 §5.2, RFC 6750
§3.1, RFC 9449 §7, RFC 9470 §3) so that the HTTP layer can put it straight into
the ``error`` member and the ``WWW-Authenticate`` header. `description` is for
humans and never contains secrets, tokens or stack traces.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(eq=False)
class AuthnError(Exception):
    code: str
    description: str = ""
    status: int = 400
    headers: dict[str, str] = field(default_factory=dict)
    lapsed: bool = False
    """A genuine credential outside its validity window (expired, not yet valid): what a
    legitimate client produces with a token it failed to refresh in time or under clock
    skew, unlike a forged, tampered, revoked or foreign one. The edge's risk scoring
    counts only the latter as failed authentications."""

    def __post_init__(self) -> None:
        super().__init__(f"{self.code}: {self.description}" if self.description else self.code)


def invalid_request(description: str) -> AuthnError:
    return AuthnError("invalid_request", description, 400)


def invalid_grant(description: str) -> AuthnError:
    return AuthnError("invalid_grant", description, 400)


def invalid_client(description: str) -> AuthnError:
    return AuthnError("invalid_client", description, 401)


def invalid_token(description: str) -> AuthnError:
    return AuthnError(
        "invalid_token",
        description,
        401,
        {"WWW-Authenticate": f'Bearer error="invalid_token", error_description="{description}"'},
    )


def access_denied(description: str) -> AuthnError:
    return AuthnError("access_denied", description, 403)
