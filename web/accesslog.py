"""One log line per HTTP request, written when the response is done: method, route template,
status, duration, request id, actor and client (docs/operations.md "Logs").

Outermost middleware: refusals of the other middlewares (a bad Host, a 401) are logged too.
It gives the request its id (its `X-Request-ID` response header, kept by web/authn.py for
the audit trail) and binds it, and the W3C `traceparent` header's trace and parent span ids when
one is sent, to every line logged while the request is served (core/logcontext.py).

The `route` field is the template the request matched (`/api/v1/runs/{run_id}`), so a log
query can group requests by endpoint; the path (without its query string: it may hold a
token) is in `path`.
"""
from __future__ import annotations

import logging
import re
import time

from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from baseshift.core.logcontext import log_bound

from .access import ACTOR_KEY
from .authn import request_id

log = logging.getLogger("baseshift.access")

TRACEPARENT = re.compile(r"00-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}")


def trace_fields(header: str | None) -> dict[str, str]:
    """`trace_id` and `span_id` (the caller's span) of a W3C `traceparent` header, or
    nothing when it is absent or malformed (all-zero ids are invalid)."""
    match = TRACEPARENT.fullmatch((header or "").strip().lower())
    if match is None or set(match[1]) == {"0"} or set(match[2]) == {"0"}:
        return {}
    return {"trace_id": match[1], "span_id": match[2]}


class AccessLog:
    """ASGI middleware: the access line of every HTTP request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        conn = HTTPConnection(scope, receive)
        rid = request_id(conn)
        status = 500  # what the client sees when the app fails before answering
        started = time.perf_counter()

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                message["headers"] = [*message.get("headers", []),
                                      (b"x-request-id", rid.encode())]
            await send(message)

        with log_bound(request_id=rid, **trace_fields(conn.headers.get("traceparent"))):
            try:
                await self.app(scope, receive, sending)
            finally:
                if log.isEnabledFor(logging.INFO):
                    _log_access(conn, rid, status, (time.perf_counter() - started) * 1000)


def _log_access(conn: HTTPConnection, rid: str, status: int, ms: float) -> None:
    scope = conn.scope
    client = conn.client
    where = f"{client.host}:{client.port}" if client else "-"
    actor = scope.get(ACTOR_KEY)
    log.info('%s "%s %s" %d %.1fms', where, scope["method"], scope["path"], status, ms,
             extra={"event": "http.request", "method": scope["method"],
                    "route": route_template(scope), "path": scope["path"], "status": status,
                    "duration_ms": round(ms, 3), "request_id": rid,
                    "actor": actor.name if actor is not None else None,
                    "client": client.host if client else None})


def route_template(scope: Scope) -> str | None:
    """The path template of the route that served the request; None when none matched."""
    route = scope.get("route")
    template = getattr(route, "path_format", None)
    return template if isinstance(template, str) else None
