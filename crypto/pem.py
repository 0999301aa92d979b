"""PEM armour (RFC 7468), strict: one block, known label, valid base64.

Encrypted PEM (`ENCRYPTED PRIVATE KEY`, legacy `Proc-Type: 4,ENCRYPTED`) is
refused with a clear message: operators decrypt with `openssl pkey` first, so
that no passphrase handling hides in ztgate.
"""

from __future__ import annotations

import base64
import binascii
import re

from crypto.errors import InvalidKey

_BLOCK = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----\r?\n(.*?)\r?\n?-----END \1-----", re.DOTALL)
MAX_PEM = 64 * 1024


def is_pem(data: bytes) -> bool:
    return data.lstrip().startswith(b"-----BEGIN ")


def decode(data: bytes) -> tuple[str, bytes]:
    """Return (label, DER) of the single PEM block in `data`."""
    if len(data) > MAX_PEM:
        raise InvalidKey("PEM input too large")
    blocks = _BLOCK.findall(data)
    if len(blocks) != 1:
        raise InvalidKey("expected exactly one PEM block")
    label_b, body = blocks[0]
    label = label_b.decode("ascii")
    if label == "ENCRYPTED PRIVATE KEY" or b"Proc-Type:" in body:
        raise InvalidKey("encrypted PEM keys are not supported; decrypt with `openssl pkey` first")
    try:
        der = base64.b64decode(b"".join(body.split()), validate=True)
    except (binascii.Error, ValueError):
        raise InvalidKey("PEM body is not valid base64") from None
    if not der:
        raise InvalidKey("empty PEM body")
    return label, der


def encode(label: str, der: bytes) -> bytes:
    b64 = base64.b64encode(der)
    lines = [b64[i : i + 64] for i in range(0, len(b64), 64)]
    head = f"-----BEGIN {label}-----\n".encode()
    tail = f"-----END {label}-----\n".encode()
    return head + b"\n".join(lines) + b"\n" + tail
