"""Random identifiers for the check path, from a per-process buffer of OS randomness.

Every allowed check needs 32 random bytes (the decision id, a UUID4, and the
assertion's ``jti``). Asking the kernel each time is a system call that drops
the GIL, and under load the worker's other thread (the decision-log writer)
then holds the process up to a switch interval (5 ms) before the check goes
on. So randomness is read from ``os.urandom`` (the kernel CSPRNG) 4 KiB at a
time and handed out in slices, each byte used once. A forked child starts
with an empty buffer (``os.register_at_fork``), so parent and child never hand
out the same bytes; the workers are spawned anyway.
"""

from __future__ import annotations

import base64
import os
import threading
from typing import Final

__all__ = ["decision_id", "random_bytes", "token"]

_CHUNK: Final = 4096


class _Pool:
    __slots__ = ("_buffer", "_lock", "_offset")

    def __init__(self) -> None:
        self._buffer = b""
        self._offset = 0
        self._lock = threading.Lock()

    def take(self, n: int) -> bytes:
        if not 0 < n <= _CHUNK:
            raise ValueError(f"take 1 to {_CHUNK} bytes")
        with self._lock:
            end = self._offset + n
            if end > len(self._buffer):
                self._buffer, self._offset, end = os.urandom(_CHUNK), 0, n
            out = self._buffer[self._offset : end]
            self._offset = end
            return out

    def reset(self) -> None:
        self._buffer, self._offset = b"", 0


_pool = _Pool()
os.register_at_fork(after_in_child=_pool.reset)


def random_bytes(n: int) -> bytes:
    """`n` (≤ 4096) bytes from the kernel CSPRNG, never handed out twice."""
    return _pool.take(n)


def decision_id() -> str:
    """A random UUID (version 4, RFC 9562 §5.4) as the decision id: the version and
    variant bits set on pool bytes, formatted as `uuid.UUID` does (a quarter of its cost;
    one per check)."""
    raw = bytearray(_pool.take(16))
    raw[6] = (raw[6] & 0x0F) | 0x40  # version 4
    raw[8] = (raw[8] & 0x3F) | 0x80  # variant 10 (RFC 9562 §4.1)
    x = raw.hex()
    return f"{x[:8]}-{x[8:12]}-{x[12:16]}-{x[16:20]}-{x[20:]}"


def token(n: int = 16) -> str:
    """`n` random bytes, base64url without padding (as ``secrets.token_urlsafe``)."""
    return base64.urlsafe_b64encode(_pool.take(n)).rstrip(b"=").decode("ascii")
