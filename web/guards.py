"""Checks made before any view runs: request bodies over the size limit, and browser
requests that would change state on behalf of another web site."""
from __future__ import annotations

from typing import ClassVar
from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from baseshift.core.errors import BaseShiftError

from .problems import problem

MAX_BODY = 8 * 1024 * 1024
"""Largest request body accepted (bytes): workflow sources, inputs and forms are far smaller."""

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class PayloadTooLarge(BaseShiftError):
    code: ClassVar[str] = "request.too-large"
    status: ClassVar[int] = 413


class RequestGuard:
    """ASGI middleware: 413 for a body over `max_body` (from Content-Length, or counted as it
    streams in), 403 for a state-changing request a browser sends from another site (a
    cross-site form post: with SameSite cookies and CSRF tokens it is a second line)."""

    def __init__(self, app: ASGIApp, max_body: int = MAX_BODY) -> None:
        self.app = app
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in SAFE_METHODS:
            return await self.app(scope, receive, send)
        headers = Headers(scope=scope)
        refusal = self._refusal(headers)
        if refusal is not None:
            return await refusal(scope, receive, send)
        await self.app(scope, self._counting(receive), send)

    def _refusal(self, headers: Headers) -> ASGIApp | None:
        if _cross_site(headers):
            return problem(403, "a request from another web site cannot change anything here",
                           code="request.cross-site",
                           hint="use the page served by this server, or call the API "
                                "without a browser; behind a reverse proxy, pass the "
                                "original Host header through")
        length = headers.get("content-length", "")
        if length.isdigit() and int(length) > self.max_body:
            return _too_large(self.max_body)
        return None

    def _counting(self, receive: Receive) -> Receive:
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.max_body:
                raise PayloadTooLarge(too_large_text(self.max_body))
            return message

        return counted


def _cross_site(headers: Headers) -> bool:
    if headers.get("sec-fetch-site") == "cross-site":
        return True
    origin = headers.get("origin")
    if not origin or origin == "null":
        return origin == "null"
    # Only Host, never X-Forwarded-Host: any client may send that, and the allow-list
    # (hosts.py) vouches for Host alone. A reverse proxy must pass the Host through.
    return urlsplit(origin).netloc.lower() != headers.get("host", "").lower()


def too_large_text(limit: int) -> str:
    return f"the request body is larger than {limit // (1024 * 1024)} MiB"


def _too_large(limit: int) -> ASGIApp:
    return problem(413, too_large_text(limit), code="request.too-large")
