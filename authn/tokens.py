"""Access tokens: issue, verify (with a safe cache), refresh, revoke, introspect.

Access tokens are JWTs (RFC 7519; profile of RFC 9068, header ``typ:
at+jwt`` so no other JWT signed by the same keys passes as one, RFC 8725
§3.11) signed by the key ring's active key — SM2 (``SM2SM3``) by default.
Claims: ``iss sub aud exp iat jti client_id scope acr amr auth_time sid``
and, when sender-constrained, ``cnf`` (``jkt`` for DPoP, RFC 9449 §6.1;
``x5t#S256`` for mTLS, RFC 8705 §3.1). ``sid`` is the refresh family id, so
revoking a refresh token revokes the access tokens minted from its family
(RFC 7009 §2.1).

Verification ("verify once, cache safely", ARCHITECTURE.md): the first
presentation of a token pays for the signature and claim checks; the result
is cached under a digest of the token string until the instant the token
stops being acceptable (``exp`` + leeway). A repeated token then costs a
digest, a dict lookup and the checks that must never be cached:

- revocation, against the in-memory `TokenVerifier.revoked_jtis` and
  `TokenVerifier.revoked_families`. This process's revocations land there at
  once (`TokenVerifier.note_revocation`, called by `TokenIssuer`); other
  processes' revocations arrive with `TokenVerifier.sync_revocations`, which
  the service calls periodically — **cross-process revocation latency is
  that period**. The first `verify` syncs before answering, so a restart
  never forgets a revocation;
- the signing key still being trusted (a retired kid stops cached tokens);
- the audience asked for;
- the DPoP proof (fresh ``jti`` each request) and the client certificate.

The cache key is SM3 of the token (`_cache_key`): fixed-size keys, and no
bearer credential kept in memory for minutes. It is ~60 % of a cached verify
(benchmarks/authn.py measures ~200k cached verifies/s per core).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import json
import math
import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import Any, Final, Literal, NoReturn

from authn.cnf import X5T_S256, check_certificate_binding
from authn.dpop import DEFAULT_ALGS, DPoPCheck, verify_proof
from authn.errors import AuthnError, invalid_grant, invalid_token
from authn.refresh import RefreshGrant, RefreshTokens, new_family_id
from authn.store.base import Store
from crypto import jose, keys
from crypto.errors import CryptoError
from crypto.keyring import KeyRing

__all__ = [
    "ACCESS_TOKEN_TYP",
    "TokenConfig",
    "TokenIssuer",
    "TokenResponse",
    "TokenVerifier",
    "VerifiedToken",
]

ACCESS_TOKEN_TYP: Final = "at+jwt"  # noqa: S105 - a media type, not a secret
MAX_TOKEN_LENGTH: Final = 16 * 1024
SYNC_OVERLAP: Final = 30.0
"""Seconds re-read on every sync: a revocation written late, or stamped by a node
whose clock lags, is still picked up (adding to a set is idempotent)."""
REQUIRED_CLAIMS: Final = ("iss", "sub", "aud", "exp", "iat", "jti")
_RESERVED: Final = frozenset(
    {*REQUIRED_CLAIMS, "nbf", "acr", "amr", "auth_time", "client_id", "scope", "sid", "cnf"}
    | {"active", "token_type"}  # RFC 7662 §2.2 members introspection sets itself
)
_SM3_BASE: Final = hashlib.new("sm3")


def _cache_key(token: str) -> bytes:
    """SM3(token) by copying a prepared OpenSSL hashlib context: cheaper than
    `crypto.sm3.digest`, whose per-call context setup costs more than the hash
    itself on a 600-byte token."""
    h = _SM3_BASE.copy()
    h.update(token.encode("ascii"))
    return h.digest()


@dataclass(frozen=True)
class TokenConfig:
    """Token lifetimes and identifiers; one per deployment, shared by issuer and verifiers."""

    issuer: str = "http://localhost:8081"
    audience: str = "ztgate"
    access_ttl: int = 300
    refresh_ttl: int = 30 * 86400
    leeway: int = 10
    """Clock skew tolerated on exp/nbf/iat: FAPI 2.0's 10 seconds."""
    cache_size: int = 100_000
    """Verified tokens kept per process; 0 disables the cache."""


@dataclass(frozen=True)
class TokenResponse:
    """RFC 6749 §5.1 success response (plus ``acr``/``amr`` for the app)."""

    access_token: str
    token_type: Literal["Bearer", "DPoP"]
    expires_in: int
    refresh_token: str | None
    scope: str
    acr: str
    amr: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        """The JSON body; ``refresh_token`` and ``scope`` only when present."""
        body: dict[str, Any] = {
            "access_token": self.access_token,
            "token_type": self.token_type,
            "expires_in": self.expires_in,
        }
        if self.refresh_token is not None:
            body["refresh_token"] = self.refresh_token
        if self.scope:
            body["scope"] = self.scope
        body["acr"] = self.acr
        body["amr"] = list(self.amr)
        return body


def _freeze(value: Any) -> Any:
    if isinstance(value, dict):
        return MappingProxyType({k: _freeze(v) for k, v in value.items()})
    if isinstance(value, list):
        return tuple(_freeze(v) for v in value)
    return value


def _thaw(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _thaw(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return [_thaw(v) for v in value]
    return value


@dataclass(frozen=True)
class VerifiedToken:
    """A token that passed every check. Deeply immutable: cache hits share one instance."""

    claims: Mapping[str, Any]
    subject: str
    client_id: str | None
    acr: str | None
    amr: tuple[str, ...]
    auth_time: int | None
    scope: frozenset[str]
    cnf: Mapping[str, Any] | None
    sid: str | None
    jti: str
    exp: float

    @property
    def token_type(self) -> Literal["Bearer", "DPoP"]:
        return "DPoP" if self.cnf is not None and "jkt" in self.cnf else "Bearer"

    def claims_dict(self) -> dict[str, Any]:
        """A mutable, JSON-serialisable copy of the claims."""
        result: dict[str, Any] = _thaw(self.claims)
        return result


@dataclass(eq=False, slots=True)
class _Entry:
    verified: VerifiedToken
    until: float  # exp + leeway: the instant the cold path would start refusing
    audiences: frozenset[str]
    kid: str | None
    alg: str
    key: keys.PublicKey
    bound: bool  # cnf present: DPoP / mTLS checks needed
    dpop: bool  # cnf.jkt present: errors use the DPoP challenge


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise ValueError("duplicate claim")
    return obj


def _peek_alg(token: str) -> object:
    """The header's alg, for choosing an error description only (never trusted)."""
    segment = token.split(".", 1)[0]
    try:
        header = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    except (binascii.Error, ValueError, RecursionError):
        return None
    return header.get("alg") if isinstance(header, dict) else None


_JOSE_DESCRIPTIONS: Final[dict[str, str]] = {
    "malformed": "malformed token",
    "unsupported_crit": "unsupported crit header",
    "unknown_kid": "unknown kid",
    "invalid_key": "unknown kid",
    "invalid_signature": "invalid signature",
    "invalid_typ": "not an access token (typ is not at+jwt)",
}


def _describe(exc: jose.JoseError, token: str) -> str:
    """A fixed description per failure; nothing from the token is echoed (header safety)."""
    if exc.code != "alg_not_allowed":
        return _JOSE_DESCRIPTIONS.get(exc.code, "invalid token")
    alg = _peek_alg(token)
    if isinstance(alg, str) and alg.lower() == "none":
        return "alg none: unsigned tokens are refused"
    if isinstance(alg, str) and alg.upper().startswith("HS"):
        return "symmetric alg refused (algorithm confusion)"
    if alg in jose.ALLOWED_ALGORITHMS:
        return "alg does not match the key's algorithm (algorithm confusion)"
    return "alg not allowed"


class TokenVerifier:
    """Verifies access tokens for resource servers and the gateway; see the module doc."""

    def __init__(
        self,
        keyring_or_resolver: KeyRing | jose.KeyResolver,
        store: Store,
        config: TokenConfig,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if isinstance(keyring_or_resolver, KeyRing):
            self._resolve = keyring_or_resolver.resolver()
        else:
            self._resolve = keyring_or_resolver
        self._store = store
        self._config = config
        self._clock = clock
        self._cache: dict[bytes, _Entry] = {}
        self._retention = config.access_ttl + config.leeway + SYNC_OVERLAP
        self.revoked_jtis: dict[str, float] = {}
        """Revoked access-token jtis → when they may be forgotten (all expired by then)."""
        self.revoked_families: dict[str, float] = {}
        """Revoked refresh families (``sid``) → when they may be forgotten."""
        self._sync_mark = 0.0
        self._synced_at: float | None = None
        self._sync_lock = asyncio.Lock()

    @property
    def config(self) -> TokenConfig:
        return self._config

    @property
    def last_sync(self) -> float | None:
        """Clock time of the last successful `sync_revocations` (health checks watch it)."""
        return self._synced_at

    def clear_cache(self) -> None:
        """Forget every verified token (e.g. after an emergency key removal)."""
        self._cache.clear()

    def _error(self, description: str, dpop: bool, *, lapsed: bool = False) -> AuthnError:
        """``invalid_token`` (RFC 6750 §3.1), under the DPoP scheme when DPoP is in play
        (RFC 9449 §7.1) so the client knows which proof to send."""
        error = invalid_token(description)
        error.lapsed = lapsed
        if dpop:
            error.headers["WWW-Authenticate"] = (
                f'DPoP error="invalid_token", error_description="{description}", '
                f'algs="{" ".join(DEFAULT_ALGS)}"'
            )
        return error

    # -- revocations ------------------------------------------------------------------

    def note_revocation(self, jti: str | None = None, family: str | None = None) -> None:
        """Record a revocation made by this process: effective on the very next call."""
        forget_at = self._clock() + self._retention
        if jti is not None:
            self.revoked_jtis[jti] = forget_at
        if family is not None:
            self.revoked_families[family] = forget_at

    async def sync_revocations(self) -> int:
        """Pull revocations other processes stored since the last sync; return how many.

        Entries are kept until every token they can concern has expired
        (revocation time + access_ttl + leeway + `SYNC_OVERLAP`), then pruned.
        """
        async with self._sync_lock:
            return await self._sync_locked()

    async def _sync_locked(self) -> int:
        rows = await self._store.revocations_since(max(0.0, self._sync_mark - SYNC_OVERLAP))
        now = self._clock()
        for ident, revoked_at in rows:
            self._sync_mark = max(self._sync_mark, revoked_at)
            forget_at = revoked_at + self._retention
            if forget_at <= now:
                continue
            family = ident.removeprefix("family:")
            target = self.revoked_families if family != ident else self.revoked_jtis
            target[family] = max(target.get(family, 0.0), forget_at)
        for table in (self.revoked_jtis, self.revoked_families):
            for ident in [i for i, forget_at in table.items() if forget_at <= now]:
                del table[ident]
        self._synced_at = now
        return len(rows)

    def _revoked(self, verified: VerifiedToken) -> bool:
        return verified.jti in self.revoked_jtis or (
            verified.sid is not None and verified.sid in self.revoked_families
        )

    # -- verification -----------------------------------------------------------------

    async def verify(
        self,
        token: str,
        *,
        audience: str | None = None,
        dpop: DPoPCheck | None = None,
        client_cert_sha256: str | None = None,
    ) -> VerifiedToken:
        """Verify an access token presented to `audience` (default: the configured one).

        Pass `dpop` exactly when the request used the ``DPoP`` authorization
        scheme (RFC 9449 §7.1): a DPoP-bound token needs it, an unbound token
        refuses it. `client_cert_sha256` is the ``x5t#S256`` of the TLS client
        certificate, required for certificate-bound tokens (RFC 8705 §3.2).
        Every failure is `AuthnError` ``invalid_token`` (or
        ``invalid_dpop_proof`` from the proof checks), status 401.
        """
        if self._synced_at is None:
            await self._first_sync()
        now = self._clock()
        in_dpop = dpop is not None
        if type(token) is not str or len(token) > MAX_TOKEN_LENGTH or not token.isascii():
            raise self._error("malformed token", in_dpop)
        cache_key = _cache_key(token)
        entry = self._cache.get(cache_key)
        if entry is not None and (now >= entry.until or not self._same_key(entry)):
            self._cache.pop(cache_key, None)
            entry = None
        if entry is None:
            entry = self._authenticate(token, now, in_dpop)
            self._remember(cache_key, entry)
        verified = entry.verified
        in_dpop = in_dpop or entry.dpop
        if (self._config.audience if audience is None else audience) not in entry.audiences:
            raise self._error("wrong audience", in_dpop)
        if self._revoked(verified):
            raise self._error("token revoked", in_dpop)
        if entry.bound or dpop is not None:
            await self._check_binding(token, verified, dpop, client_cert_sha256, now)
        return verified

    async def _first_sync(self) -> None:
        async with self._sync_lock:
            if self._synced_at is None:  # another task may have synced while we waited
                await self._sync_locked()

    def _same_key(self, entry: _Entry) -> bool:
        try:
            return self._resolve(entry.kid, entry.alg) is entry.key
        except (CryptoError, LookupError):
            return False

    def _remember(self, cache_key: bytes, entry: _Entry) -> None:
        size = self._config.cache_size
        if size <= 0:
            return
        # FIFO eviction: every access token has the same lifetime, so the oldest
        # entry is (within the leeway) also the first to expire.
        while len(self._cache) >= size:
            try:
                del self._cache[next(iter(self._cache))]
            except (StopIteration, KeyError, RuntimeError):  # pragma: no cover - racing
                break
        self._cache[cache_key] = entry

    async def _check_binding(
        self,
        token: str,
        verified: VerifiedToken,
        dpop: DPoPCheck | None,
        client_cert_sha256: str | None,
        now: float,
    ) -> None:
        """Sender constraint, on every call: possession cannot be cached."""
        cnf = verified.cnf or {}
        jkt = cnf.get("jkt")
        if jkt is not None:
            if dpop is None:
                raise self._error("DPoP-bound token presented without a DPoP proof", True)
            if dpop.access_token != token:  # the proof must cover this very token (ath)
                dpop = replace(dpop, access_token=token)
            proof_jkt = await verify_proof(
                dpop, store=self._store, now=now, leeway=self._config.leeway
            )
            expected = str(jkt).encode("ascii", "replace")  # no crash on a non-ASCII claim
            if not hmac.compare_digest(proof_jkt.encode("ascii"), expected):
                raise self._error("DPoP proof key does not match the token binding", True)
        elif dpop is not None:
            raise self._error("token is not DPoP-bound but was presented with DPoP", True)
        if X5T_S256 in cnf:
            try:
                check_certificate_binding(verified.claims, client_cert_sha256)
            except AuthnError as exc:
                raise self._error(exc.description, dpop is not None) from None

    def _authenticate(self, token: str, now: float, in_dpop: bool) -> _Entry:
        """Signature, type, issuer and time checks; audience and revocation come after."""
        used: list[tuple[str | None, str, keys.PublicKey]] = []

        def resolve(kid: str | None, alg: str) -> keys.PublicKey:
            key = self._resolve(kid, alg)
            used.append((kid, alg, key))
            return key

        try:
            payload = jose.verify_jws(
                token, key=resolve, typ=ACCESS_TOKEN_TYP, max_length=MAX_TOKEN_LENGTH
            )
            claims = json.loads(payload.decode("utf-8"), object_pairs_hook=_no_duplicates)
        except jose.JoseError as exc:
            raise self._error(_describe(exc, token), in_dpop) from None
        except (ValueError, RecursionError):
            raise self._error("malformed claims", in_dpop) from None

        def fail(description: str, *, lapsed: bool = False) -> NoReturn:
            raise self._error(description, in_dpop or _is_dpop_bound(claims), lapsed=lapsed)

        if not isinstance(claims, dict):
            fail("malformed claims")
        for name in REQUIRED_CLAIMS:
            if name not in claims:
                fail(f"missing required claim {name}")
        audiences = _audiences(claims["aud"])
        if not _well_typed(claims) or audiences is None:
            fail("malformed claims")
        if claims["iss"] != self._config.issuer:
            fail("wrong issuer")
        leeway = self._config.leeway
        exp, iat = claims["exp"], claims["iat"]
        if exp <= now - leeway:
            fail("token expired", lapsed=True)
        if "nbf" in claims and claims["nbf"] > now + leeway:
            fail("token not yet valid (nbf)", lapsed=True)
        if iat > now + leeway:
            fail("token issued in the future (iat)")
        if exp - iat > self._config.access_ttl + leeway:  # keeps revocation pruning sound
            fail("token lifetime exceeds the maximum")
        kid, alg, key = used[-1]
        try:
            frozen = _freeze(claims)
        except RecursionError:  # json.loads nests deeper than Python recursion can follow
            fail("malformed claims")
        cnf = frozen.get("cnf")
        verified = VerifiedToken(
            claims=frozen,
            subject=claims["sub"],
            client_id=claims.get("client_id"),
            acr=claims.get("acr"),
            amr=tuple(claims.get("amr", ())),
            auth_time=None if claims.get("auth_time") is None else int(claims["auth_time"]),
            scope=frozenset(str(claims.get("scope", "")).split()),
            cnf=cnf,
            sid=claims.get("sid"),
            jti=claims["jti"],
            exp=float(exp),
        )
        return _Entry(
            verified, exp + leeway, audiences, kid, alg, key, cnf is not None, "jkt" in (cnf or {})
        )

    async def _inspect(self, token: str) -> VerifiedToken | None:
        """Signature and claims (any audience, no binding check); None if not valid."""
        if type(token) is not str or len(token) > MAX_TOKEN_LENGTH or not token.isascii():
            return None
        try:
            verified = self._authenticate(token, self._clock(), False).verified
        except AuthnError:
            return None
        return None if self._revoked(verified) else verified


def _is_dpop_bound(claims: object) -> bool:
    return (
        isinstance(claims, dict)
        and isinstance(claims.get("cnf"), dict)
        and ("jkt" in claims["cnf"])
    )


def _audiences(aud: object) -> frozenset[str] | None:
    """RFC 7519 §4.1.3: one string or an array of strings."""
    if isinstance(aud, str):
        return frozenset((aud,))
    if isinstance(aud, list) and aud and all(isinstance(a, str) for a in aud):
        return frozenset(aud)
    return None


def _well_typed(claims: Mapping[str, Any]) -> bool:
    optional_str = ("client_id", "acr", "scope", "sid")
    amr, cnf = claims.get("amr", []), claims.get("cnf", {})
    return (
        isinstance(claims["iss"], str)
        and isinstance(claims["sub"], str)
        and bool(claims["sub"])
        and isinstance(claims["jti"], str)
        and 0 < len(claims["jti"]) <= 256
        and all(_number(claims[n]) for n in ("exp", "iat") + (("nbf",) if "nbf" in claims else ()))
        and all(isinstance(claims.get(n, ""), str) for n in optional_str)
        and (claims.get("auth_time") is None or _number(claims["auth_time"]))
        and isinstance(amr, list)
        and all(isinstance(m, str) for m in amr)
        and isinstance(cnf, dict)
        and all(isinstance(v, str) for v in cnf.values())
        # A confirmation method this verifier cannot check must not pass as a bearer token.
        and ("cnf" not in claims or (bool(cnf) and cnf.keys() <= {"jkt", X5T_S256}))
    )


def _check_cnf(cnf: Mapping[str, str] | None) -> dict[str, str] | None:
    if cnf is None:
        return None
    clean = dict(cnf)
    if len(clean) != 1 or not clean.keys() <= {"jkt", X5T_S256}:
        raise ValueError('cnf must be {"jkt": ...} (DPoP) or {"x5t#S256": ...} (mTLS)')
    if not all(isinstance(v, str) and v for v in clean.values()):
        raise ValueError("cnf value must be a non-empty string")
    return clean


class TokenIssuer:
    """The authorization server's side: mint, refresh, revoke and introspect tokens."""

    def __init__(
        self,
        store: Store,
        keyring: KeyRing,
        config: TokenConfig,
        *,
        refresh_pepper: bytes,
        clock: Callable[[], float] = time.time,
        verifier: TokenVerifier | None = None,
    ) -> None:
        """`verifier`: this process's `TokenVerifier`, told of every revocation made
        here so its cache stops honouring the token at once; one is created if omitted."""
        self._store = store
        self._keyring = keyring
        self._config = config
        self._clock = clock
        self._verifier = verifier or TokenVerifier(keyring, store, config, clock=clock)
        self._refresh = RefreshTokens(
            store, refresh_pepper, on_family_revoked=self._note_family_revoked
        )

    def _note_family_revoked(self, family: str) -> None:
        self._verifier.note_revocation(family=family)

    async def issue(
        self,
        *,
        subject: str,
        client_id: str,
        acr: str,
        amr: Sequence[str],
        auth_time: int,
        scope: str = "",
        audience: str | None = None,
        cnf: Mapping[str, str] | None = None,
        family_id: str | None = None,
        with_refresh: bool = True,
        extra: Mapping[str, Any] | None = None,
    ) -> TokenResponse:
        """Mint an access token (and a refresh token starting or joining a family).

        `cnf` binds both to a DPoP key (``{"jkt": thumbprint}``) or a client
        certificate (``{"x5t#S256": ...}``). `family_id` continues an existing
        session (e.g. after step-up); a revoked family is refused. `extra`
        claims may not shadow registered ones.
        """
        if not subject or not client_id or isinstance(amr, str):
            raise ValueError("subject and client_id are required; amr is a list of strings")
        clash = _RESERVED & set(extra or {})
        if clash:
            raise ValueError(f"extra claims may not set {sorted(clash)}")
        if family_id is not None and await self._store.is_family_revoked(family_id):
            raise invalid_grant("session has been revoked")
        grant = RefreshGrant(
            subject=subject,
            client_id=client_id,
            family_id=family_id or new_family_id(),
            acr=acr,
            amr=tuple(amr),
            auth_time=int(auth_time),
            scope=scope,
            audience=audience or self._config.audience,
            cnf=_check_cnf(cnf),
            extra=dict(extra or {}),
        )
        now = self._clock()
        refresh_until = now + self._config.refresh_ttl if with_refresh else None
        return await self._mint(grant, grant.cnf, now, refresh_until)

    async def _mint(
        self,
        grant: RefreshGrant,
        cnf: Mapping[str, str] | None,
        now: float,
        refresh_until: float | None,
    ) -> TokenResponse:
        iat = int(now)
        claims: dict[str, Any] = {
            **grant.extra,
            "iss": self._config.issuer,
            "sub": grant.subject,
            "aud": grant.audience,
            "exp": iat + self._config.access_ttl,
            "iat": iat,
            "jti": secrets.token_urlsafe(16),
            "client_id": grant.client_id,
            "scope": grant.scope,
            "acr": grant.acr,
            "amr": list(grant.amr),
            "auth_time": grant.auth_time,
            "sid": grant.family_id,
        }
        if cnf:
            claims["cnf"] = dict(cnf)
        kid, key = self._keyring.signing_key()
        access = jose.encode_jwt(claims, key, kid=kid, headers={"typ": ACCESS_TOKEN_TYP})
        refresh = None
        if refresh_until is not None:
            refresh = await self._refresh.create(grant, now=now, expires_at=refresh_until)
        return TokenResponse(
            access_token=access,
            token_type="DPoP" if cnf and "jkt" in cnf else "Bearer",
            expires_in=self._config.access_ttl,
            refresh_token=refresh,
            scope=grant.scope,
            acr=grant.acr,
            amr=grant.amr,
        )

    async def refresh(
        self,
        refresh_token: str,
        *,
        client_id: str,
        dpop_jkt: str | None = None,
        client_cert_sha256: str | None = None,
    ) -> TokenResponse:
        """Rotate `refresh_token` (RFC 6749 §6, RFC 9700 §4.14.2); see `authn.refresh`.

        `dpop_jkt` is the thumbprint from the request's verified DPoP proof:
        required and compared for a DPoP-bound family (RFC 9449 §5); for an
        unbound family it binds just the new access token. The new pair keeps
        family, acr, amr, auth_time, scope and the family's absolute expiry.
        """
        now = self._clock()
        grant, family_expiry = await self._refresh.redeem(
            refresh_token,
            client_id=client_id,
            now=now,
            dpop_jkt=dpop_jkt,
            client_cert_sha256=client_cert_sha256,
        )
        cnf = grant.cnf or ({"jkt": dpop_jkt} if dpop_jkt else None)
        return await self._mint(grant, cnf, now, family_expiry)

    async def revoke(
        self, token: str, token_type_hint: str | None = None, *, client_id: str | None = None
    ) -> None:
        """RFC 7009 §2.1: the hinted type first, then the other; silent for bad tokens.

        An access token's jti is revoked until its exp; a refresh token's
        whole family is, and with it every access token carrying its ``sid``.
        With `client_id`, tokens of other clients are left alone (§2.1), still
        silently. Store failures do propagate: "revoked" must not be claimed
        when nothing was written.
        """
        if not isinstance(token, str) or not token:
            return
        if token_type_hint == "refresh_token":  # noqa: S105 - RFC 7009 hint name
            if not await self._refresh.revoke(token, client_id=client_id):
                await self._revoke_access(token, client_id)
        elif not await self._revoke_access(token, client_id):
            await self._refresh.revoke(token, client_id=client_id)

    async def _revoke_access(self, token: str, client_id: str | None) -> bool:
        verified = await self._verifier._inspect(token)
        if verified is None:
            return False
        if client_id is None or verified.client_id == client_id:
            await self._store.revoke_jti(verified.jti, verified.exp, family_id=verified.sid)
            self._verifier.note_revocation(jti=verified.jti)
        return True

    async def introspect(self, token: str) -> dict[str, Any]:
        """RFC 7662 §2.2: ``{"active": false}`` and nothing else unless the token is live.

        An active access token answers with its claims plus ``active`` and
        ``token_type`` (``Bearer`` or ``DPoP``); revocation is checked against
        the store itself, so the answer is authoritative across processes.
        """
        verified = await self._verifier._inspect(token)
        if verified is not None:
            revoked = await self._store.is_jti_revoked(verified.jti) or (
                verified.sid is not None and await self._store.is_family_revoked(verified.sid)
            )
            if not revoked:
                return {**verified.claims_dict(), "active": True, "token_type": verified.token_type}
            return {"active": False}
        active = await self._refresh.introspect(
            token, now=self._clock(), issuer=self._config.issuer
        )
        return active if active is not None else {"active": False}
