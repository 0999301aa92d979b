"""Creating HTTP message signatures (RFC 9421 §3.1, §4), requests and responses.

`sign_response` answers a request that `verify_request` accepted with a
signature over ``@status``, ``content-digest``, ``content-type`` and the
request's own signature through ``"signature";req;key="<label>"`` (§2.4):
the partner can then prove which request a response answered, and nobody
can pass a response to one payment off as the answer to another.

`sign_request` is what a partner's client does; ztgate uses it in tests and
in the examples of docs/http-signatures.md. Parameters are emitted in the
order ``created``, ``expires``, ``keyid``, ``alg``, ``nonce``, ``tag``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from authn import rfc9530
from authn.rfc8941 import InnerList, Item, Params, StructuredFieldError, serialize_dictionary
from authn.rfc9421 import algorithms
from authn.rfc9421.components import (
    Component,
    HTTPRequest,
    HTTPResponse,
    Message,
    component,
    field_value,
    signature_base,
)
from authn.rfc9421.errors import fail
from authn.rfc9421.signatures import VerifiedSignature, default_request_components
from crypto import keys

__all__ = ["ResponseSignature", "SignatureHeaders", "sign_request", "sign_response"]


@dataclass(frozen=True)
class SignatureHeaders:
    """The two field values a signer adds (§4.1, §4.2)."""

    signature_input: str
    signature: str

    def as_headers(self) -> tuple[tuple[str, str], ...]:
        return (("Signature-Input", self.signature_input), ("Signature", self.signature))


@dataclass(frozen=True)
class ResponseSignature:
    """Fields to add to a signed response: Content-Digest, Signature-Input, Signature."""

    content_digest: str
    signature_input: str
    signature: str

    def as_headers(self) -> tuple[tuple[str, str], ...]:
        return (
            ("Content-Digest", self.content_digest),
            ("Signature-Input", self.signature_input),
            ("Signature", self.signature),
        )


def _sign(
    msg: Message,
    comps: Sequence[Component],
    params: Params,
    key: keys.PrivateKey,
    label: str,
    request: HTTPRequest | None,
) -> tuple[str, str]:
    inner = InnerList(tuple(Item(c.name, c.params) for c in comps), params)
    base = signature_base(msg, comps, inner, request=request)
    signature = algorithms.sign(key, base)
    try:
        return (
            serialize_dictionary(((label, inner),)),
            serialize_dictionary(((label, Item(signature)),)),
        )
    except StructuredFieldError:
        fail("malformed_signature", "label or parameters cannot be serialised")


def _params(
    key: keys.PrivateKey,
    *,
    created: int,
    keyid: str,
    expires: int | None,
    nonce: str | None,
    tag: str | None,
    include_alg: bool,
) -> Params:
    out: list[tuple[str, int | str]] = [("created", int(created))]
    if expires is not None:
        out.append(("expires", int(expires)))
    out.append(("keyid", keyid))
    if include_alg:
        out.append(("alg", algorithms.ALGORITHM_FOR_KEY[key.algorithm]))
    if nonce is not None:
        out.append(("nonce", nonce))
    if tag is not None:
        out.append(("tag", tag))
    return tuple(out)


def sign_request(
    request: HTTPRequest,
    *,
    key: keys.PrivateKey,
    keyid: str,
    created: int,
    nonce: str | None,
    components: Sequence[str] | None = None,
    label: str = "sig1",
    expires: int | None = None,
    tag: str | None = None,
    include_alg: bool = True,
) -> SignatureHeaders:
    """Sign `request` as a partner must (for clients, tests and the docs' examples).

    Covers `components` (default: `default_request_components`); a covered
    ``content-digest`` must already be among the request's headers (use
    `authn.rfc9530.content_digest`).
    """
    comps = [component(c) for c in (components or default_request_components(request))]
    params = _params(
        key, created=created, keyid=keyid, expires=expires, nonce=nonce, tag=tag,
        include_alg=include_alg,
    )  # fmt: skip
    signature_input, signature = _sign(request, comps, params, key, label, None)
    return SignatureHeaders(signature_input, signature)


def sign_response(
    response: HTTPResponse,
    *,
    request: HTTPRequest,
    request_signature: VerifiedSignature,
    key: keys.PrivateKey,
    keyid: str,
    created: int,
    label: str = "sig1",
    nonce: str | None = None,
    digest_algorithms: Sequence[str] = ("sha-256",),
    bind: Sequence[str] = (),
) -> ResponseSignature:
    """Sign the response to a verified request, bound to it (§2.4).

    Covers ``@status``, ``content-digest`` (computed here over
    ``response.body``; any Content-Digest already in ``response.headers``
    is replaced), ``content-type`` when present, each of `bind` taken from
    the request (``"@method";req``, ``"@target-uri";req``, …), and
    ``"signature";req;key="<request label>"``. Add the returned fields to
    the response exactly as given.
    """
    digest = rfc9530.content_digest(response.body, algorithms=digest_algorithms)
    headers = tuple((k, v) for k, v in response.headers if k.lower() != "content-digest")
    signed = HTTPResponse(response.status, (*headers, ("Content-Digest", digest)), response.body)
    comps = [Component("@status"), Component("content-digest")]
    if field_value(headers, "content-type") is not None:
        comps.append(Component("content-type"))
    for name in bind:
        bound = component(name)
        comps.append(Component(bound.name, (*bound.params, ("req", True))))
    comps.append(Component("signature", (("req", True), ("key", request_signature.label))))
    params = _params(
        key, created=created, keyid=keyid, expires=None, nonce=nonce, tag=None, include_alg=True
    )
    signature_input, signature = _sign(signed, comps, params, key, label, request)
    return ResponseSignature(digest, signature_input, signature)
