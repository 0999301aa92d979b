"""HTTP message signatures (RFC 9421): what verifying a signed write and signing its
response cost, against the bare signature operation measured in the same run.

Run: ``.venv/bin/python benchmarks/httpsig.py [--seconds N] [--json]``.

For each partner key type (SM2, P-256):

- ``raw verify`` — `crypto.keys.PublicKey.verify` of a signature base (the floor);
- ``verify_request (in-process nonce set)`` — the checklist below with nonces
  kept in a Python set, to separate the verifier's own cost from the store's;
- ``verify_request (SQLite nonce store)`` — the whole checklist of `authn.rfc9421.signatures` on a
  signed 1 KiB payment request: field parsing, JWKS lookup, signature base,
  signature, SHA-256 Content-Digest, and the nonce write into a real SQLite
  authn store (every request carries a fresh nonce);
- ``raw sign`` and ``sign_response`` — the same pair on the response side.

Ratios are ``ops / baseline ops``. Wall-clock and process CPU time are both
printed, with the load average: on a shared machine only same-run ratios count.
A measurement, not a test: exit 0 whatever the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass

_HERE = os.path.dirname(os.path.abspath(__file__))
_ROOT = os.path.dirname(_HERE)
sys.path[:] = [_ROOT] + [
    p for p in sys.path if os.path.abspath(p or os.curdir) not in (_HERE, _ROOT)
]

from authn import rfc9530  # noqa: E402
from authn.rfc9421 import (  # noqa: E402
    AuthnStoreReplay,
    HTTPRequest,
    HTTPResponse,
    VerifiedSignature,
    sign_request,
    sign_response,
    verify_request,
)
from authn.store import Store, open_store  # noqa: E402
from crypto import keys  # noqa: E402


@dataclass
class Row:
    key: str
    operation: str
    ops: float
    cpu_per_op_us: float
    wall_per_op_us: float
    baseline: str | None = None
    ratio: float | None = None


async def _measure(
    fn: Callable[[int], Awaitable[None]], seconds: float, limit: int | None
) -> tuple[int, float, float]:
    n, wall0, cpu0 = 0, time.perf_counter(), time.process_time()
    while time.perf_counter() - wall0 < seconds and (limit is None or n < limit):
        await fn(n)
        n += 1
    return n, time.perf_counter() - wall0, time.process_time() - cpu0


def _row(key: str, op: str, n: int, wall: float, cpu: float) -> Row:
    return Row(key, op, n / wall, cpu / n * 1e6, wall / n * 1e6)


class _SetReplay:
    """The verifier's cost without the store's: nonces in a set (one process only)."""

    def __init__(self) -> None:
        self.seen: set[str] = set()

    async def remember(self, nonce_key: str, expires_at: float) -> bool:
        if nonce_key in self.seen:
            return False
        self.seen.add(nonce_key)
        return True


BODY = (b'{"instructedAmount":{"currency":"CNY","amount":"100.00"},"note":"' + b"x" * 960)[
    :1023
] + b"}"


async def _one(alg: str, store: Store, seconds: float) -> list[Row]:
    key = keys.generate(alg)  # type: ignore[arg-type]
    public = key.public_key()
    jwks = {"keys": [{**public.to_jwk(), "kid": "partner-1"}]}
    now = int(time.time())
    headers = (
        ("Authorization", "DPoP eyJhbGciOiJTTTJTTTMifQ.e30.c2ln"),
        ("Content-Type", "application/json"),
        ("Content-Digest", rfc9530.content_digest(BODY)),
    )
    plain = HTTPRequest("POST", "https://api.bank.example/v1/payments", headers, BODY)
    signed: list[HTTPRequest] = []  # signed before timing: each needs its own nonce
    for i in range(int(2000 * max(seconds, 0.5))):
        h = sign_request(plain, key=key, keyid="partner-1", created=now, nonce=f"{alg}-{i}")
        signed.append(
            HTTPRequest(plain.method, plain.target_uri, (*headers, *h.as_headers()), BODY)
        )
    message = b"x" * 400  # about one signature base
    sig = key.sign(message, encoding="raw")
    replay = AuthnStoreReplay(store)
    verified: list[VerifiedSignature] = []
    response = HTTPResponse(201, (("Content-Type", "application/json"),), b'{"paymentId":"p-1"}')

    async def raw_verify(_: int) -> None:
        public.verify(sig, message, encoding="raw")

    async def full_verify(i: int) -> None:
        verified.append(await verify_request(signed[i], jwks=jwks, replay_store=replay, now=now))

    async def raw_sign(_: int) -> None:
        key.sign(message, encoding="raw")

    async def full_sign(_: int) -> None:
        sign_response(
            response,
            request=signed[0],
            request_signature=verified[0],
            key=key,
            keyid="edge",
            created=now,
        )

    memory = _SetReplay()

    async def memory_verify(i: int) -> None:
        await verify_request(signed[i], jwks=jwks, replay_store=memory, now=now)

    rows: list[Row] = []
    for base_fn, base_name, fn, name in (
        (raw_verify, "raw verify", memory_verify, "verify_request (in-process nonce set)"),
        (raw_verify, "raw verify", full_verify, "verify_request (SQLite nonce store)"),
        (raw_sign, "raw sign", full_sign, "sign_response"),
    ):
        base = _row(alg, base_name, *await _measure(base_fn, seconds, None))
        row = _row(alg, name, *await _measure(fn, seconds, len(signed)))
        row.baseline, row.ratio = base.operation, row.ops / base.ops
        rows += [base, row]
    return rows


async def run(seconds: float) -> list[Row]:
    with tempfile.TemporaryDirectory() as tmp:
        store = await open_store(f"sqlite://{tmp}/authn.db")
        try:
            return [row for alg in ("sm2", "ec-p256") for row in await _one(alg, store, seconds)]
        finally:
            await store.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    load = os.getloadavg()
    rows = asyncio.run(run(args.seconds))
    if args.json:
        print(json.dumps({"loadavg": load, "rows": [asdict(r) for r in rows]}, indent=2))
        return 0
    print(f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; {args.seconds:g} s per figure")
    print(f"{'key':8} {'operation':38} {'ops/s':>9} {'CPU µs/op':>10} {'wall µs/op':>11}  ratio")
    for r in rows:
        ratio = f"{r.ratio:.2f} x {r.baseline}" if r.ratio is not None else ""
        print(
            f"{r.key:8} {r.operation:38} {r.ops:9.0f} {r.cpu_per_op_us:10.0f} "
            f"{r.wall_per_op_us:11.0f}  {ratio}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
