"""Every route declares who may call it, and the declarations hold: a route × role matrix
over the whole app (anonymous 401, a role without the permission 403, both problem+json;
a role with it never 401, 403 or 500)."""
from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.routing import Mount, Route

from baseshift.core.access import BUILTIN_ROLES
from baseshift.web.access import UNDECLARED, access_of
from tests.auth_support import bearer, token_for

PUBLIC = {
    ("POST", "/api/v1/auth/login"),
    ("POST", "/api/v1/auth/password"),
    ("POST", "/api/v1/auth/refresh"),
    ("POST", "/api/v1/auth/logout"),
    ("POST", "/api/v1/auth/token"),
    ("GET", "/.well-known/jwks.json"),
    ("GET", "/ui/login"),
    ("POST", "/ui/login"),
    ("POST", "/ui/password"),
    ("POST", "/ui/enrol"),
    ("GET", "/ui/login/oidc"),
    ("GET", "/ui/login/oidc/callback"),
    ("POST", "/api/v1/hooks/{workflow}"),
    ("GET", "/favicon.ico"),
    ("GET", "/health/live"),
    ("GET", "/health/ready"),
    ("MOUNT", "/static"),
}
"""The routes anyone may call, each for a reason its declaration states (the webhook checks
its own HMAC secret, the token endpoint its client's credentials, the OpenID Connect
callback the provider's answer against the browser's signed state cookie). Adding one is a
decision: it must be added here too."""

SIGN_IN_ELSEWHERE = {"oidc": {"issuer": "https://login.example.com", "client_id": "baseshift",
                              "client_secret": "unused", "roles": {"ops": "operator"}}}
"""An OpenID provider configured (never called), so the `oidc` plugin's routes are there."""

ROLES = {role.name: role for role in BUILTIN_ROLES}


def declared_routes(app: Any) -> list[tuple[str, str, Any]]:
    """(method, path template, declaration) of every route of the app."""
    out = []
    for route in app.router.routes:
        if isinstance(route, Route):
            for method in sorted((route.methods or set()) - {"HEAD"}):
                out.append((method, route.path, access_of(route.endpoint)))
        elif isinstance(route, Mount):
            out.append(("MOUNT", route.path, access_of(route.app)))
    return out


async def test_every_route_declares_a_permission_and_only_the_listed_ones_are_public(
        make_client: Callable[..., Any]) -> None:
    async with make_client(extra=SIGN_IN_ELSEWHERE) as (bs, client):
        routes = declared_routes(client._transport.app)  # type: ignore[attr-defined]
    undeclared = [(m, p) for m, p, a in routes if a is None or a.permission == UNDECLARED]
    assert undeclared == []
    public = {(m, p) for m, p, a in routes if a is not None and a.permission is None}
    assert public == PUBLIC
    assert all(a.public_reason for m, p, a in routes if (m, p) in public)


async def test_metrics_are_public_only_when_configured(
        make_client: Callable[..., Any]) -> None:
    """`[plugins.metrics] public = true` opens `GET /metrics` (not its JSON summary) to
    scrapers without a token; by default it needs `metrics:read`, like the summary."""
    opened = {**SIGN_IN_ELSEWHERE, "metrics": {"public": True}}
    async with make_client(extra=opened) as (bs, client):
        routes = declared_routes(client._transport.app)  # type: ignore[attr-defined]
    public = {(m, p) for m, p, a in routes if a is not None and a.permission is None}
    assert public == PUBLIC | {("GET", "/metrics")}
    async with make_client() as (bs, client):
        routes = declared_routes(client._transport.app)  # type: ignore[attr-defined]
    declared = {p: a.permission for m, p, a in routes if p in ("/metrics", "/api/v1/metrics")}
    assert declared == {"/metrics": "metrics:read", "/api/v1/metrics": "metrics:read"}
    assert [name for name, role in ROLES.items() if role.allows("metrics:read")] == ["admin"]


STREAMS = {"/api/v1/workflows/{run_id}/events", "/ui/runs/{run_id}/stream",
           "/api/v1/logs/follow"}
"""Event streams never end while their run (or the log store) may change: only their
refusals are checked."""


async def _values(client: httpx.AsyncClient) -> dict[str, str]:
    started = await client.post("/api/v1/workflows", json={"workflow": "hello"})
    assert started.status_code == 201, started.text
    run_id = started.json()["workflow_id"]
    listed = (await client.get("/api/v1/templates")).json()
    template = listed["templates"][0] if isinstance(listed, dict) else listed[0]
    return {"run_id": run_id, "job_id": "greet", "name": "hello", "workflow": "hello",
            "version": template.get("version", "1.0.0"), "token_id": "0" * 32}


def _path(template: str, values: dict[str, str]) -> str:
    if template.startswith("/api/v1/templates/"):
        values = {**values, "name": "payment.validate"}
    return re.sub(r"\{(\w+)\}", lambda m: values[m.group(1)], template)


@pytest.mark.parametrize("role", [None, *ROLES])
async def test_route_role_matrix(make_client: Callable[..., Any], role: str | None) -> None:
    async with make_client() as (bs, admin):
        values = await _values(admin)
        app = admin._transport.app  # type: ignore[attr-defined]
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="http://localhost") as client:
            failures = []
            for method, template, access in declared_routes(app):
                if method == "MOUNT" or access is None or access.permission is None:
                    continue
                allowed = role is not None and ROLES[role].allows(access.permission)
                if allowed and template in STREAMS:
                    continue
                body = {} if method in ("POST", "PUT") else None
                # a new session each time: signing out (a route too) ends the one it uses
                headers = {} if role is None else bearer(await token_for(bs, role))
                response = await client.request(method, _path(template, values), json=body,
                                                headers=headers)
                status = response.status_code
                if role is None:
                    expected_ok = status == 401
                elif allowed:
                    expected_ok = status not in (401, 403) and status < 500
                else:
                    expected_ok = status == 403
                if not expected_ok or (status in (401, 403) and response.headers.get(
                        "content-type") != "application/problem+json"):
                    failures.append(f"{role} {method} {template} -> {status}")
            assert failures == []


KEY_ROUTES = {("POST", "/api/v1/keys/generate"): "keys:generate",
              ("POST", "/api/v1/encrypt"): "keys:encrypt",
              ("POST", "/api/v1/decrypt"): "keys:decrypt"}
"""The key API's routes, each with its own permission (only `admin` holds them by default)."""


async def test_the_key_routes_each_need_their_own_permission(
        make_client: Callable[..., Any]) -> None:
    async with make_client() as (bs, client):
        routes = declared_routes(client._transport.app)  # type: ignore[attr-defined]
    found = {(m, p): a.permission for m, p, a in routes if (m, p) in KEY_ROUTES}
    assert found == KEY_ROUTES
    assert [r.name for r in BUILTIN_ROLES if any(r.allows(p) for p in KEY_ROUTES.values())] \
        == ["admin"]


CACHE_ROUTES = {("GET", "/api/v1/cache/stats"): "cache:read",
                ("GET", "/api/v1/cache/keys"): "cache:read",
                ("POST", "/api/v1/cache/invalidate"): "cache:admin"}
"""The cache admin API's routes (only `admin` holds their permissions by default)."""


async def test_the_cache_routes_need_the_cache_permissions(
        make_client: Callable[..., Any]) -> None:
    async with make_client() as (bs, client):
        routes = declared_routes(client._transport.app)  # type: ignore[attr-defined]
    found = {(m, p): a.permission for m, p, a in routes if (m, p) in CACHE_ROUTES}
    assert found == CACHE_ROUTES
    assert [r.name for r in BUILTIN_ROLES if any(r.allows(p) for p in CACHE_ROUTES.values())] \
        == ["admin"]


RETENTION_ROUTES = {("POST", "/api/v1/workflows/{run_id}/legal-hold"): "runs:hold",
                    ("DELETE", "/api/v1/workflows/{run_id}/data"): "runs:erase",
                    ("POST", "/api/v1/data-retention/apply-policy"): "retention:apply"}


async def test_retention_routes_need_their_own_permissions_which_only_admins_hold(
        make_client: Callable[..., Any]) -> None:
    async with make_client() as (bs, admin):
        routes = declared_routes(admin._transport.app)  # type: ignore[attr-defined]
    declared = {(m, p): a.permission for m, p, a in routes if (m, p) in RETENTION_ROUTES}
    assert declared == RETENTION_ROUTES
    for permission in RETENTION_ROUTES.values():
        assert [name for name, role in ROLES.items() if role.allows(permission)] == ["admin"]


LOG_ROUTES = {("GET", "/api/v1/logs"): "logs:read",
              ("POST", "/api/v1/logs/query"): "logs:read",
              ("POST", "/api/v1/logs/export"): "logs:read",
              ("GET", "/api/v1/logs/follow"): "logs:read",
              ("GET", "/ui/logs"): "logs:read"}
"""The log store's routes (plugins/logs/): `operator` and `admin` hold `logs:read`."""


async def test_the_log_routes_need_logs_read_which_operators_and_admins_hold(
        make_client: Callable[..., Any]) -> None:
    async with make_client() as (bs, admin):
        routes = declared_routes(admin._transport.app)  # type: ignore[attr-defined]
    declared = {(m, p): a.permission for m, p, a in routes if (m, p) in LOG_ROUTES}
    assert declared == LOG_ROUTES
    assert [name for name, role in ROLES.items() if role.allows("logs:read")] \
        == ["admin", "operator"]


DATABASE_ROUTES = {("GET", "/api/v1/database/performance"): "database:read",
                   ("GET", "/api/v1/database/slow_queries"): "database:read",
                   ("POST", "/api/v1/database/optimize_query"): "database:admin"}
"""The database admin API (plugins/database/): reading needs `database:read`, having a query
explained `database:admin`; only `admin` holds them by default."""


async def test_database_routes_need_their_own_permissions_which_only_admins_hold(
        make_client: Callable[..., Any]) -> None:
    async with make_client(store="sqlite") as (bs, admin):
        routes = declared_routes(admin._transport.app)  # type: ignore[attr-defined]
    declared = {(m, p): a.permission for m, p, a in routes if (m, p) in DATABASE_ROUTES}
    assert declared == DATABASE_ROUTES
    for permission in set(DATABASE_ROUTES.values()):
        assert [name for name, role in ROLES.items() if role.allows(permission)] == ["admin"]


INSIGHT_ROUTES = {("GET", "/api/v1/analytics/insights"): "analytics:read",
                  ("GET", "/ui/insights"): "analytics:read"}


async def test_insights_need_analytics_read_like_the_analytics_api(
        make_client: Callable[..., Any]) -> None:
    """The Insights page and its JSON take the analytics API's permission (every builtin
    role holds it; the matrix above checks 401/403/allowed for each)."""
    async with make_client() as (bs, client):
        routes = declared_routes(client._transport.app)  # type: ignore[attr-defined]
    declared = {(m, p): a.permission for m, p, a in routes if (m, p) in INSIGHT_ROUTES}
    assert declared == INSIGHT_ROUTES
    assert declared[("GET", "/api/v1/analytics/insights")] == next(
        a.permission for m, p, a in routes if p == "/api/v1/analytics/job-success-rate")


@pytest.mark.parametrize("role", [None, *ROLES])
async def test_revealing_secrets_needs_secret_read(make_client: Callable[..., Any],
                                                   role: str | None) -> None:
    """`?reveal=secrets` on a run asks for `secret:read` beside `runs:read`: only a role
    granting it (admin, through `*`) gets the run; the others 403, anonymous 401."""
    async with make_client() as (bs, admin):
        values = await _values(admin)
        app = admin._transport.app  # type: ignore[attr-defined]
        assert "secret:read" in bs.hooks.permissions()
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="http://localhost") as client:
            headers = {} if role is None else bearer(await token_for(bs, role))
            response = await client.get(f"/api/v1/workflows/{values['run_id']}",
                                        params={"reveal": "secrets"}, headers=headers)
    if role is None:
        assert response.status_code == 401
    elif ROLES[role].allows("secret:read"):
        assert response.status_code == 200, response.text
    else:
        assert response.status_code == 403
        assert response.headers["content-type"] == "application/problem+json"


LB_ROUTES = {("GET", "/api/v1/load_balancer/status"): "loadbalancer:read",
             ("POST", "/api/v1/load_balancer/add_server"): "loadbalancer:admin",
             ("POST", "/api/v1/load_balancer/remove_server"): "loadbalancer:admin"}
"""The load balancer's routes (only there when `[plugins.loadbalancer]` is configured)."""


@pytest.mark.parametrize("role", [None, *ROLES])
async def test_load_balancer_route_role_matrix(make_client: Callable[..., Any],
                                               tmp_path: Path, role: str | None) -> None:
    """Each load balancer route needs its own permission, which only `admin` holds: the
    others get 403, anonymous 401; an admin's empty body is refused (422), not forbidden."""
    extra = {"loadbalancer": {"prefix": str(tmp_path / "nginx"), "listen": "18080"}}
    async with make_client(extra=extra) as (bs, admin):
        app = admin._transport.app  # type: ignore[attr-defined]
        declared = {(m, p): a.permission for m, p, a in declared_routes(app)
                    if p.startswith("/api/v1/load_balancer/")}
        assert declared == LB_ROUTES
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="http://localhost") as client:
            headers = {} if role is None else bearer(await token_for(bs, role))
            for (method, path), permission in LB_ROUTES.items():
                body = {} if method == "POST" else None
                response = await client.request(method, path, json=body, headers=headers)
                if role is None:
                    assert response.status_code == 401, (method, path)
                elif ROLES[role].allows(permission):
                    assert response.status_code == (200 if method == "GET" else 422), \
                        response.text
                else:
                    assert response.status_code == 403, (role, method, path)
                    assert response.headers["content-type"] == "application/problem+json"
    for permission in set(LB_ROUTES.values()):
        assert [name for name, r in ROLES.items() if r.allows(permission)] == ["admin"]


ALERT_ROUTES = {("GET", "/api/v1/alerts"): "alerts:read",
                ("POST", "/api/v1/alerts"): "alerts:admin",
                ("GET", "/api/v1/alerts/{name}"): "alerts:read",
                ("PUT", "/api/v1/alerts/{name}"): "alerts:admin",
                ("DELETE", "/api/v1/alerts/{name}"): "alerts:admin",
                ("POST", "/api/v1/alerts/{name}/test"): "alerts:admin"}
"""The alert API (plugins/alerts/): `operator` reads the rules and alerts (webhook targets
shown by host only), only `admin` changes them."""


async def test_alert_routes_need_the_alert_permissions(make_client: Callable[..., Any]) -> None:
    async with make_client() as (bs, client):
        routes = declared_routes(client._transport.app)  # type: ignore[attr-defined]
    declared = {(m, p): a.permission for m, p, a in routes if (m, p) in ALERT_ROUTES}
    assert declared == ALERT_ROUTES
    assert [name for name, role in ROLES.items() if role.allows("alerts:read")] \
        == ["admin", "operator"]
    assert [name for name, role in ROLES.items() if role.allows("alerts:admin")] == ["admin"]
