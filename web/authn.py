"""Authentication before routing: the `authenticate` hook names the request's actor once,
and every view's `@requires` check (web/access.py) reads it from the scope."""
from __future__ import annotations

from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Receive, Scope, Send

from baseshift.core.access import ANONYMOUS
from baseshift.core.errors import Unauthorized

from .access import ACTOR_KEY
from .problems import problem
from .requests import baseshift_of


class Authentication:
    """ASGI middleware: put the actor the plugins recognise (or the anonymous one) in the
    scope. A credential a plugin owns but refuses (expired, revoked, forged) is a 401 at
    once: a request with a bad token is never served as anonymous."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            return await self.app(scope, receive, send)
        conn = HTTPConnection(scope, receive)
        try:
            actor = await baseshift_of(conn).hooks.authenticate(conn)
        except Unauthorized as exc:
            refusal = problem(401, exc.message, code=exc.code, hint=exc.hint,
                              instance=conn.url.path)
            refusal.headers["WWW-Authenticate"] = 'Bearer error="invalid_token"'
            return await refusal(scope, receive, send)
        scope[ACTOR_KEY] = actor or ANONYMOUS
        await self.app(scope, receive, send)
