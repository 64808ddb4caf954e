"""The server span of each HTTP request: named after the route template it matched, a child
of the caller's span when the request carries a W3C `traceparent` header."""
from __future__ import annotations

from typing import TYPE_CHECKING

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from baseshift.core.logcontext import log_bound
from baseshift.core.tracecontext import on_run_started
from baseshift.web.accesslog import route_template

if TYPE_CHECKING:
    from .spans import Tracing

_PROPAGATOR = TraceContextTextMapPropagator()
_CARRIED = frozenset({b"traceparent", b"tracestate"})


class TraceRequests:
    """ASGI middleware: a server span around each HTTP request."""

    def __init__(self, app: ASGIApp, tracing: Tracing) -> None:
        self.app = app
        self.tracing = tracing

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        carrier = {name.decode("latin-1"): value.decode("latin-1")
                   for name, value in scope["headers"] if name in _CARRIED}
        method = str(scope.get("method", "GET"))
        span = self.tracing.tracer.start_span(
            method, context=_PROPAGATOR.extract(carrier), kind=SpanKind.SERVER,
            attributes={"http.request.method": method})
        here = span.get_span_context()
        status = 500

        async def sent(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        def started(run_id: str) -> None:
            span.set_attribute("baseshift.run_id", run_id)
            self.tracing.run_requested(run_id, here)

        token = otel_context.attach(trace.set_span_in_context(span))
        try:
            with log_bound(trace_id=f"{here.trace_id:032x}", span_id=f"{here.span_id:016x}"), \
                    on_run_started(started):
                await self.app(scope, receive, sent)
        finally:
            otel_context.detach(token)
            route = route_template(scope)
            if route is not None:
                span.update_name(f"{method} {route}")
                span.set_attribute("http.route", route)
            span.set_attribute("http.response.status_code", status)
            if status >= 500:
                span.set_status(Status(StatusCode.ERROR))
            span.end()
