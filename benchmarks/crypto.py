"""ztgate crypto throughput beside `openssl speed`, measured in the same run.

Run: ``.venv/bin/python benchmarks/crypto.py [--seconds N] [--json]``. Targets are
ratios against the OpenSSL CLI on the same machine (machines are noisy). A
measurement, not a test: exit 0 whatever the figures; non-zero only when it cannot
measure (no `openssl` on PATH: 2; ztgate's crypto API unusable: 3).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

# Run as a script, sys.path[0] is benchmarks/, where this file would shadow the
# `crypto` package: drop it before importing ztgate's modules (see _ztgate_rows).
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]

MB = 1_000_000  # 1 MB = 10^6 bytes throughout
BUF = 16 * 1024  # SM3 / SM4 buffer, as `openssl speed -bytes 16384`
MSG = b"\x5a" * 32  # SM2 sign/verify/encrypt message


@dataclass
class Row:
    operation: str
    unit: str
    ztgate: float
    openssl: float | None = None
    note: str = ""

    @property
    def ratio(self) -> float | None:
        return self.ztgate / self.openssl if self.openssl else None


def rate(fn: Callable[[], object], seconds: float) -> float:
    """Calls per second of `fn`, single-threaded, after a warm-up."""
    end = time.perf_counter() + max(0.2, seconds / 10)
    while time.perf_counter() < end:
        fn()
    n, start = 0, time.perf_counter()
    now, end = start, start + seconds
    while now < end:
        fn()
        n += 1
        now = time.perf_counter()
    return n / (now - start)


def _ztgate_rows(seconds: float, after: Callable[[str], None]) -> list[Row]:
    """Measure each item, then call `after(operation)` (runs its baseline right away)."""
    from crypto import sm2, sm3, sm4  # after the sys.path fix above

    key = sm2.SM2PrivateKey.generate()
    pub = key.public_key()
    sig, ct = key.sign(MSG), pub.encrypt(MSG)
    pub.verify(sig, MSG)
    assert key.decrypt(ct) == MSG
    buf, skey = b"\xa5" * BUF, b"\x01" * sm4.KEY_SIZE
    gcm, nonces = sm4.SM4GCM(skey), (i.to_bytes(12, "big") for i in itertools.count(1))
    ctr_block = b"\x00" * sm4.BLOCK_SIZE
    cases: list[tuple[str, Callable[[], object], int]] = [  # (operation, call, bytes per call)
        ("SM2 keygen", sm2.SM2PrivateKey.generate, 0),
        ("SM2 sign (32 B)", lambda: key.sign(MSG), 0),
        ("SM2 verify (32 B)", lambda: pub.verify(sig, MSG), 0),
        ("SM2 encrypt (32 B)", lambda: pub.encrypt(MSG), 0),
        ("SM2 decrypt (32 B)", lambda: key.decrypt(ct), 0),
        ("SM3 (16 KiB)", lambda: sm3.digest(buf), BUF),
        ("SM4-CTR (16 KiB)", lambda: sm4.ctr_crypt(skey, ctr_block, buf), BUF),
        ("SM4-GCM encrypt (16 KiB)", lambda: gcm.encrypt(next(nonces), buf, None), BUF),
    ]
    rows = []
    for op, fn, size in cases:
        print(f"  ztgate {op} ...", file=sys.stderr, flush=True)
        ops = rate(fn, seconds)
        rows.append(Row(op, "MB/s", ops * size / MB) if size else Row(op, "ops/s", ops))
        after(op)
    return rows


def _backend() -> str:
    """Which libcrypto builds ztgate ran on (SM2: ctypes; SM3/SM4: `cryptography`'s)."""
    try:
        from cryptography.hazmat.backends.openssl import backend

        from crypto import selftest

        return f"{selftest.backend()} ({backend.openssl_version_text()})"
    except (ImportError, AttributeError) as exc:
        return f"unknown ({exc!r})"


def _speed(openssl: str, *args: str) -> str | None:
    print(f"  openssl speed {' '.join(args)} ...", file=sys.stderr, flush=True)
    proc = subprocess.run([openssl, "speed", *args], capture_output=True, text=True, check=False)
    return proc.stdout if proc.returncode == 0 else None


def _bytes_rate(out: str | None) -> float | None:
    """Bytes/s from the one-column table after the `type ... 16384 bytes` header.

    OpenSSL prints `203459.49k` (thousands of bytes/s) above 10000 B/s, else plain bytes/s.
    """
    lines = (out or "").splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith("type")), len(lines))
    for line in lines[start + 1 :]:
        if m := re.fullmatch(r"\s*\S.*?\s+([0-9]+(?:\.[0-9]+)?)(k?)\s*", line):
            return float(m[1]) * (1000 if m[2] else 1)
    return None


class Baseline:
    """`openssl speed` figures keyed like ztgate's rows, each run just after ztgate's item
    so that load from other processes (this machine is shared) hits both sides alike."""

    def __init__(self, openssl: str, seconds: int) -> None:
        self.openssl, self.n = openssl, str(seconds)
        self.figures: dict[str, float | None] = {}
        self.gcm_fallback = False

    def _mbps(self, *args: str) -> float | None:
        bps = _bytes_rate(_speed(self.openssl, "-seconds", self.n, "-bytes", str(BUF), *args))
        return None if bps is None else bps / MB

    def after(self, op: str) -> None:
        fig = self.figures
        if op.startswith("SM2 verify"):  # one `openssl speed sm2` gives sign/s and verify/s:
            # the last columns of ` 256 bits SM2 (CurveSM2) 0.0007s 0.0006s 1533.3 1640.4`
            pat = r"^.*SM2.*\s[0-9.]+s\s+[0-9.]+s\s+([0-9.]+)\s+([0-9.]+)\s*$"
            m = re.search(pat, _speed(self.openssl, "-seconds", self.n, "sm2") or "", re.M)
            fig["SM2 sign (32 B)"] = float(m[1]) if m else None
            fig[op] = float(m[2]) if m else None
        elif op.startswith("SM3"):
            fig[op] = self._mbps("-evp", "sm3")
        elif op.startswith("SM4-CTR"):
            fig[op] = self._mbps("-evp", "sm4-ctr")
        elif op.startswith("SM4-GCM"):
            fig[op] = self._mbps("-evp", "sm4-gcm") or self._mbps("-aead", "-evp", "sm4-gcm")
            if fig[op] is None:  # e.g. OpenSSL 3.0 has no SM4-GCM: fall back to SM4-CTR
                self.gcm_fallback, fig[op] = True, fig.get("SM4-CTR (16 KiB)")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=int, default=3, help="time budget per item (default 3)")
    ap.add_argument("--json", action="store_true", help="print a JSON object instead of a table")
    args = ap.parse_args(argv)
    seconds = max(1, args.seconds)  # `openssl speed -seconds` takes whole seconds
    openssl = shutil.which("openssl")
    if openssl is None:
        print("error: `openssl` CLI not found on PATH; it is the baseline", file=sys.stderr)
        return 2
    version = subprocess.run([openssl, "version"], capture_output=True, text=True, check=False)
    meta: dict[str, object] = {
        "python": f"{sys.version.split()[0]} on {platform.platform()}",
        "openssl_cli": version.stdout.strip(),
        "ztgate_backend": _backend(),
        "seconds_per_item": seconds,
        "units": "ops/s; MB/s with 1 MB = 10^6 bytes",
    }
    base = Baseline(openssl, seconds)
    try:
        rows = _ztgate_rows(seconds, base.after)
    except (ImportError, AttributeError, TypeError) as exc:
        print(f"error: ztgate crypto API not usable: {exc!r}", file=sys.stderr)
        return 3
    for row in rows:
        row.openssl = base.figures.get(row.operation)
        if row.operation.startswith("SM4-GCM") and base.gcm_fallback:
            row.note = "baseline is OpenSSL SM4-CTR (not like-for-like): no SM4-GCM in this OpenSSL"
        elif row.openssl is None and row.operation in base.figures:
            row.note = "baseline not available (openssl speed failed or unparsable)"
    notes = [
        "1 MB = 10^6 bytes; single thread; warm-up first; each openssl figure measured right"
        " after ztgate's, in the same run on the same machine.",
        "SM2 sign/verify: ztgate hashes SM3(Z_A || M) per call (Z_A itself is cached per key"
        " and ID); openssl speed re-inits EVP and recomputes Z_A per call, 20-byte message.",
        "ztgate figures include its Python API overhead (input checks, DER parsing, a fresh"
        " cipher context per call); openssl speed -evp hashes with one-shot EVP_Digest but"
        " times ciphers as EVP_EncryptUpdate on one reused context.",
        "SM2 keygen/encrypt/decrypt: ztgate only, openssl speed has no baseline for them.",
        "SM3/SM4 run on `cryptography`'s bundled libcrypto, SM2 on the system one: see the"
        " versions above; where they differ from the CLI's, SM3/SM4 compare different builds.",
    ]
    verify = next(r for r in rows if r.operation.startswith("SM2 verify"))
    if verify.ratio is None:
        target = "SM2 verify: no OpenSSL baseline this run (target >= 50%)"
    else:
        target = f"SM2 verify: ztgate at {verify.ratio:.0%} of OpenSSL (target >= 50%)"
    if args.json:
        rows_out = [{**asdict(r), "ratio": r.ratio} for r in rows]
        doc = {**meta, "rows": rows_out, "notes": notes, "sm2_verify_ratio": verify.ratio}
        print(json.dumps({**doc, "target": target}, indent=2, ensure_ascii=False))
        print(target, file=sys.stderr)
        return 0
    print("\n".join(f"{k}: {v}" for k, v in meta.items()) + "\n")
    head = f"{'operation':<26}{'unit':>6}{'ztgate':>12}{'openssl':>12}{'ztgate/openssl':>16}"
    print(head + "\n" + "-" * len(head))
    for r in rows:
        fmt = "{:,.1f}" if r.unit == "ops/s" else "{:,.2f}"
        theirs = "—" if r.openssl is None else fmt.format(r.openssl)
        ours, ratio = fmt.format(r.ztgate), "—" if r.ratio is None else f"{r.ratio:.2f}"
        mark = " *" if r.note else ""
        print(f"{r.operation:<26}{r.unit:>6}{ours:>12}{theirs:>12}{ratio:>16}{mark}")
    print()
    for r in rows:
        if r.note:
            print(f"* {r.operation}: {r.note}")
    for n in notes:
        print(f"- {n}")
    print("\n" + target)
    return 0


if __name__ == "__main__":
    sys.exit(main())
