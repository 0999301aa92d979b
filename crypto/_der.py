"""Strict DER for the few structures SM2 needs: SEQUENCE, INTEGER, OCTET STRING.

Why our own: signatures and ciphertexts arrive from the network, and a lax
(BER) parser admits several encodings of one value — malleability an attacker
can use to dodge replay caches keyed on bytes. This parser accepts only the
canonical DER form (X.690 §10) and never reads past its input.
"""

from __future__ import annotations

from crypto.errors import CryptoError

INTEGER = 0x02
OCTET_STRING = 0x04
SEQUENCE = 0x30


def _length(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


def tlv(tag: int, value: bytes) -> bytes:
    return bytes([tag]) + _length(len(value)) + value


def integer(value: int) -> bytes:
    if value < 0:
        raise CryptoError("negative INTEGER")
    body = value.to_bytes(value.bit_length() // 8 + 1, "big")  # keeps a 0x00 sign byte
    return tlv(INTEGER, body)


def sequence(*items: bytes) -> bytes:
    return tlv(SEQUENCE, b"".join(items))


def read_tlv(data: bytes, pos: int) -> tuple[int, bytes, int]:
    """Parse one TLV at `pos`; return (tag, value, next position)."""
    if pos + 2 > len(data):
        raise CryptoError("truncated DER")
    tag, first = data[pos], data[pos + 1]
    pos += 2
    if first < 0x80:
        length = first
    else:
        count = first & 0x7F
        if count == 0 or count > 4 or pos + count > len(data):
            raise CryptoError("bad DER length")
        length = int.from_bytes(data[pos : pos + count], "big")
        if length < 0x80 or data[pos] == 0:
            raise CryptoError("non-minimal DER length")
        pos += count
    end = pos + length
    if end > len(data):
        raise CryptoError("truncated DER")
    return tag, data[pos:end], end


def read_integer(value: bytes) -> int:
    """Decode a non-negative DER INTEGER body, rejecting non-minimal forms."""
    if not value:
        raise CryptoError("empty INTEGER")
    if value[0] & 0x80:
        raise CryptoError("negative INTEGER")
    if len(value) > 1 and value[0] == 0 and not value[1] & 0x80:
        raise CryptoError("non-minimal INTEGER")
    return int.from_bytes(value, "big")


def read_sequence(data: bytes, tags: tuple[int, ...]) -> list[bytes]:
    """Parse `data` as exactly one SEQUENCE whose children have exactly `tags`."""
    tag, body, end = read_tlv(data, 0)
    if tag != SEQUENCE or end != len(data):
        raise CryptoError("expected a single DER SEQUENCE")
    values: list[bytes] = []
    pos = 0
    for want in tags:
        got, value, pos = read_tlv(body, pos)
        if got != want:
            raise CryptoError("unexpected DER tag")
        values.append(value)
    if pos != len(body):
        raise CryptoError("trailing data in DER SEQUENCE")
    return values
