"""HTTP Message Signatures (RFC 9421) for signed partner requests and responses.

Issue 7 ("Request signatures"): payment initiation and other writes are
signed by the partner over ``@method``, ``@target-uri``, ``content-digest``
and ``authorization`` with ``created`` and ``nonce``, with an SM2 or P-256
key from the client's JWKS; replays are refused; responses to signed
requests are signed too. Modules, one concern each:

- `authn.rfc9421.components` — messages, component values, signature base (§2);
- `authn.rfc9421.algorithms` — ``ecdsa-p256-sha256``, ``sm2-sm3``, ``ed25519`` (§3.3);
- `authn.rfc9421.signatures` — `verify_request`, `verify_response` (§3.2, §4);
- `authn.rfc9421.signing` — `sign_response`, `sign_request` (§3.1, §2.4);
- `authn.rfc9421.replay` — the nonce store (§7.2.2);
- `authn.rfc9421.errors` — `SignatureError`, the only exception raised.

Structured fields come from `authn.rfc8941`, digests from `authn.rfc9530`.
Partner documentation: docs/http-signatures.md.
"""

from authn.rfc9421.algorithms import ALGORITHM_FOR_KEY, DEFAULT_ALGORITHMS
from authn.rfc9421.components import Component, HTTPRequest, HTTPResponse, signature_base
from authn.rfc9421.errors import ErrorCode, SignatureError
from authn.rfc9421.replay import AuthnStoreReplay, ReplayStore
from authn.rfc9421.signatures import (
    VerifiedSignature,
    default_request_components,
    verify_request,
    verify_response,
)
from authn.rfc9421.signing import ResponseSignature, SignatureHeaders, sign_request, sign_response

__all__ = [
    "ALGORITHM_FOR_KEY",
    "DEFAULT_ALGORITHMS",
    "AuthnStoreReplay",
    "Component",
    "ErrorCode",
    "HTTPRequest",
    "HTTPResponse",
    "ReplayStore",
    "ResponseSignature",
    "SignatureError",
    "SignatureHeaders",
    "VerifiedSignature",
    "default_request_components",
    "sign_request",
    "sign_response",
    "signature_base",
    "verify_request",
    "verify_response",
]
