"""RFC 7807 problem documents: every error the HTTP server answers with, in one shape."""
from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from baseshift.core.errors import BaseShiftError, DSLError
from baseshift.core.stash import StashKey

from .headers import add_security_headers
from .methods import allowed_methods
from .responses import JSONResponse

log = logging.getLogger("baseshift.web")

PROBLEM_JSON = "application/problem+json"

HtmlError = Callable[[Request, int, str, str | None], Response]

HTML_ERRORS_KEY: StashKey[dict[str, HtmlError]] = StashKey("web.html_errors")
"""`bs.stash[HTML_ERRORS_KEY]`: path -> `(request, status, detail, hint) -> Response`. A web
plugin whose pages people read in a browser (the web UI: `/ui/` and its dashboard `/`)
answers every error there with a page (HTTP errors, core errors with their hint, unexpected
ones); every other path keeps problem+json. A key ending in `/` names every path under it,
any other key (and `/`, so that no plugin claims every address) only itself."""

_TITLES = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
           429: "Too Many Requests",
           405: "Method Not Allowed", 409: "Conflict", 415: "Unsupported Media Type",
           422: "Unprocessable Content", 500: "Internal Server Error",
           503: "Service Unavailable"}


def problem(status: int, detail: str, *, code: str | None = None, hint: str | None = None,
            instance: str | None = None, **extra: Any) -> JSONResponse:
    """A problem+json response; `code` is our stable dotted error code (the `type` URI)."""
    body: dict[str, Any] = {
        "type": f"urn:baseshift:problem:{code}" if code else "about:blank",
        "title": _TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
    }
    if code:
        body["code"] = code
    if hint:
        body["hint"] = hint
    if instance:
        body["instance"] = instance
    body.update(extra)
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON)


def diagnostics_json(exc: DSLError) -> list[dict[str, Any]]:
    """Diagnostics as the API shows them: file, line and column, code, message, hint."""
    return [d.to_json() for d in exc.diagnostics]  # type: ignore[attr-defined]


async def on_baseshift_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, BaseShiftError)
    extra: dict[str, Any] = dict(exc.details)
    if isinstance(exc, DSLError) and exc.diagnostics:
        extra["errors"] = diagnostics_json(exc)
    if exc.status >= 500:
        log.error("%s %s: %s", request.method, request.url.path, exc.message)
    page = None if exc.status in (401, 403) and not wants_html(request) \
        else html_error(request, exc.status, exc.message, exc.hint)
    return (page
            or problem(exc.status, exc.message, code=exc.code, hint=exc.hint,
                       instance=request.url.path, **extra))


def wants_html(request: Request) -> bool:
    """Whether a browser asks (a page, or htmx on one): API clients of a page's address
    (scripts, the route × role test) get 401 and 403 as problem+json, like the API."""
    return "text/html" in request.headers.get("accept", "") or "hx-request" in request.headers


def html_error(request: Request, status: int, detail: str,
               hint: str | None = None) -> Response | None:
    """The HTML error page a plugin registered for the request's path, if any."""
    baseshift = getattr(request.app.state, "baseshift", None)
    pages: dict[str, HtmlError] = baseshift.stash.get(HTML_ERRORS_KEY, {}) if baseshift else {}
    path = request.url.path
    for key, page in pages.items():
        if path == key or (key != "/" and key.endswith("/") and path.startswith(key)):
            return page(request, status, detail, hint)
    return None


async def on_http_error(request: Request, exc: Exception) -> Response:
    """An HTTP error as problem+json, or as the HTML page a plugin registered for the path.
    A 405 names the allowed methods in `Allow`, and in the body (see `methods`)."""
    assert isinstance(exc, HTTPException)
    status, detail, headers = exc.status_code, str(exc.detail), dict(exc.headers or {})
    extra: dict[str, Any] = {}
    if status == 405:
        # A mount (the static files) is no route: no methods to list, so keep its own Allow.
        allowed = (sorted(allowed_methods(request.app.router.routes, request.scope))
                   or [m.strip() for m in headers.get("Allow", "").split(",") if m.strip()])
        detail = f"{request.method} is not allowed on {request.url.path}"
        extra = {"code": "request.method-not-allowed", "allowed": allowed}
        if allowed:
            detail += f"; allowed: {', '.join(allowed)}"
            headers["Allow"] = ", ".join(allowed)
    response = (html_error(request, status, detail)
                or problem(status, detail, instance=request.url.path, **extra))
    response.headers.update(headers)
    return response


async def on_unexpected(request: Request, exc: Exception) -> Response:
    """The 500 for an unhandled error. Starlette sends it from outside every middleware, so
    it adds the security headers itself."""
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    detail = "the server failed to handle this request; see the server log"
    response = (html_error(request, 500, detail)
                or problem(500, detail, code="server.error", instance=request.url.path))
    add_security_headers(response.headers, request.scope)
    return response


EXCEPTION_HANDLERS: dict[Any, Any] = {
    BaseShiftError: on_baseshift_error,
    HTTPException: on_http_error,
    Exception: on_unexpected,
}
