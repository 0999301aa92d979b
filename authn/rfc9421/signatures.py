"""Verifying HTTP message signatures (RFC 9421 §3.2, §4).

`verify_request` is ztgate's verifier for signed partner writes (issue 7):
a linear checklist in the order of §3.2, each step failing with one
`SignatureError` code. Expectations are keyword-only and fail closed:

1. ``Signature-Input`` and ``Signature`` are present, bounded in size and
   parse as RFC 8941 Dictionaries (§4.1, §4.2). A label that appears twice
   in one field is refused: RFC 8941 would keep the last, an intermediary
   might keep the first, and a signature must have one meaning.
2. The signature is chosen by ``expected_label``; without one, the message
   must carry exactly one signature (§3.2 step 1 leaves the choice to the
   application; guessing is not an option at a bank's edge).
3. Its Signature-Input member is an inner list of component identifiers
   (Strings) and the Signature member a Byte Sequence.
4. ``created`` and ``keyid`` are required, ``nonce`` too for requests;
   ``tag`` must equal ``expected_tag`` when one is given (§2.3).
5. Freshness (§3.2 step 7, §7.2.2): ``created`` within ``max_age`` (plus
   ``leeway`` of clock skew) and not in the future beyond ``leeway``;
   ``expires``, when present, not passed.
6. Coverage (§3.2 step 5, §7.2.1): every ``expected_components`` entry is
   covered. By default a request must cover ``@method`` and
   ``@target-uri``, plus ``content-digest`` when it has a body or a
   Content-Digest field, plus ``authorization`` when it has one.
7. ``keyid`` names exactly one signing key in the client's JWKS.
8. The algorithm is the key's (§3.2 step 6); it must be allowed, and an
   ``alg`` parameter naming another is refused (algorithm confusion).
9. The signature base (§2.5) is rebuilt and the signature verified.
10. A covered ``content-digest`` must match the body (RFC 9530; §7.2.8
    explains why signing the digest is how a signature covers content).
11. Last, once everything else has passed, the nonce is recorded in the
    replay store: a replay — or a second copy racing the first — fails.
    (Recording after the signature check stops anyone from burning a
    victim's nonces with unsigned junk.)

ECDSA signatures are malleable; replay protection is keyed on the nonce
and the key, never on signature bytes.

Signing (for responses, and for partners' clients and tests) lives in
`authn.rfc9421.signing`.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from authn import rfc9530
from authn.rfc8941 import (
    InnerList,
    Item,
    StructuredFieldError,
    parse_dictionary,
)
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
from authn.rfc9421.errors import SignatureError, fail
from authn.rfc9421.replay import ReplayStore
from crypto import keys
from crypto.errors import CryptoError

__all__ = [
    "MAX_SIGNATURE_FIELD",
    "VerifiedSignature",
    "default_request_components",
    "verify_request",
    "verify_response",
]

MAX_SIGNATURE_FIELD: Final = 8192
"""Bound on each of Signature-Input and Signature, checked before parsing."""
MAX_NONCE: Final = 128
MAX_KEYID: Final = 256
_INT_PARAMS: Final = ("created", "expires")
_STR_PARAMS: Final = ("nonce", "alg", "keyid", "tag")


@dataclass(frozen=True)
class VerifiedSignature:
    """What a verified signature proves; hand ``label`` to `sign_response`."""

    label: str
    keyid: str
    algorithm: str
    key_thumbprint: str
    created: int
    expires: int | None
    nonce: str | None
    tag: str | None
    components: tuple[str, ...]
    """Covered component identifiers, serialised (``"@method"``, ``"content-digest"``, …)."""


def default_request_components(request: HTTPRequest) -> tuple[str, ...]:
    """``@method @target-uri`` + ``content-digest`` with a body + ``authorization`` if sent."""
    out = ["@method", "@target-uri"]
    if request.body or field_value(request.headers, "content-digest") is not None:
        out.append("content-digest")
    if field_value(request.headers, "authorization") is not None:
        out.append("authorization")
    return tuple(out)


# -- parsing the signature fields -------------------------------------------------------


@dataclass(frozen=True)
class _Parsed:
    label: str
    inner: InnerList
    components: tuple[Component, ...]
    params: dict[str, int | str]
    signature: bytes


def _dictionary(msg: Message, name: str) -> dict[str, Any]:
    value = field_value(msg.headers, name)
    assert value is not None
    if len(value) > MAX_SIGNATURE_FIELD:
        fail("malformed_signature", f"{name} field is too long")
    try:
        return dict(parse_dictionary(value, max_length=MAX_SIGNATURE_FIELD, duplicates="error"))
    except StructuredFieldError:
        fail("malformed_signature", f"{name} is not a valid Dictionary (RFC 8941)")


def _parse(msg: Message, expected_label: str | None) -> _Parsed:
    has_input = field_value(msg.headers, "signature-input") is not None
    has_sig = field_value(msg.headers, "signature") is not None
    if not has_input and not has_sig:
        fail("missing_signature", "message is not signed")
    if not has_input or not has_sig:
        fail("malformed_signature", "Signature-Input and Signature must both be present")
    inputs = _dictionary(msg, "signature-input")
    sigs = _dictionary(msg, "signature")
    if expected_label is None:
        if len(inputs) != 1 or len(sigs) != 1:
            fail("ambiguous_signature", "expected exactly one signature")
        label = next(iter(inputs))
    else:
        label = expected_label
    if label not in inputs or label not in sigs:
        fail("unknown_label", "no signature with the expected label")
    inner, sig = inputs[label], sigs[label]
    if not isinstance(inner, InnerList):
        fail("malformed_signature", "Signature-Input member must be an inner list")
    if not isinstance(sig, Item) or not isinstance(sig.value, bytes):
        fail("malformed_signature", "Signature member must be a Byte Sequence")
    comps: list[Component] = []
    for item in inner.items:
        if not isinstance(item.value, str):
            fail("malformed_signature", "component identifiers must be Strings")
        comps.append(Component(item.value, item.params))
    if len({c.identifier for c in comps}) != len(comps):
        fail("malformed_signature", "a component is covered more than once")
    params: dict[str, int | str] = {}
    for key, value in inner.params:
        if key in _INT_PARAMS:
            if type(value) is not int:  # bool is an int subclass: refuse ?1
                fail("malformed_signature", f"{key} must be an Integer")
            params[key] = value
        elif key in _STR_PARAMS:
            if not isinstance(value, str):
                fail("malformed_signature", f"{key} must be a String")
            params[key] = value
        # Unregistered parameters are covered by the signature and otherwise ignored.
    return _Parsed(label, inner, tuple(comps), params, sig.value)


@functools.lru_cache(maxsize=1024)
def _import_jwk(kty: str | None, crv: str | None, x: str | None, y: str | None) -> keys.PublicKey:
    """JWK → key, cached: importing a point (with its on-curve check) costs about as
    much as verifying a signature, and partners sign with the same few keys."""
    jwk = {k: v for k, v in (("kty", kty), ("crv", crv), ("x", x), ("y", y)) if v is not None}
    return keys.PublicKey.from_jwk(jwk)


def _resolve_key(jwks: Mapping[str, Any], keyid: str) -> keys.PublicKey:
    """The one signing key whose ``kid`` is `keyid` (RFC 7517 §4.5)."""
    members = jwks.get("keys") if isinstance(jwks, Mapping) else None
    if not isinstance(members, list):
        fail("unknown_key", "the client has no usable JWKS")
    matches = [k for k in members if isinstance(k, Mapping) and k.get("kid") == keyid]
    if len(matches) != 1:
        fail("unknown_key", "keyid does not name exactly one key of the client")
    jwk = matches[0]
    key_ops = jwk.get("key_ops")
    if jwk.get("use", "sig") != "sig" or (
        key_ops is not None and (not isinstance(key_ops, list) or "verify" not in key_ops)
    ):
        fail("unknown_key", "keyid names a key that is not for signing")
    members_used = tuple(jwk.get(m) for m in ("kty", "crv", "x", "y"))
    if "d" in jwk or not all(m is None or isinstance(m, str) for m in members_used):
        fail("unknown_key", "keyid names an unusable key")
    try:
        public = _import_jwk(*members_used)
    except (CryptoError, ValueError, TypeError):
        fail("unknown_key", "keyid names an unusable key")
    jws_alg = jwk.get("alg")
    if jws_alg is not None and jws_alg != keys.JWS_ALG[public.algorithm]:
        fail("alg_mismatch", "the JWK's alg is not its key type's")
    return public


# -- verification -----------------------------------------------------------------------


async def _verify(
    msg: Message,
    *,
    request: HTTPRequest | None,
    jwks: Mapping[str, Any],
    now: float,
    expected_label: str | None,
    expected_components: Sequence[str],
    expected_tag: str | None,
    allowed_algorithms: Sequence[str],
    max_age: int,
    leeway: int,
    require_nonce: bool,
    replay_store: ReplayStore | None,
    digest_algorithms: Sequence[str],
) -> VerifiedSignature:
    if max_age <= 0 or leeway < 0:
        raise ValueError("max_age must be > 0 and leeway >= 0")
    unknown = set(allowed_algorithms) - set(algorithms.ALGORITHM_FOR_KEY.values())
    if unknown or isinstance(allowed_algorithms, str):
        raise ValueError(f"unknown algorithms {sorted(unknown)}")
    if require_nonce and replay_store is None:
        raise ValueError("a required nonce needs a replay_store")

    # Steps 1-3: the fields, the label, the member shapes.
    p = _parse(msg, expected_label)

    # Step 4: required parameters and the application tag.
    created, expires = p.params.get("created"), p.params.get("expires")
    keyid, nonce, tag = p.params.get("keyid"), p.params.get("nonce"), p.params.get("tag")
    if not isinstance(created, int):
        fail("missing_parameter", "created is required")
    if not isinstance(keyid, str) or not 0 < len(keyid) <= MAX_KEYID:
        fail("missing_parameter", "keyid is required")
    if nonce is not None and not (isinstance(nonce, str) and 0 < len(nonce) <= MAX_NONCE):
        fail("malformed_signature", f"nonce must be 1 to {MAX_NONCE} characters")
    if require_nonce and nonce is None:
        fail("missing_parameter", "nonce is required")
    if expected_tag is not None and tag != expected_tag:
        fail("invalid_tag", "tag is not the expected application tag")

    # Step 5: freshness.
    if created > now + leeway:
        fail("not_yet_valid", "created is in the future")
    if created < now - max_age - leeway:
        fail("expired", "signature is older than the accepted window")
    if expires is not None:
        assert isinstance(expires, int)
        if expires < created:
            fail("malformed_signature", "expires is before created")
        if now > expires + leeway:
            fail("expired", "signature has expired")

    # Step 6: coverage.
    covered = tuple(c.identifier for c in p.components)
    for wanted in expected_components:
        if component(wanted).identifier not in covered:
            fail("missing_component", "a required component is not covered by the signature")

    # Steps 7-8: the key, and its algorithm.
    public = _resolve_key(jwks, keyid)
    alg = algorithms.ALGORITHM_FOR_KEY[public.algorithm]
    if alg not in allowed_algorithms:
        fail("alg_not_allowed", "the key's algorithm is not accepted")
    declared = p.params.get("alg")
    if declared is not None and declared != alg:
        fail("alg_mismatch", "alg does not match the key's algorithm")

    # Step 9: the signature over the rebuilt base.
    base = signature_base(msg, p.components, p.inner, request=request)
    if not algorithms.verify(public, p.signature, base):
        fail("invalid_signature", "signature does not verify")

    # Step 10: the content matches its covered digest.
    if '"content-digest"' in covered:
        digest = field_value(msg.headers, "content-digest")
        assert digest is not None  # signature_base resolved it
        try:
            rfc9530.verify_content_digest(digest, msg.body, accepted=digest_algorithms)
        except rfc9530.DigestError as exc:
            raise SignatureError(exc.code, exc.description) from None  # type: ignore[arg-type]

    # Step 11: single use of the nonce, per key, for as long as it could be accepted.
    thumbprint = public.thumbprint()
    if nonce is not None and replay_store is not None:
        assert isinstance(nonce, str)
        until = float(created + max_age + leeway)
        if expires is not None:
            until = min(until, float(expires) + leeway)
        if not await replay_store.remember(f"{thumbprint}:{nonce}", until):
            fail("replayed", "nonce has already been used")

    return VerifiedSignature(
        label=p.label,
        keyid=keyid,
        algorithm=alg,
        key_thumbprint=thumbprint,
        created=created,
        expires=expires if isinstance(expires, int) else None,
        nonce=nonce if isinstance(nonce, str) else None,
        tag=tag if isinstance(tag, str) else None,
        components=covered,
    )


async def verify_request(
    request: HTTPRequest,
    *,
    jwks: Mapping[str, Any],
    replay_store: ReplayStore,
    now: float,
    expected_label: str | None = None,
    expected_components: Sequence[str] | None = None,
    expected_tag: str | None = None,
    allowed_algorithms: Sequence[str] = algorithms.DEFAULT_ALGORITHMS,
    max_age: int = 300,
    leeway: int = 10,
    digest_algorithms: Sequence[str] = rfc9530.ACCEPTED_BY_DEFAULT,
) -> VerifiedSignature:
    """Verify a partner's signed request (the checklist above); `SignatureError` otherwise.

    `jwks` is the client's registered JWKS; `now` is POSIX seconds.
    `request.body` must be the whole body as received.
    """
    if expected_components is None:
        expected_components = default_request_components(request)
    return await _verify(
        request,
        request=None,
        jwks=jwks,
        now=now,
        expected_label=expected_label,
        expected_components=expected_components,
        expected_tag=expected_tag,
        allowed_algorithms=allowed_algorithms,
        max_age=max_age,
        leeway=leeway,
        require_nonce=True,
        replay_store=replay_store,
        digest_algorithms=digest_algorithms,
    )


async def verify_response(
    response: HTTPResponse,
    *,
    jwks: Mapping[str, Any],
    now: float,
    request: HTTPRequest | None = None,
    expected_label: str | None = None,
    expected_components: Sequence[str] = ("@status",),
    expected_tag: str | None = None,
    allowed_algorithms: Sequence[str] = algorithms.DEFAULT_ALGORITHMS,
    max_age: int = 300,
    leeway: int = 10,
    digest_algorithms: Sequence[str] = rfc9530.ACCEPTED_BY_DEFAULT,
) -> VerifiedSignature:
    """Verify a signed response (what a partner does with ours); `request` resolves ``;req``."""
    return await _verify(
        response,
        request=request,
        jwks=jwks,
        now=now,
        expected_label=expected_label,
        expected_components=expected_components,
        expected_tag=expected_tag,
        allowed_algorithms=allowed_algorithms,
        max_age=max_age,
        leeway=leeway,
        require_nonce=False,
        replay_store=None,
        digest_algorithms=digest_algorithms,
    )
