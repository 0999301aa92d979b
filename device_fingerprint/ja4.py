"""JA4 TLS client fingerprints: parse one, and name the TLS stack family behind it.

JA4 (FoxIO, technical_details/JA4.md) is ``a_b_c``:

* ``a`` — protocol (``t`` TCP, ``q`` QUIC, ``d`` DTLS), TLS version (``13``, ``12``…),
  ``d`` if SNI names a domain / ``i`` if not, two-digit cipher count, two-digit
  extension count, first and last character of the first ALPN value (``h2``,
  ``h1`` for http/1.1, ``00`` when there is no ALPN);
* ``b`` — first 12 hex of SHA-256 of the sorted cipher-suite list (GREASE removed);
* ``c`` — the same over sorted extensions and the signature algorithms.

A TLS library sends the same cipher list whatever the application, so ``b``
names the *stack*: BoringSSL in Chromium, NSS in Firefox, Apple's stack, or the
OpenSSL / Go / Java / Node defaults that scripts use. The table below is small
on purpose — families, not versions — and every row has a source:

================ ============ ================================================================
family           ``b``        source
================ ============ ================================================================
chromium         8daaf6152771 FoxIO ja4plus-mapping.csv (Chromium); measured here: Chromium 156
firefox          5b57614c22b0 published Firefox/NSS captures (``t13d1715h2``, ``t13d1717h2``)
apple            a09f3c656075 published Safari 16-18 and iOS CFNetwork captures (``t13d2014h2``)
python           85036bcba153 FoxIO mapping (Python); measured here: urllib, requests, aiohttp
openssl          e8f1e7e78f70 measured here: curl 7.88 and ``openssl s_client`` (OpenSSL 3 defaults)
gnutls           723694b0fccc measured here: wget 1.21
node             a33745022dd6 measured here: Node.js 20 ``https``
java             db35923f8641 measured here: Java 17 ``java.net.http.HttpClient``
go               9dc949149365 FoxIO mapping (GoLang; Go crypto/tls before 1.22)
================ ============ ================================================================

"Measured here" means through Envoy's own JA4 (``%TLS_JA4_FINGERPRINT%``, the
value the edge supplies); ``tests/device/test_ja4_real_clients.py`` repeats the
measurement. A TLS-intercepting corporate proxy re-originates TLS, so its
users show the proxy's stack: an operator who must serve them can drop
``tls:`` from `DeviceConfig.suspicious_anomalies` and let the risk score weigh it.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Final

__all__ = ["BROWSER_FAMILIES", "FAMILIES", "SCRIPTING_FAMILIES", "Ja4", "parse_ja4"]

FAMILIES: Final[dict[str, str]] = {
    "8daaf6152771": "chromium",
    "5b57614c22b0": "firefox",
    "a09f3c656075": "apple",
    "85036bcba153": "python",
    "e8f1e7e78f70": "openssl",
    "723694b0fccc": "gnutls",
    "a33745022dd6": "node",
    "db35923f8641": "java",
    "9dc949149365": "go",
}
BROWSER_FAMILIES: Final = frozenset({"chromium", "firefox", "apple"})
SCRIPTING_FAMILIES: Final = frozenset(set(FAMILIES.values()) - BROWSER_FAMILIES)

_JA4: Final = re.compile(
    r"([tqd])(1[0-3]|s[23]|00)([di])(\d\d)(\d\d)([0-9A-Za-z]{2})_([0-9a-f]{12})_([0-9a-f]{12})"
)


@dataclass(frozen=True, slots=True)
class Ja4:
    protocol: str
    version: str
    sni: bool
    alpn: str
    ciphers: str
    """The ``b`` part: digest of the cipher-suite list."""
    family: str | None
    """The stack family `FAMILIES` names, or None when the table doesn't know it."""

    @property
    def offers_h2(self) -> bool:
        """Browsers always offer HTTP/2 (or HTTP/3 over QUIC) in ALPN."""
        return self.alpn in ("h2", "h3")


@functools.lru_cache(maxsize=4096)
def parse_ja4(value: str | None) -> Ja4 | None:
    """Parse a JA4 string; None when absent or not a JA4 (the edge sent nothing usable).
    Cached: a fleet's clients share a few hundred JA4s (bounded; values are 36 chars)."""
    if not value or len(value) != 36:
        return None
    m = _JA4.fullmatch(value)
    if m is None:
        return None
    protocol, version, sni, _, _, alpn, ciphers, _ = m.groups()
    return Ja4(protocol, version, sni == "d", alpn, ciphers, FAMILIES.get(ciphers))
