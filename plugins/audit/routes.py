"""The audit trail over HTTP: the API's page of entries and the UI's page (both `audit:read`)."""
from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from baseshift.core.access import AUDIT_READ
from baseshift.core.audit import AuditQuery
from baseshift.web.access import requires
from baseshift.web.limits import IntParam, Text, TextParam, TimeParam
from baseshift.web.openapi import operation
from baseshift.web.render import render
from baseshift.web.requests import baseshift_of
from baseshift.web.responses import JSONResponse
from baseshift.web.schemas import obj

from .query import MAX_PAGE, audit_page

TAGS = ["audit"]
STRING = {"type": "string"}
OPTIONAL = {"type": ["string", "null"]}
ENTRY = obj({"seq": {"type": "integer"}, "at": {"type": "number"}, "actor": STRING,
             "action": STRING, "resource": STRING, "outcome": STRING, "client": OPTIONAL,
             "request_id": OPTIONAL, "detail": {"type": "object",
                                                "additionalProperties": STRING},
             "prev_hash": STRING, "hash": STRING},
            ("seq", "at", "actor", "action", "resource", "outcome", "detail", "prev_hash",
             "hash"))
PAGE = obj({"entries": {"type": "array", "items": ENTRY},
            "next_cursor": {"type": ["string", "null"]}}, ("entries", "next_cursor"))

NAME = Text(r"[^\x00-\x1f\x7f]{1,200}", max_length=200)
ACTOR = TextParam("actor", NAME)
ACTION = TextParam("action", Text(r"[a-z_]+\.[a-z_]+", max_length=64,
                                  hint="like run.start, auth.login or role.save"))
RESOURCE = TextParam("resource", Text(r"[a-z_]+:[^\x00-\x1f\x7f]{0,200}", max_length=210,
                                      hint="kind:name (run:ID, user:alice) or kind: for all "
                                           "of a kind"))
CLIENT = TextParam("client", Text(r"[0-9A-Za-z.:%_-]{1,100}", max_length=100,
                                  hint="a client address, such as 192.0.2.7 or ::1"))
SINCE, UNTIL = TimeParam("since"), TimeParam("until")
LIMIT = IntParam("limit", 1, MAX_PAGE, default=50)
CURSOR = TextParam("cursor", Text(r"[1-9][0-9]{0,17}", hint="pass the next_cursor of the "
                                  "previous page unchanged, or omit it"))
PARAMS = (ACTOR, ACTION, RESOURCE, CLIENT, SINCE, UNTIL, LIMIT, CURSOR)


def _query(request: Request) -> AuditQuery:
    cursor = CURSOR.read(request)
    return AuditQuery(actor=ACTOR.read(request), action=ACTION.read(request),
                      resource=RESOURCE.read(request), client=CLIENT.read(request),
                      since=SINCE.read(request),
                      until=UNTIL.read(request), limit=LIMIT.read(request),
                      before=None if cursor is None else int(cursor))


@requires(AUDIT_READ)
@operation("The audit trail, newest first: who did what to which resource, from where, "
           "and how it ended; filters and cursor pagination", tags=TAGS, response=PAGE,
           errors=(400, 404), params=PARAMS)
async def list_entries(request: Request) -> Response:
    page = await audit_page(baseshift_of(request).store, _query(request))
    return JSONResponse(page.to_json())


@requires(AUDIT_READ)
async def audit_ui(request: Request) -> Response:
    query = _query(request)
    page = await audit_page(baseshift_of(request).store, query)
    filters = {p.name: request.query_params.get(p.name, "")
               for p in (ACTOR, ACTION, RESOURCE, SINCE, UNTIL)}
    older = {**filters, LIMIT.name: str(query.limit)}  # the next page is as long as this one
    return render(request, "audit/audit.html", {"section": "audit", "page": page,
                                                "filters": filters, "older": older})


def routes() -> list[BaseRoute]:
    return [
        Route("/api/v1/audit-logs", list_entries, methods=["GET"], name="audit:list"),
        Route("/ui/audit", audit_ui, methods=["GET"], name="audit:page"),
    ]
