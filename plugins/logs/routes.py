"""The log store over HTTP (`logs:read`): search (`GET /api/v1/logs`, `POST
/api/v1/logs/query`), export, follow, and the UI's search page. Every answer holds only the
lines of the workflows the actor may read (search.py `scoped`)."""
from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from baseshift.core.access import LOGS_READ
from baseshift.core.errors import BadRequest, InputError
from baseshift.core.loglines import LogPage
from baseshift.web.access import listing, requires
from baseshift.web.limits import IntParam, Text, TextParam, TimeParam
from baseshift.web.openapi import operation
from baseshift.web.requests import json_object, only_fields, read_json
from baseshift.web.responses import JSONResponse
from baseshift.web.schemas import obj

from .export import FORMATS, MAX_EXPORT, export_response
from .follow import follow_response
from .pages import logs_page
from .search import (
    CURSOR_PATTERN,
    MAX_PAGE,
    MAX_QUERY,
    cursor_text,
    log_store,
    read_limit,
    scoped,
    search_of,
)

TAGS = ["logs"]
NULLABLE = {"type": ["string", "null"]}
ATTEMPT = {"type": ["integer", "string", "null"],
           "description": "the attempt number (a line some code logged with another value "
                          "of its own keeps that text)"}
LINE = obj({"id": {"type": "integer"}, "timestamp": {"type": "string", "format": "date-time"},
            "level": {"type": "string"}, "message": {"type": "string"},
            "source": {"type": "string"}, "workflow_id": NULLABLE, "run_id": NULLABLE,
            "job": NULLABLE, "attempt": ATTEMPT, "trace_id": NULLABLE, "error": NULLABLE},
           ("id", "timestamp", "level", "message"))
PAGE = obj({"total": {"type": "integer"}, "logs": {"type": "array", "items": LINE},
            "next_cursor": NULLABLE}, ("total", "logs", "next_cursor"))
TIME = {"anyOf": [*TimeParam("from").schema()["anyOf"], {"type": "number"}],
        "description": "RFC 3339 date-time with its offset, or epoch seconds"}
SEARCH = {"query": {"type": "string", "maxLength": MAX_QUERY,
                    "description": "a log query: workflow_id:nightly AND level:error"},
          "from": TIME, "to": TIME,
          "sort": obj({"timestamp": {"enum": ["asc", "desc"]}}, (), closed=True),
          "cursor": {"type": "string", "pattern": f"^(?:{CURSOR_PATTERN})?$"}}
QUERY_BODY = obj({**SEARCH, "limit": {"type": "integer", "minimum": 1, "maximum": MAX_PAGE}},
                 (), closed=True)
EXPORT_BODY = obj({**SEARCH, "limit": {"type": "integer", "minimum": 1, "maximum": MAX_EXPORT},
                   "format": {"enum": list(FORMATS)}}, (), closed=True)
Q = TextParam("q", Text(rf"[^\x00]{{0,{MAX_QUERY}}}", max_length=MAX_QUERY,
                        description="a log query: workflow_id:nightly AND level:error"))
FROM, TO = TimeParam("from"), TimeParam("to")
LIMIT = IntParam("limit", 1, MAX_PAGE, default=100)
SORT = TextParam("sort", Text(r"asc|desc", max_length=4))
CURSOR = TextParam("cursor", Text(CURSOR_PATTERN, max_length=60,
                                  hint="pass the next_cursor of the previous page unchanged"))
PARAMS = (Q, FROM, TO, LIMIT, SORT, CURSOR)


def page_json(page: LogPage, limit: int) -> dict[str, Any]:
    more = len(page.lines) == limit and page.total > limit
    return {"total": page.total, "logs": [line.to_json() for line in page.lines],
            "next_cursor": cursor_text(page.lines[-1]) if more and page.lines else None}


async def _body(request: Request, allowed: set[str]) -> dict[str, Any]:
    value = await read_json(request, default={})
    if not isinstance(value, dict):  # json_object would take null for {}
        raise InputError(f"the body must be a JSON object, got {type(value).__name__}",
                         details={"field": "body"})
    body = json_object(value, "body")
    only_fields(body, allowed)
    for name, value in body.items():
        if value is None:
            raise BadRequest(f"'{name}' must not be null: leave it out for its default",
                             details={"field": name})
    return body


@requires(LOGS_READ, listing(LOGS_READ))
@operation("Log lines matching a query, newest first by default: attempt logs and the "
           "server's and workers' own lines; cursor pagination", tags=TAGS, response=PAGE,
           errors=(400, 404), params=PARAMS)
async def list_logs(request: Request) -> Response:
    for param in PARAMS:  # each as its declaration says (no NUL in q, a time, a number)
        param.read(request)
    search = await scoped(request, search_of(dict(request.query_params), field=False))
    page = await log_store(request).search_log_lines(search)
    return JSONResponse(page_json(page, search.limit))


@requires(LOGS_READ, listing(LOGS_READ))
@operation("Search the log store with a JSON request: query, from, to, limit, "
           "sort {timestamp: asc|desc}, cursor", tags=TAGS, request=QUERY_BODY, response=PAGE,
           errors=(400, 404, 422), body_required=False)
async def query_logs(request: Request) -> Response:
    body = await _body(request, set(SEARCH) | {"limit"})
    search = await scoped(request, search_of(body, field=True))
    page = await log_store(request).search_log_lines(search)
    return JSONResponse(page_json(page, search.limit))


@requires(LOGS_READ, listing(LOGS_READ))
@operation("Export the lines a query matches as NDJSON or CSV (streamed, at most "
           f"{MAX_EXPORT} lines)", tags=TAGS, request=EXPORT_BODY,
           errors=(400, 404, 422), body_required=False, content_type="application/x-ndjson")
async def export_logs(request: Request) -> Response:
    body = await _body(request, set(SEARCH) | {"limit", "format"})
    fmt = body.get("format", "ndjson")
    if not isinstance(fmt, str) or fmt not in FORMATS:
        raise BadRequest(f"'format' must be one of {', '.join(FORMATS)}, got {fmt!r}",
                         details={"field": "format"})
    search = await scoped(request, search_of(body, field=True, most=MAX_EXPORT,
                                             default=MAX_EXPORT))
    return export_response(log_store(request), search, str(fmt))


@requires(LOGS_READ, listing(LOGS_READ))
async def follow_logs(request: Request) -> Response:
    """Server-sent events of the new lines a query matches (follow.py); `Last-Event-ID`
    resumes after the line of that id."""
    values = dict(request.query_params)
    most = read_limit(values.pop("limit", None), most=1_000_000, default=0) or None
    unknown = sorted(set(values) - {"q"})
    if unknown:
        raise BadRequest(f"unknown query parameter '{unknown[0]}'; expected: q, limit",
                         details={"parameter": unknown[0]})
    search = await scoped(request, search_of(values, field=False))
    resume = request.headers.get("last-event-id", "")
    after = int(resume) if resume.isdigit() and len(resume) < 19 else None
    return follow_response(log_store(request), search, after, most)


@requires(LOGS_READ, listing(LOGS_READ))
async def logs_ui(request: Request) -> Response:
    return await logs_page(request)


def routes() -> list[BaseRoute]:
    return [
        Route("/api/v1/logs", list_logs, methods=["GET"], name="logs:list"),
        Route("/api/v1/logs/query", query_logs, methods=["POST"], name="logs:query"),
        Route("/api/v1/logs/export", export_logs, methods=["POST"], name="logs:export"),
        Route("/api/v1/logs/follow", follow_logs, methods=["GET"], name="logs:follow"),
        Route("/ui/logs", logs_ui, methods=["GET"], name="logs:page"),
    ]
