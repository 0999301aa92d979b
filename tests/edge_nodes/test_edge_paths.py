"""Path tricks cannot reach a route other than the one the normalised path selects.

Every request is sent byte for byte as written (no client-side normalisation).
For each one that Envoy lets through, the agent must have been told the same
path the upstream received, that path must be normalised, and the route the
agent was told about must be the one that path selects. Escaped slashes are
refused outright; case differences select nothing (routing is case-sensitive).
"""

from __future__ import annotations

import http.client
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.edge_nodes.conftest import Edge
from tests.edge_nodes.harness import DEFAULT_ROUTES, http_request

REFUSED = 400
NO_ROUTE = 404

CASES: list[tuple[str, str | int]] = [
    ("/public/../admin/x", "admin.ops"),
    ("/public/%2e%2e/admin/x", "admin.ops"),
    ("/public/%2E%2E/admin/x", "admin.ops"),
    ("/public/.%2e/admin/x", "admin.ops"),
    ("/public/%2e./admin/x", "admin.ops"),
    ("/accounts/1/../../admin/x", "admin.ops"),
    ("/accounts/1/balance/../../../admin/x", "admin.ops"),
    ("/public/../../../../admin/x", "admin.ops"),
    ("/./admin/x", "admin.ops"),
    ("//admin/x", "admin.ops"),
    ("/public//x", "public.info"),
    ("/public/./x", "public.info"),
    ("/public///./x", "public.info"),
    ("/public/x/..;/../admin/y", "admin.ops"),  # Envoy drops "..;" as a dot segment
    ("/public/x?next=/../admin", "public.info"),
    ("/accounts/1//balance", "accounts.balance"),
    ("/accounts/1/./balance", "accounts.balance"),
    ("/public/x%2F..%2F..%2Fadmin/y", REFUSED),
    ("/public/x%2f..%2fadmin", REFUSED),
    ("/public/x%5C..%5Cadmin", REFUSED),
    ("/public/x%5c..%5cadmin", REFUSED),
    ("/accounts/1%2F2/balance", REFUSED),
    ("/ADMIN/x", NO_ROUTE),
    ("/Admin/x", NO_ROUTE),
    ("/PUBLIC/../admin/x", "admin.ops"),
    ("/accounts/1/BALANCE", NO_ROUTE),
    ("/accounts/1/balance/", NO_ROUTE),
    ("/admin", NO_ROUTE),
    ("/partner/accounts", NO_ROUTE),  # mTLS route: not on this listener
    ("/public/../partner/accounts", NO_ROUTE),
]


def expected_route(path: str, method: str = "GET") -> str | None:
    """The route the test configuration selects for an already-normalised path."""
    path = path.split("?", 1)[0]
    for route in DEFAULT_ROUTES:
        if route.get("mtls"):
            continue
        if "methods" in route and method not in route["methods"]:
            continue
        if "prefix" in route and path.startswith(route["prefix"]):
            return str(route["id"])
        if "template" in route:
            pattern = re.sub(r"\{[a-z_]+\}", "[^/]+", route["template"])
            if re.fullmatch(pattern, path):
                return str(route["id"])
    return None


def _is_normalised(path: str) -> bool:
    path = path.split("?", 1)[0]
    segments = path.split("/")[1:]
    return (
        path.startswith("/")
        and "//" not in path
        and "." not in segments
        and ".." not in segments
        and not re.search(r"%2[eEfF]|%5[cC]", path)
    )


def _send(edge: Edge, path: str) -> int:
    try:
        return http_request(edge.plain, path)[0]
    except http.client.RemoteDisconnected:
        return REFUSED


@pytest.mark.parametrize(("path", "outcome"), CASES)
def test_path_trick(edge: Edge, path: str, outcome: str | int) -> None:
    edge.clear()
    status = _send(edge, path)
    checks, seen = list(edge.authz.checks), list(edge.upstream.seen)
    if isinstance(outcome, int):
        assert status == outcome, (path, status)
        assert not seen
        if outcome == REFUSED:
            assert not checks
        return
    assert status == 200, (path, status)
    (check,), (upstream,) = checks, seen
    assert check.path == upstream.path  # the agent judged what the upstream got
    assert _is_normalised(upstream.path), upstream.path
    assert check.context["route_id"] == expected_route(upstream.path) == outcome, (
        path,
        upstream.path,
    )


SEGMENTS = st.sampled_from(
    [
        "public",
        "admin",
        "accounts",
        "1",
        "balance",
        "partner",
        "x",
        "..",
        ".",
        "",
        "%2e%2e",
        "%2E.",
        ".%2e",
        "%2e",
        "..;",
        "%2F",
        "%5c",
        "Admin",
        "%70ublic",
        "a%20b",
        ";x",
        "~",
    ]
)


@settings(max_examples=200, deadline=None)
@given(st.lists(SEGMENTS, min_size=1, max_size=6), st.sampled_from(["", "?q=/../admin"]))
def test_every_forwarded_request_is_consistent(edge: Edge, segments: list[str], query: str) -> None:
    """Random combinations of the tricks above, judged by the invariant alone."""
    path = "/" + "/".join(segments) + query
    edge.clear()
    status = _send(edge, path)
    if status != 200:
        assert not edge.upstream.seen, (path, status)
        return
    (check,), (upstream,) = edge.authz.checks, edge.upstream.seen
    assert check.path == upstream.path, path
    assert _is_normalised(upstream.path), (path, upstream.path)
    assert check.context["route_id"] == expected_route(upstream.path), (path, upstream.path)
