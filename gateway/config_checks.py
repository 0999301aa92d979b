"""The checks of a gateway configuration that its JSON Schema cannot express.

References between sections (routes → clusters, listeners → secrets, node
overrides → listeners), unique names and ports, literal IP addresses, TLS on
every non-loopback listener, mTLS routes only where a client CA exists, path
templates Envoy's matcher accepts, and routes that an earlier route would always
match first (unreachable). Each failure names its key path.
"""

from __future__ import annotations

import ipaddress
import re
from typing import TYPE_CHECKING, Final

from gateway.config_schema import GatewayConfigError, key_path

if TYPE_CHECKING:
    from gateway.config import GatewayConfig, Route

RESERVED_PREFIX: Final = "ztgate_"
"""Cluster names the control plane generates itself (the agent's clusters)."""
_TEMPLATE_SEGMENT: Final = re.compile(r"[A-Za-z0-9._~!$&'()*+,;=:@%-]+|\{[a-z_][a-z0-9_]{0,63}\}")


def check_template(where: str, template: str) -> None:
    """Envoy's URI-template matcher: whole segments, literal or ``{name}`` (each name
    once); a trailing slash or an empty segment is refused (it could never match a
    normalised path)."""
    segments = template.split("/")[1:]
    names: set[str] = set()
    for segment in segments:
        if not _TEMPLATE_SEGMENT.fullmatch(segment):
            raise GatewayConfigError(
                where, f"segment {segment[:64]!r} must be literal or one {{name}}"
            )
        if segment.startswith("{"):
            if segment in names:
                raise GatewayConfigError(where, f"variable {segment} appears twice")
            names.add(segment)
    if not names:
        raise GatewayConfigError(where, "has no {variable}; use path instead")


def _literal_prefix(route: Route) -> str | None:
    """What every path this route matches starts with (None for a regex)."""
    if route.match_kind == "regex":
        return None
    if route.match_kind == "template":
        return route.match.split("{", 1)[0]
    return route.match


def _is_loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


def _check_address(where: str, address: str) -> None:
    try:
        ipaddress.ip_address(address)
    except ValueError:
        raise GatewayConfigError(where, f"{address!r} is not an IP address") from None


def check_references(cfg: GatewayConfig) -> None:
    _check_address("control_plane.address", cfg.control_plane.address)
    _check_address("agent.address", cfg.agent.address)
    if cfg.control_plane.xds_port == cfg.control_plane.admin_port:
        raise GatewayConfigError("control_plane.admin_port", "must differ from xds_port")
    for name in [*cfg.certificates, *cfg.trusted_cas]:
        if name in cfg.certificates and name in cfg.trusted_cas:
            raise GatewayConfigError(
                f"secrets.trusted_cas.{name}", "name already used by a certificate"
            )
    seen: dict[str, int] = {}
    for i, listener in enumerate(cfg.listeners):
        where = f"listeners[{i}]"
        _check_address(f"{where}.address", listener.address)
        if listener.name in seen:
            raise GatewayConfigError(
                f"{where}.name", f"duplicates listeners[{seen[listener.name]}]"
            )
        seen[listener.name] = i
        if listener.tls is None:
            if not _is_loopback(listener.address):
                raise GatewayConfigError(f"{where}.tls", "is required on a non-loopback address")
            continue
        if listener.tls.certificate not in cfg.certificates:
            raise GatewayConfigError(
                f"{where}.tls.certificate",
                f"unknown secret {listener.tls.certificate!r} (not in secrets.certificates)",
            )
        ca = listener.tls.client_ca
        if ca is not None and ca not in cfg.trusted_cas:
            raise GatewayConfigError(
                f"{where}.tls.client_ca", f"unknown secret {ca!r} (not in secrets.trusted_cas)"
            )
    for name, cluster in cfg.clusters.items():
        if name.startswith(RESERVED_PREFIX):
            raise GatewayConfigError(
                key_path("clusters", name), "names starting with 'ztgate_' are reserved"
            )
        for j, endpoint in enumerate(cluster.endpoints):
            _check_address(f"clusters.{name}.endpoints[{j}].address", endpoint.address)
    _check_routes(cfg)
    _check_nodes(cfg)


def _check_routes(cfg: GatewayConfig) -> None:
    mtls_possible = any(li.tls is not None and li.tls.client_ca for li in cfg.listeners)
    ids: dict[str, int] = {}
    prefixes: list[int] = []
    same: dict[tuple[str, str], list[int]] = {}
    environments: dict[str, tuple[str, int]] = {}
    for i, route in enumerate(cfg.routes):
        where = f"routes[{i}]"
        if route.id in ids:
            raise GatewayConfigError(f"{where}.id", f"duplicates routes[{ids[route.id]}]")
        ids[route.id] = i
        if route.cluster not in cfg.clusters:
            raise GatewayConfigError(f"{where}.cluster", f"unknown cluster {route.cluster!r}")
        # One cluster, one environment: a sandbox route can never lead to production data.
        env, first = environments.setdefault(route.cluster, (route.environment, i))
        if env != route.environment:
            raise GatewayConfigError(
                f"{where}.environment",
                f"{route.environment} route to cluster {route.cluster!r}, which routes[{first}]"
                f" uses for {env}",
            )
        if route.mtls and not mtls_possible:
            raise GatewayConfigError(f"{where}.mtls", "no listener has tls.client_ca")
        if route.signed and not route.masking:
            # The response to a signed request is signed in ext_proc, which only
            # masked routes pass through (gateway.response_signing).
            raise GatewayConfigError(f"{where}.signed", "needs masking: true")
        _check_reachable(cfg, i, route, prefixes, same)
        if route.match_kind == "prefix":
            prefixes.append(i)
        same.setdefault((route.match_kind, route.match), []).append(i)


def _check_reachable(
    cfg: GatewayConfig,
    i: int,
    route: Route,
    prefixes: list[int],
    same: dict[tuple[str, str], list[int]],
) -> None:
    """Refuse a route that an earlier one always matches first: an earlier prefix of
    its literal start, or the same match, for (at least) the same methods."""
    mine = _literal_prefix(route)
    earlier = list(same.get((route.match_kind, route.match), ()))
    if mine is not None:
        earlier += [j for j in prefixes if mine.startswith(cfg.routes[j].match)]
    for j in sorted(earlier):
        first = cfg.routes[j]
        if first.methods is None or (
            route.methods is not None and set(route.methods) <= set(first.methods)
        ):
            raise GatewayConfigError(
                f"routes[{i}]",
                f"unreachable: routes[{j}] ({first.match_kind} {first.match!r}) matches first",
            )


def _check_nodes(cfg: GatewayConfig) -> None:
    names = {li.name for li in cfg.listeners}
    for node_id, override in cfg.nodes.items():
        for listener_name in override.listener_ports:
            if listener_name not in names:
                raise GatewayConfigError(
                    key_path(key_path(key_path("nodes", node_id), "listener_ports"), listener_name),
                    "unknown listener",
                )
    for node_id in ["", *cfg.nodes]:
        view = cfg.for_node(node_id) if node_id else cfg
        taken: dict[tuple[str, int], str] = {}
        for listener in view.listeners:
            key = (listener.address, listener.port)
            if key in taken:
                where = key_path("nodes", node_id) if node_id else "listeners"
                raise GatewayConfigError(
                    where, f"listeners {taken[key]!r} and {listener.name!r} share port {key[1]}"
                )
            taken[key] = listener.name
