"""The one exception type of `authn.rfc9421`, with a machine-readable code.

RFC 9421 registers no error codes, so ``code`` is ztgate's own vocabulary,
stable and meant for the ``error`` member of a problem response. The
description is fixed text chosen here, never an echo of a header value.
"""

from __future__ import annotations

from typing import Final, Literal, NoReturn, get_args

from authn.errors import AuthnError

__all__ = ["ErrorCode", "SignatureError", "fail"]

ErrorCode = Literal[
    "missing_signature",  # no Signature-Input / Signature field
    "malformed_signature",  # a field is not the RFC 8941 shape §4 requires, oversized, dup labels
    "unknown_label",  # the expected label is absent from Signature-Input or Signature
    "ambiguous_signature",  # several signatures and no expected label to choose one
    "missing_component",  # a required component is not covered, or a covered one is absent
    "unsupported_component",  # a derived component or component parameter we do not implement
    "missing_parameter",  # created, keyid or nonce absent (or of the wrong type)
    "expired",  # created older than the window, or expires in the past
    "not_yet_valid",  # created in the future beyond the allowed skew
    "unknown_key",  # keyid does not name exactly one usable signing key in the JWKS
    "alg_not_allowed",  # the key's algorithm is not accepted here
    "alg_mismatch",  # the alg parameter (or the JWK's alg) is not the key's algorithm
    "invalid_tag",  # the tag parameter is not the expected application tag
    "invalid_signature",
    "replayed",  # the nonce was already used with this key
    "malformed_digest",  # from RFC 9530: Content-Digest unparseable
    "unsupported_digest_algorithm",  # Content-Digest carries no accepted algorithm
    "digest_mismatch",  # the body does not match Content-Digest
]
ERROR_CODES: Final = frozenset(get_args(ErrorCode))

_STATUS: Final[dict[str, int]] = {
    "missing_signature": 401,
    "malformed_signature": 400,
    "unsupported_component": 400,
    "malformed_digest": 400,
    "unsupported_digest_algorithm": 400,
}


class SignatureError(AuthnError):
    """A message signature could not be created or verified; ``code`` says why.

    ``status`` is 400 for a request the client built wrongly and 401 for
    one that is well formed but not acceptable as authentication.
    """

    def __init__(self, code: ErrorCode, description: str) -> None:
        super().__init__(code, description, _STATUS.get(code, 401))


def fail(code: ErrorCode, description: str) -> NoReturn:
    raise SignatureError(code, description)
