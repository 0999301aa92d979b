"""Messages, covered components and the signature base (RFC 9421 §2).

A message is what the HTTP layer hands over: for a request the method, the
target URI as the client addressed it, the header fields in order and the
body; for a response the status, header fields and body. Component values
are derived from it exactly as §2.1-§2.2 say, and `signature_base` builds
the §2.5 string byte for byte.

Implemented components:

- HTTP fields (§2.1), identified by their lower-cased name: every
  instance, stripped of surrounding whitespace (obs-fold replaced by one
  SP), joined with ``", "``; with ``;key="m"`` (§2.1.2) the field is
  parsed as a Dictionary and the member ``m`` re-serialised. ``;req``
  (§2.4) takes the field from the request a response answers.
- Derived components (§2.2): ``@method``, ``@target-uri``, ``@authority``,
  ``@scheme``, ``@request-target``, ``@path``, ``@query``,
  ``@query-param;name=`` and ``@status``; each also with ``;req``.

Not implemented, refused with ``unsupported_component`` rather than guessed:
``;sf`` and ``;bs`` (§2.1.1, §2.1.3), ``;tr`` (trailers, §2.1.4), and any
parameter RFC 9421 does not define.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final
from urllib.parse import quote, unquote_plus, urlsplit

from authn.rfc8941 import (
    Dictionary,
    InnerList,
    Item,
    Params,
    StructuredFieldError,
    parse_dictionary,
    parse_item,
    serialize_inner_list,
    serialize_item,
)
from authn.rfc9421.errors import fail

__all__ = [
    "DERIVED",
    "Component",
    "HTTPRequest",
    "HTTPResponse",
    "Message",
    "component",
    "field_value",
    "signature_base",
]

Headers = tuple[tuple[str, str], ...]
DERIVED: Final = frozenset(
    {
        "@method",
        "@target-uri",
        "@authority",
        "@scheme",
        "@request-target",
        "@path",
        "@query",
        "@query-param",
        "@status",
    }
)
_DEFAULT_PORT: Final = {"http": 80, "https": 443}
MAX_FIELD_VALUE: Final = 16 * 1024


@dataclass(frozen=True)
class HTTPRequest:
    """A request as received: `target_uri` is absolute (``https://host/path?query``)."""

    method: str
    target_uri: str
    headers: Headers = ()
    body: bytes = b""


@dataclass(frozen=True)
class HTTPResponse:
    status: int
    headers: Headers = ()
    body: bytes = b""


Message = HTTPRequest | HTTPResponse


@dataclass(frozen=True)
class Component:
    """A component identifier (§2): a lower-case name plus parameters."""

    name: str
    params: Params = field(default=())

    @property
    def identifier(self) -> str:
        """The serialised identifier, e.g. ``"signature";req;key="sig1"``."""
        try:
            return serialize_item(Item(self.name, self.params))
        except StructuredFieldError:
            fail("malformed_signature", "component identifier cannot be serialised")

    def param(self, key: str) -> object:
        return dict(self.params).get(key)


def component(text: str) -> Component:
    """``"@method"`` or ``@method`` or ``"signature";req;key="sig1"`` → `Component`."""
    if not text.startswith('"'):
        return Component(text)
    try:
        item = parse_item(text, max_length=512)
    except StructuredFieldError:
        raise ValueError(f"not a component identifier: {text!r}") from None
    if not isinstance(item.value, str):
        raise ValueError(f"not a component identifier: {text!r}")
    return Component(item.value, item.params)


def _clean(value: str) -> str:
    """§2.1 steps 2-3 for one field line: obs-fold → SP, strip SP/HTAB."""
    if "\r" in value or "\n" in value:
        value = " ".join(part.strip(" \t") for part in value.replace("\r\n", "\n").split("\n"))
    return value.strip(" \t")


def field_value(headers: Headers, name: str) -> str | None:
    """The §2.1 canonical value of field `name` (case-insensitive), None if absent."""
    lowered = name.lower()
    values = [_clean(v) for k, v in headers if k.lower() == lowered]
    if not values:
        return None
    return ", ".join(values)


def _authority(scheme: str, netloc: str) -> str:
    """RFC 9110 §4.2.3 normal form: lower-case host, no userinfo, no default port."""
    hostport = netloc.rpartition("@")[2]
    host, sep, port = hostport.rpartition(":") if not hostport.endswith("]") else ("", "", "")
    if not sep or not port.isdigit():
        host, port = hostport, ""
    host = host.lower()
    if port and int(port) == _DEFAULT_PORT.get(scheme, -1):
        port = ""
    return host + (":" + port if port else "")


def _form_encode(text: str) -> str:
    """The URL Standard's application/x-www-form-urlencoded percent-encode set, with
    spaces as ``%20`` (§2.2.8): everything but ASCII alphanumerics and ``*-._``."""
    return quote(text, safe="*").replace("~", "%7E")


def _query_param(query: str, name: str) -> str:
    """§2.2.8: decode the query as application/x-www-form-urlencoded, re-encode, pick `name`."""
    found: list[str] = []
    for pair in query.split("&"):
        if not pair:
            continue
        raw_name, _, raw_value = pair.partition("=")
        if _form_encode(unquote_plus(raw_name)) == name:
            found.append(_form_encode(unquote_plus(raw_value)))
    if not found:
        fail("missing_component", "covered query parameter is absent")
    if len(found) > 1:  # one value per identifier: refuse rather than pick one
        fail("missing_component", "covered query parameter occurs more than once")
    return found[0]


def _derived(comp: Component, msg: Message) -> str:
    name = comp.name
    if name == "@status":
        if not isinstance(msg, HTTPResponse):
            fail("missing_component", "@status is only defined for responses")
        if not 100 <= msg.status <= 999:
            fail("missing_component", "response status is not a 3-digit code")
        return f"{msg.status:03d}"
    if not isinstance(msg, HTTPRequest):
        fail("missing_component", f"{name} needs the request (use ;req on a response)")
    if name == "@method":
        return msg.method
    if name == "@target-uri":
        return msg.target_uri
    try:
        parts = urlsplit(msg.target_uri)
    except ValueError:
        fail("missing_component", "request target URI is unusable")
    scheme = parts.scheme.lower()
    if name == "@scheme":
        return scheme
    if name == "@authority":
        return _authority(scheme, parts.netloc)
    path = parts.path or "/"
    query = "?" + parts.query  # "?" alone when the query is empty or absent (§2.2.7)
    if name == "@path":
        return path
    if name == "@query":
        return query
    if name == "@request-target":
        return path + (query if parts.query else "")
    # @query-param (§2.2.8)
    qname = comp.param("name")
    if not isinstance(qname, str):
        fail("malformed_signature", "@query-param needs a string name parameter")
    return _query_param(parts.query, qname)


_FIELD_PARAMS: Final = frozenset({"req", "key"})
_DERIVED_PARAMS: Final = frozenset({"req", "name"})


def _value(comp: Component, msg: Message, request: HTTPRequest | None) -> str:
    keys_used = {k for k, _ in comp.params}
    if comp.param("req") is not None:
        if comp.param("req") is not True:
            fail("malformed_signature", "req must be a boolean true parameter")
        if not isinstance(msg, HTTPResponse) or request is None:
            fail("missing_component", ";req components need the request a response answers")
        msg = request
    if comp.name.startswith("@"):
        if comp.name not in DERIVED or not keys_used <= _DERIVED_PARAMS:
            fail("unsupported_component", "derived component or parameter not supported")
        if comp.name == "@query-param" and "name" not in keys_used:
            fail("malformed_signature", "@query-param needs a name parameter")
        if comp.name != "@query-param" and "name" in keys_used:
            fail("unsupported_component", "name applies to @query-param only")
        return _derived(comp, msg)
    if not keys_used <= _FIELD_PARAMS:
        fail("unsupported_component", "field parameter not supported (sf, bs, tr)")
    if comp.name != comp.name.lower() or not comp.name or " " in comp.name:
        fail("malformed_signature", "field component names must be lower-case field names")
    value = field_value(msg.headers, comp.name)
    if value is None:
        fail("missing_component", "a covered field is absent from the message")
    member_key = comp.param("key")
    if member_key is None:
        return value
    if not isinstance(member_key, str):
        fail("malformed_signature", "key must be a string parameter")
    try:
        members: Dictionary = parse_dictionary(value, max_length=MAX_FIELD_VALUE)
    except StructuredFieldError:
        fail("missing_component", "covered field is not a Dictionary")
    for key, member in members:
        if key == member_key:
            return (
                serialize_inner_list(member)
                if isinstance(member, InnerList)
                else (serialize_item(member))
            )
    fail("missing_component", "covered Dictionary member is absent")


def signature_base(
    message: Message,
    components: Sequence[Component],
    signature_params: InnerList,
    *,
    request: HTTPRequest | None = None,
) -> bytes:
    """The signature base of §2.5, as the bytes that are signed.

    `signature_params` is the inner list of §2.3 (its items are the covered
    components, its parameters ``created``, ``keyid``, ...); it is
    serialised canonically for the ``@signature-params`` line. A component
    covered twice, ``@signature-params`` itself, a value with a line break
    or non-ASCII, or an absent component all fail (§2.5 step 2).
    """
    lines: list[str] = []
    seen: set[str] = set()
    for comp in components:
        ident = comp.identifier
        if ident in seen:
            fail("malformed_signature", "a component is covered more than once")
        if comp.name == "@signature-params":
            fail("malformed_signature", "@signature-params cannot be a covered component")
        seen.add(ident)
        value = _value(comp, message, request)
        if not value.isascii() or "\n" in value or "\r" in value:
            fail("missing_component", "a covered value is not single-line ASCII")
        lines.append(f"{ident}: {value}")
    try:
        params_value = serialize_inner_list(signature_params)
    except StructuredFieldError:
        fail("malformed_signature", "signature parameters cannot be serialised")
    lines.append(f'"@signature-params": {params_value}')
    return "\n".join(lines).encode("ascii")
