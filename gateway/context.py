"""One ext_authz CheckRequest as the pipeline sees it: `RequestContext`.

`parse_check_request` reads exactly what Envoy sends (envoy.service.auth.v3,
``attributes``) and checks it against the shapes the policy input document
requires (policy/schema/input-v1.json), so a request the contract would
refuse is refused here, with a reason, before any work is done:

- route facts from ``context_extensions`` (set per route by the control plane):
  ``route_id``, ``api_product``, ``classification``, ``mtls`` (``"true"`` /
  ``"false"``), ``environment`` (absent: ``production``; or ``sandbox``). No
  ``route_id`` → ``route:missing``;
- method, path (query and fragment split off; a path Envoy failed to normalise,
  with dot segments, is refused), host (lower-cased), client address (an IP);
- the client certificate (``attributes.source.certificate``, URL-encoded PEM,
  Envoy's ``include_peer_certificate``), required on mTLS routes, converted to DER;
- request headers (lower-case names; Envoy joins repeated headers with commas).

Nothing here verifies a credential: the pipeline does.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import parse_qs, unquote

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from policy.contract import CLASSIFICATIONS, ENVIRONMENTS

__all__ = [
    "INTERNAL_PREFIX",
    "RequestContext",
    "RequestRejected",
    "RouteFacts",
    "decode_signals",
    "parse_check_request",
    "parse_query",
]

INTERNAL_PREFIX: Final = "x-ztgate-"
"""Headers only the edge may set: any client copy is removed or overwritten."""
JA4_HEADER: Final = "x-ztgate-ja4"
SIGNALS_HEADER: Final = "x-device-signals"
MAX_PATH: Final = 2048
MAX_CERT_PEM: Final = 16 * 1024
_METHOD: Final = re.compile(r"[A-Z]{1,16}")
_PATH: Final = re.compile(r"/[^\x00-\x20\x7f?#]*")
_HOST: Final = re.compile(r"[a-z0-9.:\[\]-]{1,262}")
_ROUTE_ID: Final = re.compile(r"[A-Za-z0-9._:-]{1,128}")
_JA4: Final = re.compile(r"[A-Za-z0-9_]{1,128}")
_B64URL: Final = re.compile(r"[A-Za-z0-9_-]*={0,2}")
_DOT_SEGMENT: Final = re.compile(r"/\.{1,2}(?:/|$)")
_CLASSIFICATIONS: Final = frozenset(CLASSIFICATIONS)


class RequestRejected(Exception):
    """The request cannot be judged; `reason` is the machine-readable deny reason."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class RouteFacts:
    """What the control plane says about the matched route."""

    route_id: str
    api_product: str
    classification: str
    mtls: bool
    signed: bool = False
    """Requests must carry an RFC 9421 signature (the body comes with the check)."""
    template: str | None = None
    """The route's URI template (``/open/v1/accounts/{account_id}/balances``), if any:
    its variables become the policy input's ``route.params``."""
    environment: str = "production"
    """``production`` or ``sandbox`` (the policy input's ``route.environment``)."""


@dataclass(frozen=True, slots=True)
class RequestContext:
    method: str
    path: str
    """Without query or fragment."""
    query: str
    """The raw query string (without ``?``)."""
    host: str
    scheme: str
    client_address: str
    headers: Mapping[str, str]
    """Every header Envoy forwarded, lower-case names (pseudo-headers included)."""
    route: RouteFacts
    client_cert_der: bytes | None
    ja4: str | None
    body: bytes | None = None
    """The request body, on signed routes only (Envoy's ``with_request_body``)."""

    @property
    def target_uri(self) -> str:
        """The absolute target URI (RFC 9421 ``@target-uri``), query included."""
        return f"{self.scheme}://{self.host}{self.path}" + (f"?{self.query}" if self.query else "")

    @property
    def url(self) -> str:
        """The URI the client addressed, as DPoP's ``htu`` is checked (RFC 9449 §4.3)."""
        return f"{self.scheme}://{self.host}{self.path}"

    @property
    def client_cert_sha256(self) -> str | None:
        """Lower-case hex SHA-256 of the DER client certificate (policy input)."""
        der = self.client_cert_der
        return None if der is None else hashlib.sha256(der).hexdigest()

    def internal_headers(self) -> tuple[str, ...]:
        """Names of the ``x-ztgate-*`` headers that arrived with the request."""
        return tuple(name for name in self.headers if name.startswith(INTERNAL_PREFIX))

    def client_hints(self) -> dict[str, str]:
        """The ``sec-ch-ua*`` headers (User-Agent Client Hints)."""
        return {k: v for k, v in self.headers.items() if k.startswith("sec-ch-ua")}


def _route(extensions: Mapping[str, str]) -> RouteFacts:
    route_id = extensions.get("route_id")
    if not route_id:
        raise RequestRejected("route:missing")
    product = extensions.get("api_product", "")
    classification = extensions.get("classification", "")
    mtls = extensions.get("mtls", "false")
    signed = extensions.get("signed", "false")
    environment = extensions.get("environment", "production")
    if (
        _ROUTE_ID.fullmatch(route_id) is None
        or _ROUTE_ID.fullmatch(product) is None
        or classification not in _CLASSIFICATIONS
        or mtls not in ("true", "false")
        or signed not in ("true", "false")
        or environment not in ENVIRONMENTS
    ):
        raise RequestRejected("route:invalid")
    template = extensions.get("path_template") or None
    if template is not None and (len(template) > MAX_PATH or not template.startswith("/")):
        raise RequestRejected("route:invalid")
    return RouteFacts(
        route_id, product, classification, mtls == "true", signed == "true", template, environment
    )


def _split_path(raw: str) -> tuple[str, str]:
    path, _, query = raw.partition("?")
    query = query.partition("#")[0]
    path = path.partition("#")[0]
    if (
        len(path) > MAX_PATH
        or _PATH.fullmatch(path) is None
        or _DOT_SEGMENT.search(path) is not None
    ):
        raise RequestRejected("request:invalid_path")
    return path, query


@functools.lru_cache(maxsize=4096)
def _address(raw: str) -> str:
    """The client address, canonical; cached (clients send many requests, and
    `ipaddress` parsing costs about as much as the rest of this module)."""
    try:
        address = ipaddress.ip_address(raw)
    except ValueError:
        raise RequestRejected("request:invalid_client_address") from None
    if isinstance(address, ipaddress.IPv6Address) and address.scope_id:
        raise RequestRejected("request:invalid_client_address")
    return str(address)


@functools.lru_cache(maxsize=1024)
def _certificate_der(encoded: str) -> bytes:
    """DER of the one certificate in Envoy's URL-encoded PEM; cached (a partner
    presents the same certificate on every request)."""
    if len(encoded) > 3 * MAX_CERT_PEM:
        raise RequestRejected("tls:invalid_client_certificate")
    try:
        pem = unquote(encoded, errors="strict")
        cert = x509.load_pem_x509_certificate(pem.encode("ascii"))
    except (ValueError, UnicodeError):
        raise RequestRejected("tls:invalid_client_certificate") from None
    return cert.public_bytes(Encoding.DER)


def parse_check_request(request: Any) -> RequestContext:
    """The `RequestContext` of an ``envoy.service.auth.v3.CheckRequest``.

    Raises `RequestRejected` for anything the pipeline must not judge.
    """
    attributes = request.attributes
    route = _route(attributes.context_extensions)
    http = attributes.request.http
    method = http.method
    if _METHOD.fullmatch(method) is None:
        raise RequestRejected("request:invalid_method")
    path, query = _split_path(http.path)
    host = http.host.lower()
    if _HOST.fullmatch(host) is None:
        raise RequestRejected("request:invalid_host")
    source = attributes.source
    client_address = _address(source.address.socket_address.address)
    cert_der = None
    if source.certificate:
        cert_der = _certificate_der(source.certificate)
    if route.mtls and cert_der is None:
        raise RequestRejected("tls:client_certificate_required")
    # One copy into a dict: the pipeline reads and iterates the headers several times,
    # and each pass over the protobuf map costs several times a pass over a dict.
    forwarded = http.headers
    headers = {name: forwarded[name] for name in forwarded}
    ja4 = headers.get(JA4_HEADER)
    if ja4 is not None and _JA4.fullmatch(ja4) is None:
        ja4 = None
    scheme = http.scheme.lower()
    return RequestContext(
        method=method,
        path=path,
        query=query,
        host=host,
        scheme=scheme if scheme in ("https", "http") else "https",
        client_address=client_address,
        headers=headers,
        route=route,
        client_cert_der=cert_der,
        ja4=ja4,
        body=(http.raw_body or http.body.encode("utf-8", "surrogateescape"))
        if route.signed
        else None,
    )


def parse_query(query: str) -> dict[str, list[str]] | None:
    """Decoded query parameters within the policy contract's limits, or None."""
    if not query:
        return {}
    try:
        parsed = parse_qs(query, keep_blank_values=True, max_num_fields=64, errors="strict")
    except (ValueError, UnicodeError):
        return None
    for key, values in parsed.items():
        if len(key) > 256 or len(values) > 32 or any(len(v) > 2048 for v in values):
            return None
    return parsed


def decode_signals(value: str | None, max_bytes: int) -> bytes | None:
    """The device collector's payload from ``x-device-signals`` (base64url), or None
    when absent, malformed or larger than `max_bytes` once decoded."""
    if not value or len(value) > (max_bytes * 4) // 3 + 4 or _B64URL.fullmatch(value) is None:
        return None
    try:
        return base64.urlsafe_b64decode(value.rstrip("=") + "=" * (-len(value.rstrip("=")) % 4))
    except (binascii.Error, ValueError):
        return None
