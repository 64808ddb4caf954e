"""Security headers on every response: a Content-Security-Policy that allows only this
server's own scripts and styles (no inline code, no eval), no framing, no MIME sniffing,
and Strict-Transport-Security when the request came over TLS."""
from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

CONTENT_SECURITY_POLICY = "; ".join([
    "default-src 'self'", "script-src 'self'", "style-src 'self'", "img-src 'self' data:",
    "connect-src 'self'", "frame-ancestors 'none'", "base-uri 'none'", "form-action 'self'",
    "object-src 'none'",
])
"""Pages, htmx and the live stream need nothing else: an injected script or style attribute
is refused by the browser even if it slips past escaping."""

SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}

HSTS = "max-age=31536000"
"""A year; without includeSubDomains, since other names under the domain are not ours."""

_STARTS = frozenset({"http.response.start", "websocket.http.response.start"})


def security_headers(scope: Scope) -> dict[str, str]:
    """The headers every response to this request carries."""
    if scope.get("scheme") in ("https", "wss"):
        return {**SECURITY_HEADERS, "Strict-Transport-Security": HSTS}
    return SECURITY_HEADERS


def add_security_headers(headers: MutableHeaders, scope: Scope) -> None:
    """Add the security headers a response does not set itself (a plugin's page may need
    its own policy)."""
    for name, value in security_headers(scope).items():
        headers.setdefault(name, value)


class SecurityHeaders:
    """ASGI middleware: the security headers on every response that passes through it. The
    outermost of ours, so refusals by the other checks carry them too (an unexpected error's
    500 is answered outside every middleware: `problems.on_unexpected` adds them)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            return await self.app(scope, receive, send)

        async def send_with_headers(message: Message) -> None:
            if message["type"] in _STARTS:
                message.setdefault("headers", [])
                add_security_headers(MutableHeaders(scope=message), scope)
            await send(message)

        await self.app(scope, receive, send_with_headers)
