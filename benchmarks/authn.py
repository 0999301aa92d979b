"""ztgate authn throughput: token verify (cold and cached), token issue, WebAuthn assertions.

Run: ``.venv/bin/python benchmarks/authn.py [--seconds N] [--json] [--store-dir DIR]``.
Baselines are measured in the same run, just before the figure compared with them
(machines are noisy): the cold token verify is set against the raw SM2 verify that
benchmarks/crypto.py measures (its own `rate` and message, imported from it). Every
async figure runs inside one event loop (one `asyncio.run`). A measurement, not a
test: exit 0 whatever the figures; non-zero only when it cannot measure (3).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import importlib.util
import json
import os
import platform
import ssl
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass
from types import ModuleType
from typing import Any, TypeVar

# Run as a script, sys.path[0] is benchmarks/, where benchmarks/crypto.py would shadow
# the `crypto` package: drop it, and put the repository root first (for `authn`,
# `crypto` and the software authenticator under `tests/authn`).
_HERE = os.path.dirname(os.path.abspath(__file__))
_ROOT = os.path.dirname(_HERE)
sys.path[:] = [_ROOT] + [
    p for p in sys.path if os.path.abspath(p or os.curdir) not in (_HERE, _ROOT)
]

T = TypeVar("T")
CACHED_TARGET = 100_000.0  # cached verifications/s on one core
COLD_TARGET = 0.5  # cold verify >= 0.5 x raw SM2 verify ("within 2x")
TOKEN_BATCH = 200  # fresh tokens minted (untimed) per timed batch
ASSERTION_BATCH = 100  # WebAuthn assertions produced (untimed) per timed batch


@dataclass
class Row:
    operation: str
    ops: float
    """Operations per second."""
    baseline: str | None = None
    """What `ratio` divides by: another row's operation, or a fixed figure."""
    base_ops: float | None = None
    target: float | None = None
    """Minimum `ratio`; None = no target (figure shown for information)."""
    note: str = ""

    @property
    def ratio(self) -> float | None:
        return self.ops / self.base_ops if self.base_ops else None

    @property
    def meets(self) -> bool | None:
        if self.target is None or self.ratio is None:
            return None
        return self.ratio >= self.target


def _crypto_bench() -> ModuleType:
    """benchmarks/crypto.py as a module (its `rate`, `MSG` and `_backend`)."""
    name = "_ztgate_benchmarks_crypto"
    spec = importlib.util.spec_from_file_location(name, os.path.join(_HERE, "crypto.py"))
    if spec is None or spec.loader is None:
        raise ImportError("benchmarks/crypto.py not found")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up in sys.modules
    spec.loader.exec_module(module)
    return module


async def arate(fn: Callable[[], Awaitable[object]], seconds: float) -> float:
    """`benchmarks/crypto.py`'s `rate` for a coroutine function, awaited in this loop."""
    end = time.perf_counter() + max(0.2, seconds / 10)
    while time.perf_counter() < end:
        await fn()
    n, start = 0, time.perf_counter()
    now, end = start, start + seconds
    while now < end:
        await fn()
        n += 1
        now = time.perf_counter()
    return n / (now - start)


async def batched_rate(
    make: Callable[[int], Awaitable[Sequence[T]]],
    use: Callable[[T], Awaitable[object]],
    seconds: float,
    batch: int,
) -> float:
    """Rate of `use` on single-use items: `make` a batch untimed, time `use` on each item.

    One batch warms up; then batches until `seconds` of `use` time have accumulated.
    """
    for item in await make(batch):
        await use(item)
    n, spent = 0, 0.0
    while spent < seconds:
        items = await make(batch)
        start = time.perf_counter()
        for item in items:
            await use(item)
        spent += time.perf_counter() - start
        n += len(items)
    return n / spent


def _filesystem(path: str) -> str:
    """The type of the file system holding `path` (from /proc/self/mounts), for fsync cost."""
    best, kind = "", "unknown"
    try:
        with open("/proc/self/mounts", encoding="utf-8") as fh:
            for line in fh:
                fields = line.split()
                if len(fields) < 3:
                    continue
                mount = fields[1]
                inside = path == mount or path.startswith(mount.rstrip("/") + "/")
                if inside and len(mount) > len(best):
                    best, kind = mount, fields[2]
    except OSError:
        pass
    return kind


def _log(what: str) -> None:
    print(f"  {what} ...", file=sys.stderr, flush=True)


async def _measure(
    bench: ModuleType, seconds: float, store_dir: str
) -> tuple[list[Row], dict[str, Any]]:
    """Every figure, in one event loop. Imports ztgate only now (after the sys.path fix)."""
    from authn.store import open_store
    from authn.tokens import TokenConfig, TokenIssuer, TokenVerifier
    from authn.webauthn import (
        WebAuthnConfig,
        authentication_options,
        registration_options,
        verify_authentication,
        verify_registration,
    )
    from crypto import keys, sm2
    from crypto.keyring import KeyRing
    from tests.authn.soft_authenticator import SoftAuthenticator

    rate: Callable[[Callable[[], object], float], float] = bench.rate
    msg: bytes = bench.MSG
    info: dict[str, Any] = {}
    rows: list[Row] = []

    store = await open_store(f"sqlite://{os.path.join(store_dir, 'authn.db')}")
    try:
        ring = KeyRing()
        ring.generate()  # SM2 (alg SM2SM3), the default
        ring_es = KeyRing()
        ring_es.generate("ec-p256")
        config = TokenConfig()
        cold_config = TokenConfig(cache_size=0)
        pepper = os.urandom(32)
        issuer = TokenIssuer(store, ring, config, refresh_pepper=pepper)
        issuer_es = TokenIssuer(store, ring_es, config, refresh_pepper=pepper)
        login: dict[str, Any] = {
            "subject": "u-bench",
            "client_id": "mobile-app",
            "acr": "urn:ztgate:acr:mfa",
            "amr": ["pwd", "otp"],
            "auth_time": int(time.time()),
            "scope": "accounts:read payments:write",
        }
        token = (await issuer.issue(**login, with_refresh=False)).access_token
        token_es = (await issuer_es.issue(**login, with_refresh=False)).access_token
        info["token_bytes"] = len(token)
        info["token_header"] = json.loads(_b64u(token.split(".")[0]))

        # -- 1. cold verify beside raw SM2 verify ------------------------------------
        key = sm2.SM2PrivateKey.generate()
        pub = key.public_key()
        sig = key.sign(msg)
        pub.verify(sig, msg)
        _log("raw SM2 verify (crypto.sm2, 32 B, as benchmarks/crypto.py)")
        raw_sm2 = rate(lambda: pub.verify(sig, msg), seconds)
        rows.append(Row("SM2 verify, raw (32 B)", raw_sm2, note="crypto.sm2, DER signature"))

        cold = TokenVerifier(ring, store, cold_config)
        await cold.verify(token)
        _log("token verify, cold (cache_size=0, SM2SM3)")
        cold_ops = await arate(lambda: cold.verify(token), seconds)
        rows.append(
            Row(
                "token verify, cold",
                cold_ops,
                "SM2 verify, raw (32 B)",
                raw_sm2,
                COLD_TARGET,
                "SM2SM3; cache_size=0: every call re-checks signature and claims",
            )
        )

        fresh = TokenVerifier(ring, store, config)

        async def mint(n: int) -> list[str]:
            minted = [await issuer.issue(**login, with_refresh=False) for _ in range(n)]
            return [response.access_token for response in minted]

        _log("token verify, cold, a distinct fresh token per call (cache on)")
        fresh_ops = await batched_rate(mint, fresh.verify, seconds, TOKEN_BATCH)
        rows.append(
            Row(
                "token verify, cold, distinct",
                fresh_ops,
                "SM2 verify, raw (32 B)",
                raw_sm2,
                COLD_TARGET,
                "SM2SM3; each token new to the cache (minted untimed), so the miss"
                " path plus the cache insert",
            )
        )

        # What the JWS path cannot avoid: SM2 over the token's signing input (raw r||s).
        head, body, signature = token.split(".")
        signing_input = f"{head}.{body}".encode("ascii")
        raw_sig = _b64u(signature)
        public = ring.public_key(ring.signing_key()[0])
        public.verify(raw_sig, signing_input, encoding="raw")
        _log("SM2 verify of the token's signing input (crypto.keys, raw r||s)")
        rows.append(
            Row(
                "SM2 verify, token input",
                rate(lambda: public.verify(raw_sig, signing_input, encoding="raw"), seconds),
                "SM2 verify, raw (32 B)",
                raw_sm2,
                note=f"crypto.keys over the {len(signing_input)}-byte JWS signing input:"
                " the floor under the cold verify",
            )
        )

        # -- 2. cached verify ------------------------------------------------------
        cached = TokenVerifier(ring, store, config)
        await cached.verify(token)
        _log("token verify, cached (same token, warm cache)")
        cached_ops = await arate(lambda: cached.verify(token), seconds)
        rows.append(
            Row(
                "token verify, cached",
                cached_ops,
                "100,000/s",
                CACHED_TARGET,
                1.0,
                "same token again: SM3 cache key, dict hit, key/audience/revocation checks",
            )
        )

        async def nothing() -> None:
            return None

        _log("await of an empty coroutine (harness + await overhead)")
        empty_ops = await arate(nothing, seconds)
        rows.append(
            Row(
                "await empty coroutine",
                empty_ops,
                note=f"loop + await overhead: {1e6 / empty_ops:.2f} us per call ="
                f" {cached_ops / empty_ops:.0%} of a cached verify",
            )
        )
        info["await_share"] = cached_ops / empty_ops

        # -- ES256 for comparison ----------------------------------------------------
        es_key = keys.generate("ec-p256")
        es_pub = es_key.public_key()
        es_sig = es_key.sign(msg)
        es_pub.verify(es_sig, msg)
        _log("raw ES256 verify (crypto.keys, 32 B)")
        raw_es = rate(lambda: es_pub.verify(es_sig, msg), seconds)
        rows.append(Row("ES256 verify, raw (32 B)", raw_es, note="crypto.keys, DER signature"))
        cold_es = TokenVerifier(ring_es, store, cold_config)
        await cold_es.verify(token_es)
        _log("token verify, cold (cache_size=0, ES256)")
        rows.append(
            Row(
                "token verify, cold, ES256",
                await arate(lambda: cold_es.verify(token_es), seconds),
                "ES256 verify, raw (32 B)",
                raw_es,
                note="for comparison: the same path with a P-256 key ring",
            )
        )

        # -- 3. issue --------------------------------------------------------------
        _log("raw SM2 sign (crypto.sm2, 32 B)")
        raw_sign = rate(lambda: key.sign(msg), seconds)
        rows.append(Row("SM2 sign, raw (32 B)", raw_sign, note="crypto.sm2, DER signature"))
        _log("token issue, access token only")
        rows.append(
            Row(
                "token issue, no refresh",
                await arate(lambda: issuer.issue(**login, with_refresh=False), seconds),
                "SM2 sign, raw (32 B)",
                raw_sign,
                note="claims + SM2SM3 JWS; no store access",
            )
        )
        _log("token issue with refresh token (SQLite INSERT)")
        rows.append(
            Row(
                "token issue + refresh",
                await arate(lambda: issuer.issue(**login), seconds),
                "SM2 sign, raw (32 B)",
                raw_sign,
                note="plus HMAC-SM3 and one SQLite INSERT (autocommit, WAL,"
                " synchronous=FULL: a WAL fsync per token)",
            )
        )

        # -- 4. WebAuthn -----------------------------------------------------------
        cfg = WebAuthnConfig()
        user = await store.create_user("bench-user", "Bench User")
        auth = SoftAuthenticator()  # ES256 passkey, counter +1 per assertion
        challenge_id, options = await registration_options(store, cfg, user=user, now=time.time())
        await verify_registration(
            store,
            cfg,
            user=user,
            challenge_id=challenge_id,
            credential=auth.create(options),
            now=time.time(),
        )

        async def assertions(n: int) -> list[tuple[str, dict[str, Any]]]:
            out = []
            for _ in range(n):
                cid, opts = await authentication_options(store, cfg, user=user, now=time.time())
                out.append((cid, auth.get(opts)))
            return out

        async def verify_assertion(item: tuple[str, dict[str, Any]]) -> object:
            cid, credential = item
            return await verify_authentication(
                store, cfg, challenge_id=cid, credential=credential, now=time.time()
            )

        _log("WebAuthn assertion verify (ES256 passkey, SQLite store)")
        rows.append(
            Row(
                "WebAuthn assertion verify",
                await batched_rate(assertions, verify_assertion, seconds, ASSERTION_BATCH),
                "ES256 verify, raw (32 B)",
                raw_es,
                note="ES256 passkey; challenges issued untimed; timed: take challenge"
                " (DELETE, commit), credential + user SELECTs, py_webauthn checks and"
                " signature, counter UPDATE (commit)",
            )
        )
    finally:
        await store.close()
    return rows, info


def _b64u(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--seconds", type=float, default=3, help="time budget per item (default 3)")
    ap.add_argument("--json", action="store_true", help="print a JSON object instead of a table")
    ap.add_argument(
        "--store-dir",
        default=None,
        help="directory for the temporary SQLite store (default: the system temp dir)",
    )
    args = ap.parse_args(argv)
    seconds = max(0.5, args.seconds)
    try:
        bench = _crypto_bench()
        backend = bench._backend()
        with tempfile.TemporaryDirectory(prefix="ztgate-bench-", dir=args.store_dir) as tmp:
            store_fs = _filesystem(os.path.realpath(tmp))
            rows, info = asyncio.run(_measure(bench, seconds, tmp))
    except Exception as exc:  # a setup or API failure: nothing honest to report
        print(f"error: cannot measure: {exc!r}", file=sys.stderr)
        return 3
    meta: dict[str, object] = {
        "python": f"{sys.version.split()[0]} on {platform.platform()}",
        "openssl": f"{ssl.OPENSSL_VERSION} (Python's ssl)",
        "ztgate_backend": backend,
        "cpus": os.cpu_count(),
        "seconds_per_item": seconds,
        "store": f"SQLite (aiosqlite) in {args.store_dir or tempfile.gettempdir()}, {store_fs}",
        "token": f"{info['token_bytes']} characters, header {info['token_header']}",
        "units": "operations per second, one thread, one event loop",
        "await_overhead_share_of_cached_verify": round(float(info["await_share"]), 3),
    }
    notes = [
        "Cold = TokenVerifier with cache_size=0 verifying one valid token over and over:"
        " every call pays signature, typ/kid/alg, JSON and claim checks, plus the per-call"
        " checks (SM3 cache key, audience, revocation). 'distinct' cross-checks it with a new"
        " token per call and the cache on.",
        "Raw SM2 verify is measured exactly as benchmarks/crypto.py does (its rate() and"
        " 32-byte message), just before the cold figure; 'token input' is the same verify"
        " over the JWS signing input, raw r||s, through crypto.keys.",
        "Cached = one valid token verified repeatedly by one warm TokenVerifier; the harness"
        " awaits verify() in the loop, so 'await empty coroutine' bounds what the loop itself"
        " costs.",
        "Issue + refresh and WebAuthn write to SQLite on the file system named above with"
        " synchronous=FULL: their figures are bounded by its fsync latency.",
        "WebAuthn: one user, one ES256 passkey (tests/authn/soft_authenticator.py); each"
        " assertion answers its own single-use challenge, produced before its timed batch.",
    ]
    share = float(info["await_share"])
    notes.append(
        f"The loop's own await + timing costs {share:.0%} of a cached verify:"
        + (" it dominates that figure." if share >= 0.5 else " it does not dominate it.")
    )
    failed = [r.operation for r in rows if r.meets is False]
    verdict = "all targets met" if not failed else "targets missed: " + ", ".join(failed)
    if args.json:
        out = [{**asdict(r), "ratio": r.ratio, "meets_target": r.meets} for r in rows]
        doc = {**meta, "rows": out, "notes": notes, "verdict": verdict}
        print(json.dumps(doc, indent=2, ensure_ascii=False))
        print(verdict, file=sys.stderr)
        return 0
    print("\n".join(f"{k}: {v}" for k, v in meta.items()) + "\n")
    head = (
        f"{'operation':<30}{'ops/s':>12}  {'compared with':<26}{'ratio':>8}"
        f"{'target':>9}  meets target"
    )
    print(head + "\n" + "-" * len(head))
    for r in rows:
        ratio = "—" if r.ratio is None else f"{r.ratio:.2f}"
        target = "—" if r.target is None else f">= {r.target:g}"
        meets = {True: "yes", False: "no", None: "—"}[r.meets]
        vs = r.baseline or "—"
        print(f"{r.operation:<30}{r.ops:>12,.0f}  {vs:<26}{ratio:>8}{target:>9}  {meets}")
    print()
    for r in rows:
        if r.note:
            print(f"* {r.operation}: {r.note}")
    for n in notes:
        print(f"- {n}")
    print("\n" + verdict)
    return 0


if __name__ == "__main__":
    sys.exit(main())
