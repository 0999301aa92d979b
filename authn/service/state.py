"""Everything the authentication service keeps between restarts, opened once.

Layout of the state directory (created with mode 0700; files 0600):

    kek.json              key-encryption keys (SM4) — seals everything below
    keys/tokens/          token-signing key ring (SM2 by default), sealed
    refresh-pepper.bin    HMAC-SM3 key for refresh-token digests, sealed
    admin-token           bearer token for the admin API (user creation)
    authn.db              SQLite database (unless database_url points elsewhere)

First start creates them; later starts load them, so users, credentials,
tokens and keys survive a restart. In production the KEK file belongs on a
separate volume or in an HSM; its path is the one thing to protect.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from authn.config import AuthnConfig
from authn.consents import ConsentStore, open_consents
from authn.passwords import PasswordPolicy
from authn.revocation_sync import keep_revocations_synced
from authn.rfc7591 import RegistrationStore, open_registrations
from authn.roles import RoleStore, open_roles
from authn.store import Store, open_store
from authn.throttle import ThrottlePolicy
from authn.tokens import TokenConfig, TokenIssuer, TokenVerifier
from authn.webauthn import WebAuthnConfig
from crypto.envelope import KeyEncryptionKeyRing
from crypto.keyring import KeyRing


@dataclass
class AuthnState:
    config: AuthnConfig
    store: Store
    kek: KeyEncryptionKeyRing
    keyring: KeyRing
    issuer: TokenIssuer
    verifier: TokenVerifier
    webauthn: WebAuthnConfig
    passwords: PasswordPolicy
    throttle: ThrottlePolicy
    admin_token: str
    consents: ConsentStore
    registrations: RegistrationStore
    roles: RoleStore
    _sync_task: asyncio.Task[None] | None = None

    def is_admin(self, presented: str) -> bool:
        return hmac.compare_digest(presented.encode(), self.admin_token.encode())

    def start_background(self) -> None:
        self._sync_task = asyncio.create_task(
            keep_revocations_synced(self.verifier, self.config.revocation_sync_seconds)
        )

    async def close(self) -> None:
        if self._sync_task is not None:
            self._sync_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sync_task
        await self.consents.close()
        await self.registrations.close()
        await self.roles.close()
        await self.store.close()


def _private_dir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(path, 0o700)
    return path


def _write_secret(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)


def _load_kek(state_dir: Path) -> KeyEncryptionKeyRing:
    path = state_dir / "kek.json"
    if not path.exists():
        KeyEncryptionKeyRing.generate().to_file(path)
    return KeyEncryptionKeyRing.from_file(path)


def _load_sealed(path: Path, kek: KeyEncryptionKeyRing, context: bytes, size: int) -> bytes:
    if not path.exists():
        _write_secret(path, kek.seal(secrets.token_bytes(size), context=context))
    return kek.open(path.read_bytes(), context=context)


def load_or_create_keyring(directory: Path, kek: KeyEncryptionKeyRing, algorithm: str) -> KeyRing:
    """The key ring sealed with `kek` in `directory`, generated (one `algorithm` key,
    directory mode 0700) on first use: authn's token keys, and ``ztgate up``'s
    assertion and directory keys."""
    if (directory / "keyring.json").exists():
        return KeyRing.load(directory, envelope=kek)
    ring = KeyRing()
    ring.generate(algorithm)  # type: ignore[arg-type]
    _private_dir(directory)
    ring.save(directory, envelope=kek)
    return ring


def _load_admin_token(path: Path) -> str:
    if not path.exists():
        _write_secret(path, secrets.token_urlsafe(32).encode())
    return path.read_text().strip()


async def open_state(
    config: AuthnConfig,
    state_dir: Path,
    *,
    signing_algorithm: str = "sm2",
    schema: str | None = None,
) -> AuthnState:
    state_dir = _private_dir(state_dir)
    kek = _load_kek(state_dir)
    keyring = load_or_create_keyring(state_dir / "keys" / "tokens", kek, signing_algorithm)
    pepper = _load_sealed(state_dir / "refresh-pepper.bin", kek, b"authn:refresh-pepper", 32)
    url = config.database_url or f"sqlite://{(state_dir / 'authn.db').resolve()}"
    store = await open_store(url, schema=schema)
    consents = await open_consents(url, schema=schema)
    registrations = await open_registrations(url, schema=schema)
    roles = await open_roles(url, schema=schema)
    tokens = TokenConfig(
        issuer=config.public_url.rstrip("/"),
        audience=config.audience,
        access_ttl=config.access_ttl,
        refresh_ttl=config.refresh_ttl,
    )
    verifier = TokenVerifier(keyring, store, tokens)
    issuer = TokenIssuer(store, keyring, tokens, refresh_pepper=pepper, verifier=verifier)
    state = AuthnState(
        config=config,
        store=store,
        kek=kek,
        keyring=keyring,
        issuer=issuer,
        verifier=verifier,
        webauthn=WebAuthnConfig(
            rp_id=config.rp_id, rp_name="ztgate", origins=config.webauthn_origins()
        ),
        passwords=PasswordPolicy(iterations=config.password_iterations),
        throttle=ThrottlePolicy(),
        admin_token=_load_admin_token(state_dir / "admin-token"),
        consents=consents,
        registrations=registrations,
        roles=roles,
    )
    await verifier.sync_revocations()
    return state
