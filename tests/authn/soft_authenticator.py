"""A software WebAuthn authenticator and client, doing the real cryptography.

It plays both the browser (building ``clientDataJSON`` and the JSON forms of
``PublicKeyCredential``, WebAuthn L3 §5.1 / §5.2) and a CTAP2 authenticator
(authenticator data §6.1, attested credential data §6.5.1, COSE keys, ``none``
§8.7 and ``packed`` self attestation §8.2, assertion signatures §6.3.3). It is
independent of py_webauthn on purpose — its own CBOR encoder, its own encoding
of every structure — so that it can catch the verifier's mistakes.

Knobs for negative tests: origin, RP ID, the UP/UV/BE/BS flags, the signature
counter (per credential, and how it advances), the user handle returned, the
signing key, and `clone()` for a byte-for-byte copy of the authenticator (the
cloned-authenticator attack of §6.1.1).
"""

from __future__ import annotations

import copy
import hashlib
import json
import secrets
import struct
from base64 import urlsafe_b64decode, urlsafe_b64encode
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

ES256 = -7
EDDSA = -8
FLAG_UP, FLAG_UV, FLAG_BE, FLAG_BS, FLAG_AT, FLAG_ED = 0x01, 0x04, 0x08, 0x10, 0x40, 0x80


def b64u(data: bytes) -> str:
    return urlsafe_b64encode(data).decode().rstrip("=")


def b64u_dec(text: str) -> bytes:
    return urlsafe_b64decode(text + "=" * (-len(text) % 4))


# --- CBOR (RFC 8949), the CTAP2 canonical subset (§4.2.1 core deterministic) ---


def _head(major: int, n: int) -> bytes:
    if n < 24:
        return bytes([major << 5 | n])
    for info, fmt in ((24, ">B"), (25, ">H"), (26, ">I"), (27, ">Q")):
        if n < 1 << (8 * struct.calcsize(fmt)):
            return bytes([major << 5 | info]) + struct.pack(fmt, n)
    raise ValueError("integer too large for CBOR head")


def cbor(value: Any) -> bytes:
    """Encode ints, bytes, str, lists and dicts (keys sorted bytewise, CTAP2 canonical)."""
    if isinstance(value, bool):
        return b"\xf5" if value else b"\xf4"
    if isinstance(value, int):
        return _head(0, value) if value >= 0 else _head(1, -1 - value)
    if isinstance(value, bytes):
        return _head(2, len(value)) + value
    if isinstance(value, str):
        raw = value.encode()
        return _head(3, len(raw)) + raw
    if isinstance(value, list):
        return _head(4, len(value)) + b"".join(cbor(v) for v in value)
    if isinstance(value, dict):
        items = sorted((cbor(k), cbor(v)) for k, v in value.items())
        return _head(5, len(items)) + b"".join(k + v for k, v in items)
    raise TypeError(f"cannot CBOR-encode {type(value).__name__}")


# --- the authenticator -------------------------------------------------------


@dataclass
class SoftCredential:
    """A discoverable credential (§6.2.2) held by the authenticator."""

    credential_id: bytes
    rp_id: str
    user_handle: bytes
    user_name: str
    alg: int
    private_key: ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey
    sign_count: int = 0

    def cose_public_key(self) -> bytes:
        """COSE_Key (RFC 9052 §7, RFC 9053 §7.1/§7.2) of the credential."""
        if isinstance(self.private_key, ed25519.Ed25519PrivateKey):
            x = self.private_key.public_key().public_bytes_raw()
            return cbor({1: 1, 3: EDDSA, -1: 6, -2: x})
        numbers = self.private_key.public_key().public_numbers()
        return cbor(
            {
                1: 2,
                3: ES256,
                -1: 1,
                -2: numbers.x.to_bytes(32, "big"),
                -3: numbers.y.to_bytes(32, "big"),
            }
        )

    def sign(self, data: bytes) -> bytes:
        """ES256 → DER ECDSA (§6.5.5); EdDSA → raw 64 bytes."""
        if isinstance(self.private_key, ed25519.Ed25519PrivateKey):
            return self.private_key.sign(data)
        return self.private_key.sign(data, ec.ECDSA(hashes.SHA256()))


@dataclass
class SoftAuthenticator:
    """A platform authenticator with a client in front of it.

    Defaults model a phone's biometric authenticator on ``http://localhost:8081``:
    user present and verified, not backup eligible, counter +1 per signature.
    """

    origin: str = "http://localhost:8081"
    rp_id: str | None = None
    """Override the RP ID the authenticator hashes (default: the one in the options)."""
    up: bool = True
    uv: bool = True
    be: bool = False
    bs: bool = False
    counter_step: int = 1
    """0 models authenticators without a counter (most synced passkeys)."""
    alg: int = ES256
    aaguid: bytes = bytes(16)
    credentials: dict[bytes, SoftCredential] = field(default_factory=dict)

    def clone(self) -> SoftAuthenticator:
        """A byte-for-byte copy, private keys and counters included (§6.1.1)."""
        return copy.deepcopy(self)

    def _flags(self, **overrides: bool) -> int:
        state = {"up": self.up, "uv": self.uv, "be": self.be, "bs": self.bs, **overrides}
        return (
            FLAG_UP * state["up"]
            | FLAG_UV * state["uv"]
            | FLAG_BE * state["be"]
            | FLAG_BS * state["bs"]
            | FLAG_AT * state.get("at", False)
        )

    def _client_data(self, kind: str, challenge: str, origin: str | None) -> bytes:
        """``CollectedClientData`` serialised as browsers do (§5.8.1.1)."""
        body = {
            "type": kind,
            "challenge": challenge,
            "origin": origin or self.origin,
            "crossOrigin": False,
        }
        return json.dumps(body, separators=(",", ":")).encode()

    def _auth_data(self, rp_id: str, flags: int, count: int, attested: bytes = b"") -> bytes:
        """§6.1: rpIdHash ‖ flags ‖ signCount ‖ attestedCredentialData."""
        return (
            hashlib.sha256(rp_id.encode()).digest()
            + bytes([flags])
            + struct.pack(">I", count)
            + attested
        )

    def create(
        self,
        options: dict[str, Any],
        *,
        fmt: str = "none",
        origin: str | None = None,
        rp_id: str | None = None,
        alg: int | None = None,
        sign_count: int = 0,
        credential_id: bytes | None = None,
        **flags: bool,
    ) -> dict[str, Any]:
        """``navigator.credentials.create()``: a ``RegistrationResponseJSON`` (§5.1.2).

        `options` is the ``publicKey`` JSON from the server. ``flags`` overrides
        ``up``/``uv``/``be``/``bs`` for this one ceremony; ``credential_id`` forces
        the id (to try registering an id someone else already holds).
        """
        rp = rp_id or self.rp_id or options["rp"]["id"]
        excluded = {b64u_dec(c["id"]) for c in options.get("excludeCredentials", [])}
        if excluded & set(self.credentials):
            raise PermissionError("InvalidStateError: authenticator already registered")
        offered = [p["alg"] for p in options["pubKeyCredParams"]]
        chosen = alg if alg is not None else (self.alg if self.alg in offered else offered[0])
        key: ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey = (
            ed25519.Ed25519PrivateKey.generate()
            if chosen == EDDSA
            else ec.generate_private_key(ec.SECP256R1())
        )
        cred = SoftCredential(
            credential_id=credential_id or secrets.token_bytes(32),
            rp_id=rp,
            user_handle=b64u_dec(options["user"]["id"]),
            user_name=options["user"]["name"],
            alg=chosen,
            private_key=key,
            sign_count=sign_count,
        )
        client_data = self._client_data("webauthn.create", options["challenge"], origin)
        attested = (
            self.aaguid
            + struct.pack(">H", len(cred.credential_id))
            + cred.credential_id
            + cred.cose_public_key()
        )
        auth_data = self._auth_data(rp, self._flags(at=True, **flags), cred.sign_count, attested)
        if fmt == "packed":  # §8.2 self attestation: sig over authData ‖ hash(clientData)
            stmt: dict[str, Any] = {
                "alg": chosen,
                "sig": cred.sign(auth_data + hashlib.sha256(client_data).digest()),
            }
        else:
            stmt = {}
        attestation_object = cbor({"fmt": fmt, "attStmt": stmt, "authData": auth_data})
        self.credentials[cred.credential_id] = cred
        return {
            "id": b64u(cred.credential_id),
            "rawId": b64u(cred.credential_id),
            "type": "public-key",
            "response": {
                "clientDataJSON": b64u(client_data),
                "attestationObject": b64u(attestation_object),
                "transports": ["internal"],
            },
            "clientExtensionResults": {},
            "authenticatorAttachment": "platform",
        }

    def get(
        self,
        options: dict[str, Any],
        *,
        credential_id: bytes | None = None,
        origin: str | None = None,
        rp_id: str | None = None,
        sign_count: int | None = None,
        user_handle: bytes | bool | None = True,
        key: ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey | None = None,
        **flags: bool,
    ) -> dict[str, Any]:
        """``navigator.credentials.get()``: an ``AuthenticationResponseJSON`` (§5.1.3).

        Picks `credential_id`, else the first allowed credential it holds, else (empty
        ``allowCredentials``, discoverable login) its first credential for the RP.
        ``sign_count`` forces the counter value signed; ``user_handle``: True = the
        stored one, None = omit, bytes = that value; ``key`` signs with another key.
        """
        rp = rp_id or self.rp_id or options["rpId"]
        allowed = [b64u_dec(c["id"]) for c in options.get("allowCredentials", [])]
        if credential_id is None:
            candidates = (
                [c for c in allowed if c in self.credentials]
                if allowed
                else [
                    c.credential_id for c in self.credentials.values() if c.rp_id == options["rpId"]
                ]
            )
            if not candidates:
                raise LookupError("NotAllowedError: no credential for this RP")
            credential_id = candidates[0]
        cred = self.credentials[credential_id]
        if sign_count is None:
            cred.sign_count += self.counter_step
            count = cred.sign_count
        else:
            count = sign_count
        client_data = self._client_data("webauthn.get", options["challenge"], origin)
        auth_data = self._auth_data(rp, self._flags(**flags), count)
        signer = copy.copy(cred)
        if key is not None:
            signer.private_key = key
        signature = signer.sign(auth_data + hashlib.sha256(client_data).digest())
        handle = cred.user_handle if user_handle is True else user_handle or None
        return {
            "id": b64u(credential_id),
            "rawId": b64u(credential_id),
            "type": "public-key",
            "response": {
                "clientDataJSON": b64u(client_data),
                "authenticatorData": b64u(auth_data),
                "signature": b64u(signature),
                "userHandle": None if handle is None else b64u(handle),
            },
            "clientExtensionResults": {},
            "authenticatorAttachment": "platform",
        }
