"""Every route says who may call it: `@requires(permission)` or `@public(reason)`.

The declaration is data on the view (`view.__access__`) as well as the check, so a meta-test
can list every route of the app and fail on one that declares nothing, and the OpenAPI
document can say what each operation needs. The check itself is the plugins': the
`authenticate` hook found the actor (web/authn.py, before routing) and `authorize` hooks
decide (core/access.py).
"""
from __future__ import annotations

import functools
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from starlette.requests import HTTPConnection
from starlette.routing import BaseRoute, Mount, Route, WebSocketRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from baseshift.core import audit
from baseshift.core.access import (
    ANALYTICS_READ,
    ANONYMOUS,
    LOGS_READ,
    SERVER,
    Actor,
    Permission,
    Resource,
)
from baseshift.core.errors import BaseShiftError, Forbidden, Unauthorized
from baseshift.core.stash import StashKey

from .problems import problem
from .requests import baseshift_of

log = logging.getLogger("baseshift.web")

F = TypeVar("F", bound=Callable[..., Any])

ResourceOf = Callable[[Any], Awaitable[Resource]]
"""How a view names what it acts on (a run's workflow, a template), from its request."""

ACTOR_KEY = "baseshift.actor"
"""Where the authentication middleware leaves the request's `Actor` in the ASGI scope."""


@dataclass(frozen=True, slots=True)
class Access:
    """What a view declared: the permission it needs and how to find its resource, or why
    it is public (`permission` None)."""

    permission: str | None
    resource: ResourceOf | None = None
    public_reason: str = ""


def actor_of(conn: HTTPConnection) -> Actor:
    """The actor the request was authenticated as (anonymous when no plugin knew it)."""
    actor = conn.scope.get(ACTOR_KEY)
    return actor if isinstance(actor, Actor) else ANONYMOUS


async def resource_of(conn: HTTPConnection, access: Access) -> Resource:
    return await access.resource(conn) if access.resource is not None else SERVER


async def check(conn: HTTPConnection, permission: str, resource: Resource = SERVER) -> Actor:
    """The request's actor if it may use `permission` on `resource`: otherwise 401 for an
    anonymous request, 403 for an authenticated one lacking the grant."""
    actor = actor_of(conn)
    if await baseshift_of(conn).hooks.authorize(actor, permission, resource):
        return actor
    if not actor.authenticated:
        raise Unauthorized(f"sign in to use {conn.url.path}",
                           hint="send Authorization: Bearer <access or API token>; get one "
                                "from POST /api/v1/auth/login or `baseshift tokens create`")
    what = f" on {resource.kind} '{resource.name}'" if resource.name else ""
    await audit.record(baseshift_of(conn).store, [audit.entry(
        "access.denied", f"{resource.kind}:{resource.name}", audit.DENIED,
        permission=permission, path=conn.url.path[:200])])
    raise Forbidden(f"{actor.name} lacks the permission {permission}{what}",
                    hint="ask an administrator for a role that grants it",
                    details={"permission": permission})


def requires(permission: str | Permission, resource: ResourceOf | None = None
             ) -> Callable[[F], F]:
    """Declare and check the permission a view needs; `resource` finds what the request
    acts on, so grants limited to some workflows apply (without it: the server)."""
    name = permission if isinstance(permission, str) else permission.name
    return _declare(Access(name, resource))


def public(reason: str) -> Callable[[F], F]:
    """Declare a view open to anyone (login, health, JWKS), saying why; a webhook that
    checks its own secret is public to RBAC for the same reason."""
    return _declare(Access(None, public_reason=reason))


def _declare(access: Access) -> Callable[[F], F]:
    def mark(view: F) -> F:
        @functools.wraps(view)
        async def guarded(conn: Any, *args: Any) -> Any:
            if access.permission is not None:
                # anonymous: refused before the resource is looked up (or a body read)
                resource = (await resource_of(conn, access) if actor_of(conn).authenticated
                            else SERVER)
                await check(conn, access.permission, resource)
                await _note_menu(conn)
            return await view(conn, *args)

        guarded.__access__ = access  # type: ignore[attr-defined]
        return guarded  # type: ignore[return-value]

    return mark


MENU_KEY = "baseshift.menu_permissions"
"""Scope key: which of `MENU_PERMISSIONS` the actor of a page request holds."""
MENU_PERMISSIONS = (ANALYTICS_READ, LOGS_READ)
"""Permissions the site menu asks about (the Insights link needs analytics:read, the Logs
link logs:read; a scoped one, such as logs:read, on one workflow at least, as its page)."""


async def _note_menu(conn: HTTPConnection) -> None:
    """For a page (a GET on `/` or under `/ui/`), note which menu permissions the actor
    holds, so the menu (rendered without awaiting) shows only the links it may follow."""
    path = conn.url.path
    if conn.scope.get("method") != "GET" or not (path == "/" or path.startswith("/ui/")):
        return
    hooks, actor = baseshift_of(conn).hooks, actor_of(conn)
    held: list[str] = []
    for permission in MENU_PERMISSIONS:
        if permission.scoped:  # its page shows the workflows one holds it on: one will do
            names = await visible_workflows(conn, permission)
            allowed = names is None or bool(names)
        else:
            allowed = await hooks.authorize(actor, permission.name, Resource("workflow"))
        if allowed:
            held.append(permission.name)
    conn.scope[MENU_KEY] = frozenset(held)


def may_follow(conn: HTTPConnection, permission: str) -> bool:
    """Whether the page's menu may show a link needing `permission` (see `_note_menu`)."""
    return permission in conn.scope.get(MENU_KEY, frozenset())


def run_resource(conn: HTTPConnection) -> Awaitable[Resource]:
    """The run of the path's `run_id`, with its workflow (None for an unknown run: only
    grants on every workflow reach it, and the view answers 404)."""
    return _run(conn, conn.path_params["run_id"])


RUN_WORKFLOWS: StashKey[OrderedDict[str, str]] = StashKey("web.run_workflows")
"""Run id -> workflow name, most recent last: a run never changes workflow, so a run's
requests after its first need no store read to be authorized."""
RUN_WORKFLOWS_KEPT = 10_000


async def _run(conn: HTTPConnection, run_id: str) -> Resource:
    bs = baseshift_of(conn)
    known = bs.stash.setdefault(RUN_WORKFLOWS, OrderedDict())
    workflow = known.get(run_id)
    if workflow is None:
        snapshot = await bs.store.load_run(run_id, attempts=False)
        if snapshot is None:
            return Resource("run", run_id)
        workflow = known[run_id] = snapshot.run.workflow
        if len(known) > RUN_WORKFLOWS_KEPT:
            known.popitem(last=False)
    else:
        known.move_to_end(run_id)
    return Resource("run", run_id, workflow)


def workflow_named(param: str) -> ResourceOf:
    """The workflow named by path parameter `param`."""

    async def find(conn: HTTPConnection) -> Resource:
        name = str(conn.path_params[param])
        return Resource("workflow", name, name)

    return find


VISIBLE_KEY = "baseshift.visible_workflows"


async def visible_workflows(conn: HTTPConnection, permission: str | Permission
                            ) -> tuple[str, ...] | None:
    """The loaded workflows on which the request's actor holds `permission`: None when it
    holds it on every workflow (grants on `*`), else the names its scoped grants reach.
    Worked out once per request and permission."""
    if isinstance(permission, Permission):
        permission = permission.name
    known: dict[str, tuple[str, ...] | None] = conn.scope.setdefault(VISIBLE_KEY, {})
    if permission not in known:
        bs, actor = baseshift_of(conn), actor_of(conn)
        if await bs.hooks.authorize(actor, permission, Resource("workflow")):
            known[permission] = None
        else:
            names = sorted({e.name for e in bs.catalog.entries()})
            known[permission] = tuple([
                n for n in names
                if await bs.hooks.authorize(actor, permission, Resource("workflow", n, n))])
    return known[permission]


def listing(permission: str | Permission) -> ResourceOf:
    """The resource of a list of workflows or of their runs: allowed to whoever holds
    `permission` on at least one workflow; the view then shows only those
    (`visible_workflows`). Filtered by `?workflow=NAME`, the permission on NAME."""

    async def find(conn: HTTPConnection) -> Resource:
        name = conn.query_params.get("workflow")
        if name:  # filtered to one workflow: the permission on it
            return Resource("workflow", name, name)
        names = await visible_workflows(conn, permission)
        return Resource("workflow", names[0], names[0]) if names else Resource("workflow")

    return find


def access_of(endpoint: Any) -> Access | None:
    """A view's declaration (None: undeclared)."""
    found = getattr(endpoint, "__access__", None)
    return found if isinstance(found, Access) else None


UNDECLARED = "plugins:undeclared-routes"
"""What a route that declares nothing needs: no builtin role but `admin` holds it, so a
plugin's forgotten declaration closes its route instead of opening it."""


def public_app(app: Any, reason: str) -> Any:
    """Declare a mounted ASGI app (static files) open to anyone, saying why."""
    app.__access__ = Access(None, public_reason=reason)
    return app


def guard_undeclared(routes: list[BaseRoute]) -> list[BaseRoute]:
    """The routes with every undeclared one closed to all but holders of `UNDECLARED` (and
    logged): the default is to deny, whatever a third-party plugin forgot."""
    out: list[BaseRoute] = []
    for route in routes:
        if isinstance(route, Route) and access_of(route.endpoint) is None:
            log.warning("route %s declares no permission: only administrators may call it",
                        route.path)
            route = Route(route.path, requires(UNDECLARED)(route.endpoint),
                          methods=sorted(route.methods or ()) or None, name=route.name)
        elif isinstance(route, WebSocketRoute) and access_of(route.endpoint) is None:
            log.warning("websocket %s declares no permission: only administrators may use "
                        "it", route.path)
            route = WebSocketRoute(route.path, _GuardedApp(route.app), name=route.name)
        elif isinstance(route, Mount) and access_of(route.app) is None:
            log.warning("mount %s declares no permission: only administrators may call it",
                        route.path)
            route = Mount(route.path, app=_GuardedApp(route.app), name=route.name)
        out.append(route)
    return out


class _GuardedApp:
    """An undeclared mounted app behind the `UNDECLARED` permission."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await check(HTTPConnection(scope, receive), UNDECLARED)
        except BaseShiftError as exc:
            if scope["type"] == "websocket":  # refused before the handshake is accepted
                return await send({"type": "websocket.close", "code": 1008})
            return await problem(exc.status, exc.message, code=exc.code,
                                 hint=exc.hint)(scope, receive, send)
        await self.app(scope, receive, send)
