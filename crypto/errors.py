"""The one family of exceptions `crypto` raises.

Callers catch `CryptoError`; the subclasses exist so that a CLI or an HTTP
handler can say *what* failed without parsing messages. Messages never contain
key material or plaintext.
"""

from __future__ import annotations


class CryptoError(Exception):
    """Base class: every failure raised by `crypto` is one of these."""


class InvalidKey(CryptoError):
    """A key could not be loaded or is not of the expected algorithm or curve."""


class InvalidSignature(CryptoError):
    """A signature or MAC did not verify, or was malformed."""


class InvalidCiphertext(CryptoError):
    """A ciphertext failed authentication (tag, C3) or was malformed."""


class UnsupportedAlgorithm(CryptoError):
    """An algorithm name is unknown or not allowed here."""
