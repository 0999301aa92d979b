"""WebAuthn passkeys for biometric login: the two Relying Party ceremonies (WebAuthn L3 §7).

One step per function, in py_webauthn's style: ``registration_options`` →
``verify_registration`` (§7.1) and ``authentication_options`` →
``verify_authentication`` (§7.2). py_webauthn does the cryptography (attestation
statements, assertion signatures); this module adds what needs our state and
policy: single-use challenges from the store, user binding, credential lookup,
flagged credentials, the exact origin list, allowed attestation formats and the
signature-counter rule that flags cloned authenticators.

Policy decisions:

- User verification is **required** in both ceremonies (§5.8.6; the UV flag,
  §6.1): a passkey is a biometric or device-PIN factor (amr ``hwk`` + ``user``).
- Origins are compared as whole strings — scheme, host **and port** (§7.1 step
  "origin", §7.2 step "origin"); the RP ID is checked through ``rpIdHash``.
- Attestation conveyance is ``none`` (§5.4.7): we hold no FIDO metadata or
  vendor roots, so an attestation chain could not be trusted anyway (py_webauthn
  accepts any ``x5c`` chain when given no roots), and ``direct`` would disclose
  the device model and prompt the user. Authenticators that still send a
  ``packed`` self-attestation (§8.2) are verified; other formats are refused.
- The user handle (§5.4.3, §14.6.1) is SHA-256 over the opaque subject under a
  domain label: stable (discoverable login can be checked without storing it),
  never the username or any personal data.
- Credential ids cross the API as unpadded base64url strings (§5.1.2 ``id``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Final, Literal
from urllib.parse import urlsplit

from webauthn import (
    generate_authentication_options,
    generate_registration_options,
    options_to_json,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.helpers import parse_attestation_object, parse_authenticator_data
from webauthn.helpers.cose import COSEAlgorithmIdentifier
from webauthn.helpers.exceptions import WebAuthnException
from webauthn.helpers.structs import (
    AttestationConveyancePreference,
    AuthenticatorData,
    AuthenticatorSelectionCriteria,
    AuthenticatorTransport,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from authn.errors import AuthnError
from authn.store.base import Challenge, Store, User, WebAuthnCredential

REGISTER: Final = "webauthn.register"
AUTHENTICATE: Final = "webauthn.authenticate"
_FORMATS: Final = frozenset({"none", "packed"})
_ALGORITHMS: Final = frozenset(int(a) for a in COSEAlgorithmIdentifier)
_TRANSPORTS: Final = frozenset(t.value for t in AuthenticatorTransport)
_B64URL: Final = re.compile(r"[A-Za-z0-9_-]*")
_MAX_FIELD: Final = 65536
"""Longest base64url member accepted (the HTTP layer caps bodies at 64 KiB too)."""
_MAX_NAME: Final = 64


@dataclass(frozen=True)
class WebAuthnConfig:
    """The Relying Party (§5.1.4.1 RP ID, §13.4.9 origin validation)."""

    rp_id: str = "localhost"
    rp_name: str = "ztgate"
    origins: tuple[str, ...] = ("http://localhost:8081",)
    challenge_ttl: float = 120.0
    timeout_ms: int = 60000
    allowed_attestation_formats: tuple[str, ...] = ("none", "packed")
    algorithms: tuple[int, ...] = (-7, -8)

    def __post_init__(self) -> None:
        if not self.rp_id or not self.rp_name or not self.origins:
            raise ValueError("webauthn: rp_id, rp_name and origins are required")
        for origin in self.origins:
            parts = urlsplit(origin)
            host = parts.hostname or ""
            if (
                origin != f"{parts.scheme}://{parts.netloc}"
                or parts.username is not None
                or parts.scheme not in ("https", "http")
                or (parts.scheme == "http" and host != "localhost")
                or not (host == self.rp_id or host.endswith("." + self.rp_id))
            ):
                raise ValueError(
                    f"webauthn: origin {origin!r} is not an https (or http://localhost) "
                    f"origin under rp_id {self.rp_id!r}"
                )
        if not set(self.allowed_attestation_formats) <= _FORMATS:
            raise ValueError(f"webauthn: attestation formats must be among {sorted(_FORMATS)}")
        if not self.algorithms or not set(self.algorithms) <= _ALGORITHMS:
            raise ValueError("webauthn: unknown COSE algorithm")
        if self.challenge_ttl <= 0 or self.timeout_ms <= 0:
            raise ValueError("webauthn: challenge_ttl and timeout_ms must be positive")


@dataclass(frozen=True)
class AuthenticationResult:
    """A verified assertion (§7.2): who, with which credential, and the flags it carried."""

    subject: str
    credential_id: str
    """base64url."""
    sign_count: int
    user_verified: bool
    backed_up: bool

    @property
    def amr(self) -> tuple[str, ...]:
        """RFC 8176 methods earned: key possession (``hwk``) and user verification (``user``)."""
        return ("hwk", "user") if self.user_verified else ("hwk",)


@dataclass(frozen=True)
class CredentialSummary:
    """One passkey as ``GET /v1/webauthn/credentials`` lists it."""

    credential_id: str
    name: str
    created_at: float
    last_used_at: float | None
    flagged: bool
    flag_reason: str | None

    def as_json(self) -> dict[str, Any]:
        return {
            "credential_id": self.credential_id,
            "name": self.name,
            "created_at": self.created_at,
            "last_used_at": self.last_used_at,
            "flagged": self.flagged,
        }


def encode_id(raw: bytes) -> str:
    """Unpadded base64url, as in ``PublicKeyCredential.id`` (§5.1.2)."""
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def decode_id(text: str) -> bytes | None:
    """Strict inverse of `encode_id`; None for anything not canonical unpadded base64url."""
    try:
        raw = _b64d(text, "id")
    except _Refused:
        return None
    return raw if encode_id(raw) == text else None


def user_handle(subject: str) -> bytes:
    """The user handle (``user.id``, §5.4.3) of a subject: opaque, 32 bytes, no PII (§14.6.1)."""
    return hashlib.sha256(b"ztgate/webauthn/user-handle\x00" + subject.encode()).digest()


# ---------------------------------------------------------------------------
# Registration (§5.4 options, §7.1 verification)


async def registration_options(
    store: Store, cfg: WebAuthnConfig, *, user: User, now: float
) -> tuple[str, dict[str, Any]]:
    """``PublicKeyCredentialCreationOptions`` (§5.4) for `user`, and the id of its challenge.

    Discoverable credential (``residentKey: required``, §5.4.6) so the customer can
    log in without typing a username; user verification required; the user's
    existing credentials excluded (§5.4 ``excludeCredentials``) so one
    authenticator is not registered twice.
    """
    if user.disabled:
        raise AuthnError("access_denied", "account disabled", 403)
    existing = await store.list_credentials(user.subject)
    challenge = secrets.token_bytes(32)
    options = generate_registration_options(
        rp_id=cfg.rp_id,
        rp_name=cfg.rp_name,
        user_id=user_handle(user.subject),
        user_name=user.username,
        user_display_name=user.display_name or user.username,
        challenge=challenge,
        timeout=cfg.timeout_ms,
        attestation=AttestationConveyancePreference.NONE,
        authenticator_selection=AuthenticatorSelectionCriteria(
            resident_key=ResidentKeyRequirement.REQUIRED,
            user_verification=UserVerificationRequirement.REQUIRED,
        ),
        exclude_credentials=[_descriptor(c) for c in existing],
        supported_pub_key_algs=[COSEAlgorithmIdentifier(a) for a in cfg.algorithms],
    )
    challenge_id = await _put_challenge(store, cfg, REGISTER, challenge, user.subject, now)
    return challenge_id, _options_json(options)


async def verify_registration(
    store: Store,
    cfg: WebAuthnConfig,
    *,
    user: User,
    challenge_id: str,
    credential: Mapping[str, Any] | str,
    now: float,
    name: str = "",
) -> WebAuthnCredential:
    """Verify a ``RegistrationResponseJSON`` (§7.1) and store the new credential.

    Raises ``invalid_challenge`` (400) for a missing, used, expired or foreign
    challenge and ``invalid_registration`` (400) for everything else.
    """
    name = name.strip()
    if len(name) > _MAX_NAME or not name.isprintable():
        raise AuthnError(
            "invalid_request", f"name must be at most {_MAX_NAME} printable characters"
        )
    # §13.4.3: challenges are single use and short-lived; §7.1 step 1: issued for this user.
    challenge = await _take_challenge(store, challenge_id, REGISTER, now)
    if challenge.subject != user.subject:
        raise AuthnError("invalid_challenge", "challenge was issued to another user", 400)
    with _failing_as("invalid_registration", 400):
        data, raw_id, response = _parse_credential(credential)
        # §7.1 steps "clientDataJSON": type, challenge, origin, topOrigin.
        _check_client_data(response, "webauthn.create", challenge.challenge, cfg.origins)
        # §7.1 step "CBOR decode attestationObject", then fmt (§8) against our policy.
        attestation = parse_attestation_object(
            _b64d(response.get("attestationObject"), "attestationObject")
        )
        fmt = next((f for f in cfg.allowed_attestation_formats if f == attestation.fmt), None)
        if fmt is None:
            raise _Refused("attestation format not allowed")
        # §7.1 steps rpIdHash, UP, UV, BE/BS (§6.1, §6.1.3).
        auth_data = _check_authenticator_data(attestation.auth_data, cfg.rp_id)
        attested = auth_data.attested_credential_data
        if not auth_data.flags.at or attested is None or attested.credential_id != raw_id:
            raise _Refused("attested credential id does not match rawId")
        if len(raw_id) > 1023:  # §7.1 step "credentialId ≤ 1023 bytes"
            raise _Refused("credential id too long")
        # §7.1 steps pubKeyCredParams alg, attestation statement (§8.2 packed, §8.7 none).
        verified = verify_registration_response(
            credential=data,
            expected_challenge=challenge.challenge,
            expected_rp_id=cfg.rp_id,
            expected_origin=list(cfg.origins),
            require_user_presence=True,
            require_user_verification=True,
            supported_pub_key_algs=[COSEAlgorithmIdentifier(a) for a in cfg.algorithms],
        )
        transports = response.get("transports")
        known = tuple(
            sorted({t for t in transports if isinstance(t, str) and t in _TRANSPORTS})
            if isinstance(transports, list)
            else ()
        )
    # §7.1 step "credentialId is not yet registered for any user".
    if await store.get_credential(verified.credential_id) is not None:
        raise AuthnError("invalid_registration", "credential already registered", 400)
    record = WebAuthnCredential(
        credential_id=verified.credential_id,
        subject=user.subject,
        public_key=verified.credential_public_key,
        sign_count=verified.sign_count,
        transports=known,
        aaguid=verified.aaguid,
        attestation_format=fmt,
        backup_eligible=auth_data.flags.be,
        backed_up=auth_data.flags.bs,
        created_at=now,
        last_used_at=None,
        flagged=None,
        name=name,
    )
    try:
        await store.add_credential(record)
    except AuthnError as exc:
        if exc.code == "credential_exists":
            raise AuthnError("invalid_registration", "credential already registered", 400) from exc
        raise
    return record


# ---------------------------------------------------------------------------
# Authentication (§5.5 options, §7.2 verification)


async def authentication_options(
    store: Store, cfg: WebAuthnConfig, *, user: User | None, now: float
) -> tuple[str, dict[str, Any]]:
    """``PublicKeyCredentialRequestOptions`` (§5.5) and the id of its challenge.

    ``user=None`` is discoverable, username-less login (§5.5 ``allowCredentials``
    empty; the authenticator offers its resident credentials). With a user, the
    challenge is bound to them and only their unflagged credentials are allowed.
    """
    allow: list[PublicKeyCredentialDescriptor] = []
    if user is not None:
        allow = [
            _descriptor(c) for c in await store.list_credentials(user.subject) if c.flagged is None
        ]
    challenge = secrets.token_bytes(32)
    options = generate_authentication_options(
        rp_id=cfg.rp_id,
        challenge=challenge,
        timeout=cfg.timeout_ms,
        allow_credentials=allow,
        user_verification=UserVerificationRequirement.REQUIRED,
    )
    subject = user.subject if user is not None else None
    challenge_id = await _put_challenge(store, cfg, AUTHENTICATE, challenge, subject, now)
    return challenge_id, _options_json(options)


async def verify_authentication(
    store: Store,
    cfg: WebAuthnConfig,
    *,
    challenge_id: str,
    credential: Mapping[str, Any] | str,
    now: float,
) -> AuthenticationResult:
    """Verify an ``AuthenticationResponseJSON`` (§7.2), step by step.

    Errors: ``invalid_challenge`` (400); ``invalid_assertion`` (401) for anything
    malformed or unverifiable; ``credential_flagged`` (401) for a credential no
    longer trusted; ``credential_cloned`` (401) when the signature counter went
    backwards — the credential is then flagged (§6.1.1, §7.2 step 21).
    """
    # §7.2 step 1 / §13.4.3: the challenge, single use.
    challenge = await _take_challenge(store, challenge_id, AUTHENTICATE, now)
    # §7.2 steps 2-3: the credential and its response.
    with _failing_as("invalid_assertion", 401):
        data, raw_id, response = _parse_credential(credential)
        handle = response.get("userHandle")
        handle_bytes = None if handle is None else _b64d(handle, "userHandle")
    # §7.2 step 6/7: the credential record and its owner.
    record = await store.get_credential(raw_id)
    if record is None:
        raise _error("invalid_assertion", "unknown credential", 401)
    if record.flagged is not None:
        raise _error("credential_flagged", "credential suspended; register a new passkey", 401)
    if challenge.subject is not None and record.subject != challenge.subject:
        raise _error("invalid_assertion", "credential not registered to this user", 401)
    if challenge.subject is None and handle_bytes is None:
        raise _error("invalid_assertion", "userHandle required for discoverable login", 401)
    if handle_bytes is not None and not hmac.compare_digest(
        handle_bytes, user_handle(record.subject)
    ):
        raise _error("invalid_assertion", "userHandle does not match the credential owner", 401)
    with _failing_as("invalid_assertion", 401):
        # §7.2 steps "clientDataJSON": type, challenge, origin, topOrigin.
        _check_client_data(response, "webauthn.get", challenge.challenge, cfg.origins)
        # §7.2 steps rpIdHash, UP, UV, BE/BS.
        auth_data = _check_authenticator_data(
            parse_authenticator_data(_b64d(response.get("authenticatorData"), "authenticatorData")),
            cfg.rp_id,
        )
        if auth_data.flags.be != record.backup_eligible:  # §6.1.3: BE never changes
            raise _Refused("backup eligibility changed since registration")
        # §7.2 step 20: the signature, by py_webauthn (which repeats steps 8-17). Its own
        # counter test is disabled (count 0) because step 21 below must run only after
        # the signature verifies: otherwise anyone knowing a credential id could forge
        # a low count and get a victim's credential flagged.
        verified = verify_authentication_response(
            credential=data,
            expected_challenge=challenge.challenge,
            expected_rp_id=cfg.rp_id,
            expected_origin=list(cfg.origins),
            credential_public_key=record.public_key,
            credential_current_sign_count=0,
            require_user_verification=True,
        )
    # §7.2 step 21 (§6.1.1): a counter that does not advance means a cloned authenticator.
    new, stored = auth_data.sign_count, record.sign_count
    if (new != 0 or stored != 0) and new <= stored:
        await store.flag_credential(
            raw_id, f"sign_count_regression: stored {stored}, presented {new}"
        )
        raise _error(
            "credential_cloned", "signature counter went backwards; credential suspended", 401
        )
    owner = await store.get_user(record.subject)
    if owner is None or owner.disabled:
        raise AuthnError("access_denied", "account disabled", 403)
    # §7.2 step 24: update the credential record.
    await store.update_credential_use(raw_id, new, verified.credential_backed_up, now)
    return AuthenticationResult(
        subject=record.subject,
        credential_id=encode_id(raw_id),
        sign_count=new,
        user_verified=verified.user_verified,
        backed_up=verified.credential_backed_up,
    )


# ---------------------------------------------------------------------------
# Credential management


async def list_credentials(store: Store, *, subject: str) -> list[CredentialSummary]:
    """The subject's passkeys, oldest first."""
    records = sorted(await store.list_credentials(subject), key=lambda c: c.created_at)
    return [
        CredentialSummary(
            encode_id(c.credential_id),
            c.name,
            c.created_at,
            c.last_used_at,
            c.flagged is not None,
            c.flagged,
        )
        for c in records
    ]


async def remove_credential(store: Store, *, subject: str, credential_id: str | bytes) -> bool:
    """Delete one of the subject's passkeys (id as base64url, or raw bytes); False if it is
    not theirs, does not exist or the id is malformed."""
    raw = decode_id(credential_id) if isinstance(credential_id, str) else credential_id
    return raw is not None and await store.delete_credential(subject, raw)


# ---------------------------------------------------------------------------
# Steps shared by both ceremonies


def _error(code: str, description: str, status: int) -> AuthnError:
    """An `AuthnError`; 401s carry ``WWW-Authenticate`` (RFC 7235 §3.1, RFC 6750 §3)."""
    headers = {}
    if status == 401:
        headers["WWW-Authenticate"] = (
            f'Bearer error="{code}", error_description="{_safe(description)}"'
        )
    return AuthnError(code, description, status, headers)


class _Refused(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@contextmanager
def _failing_as(code: str, status: int) -> Iterator[None]:
    """Turn any parsing or verification failure into one `AuthnError` (fail closed)."""
    try:
        yield
    except AuthnError:
        raise
    except _Refused as exc:
        raise _error(code, exc.reason, status) from exc
    except WebAuthnException as exc:
        raise _error(code, _safe(str(exc)) or "verification failed", status) from exc
    except Exception as exc:  # malformed input reaching cbor2, cryptography, json …
        raise _error(code, "malformed credential", status) from exc


def _safe(text: str) -> str:
    """A short description fit for a JSON body and a ``WWW-Authenticate`` parameter."""
    return re.sub(r"[^A-Za-z0-9 .,:;()_/-]", "", text.split(". See __cause__")[0])[:100]


def _b64d(value: object, what: str) -> bytes:
    if (
        not isinstance(value, str)
        or len(value) > _MAX_FIELD
        or not _B64URL.fullmatch(value)
        or len(value) % 4 == 1
    ):
        raise _Refused(f"{what} is not base64url")
    return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))


def _parse_credential(credential: object) -> tuple[dict[str, Any], bytes, dict[str, Any]]:
    """§5.1 ``PublicKeyCredential`` JSON: the object, ``rawId`` and ``response``."""
    if isinstance(credential, str | bytes):
        if len(credential) > 4 * _MAX_FIELD:
            raise _Refused("credential too large")
        credential = json.loads(credential)
    if not isinstance(credential, Mapping):
        raise _Refused("credential is not a JSON object")
    data = dict(credential)
    if data.get("type") != "public-key":
        raise _Refused("credential type is not public-key")
    raw_id = _b64d(data.get("rawId"), "rawId")
    if not raw_id or data.get("id") != encode_id(raw_id):
        raise _Refused("id and rawId differ")
    response = data.get("response")
    if not isinstance(response, dict):
        raise _Refused("credential response missing")
    return data, raw_id, response


def _check_client_data(
    response: Mapping[str, Any], kind: str, challenge: bytes, origins: tuple[str, ...]
) -> None:
    """§7.1/§7.2 client data steps; origin compared exactly (scheme, host, port)."""
    client_data = json.loads(
        _b64d(response.get("clientDataJSON"), "clientDataJSON").decode("utf-8")
    )
    if not isinstance(client_data, dict):
        raise _Refused("clientDataJSON is not an object")
    if client_data.get("type") != kind:
        raise _Refused(f"clientDataJSON type is not {kind}")
    if not hmac.compare_digest(_b64d(client_data.get("challenge"), "challenge"), challenge):
        raise _Refused("challenge mismatch")
    if client_data.get("origin") not in origins:
        raise _Refused("origin not allowed")
    if client_data.get("crossOrigin") not in (None, False) or "topOrigin" in client_data:
        raise _Refused("cross-origin ceremony refused")


def _check_authenticator_data(auth_data: AuthenticatorData, rp_id: str) -> AuthenticatorData:
    """§6.1 authenticator data: ``rpIdHash``, UP, UV (required), BE/BS (§6.1.3)."""
    if not hmac.compare_digest(auth_data.rp_id_hash, hashlib.sha256(rp_id.encode()).digest()):
        raise _Refused("rpIdHash does not match the RP ID")
    if not auth_data.flags.up:
        raise _Refused("user presence (UP) flag not set")
    if not auth_data.flags.uv:
        raise _Refused("user verification (UV) required")
    if auth_data.flags.bs and not auth_data.flags.be:
        raise _Refused("backup state set without backup eligibility")
    return auth_data


def _descriptor(c: WebAuthnCredential) -> PublicKeyCredentialDescriptor:
    transports = [AuthenticatorTransport(t) for t in c.transports if t in _TRANSPORTS]
    return PublicKeyCredentialDescriptor(id=c.credential_id, transports=transports or None)


def _options_json(options: Any) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(options_to_json(options))
    return result


async def _put_challenge(
    store: Store,
    cfg: WebAuthnConfig,
    purpose: Literal["webauthn.register", "webauthn.authenticate"],
    challenge: bytes,
    subject: str | None,
    now: float,
) -> str:
    challenge_id = secrets.token_urlsafe(24)
    await store.put_challenge(
        Challenge(challenge_id, purpose, challenge, subject, now + cfg.challenge_ttl)
    )
    return challenge_id


async def _take_challenge(store: Store, challenge_id: str, purpose: str, now: float) -> Challenge:
    if not isinstance(challenge_id, str) or not 0 < len(challenge_id) <= 128:
        raise AuthnError("invalid_challenge", "unknown, used or expired challenge", 400)
    challenge = await store.take_challenge(challenge_id, purpose, now)
    if challenge is None:
        raise AuthnError("invalid_challenge", "unknown, used or expired challenge", 400)
    return challenge
