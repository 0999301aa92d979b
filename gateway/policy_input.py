"""The policy input document (policy/schema/input-v1.json) for one request.

`request_member` and `route_member` are built first — they are all a deny
before the policy (a bad token, say) needs in its decision-log entry — and
`document` adds identity, device, risk and time. Everything that could make
`policy.contract.check_input` refuse the document is filtered here instead:
credential headers (``authorization``, ``dpop``, ``cookie``…), the device
payload and the edge's own ``x-ztgate-*`` headers never enter it, nor do
headers whose names or values the contract does not allow.
"""

from __future__ import annotations

from typing import Any, Final

from device_fingerprint.assessment import DeviceAssessment
from gateway.context import INTERNAL_PREFIX, SIGNALS_HEADER, RequestContext, parse_query
from gateway.identity import Identity
from policy.contract import INPUT_VERSION
from risk.assessment import RiskAssessment

__all__ = ["device_member", "document", "request_member", "route_member"]

MAX_HEADERS: Final = 64
MAX_HEADER_VALUE: Final = 4096
_EXCLUDED: Final = frozenset(
    {"authorization", "proxy-authorization", "cookie", "dpop", "x-api-key", SIGNALS_HEADER}
)
_NAME_CHARS: Final = frozenset("abcdefghijklmnopqrstuvwxyz0123456789!#$%&'*+.^_`|~-")


def _headers(ctx: RequestContext) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, value in ctx.headers.items():
        if (
            name in _EXCLUDED
            or name.startswith(INTERNAL_PREFIX)
            or not 0 < len(name) <= 128
            or not _NAME_CHARS.issuperset(name)
            or len(value) > MAX_HEADER_VALUE
            or not (value.isprintable() or value.replace("\t", " ").isprintable())
        ):
            continue
        out[name] = value
        if len(out) == MAX_HEADERS:
            break
    return out


def request_member(ctx: RequestContext) -> dict[str, Any] | None:
    """The ``request`` member, or None when the query exceeds the contract's limits."""
    query = parse_query(ctx.query)
    if query is None:
        return None
    return {
        "method": ctx.method,
        "path": ctx.path,
        "host": ctx.host,
        "headers": _headers(ctx),
        "query": query,
        "client_address": ctx.client_address,
        "tls": {
            "ja4": ctx.ja4,
            "client_cert_sha256": ctx.client_cert_sha256,
            "version": None,
        },
    }


def route_member(ctx: RequestContext) -> dict[str, Any]:
    route = ctx.route
    member: dict[str, Any] = {
        "id": route.route_id,
        "api_product": route.api_product,
        "classification": route.classification,
        "environment": route.environment,
    }
    if route.template is not None:
        params = template_params(route.template, ctx.path)
        if params:
            member["params"] = params
    return member


MAX_PARAMS: Final = 16


def template_params(template: str, path: str) -> dict[str, str]:
    """The values of `template`'s ``{name}`` segments in `path` (whole segments, as
    Envoy's URI template matcher binds them); empty when they do not line up or a
    value would break the input contract (so the policy sees no resource at all)."""
    names = template.split("/")
    values = path.split("/")
    if len(names) != len(values):
        return {}
    params: dict[str, str] = {}
    for name, value in zip(names, values, strict=True):
        if name.startswith("{") and name.endswith("}"):
            key = name[1:-1]
            if not 0 < len(key) <= 64 or not 0 < len(value) <= 256 or len(params) >= MAX_PARAMS:
                return {}
            params[key] = value
        elif name != value:
            return {}
    return params


def device_member(device: DeviceAssessment) -> dict[str, Any]:
    """The ``device`` member: the assessment as it is; ``trust`` is the TrustLevel
    value, which input-v1.json's ``device.trust`` enum lists as it is."""
    return device.to_policy_input()


def document(
    request: dict[str, Any],
    route: dict[str, Any],
    identity: Identity,
    device: DeviceAssessment,
    risk: RiskAssessment,
    now: float,
) -> dict[str, Any]:
    return {
        "version": INPUT_VERSION,
        "request": request,
        "identity": identity.to_policy_input(now),
        "device": device_member(device),
        "risk": risk.to_policy_input(),
        "route": route,
        "time": {"now": int(now)},
    }
