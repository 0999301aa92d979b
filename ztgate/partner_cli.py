"""`ztgate partner`: the bank's side of partner onboarding on a local stack.

``ztgate up`` acts as the bank's directory for dynamic client registration (RFC
7591): it keeps an SM2 key ring under ``<state>/up/directory-keys`` (sealed with the
state's KEK) and publishes its JWKS as ``<state>/up/directory-jwks.json``, which the
authentication service trusts (`AuthnConfig.directory_jwks`). ``ztgate partner
statement`` signs a software statement with it — what a real directory would hand a
vetted partner — for the partner to present at ``POST /v1/register``. Its
``environment`` claim (``--environment``, default production) says whether the
client will reach the production routes or only the sandbox ones (synthetic data).
"""

from __future__ import annotations

import argparse
import secrets
import time
from pathlib import Path
from typing import Any, Final

from authn.rfc7591 import ENVIRONMENTS
from authn.service.state import load_or_create_keyring
from crypto import jose
from crypto.envelope import KeyEncryptionKeyRing
from crypto.keyring import KeyRing
from ztgate import config
from ztgate.crypto_cli import CliError

__all__ = ["DIRECTORY_JWKS", "DIRECTORY_KEYS", "load_or_create_ring", "register", "statement"]

DIRECTORY_KEYS: Final = "directory-keys"
DIRECTORY_JWKS: Final = "directory-jwks.json"
MAX_TTL: Final = 365 * 86400


def load_or_create_ring(directory: Path, kek_file: Path) -> KeyRing:
    """The SM2 key ring in `directory`, sealed with the KEK in `kek_file`; created
    (mode 0700) on first use."""
    return load_or_create_keyring(directory, KeyEncryptionKeyRing.from_file(kek_file), "sm2")


def statement(
    ring: KeyRing,
    *,
    issuer: str,
    software_id: str,
    name: str,
    scope: str,
    redirect_uris: list[str],
    org_id: str | None = None,
    ttl: int = 86400,
    allowed_networks: list[str] | None = None,
    rate_limit_tier: str | None = None,
    environment: str = "production",
) -> str:
    """A software statement (RFC 7591 §2.3) signed with the ring's active key; it
    always names its environment (`authn.rfc7591.ENVIRONMENTS`)."""
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": issuer,
        "iat": now,
        "exp": now + ttl,
        "jti": secrets.token_urlsafe(16),
        "software_id": software_id,
        "software_client_name": name,
        "scope": scope,
        "redirect_uris": redirect_uris,
        "environment": environment,
    }
    if org_id is not None:
        claims["org_id"] = org_id
    if allowed_networks:
        claims["allowed_networks"] = allowed_networks
    if rate_limit_tier is not None:
        claims["rate_limit_tier"] = rate_limit_tier
    kid, key = ring.signing_key()
    return jose.encode_jwt(claims, key, kid=kid)


def cmd_statement(args: argparse.Namespace) -> int:
    cfg = config.load(args.config)
    state = cfg.state.dir.resolve()
    keys_dir = state / "up" / DIRECTORY_KEYS
    if not (keys_dir / "keyring.json").exists():
        raise CliError(f"no directory keys in {keys_dir}: start `ztgate up` once first")
    if not 60 <= args.ttl <= MAX_TTL:
        raise CliError(f"--ttl: 60 to {MAX_TTL} seconds")
    ring = load_or_create_ring(keys_dir, state / "kek.json")
    print(
        statement(
            ring,
            issuer=cfg.authn.directory_issuer,
            software_id=args.software_id,
            name=args.name,
            scope=args.scope,
            redirect_uris=args.redirect_uri or [],
            org_id=args.org_id,
            ttl=args.ttl,
            allowed_networks=args.allowed_network,
            rate_limit_tier=args.rate_limit_tier,
            environment=args.environment,
        )
    )
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("partner", help="partner onboarding on a local stack (the directory)")
    partner = p.add_subparsers(dest="partner_command", required=True)
    s = partner.add_parser(
        "statement",
        help="sign a software statement for dynamic client registration (RFC 7591)",
        description="Prints a software statement signed by the local stack's directory key "
        "(<state>/up/directory-keys, created by `ztgate up`), for POST /v1/register.",
    )
    s.add_argument("--software-id", required=True)
    s.add_argument("--name", required=True, help="the software's client name")
    s.add_argument(
        "--scope",
        default="ob:consents ob:accounts:read ob:transactions:read ob:payments:write"
        " ob:payments:read",
        help="scopes the software may hold (space-separated)",
    )
    s.add_argument("--redirect-uri", action="append", help="an approved https redirect URI")
    s.add_argument("--org-id")
    s.add_argument(
        "--allowed-network",
        action="append",
        help="a CIDR the partner calls from (the edge refuses other addresses)",
    )
    s.add_argument("--rate-limit-tier", help="the quota tier the partner gets")
    s.add_argument(
        "--environment",
        choices=ENVIRONMENTS,
        default="production",
        help="production (default): the client reaches the /open/v1 routes; sandbox: only "
        "the /sandbox/open/v1 routes, served from the sandbox core bank's synthetic data",
    )
    s.add_argument("--ttl", type=int, default=86400, help="seconds (default one day)")
    s.set_defaults(func=cmd_statement)
