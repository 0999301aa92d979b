"""Signing the edge's responses to signed requests (issue 7; RFC 9421 §2.4).

A request that passed `gateway.signatures` on a ``signed`` route is answered
with a response the edge signs, bound to that request: the signature covers
``@status``, ``content-digest`` of the body as the partner receives it (RFC
9530, computed here), ``content-type``, ``"@method";req``,
``"@target-uri";req`` and the request's own signature,
``"signature";req;key="<label>"`` (§2.2.9, §2.4). A partner can then prove
which request a response answered, and no response can be passed off as the
answer to another request. Parameters: ``created``, ``keyid`` (the key's RFC
7638 thumbprint) and ``alg`` (``sm2-sm3`` or ``ecdsa-p256-sha256``, from the
key, `authn.rfc9421.algorithms`).

How the pieces meet: the ext_authz allow puts what the signature needs
(`SignedRequest`: label, the request's ``Signature`` field, method, target URI)
in its dynamic metadata (`gateway.responses`); Envoy forwards that namespace to
ext_proc with the response (signed routes are masked routes,
`gateway.config_checks`), and `StreamSigning` signs the final, masked body in
the response-body phase — or in the headers phase when no body follows.

Fail closed: a signed request's response that cannot be signed (no signing key
configured on the agent, metadata that does not parse, a signing error) is
replaced by a 502 with the masking block's body and a ``signature:<why>``
reason in the agent's log, never sent unsigned. A response masking blocks is
Envoy's own 502 and not signed. The public key is published as a JWKS
(`ResponseSigner.jwks`; ``ztgate up`` serves it at
``/portal/response-jwks.json`` on the authentication service,
docs/http-signatures.md).
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from envoy.config.core.v3.base_pb2 import HeaderValueOption
from envoy.service.ext_proc.v3.external_processor_pb2 import (
    CommonResponse,
    ProcessingResponse,
)

from authn.rfc8941 import StructuredFieldError
from authn.rfc9421 import (
    HTTPRequest,
    HTTPResponse,
    SignatureError,
    VerifiedSignature,
    sign_response,
)
from crypto import keys
from crypto.errors import CryptoError
from gateway.masking.service import blocked

__all__ = [
    "BOUND_REQUEST_COMPONENTS",
    "METADATA_KEYS",
    "ResponseSigner",
    "SignedRequest",
    "StreamSigning",
    "signed_request_from_metadata",
]

log = logging.getLogger("ztgate.gateway.response_signing")

RESPONSE_LABEL: Final = "sig1"
BOUND_REQUEST_COMPONENTS: Final = ("@method", "@target-uri")
"""Request components the response covers with ``;req`` besides the request's signature."""
METADATA_KEYS: Final = ("rfc9421_label", "rfc9421_signature", "rfc9421_method", "rfc9421_target")
"""Keys of the ext_authz dynamic metadata that carry a `SignedRequest`."""
_LABEL: Final = re.compile(r"[a-z*][a-z0-9_.*-]{0,63}")  # an RFC 8941 key
_METHOD: Final = re.compile(r"[A-Z]{1,16}")
MAX_SIGNATURE: Final = 8192
MAX_TARGET: Final = 8192
BLOCKED_STATUS: Final = 502
SIGNING_ALGORITHMS: Final[tuple[keys.Algorithm, ...]] = ("sm2", "ec-p256")


@dataclass(frozen=True)
class SignedRequest:
    """What the response signature needs of the request it answers."""

    label: str
    """The label of the request's (verified, only) signature."""
    signature: str
    """The request's ``Signature`` field as verified."""
    method: str
    target_uri: str

    def metadata(self) -> tuple[tuple[str, str], ...]:
        """The dynamic-metadata entries (`METADATA_KEYS`) ext_authz hands to ext_proc."""
        return tuple(
            zip(
                METADATA_KEYS,
                (self.label, self.signature, self.method, self.target_uri),
                strict=True,
            )
        )

    def as_request(self) -> HTTPRequest:
        """The request as the response's ``;req`` components see it (§2.4)."""
        return HTTPRequest(self.method, self.target_uri, (("Signature", self.signature),))


class MalformedSignedRequest(ValueError):
    """Signed-request metadata present but unusable: the response must not go unsigned."""


def signed_request_from_metadata(fields: Any) -> SignedRequest | None:
    """The `SignedRequest` in ext_authz's metadata `fields` (a protobuf Struct's fields);
    None when the request was not signed. Raises `MalformedSignedRequest` when some of
    the keys are there but do not parse."""
    present = [key for key in METADATA_KEYS if key in fields]
    if not present:
        return None
    if len(present) != len(METADATA_KEYS):
        raise MalformedSignedRequest("incomplete signed-request metadata")
    label, signature, method, target = (fields[key].string_value for key in METADATA_KEYS)
    if not _LABEL.fullmatch(label) or not _METHOD.fullmatch(method):
        raise MalformedSignedRequest("bad label or method")
    if not 0 < len(target) <= MAX_TARGET or not target.isascii() or not target.isprintable():
        raise MalformedSignedRequest("bad target URI")
    if not 0 < len(signature) <= MAX_SIGNATURE or not signature.isascii():
        raise MalformedSignedRequest("bad signature field")
    return SignedRequest(label, signature, method, target)


@dataclass(frozen=True)
class ResponseSigner:
    """The edge's response-signing key (SM2 by default, or P-256) and its key id."""

    key: keys.PrivateKey
    keyid: str

    @staticmethod
    def from_key(key: keys.PrivateKey) -> ResponseSigner:
        if key.algorithm not in SIGNING_ALGORITHMS:
            raise ValueError("the response-signing key must be SM2 or P-256")
        return ResponseSigner(key, key.public_key().thumbprint())

    @staticmethod
    def from_pem(data: bytes) -> ResponseSigner:
        """From a PKCS#8 (or SEC1) PEM/DER private key; `ValueError` if unusable."""
        try:
            key = keys.load_private(data)
        except (CryptoError, ValueError):
            raise ValueError("not a readable private key (PEM PKCS#8 or SEC1)") from None
        return ResponseSigner.from_key(key)

    def jwks(self) -> dict[str, Any]:
        """The public JWKS partners verify responses with (RFC 7517)."""
        public = self.key.public_key()
        jwk = {
            **public.to_jwk(),
            "kid": self.keyid,
            "use": "sig",
            "alg": keys.JWS_ALG[public.algorithm],
        }
        return {"keys": [jwk]}

    def sign(
        self, request: SignedRequest, status: int, headers: tuple[tuple[str, str], ...],
        body: bytes, now: int,
    ) -> tuple[tuple[str, str], ...]:  # fmt: skip
        """The ``Content-Digest``, ``Signature-Input`` and ``Signature`` to set on the
        response; `SignatureError` when it cannot be signed."""
        # sign_response reads only the label of the request's signature, which the
        # agent verified before the request went upstream.
        verified = VerifiedSignature(
            label=request.label, keyid="", algorithm="", key_thumbprint="", created=0,
            expires=None, nonce=None, tag=None, components=(),
        )  # fmt: skip
        signed = sign_response(
            HTTPResponse(status, headers, body),
            request=request.as_request(),
            request_signature=verified,
            key=self.key,
            keyid=self.keyid,
            created=now,
            label=RESPONSE_LABEL,
            bind=BOUND_REQUEST_COMPONENTS,
        )
        return signed.as_headers()


def _set_headers(common: CommonResponse, fields: tuple[tuple[str, str], ...]) -> None:
    mutation = common.header_mutation
    for name, value in fields:
        option = mutation.set_headers.add()
        option.header.key = name.lower()
        option.header.raw_value = value.encode("ascii")
        option.append_action = HeaderValueOption.OVERWRITE_IF_EXISTS_OR_ADD


def _blocked(reason: str) -> ProcessingResponse:
    return blocked("signature", reason)


def _response_headers(message: Any) -> tuple[int, tuple[tuple[str, str], ...]]:
    status = 0
    out: list[tuple[str, str]] = []
    for h in message.headers.headers:
        value = h.raw_value.decode("latin-1") if h.raw_value else h.value
        if h.key == ":status":
            status = int(value) if value.isdigit() else 0
        elif not h.key.startswith(":"):
            out.append((h.key, value))
    return status, tuple(out)


class StreamSigning:
    """Signs one ext_proc stream's response, after masking has answered each phase."""

    def __init__(
        self,
        signer: ResponseSigner | None,
        request: SignedRequest | None,
        *,
        unusable: str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._signer = signer
        self._request = request
        self._unusable = unusable
        self._clock = clock
        self._status = 0
        self._headers: tuple[tuple[str, str], ...] = ()

    def headers(self, message: Any, answer: ProcessingResponse) -> ProcessingResponse:
        """The response-headers phase: remember status and fields; sign now if no body
        follows. `answer` is masking's (returned unchanged when it blocks)."""
        if answer.HasField("immediate_response"):
            return answer
        self._status, self._headers = _response_headers(message)
        if not message.end_of_stream:
            return answer
        return self._signed(answer, "response_headers", b"")

    def body(self, message: Any, answer: ProcessingResponse) -> ProcessingResponse:
        """The (buffered) response-body phase: sign the body masking decided on."""
        if answer.HasField("immediate_response"):
            return answer
        if not message.end_of_stream:
            return self._block("body_not_buffered")
        common = answer.response_body.response
        body = common.body_mutation.body if common.HasField("body_mutation") else message.body
        return self._signed(answer, "response_body", body)

    def _signed(self, answer: ProcessingResponse, phase: str, body: bytes) -> ProcessingResponse:
        if self._unusable is not None:
            return self._block(self._unusable)
        if self._signer is None or self._request is None:
            return self._block("unavailable")
        try:
            fields = self._signer.sign(
                self._request, self._status, self._headers, body, int(self._clock())
            )
        except (SignatureError, StructuredFieldError, CryptoError, ValueError):
            return self._block("signing_failed")
        out = ProcessingResponse()
        out.CopyFrom(answer)  # answers may be shared constants: never mutate them
        if phase == "response_headers":
            common = out.response_headers.response
        else:
            common = out.response_body.response
        _set_headers(common, fields)
        return out

    def _block(self, reason: str) -> ProcessingResponse:
        log.warning(
            "response to a signed request blocked: it cannot be signed",
            extra={"event": "gateway.response_signature_blocked", "reason": reason},
        )
        return _blocked(reason)
