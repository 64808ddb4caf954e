"""The database admin API: `GET /api/v1/database/performance`, `GET .../slow_queries` and
`POST .../optimize_query` (audited as `database.explain` with the query's start).

A store without the `DatabaseAdmin` ability (`memory`) answers `available: false`."""
from __future__ import annotations

from collections.abc import Mapping

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from baseshift.core import audit
from baseshift.core.capabilities import DatabaseAdmin
from baseshift.core.errors import BaseShiftError, InputError, QueryRefused
from baseshift.web.access import requires
from baseshift.web.limits import IntParam
from baseshift.web.openapi import operation
from baseshift.web.requests import baseshift_of, json_object, only_fields, read_json
from baseshift.web.responses import JSONResponse
from baseshift.web.schemas import obj

from .permissions import DATABASE_ADMIN, DATABASE_READ

TAGS = ["database"]
LIMIT = IntParam("limit", 1, 100, default=10)
AUDITED_CHARS = 200
"""How much of an explained query its audit entry keeps."""
ANY_OBJECT = {"type": "object"}
SLOW = obj({"available": {"type": "boolean"}, "reason": {"type": "string"},
            "queries": {"type": "array", "items": ANY_OBJECT}}, ("available",))
EXPLAIN = obj({"query": {"type": "string"}, "analyze": {"type": "boolean"}}, ("query",),
              closed=True)
PLAN = obj({"backend": {"type": "string"}, "analyzed": {"type": "boolean"},
            "plan": {}, "estimated_cost": {"type": ["number", "null"]},
            "suggestions": {"type": "array", "items": {"type": "string"}}},
           ("backend", "plan", "suggestions"))


def _admin(request: Request) -> DatabaseAdmin | None:
    store = baseshift_of(request).store
    return store if isinstance(store, DatabaseAdmin) else None


def _unavailable(request: Request) -> dict[str, object]:
    name = baseshift_of(request).store.name
    return {"backend": name, "available": False,
            "reason": f"store {name!r} keeps no database to inspect"}


@requires(DATABASE_READ)
@operation("The database under the state store: pool, table sizes, cache hits, connections "
           "and transactions (PostgreSQL); file, pages, WAL and journal mode (SQLite)",
           tags=TAGS, response=ANY_OBJECT, errors=(503,))
async def performance(request: Request) -> Response:
    admin = _admin(request)
    if admin is None:
        return JSONResponse(_unavailable(request))
    return JSONResponse(dict(await admin.database_performance()))


@requires(DATABASE_READ)
@operation("The slowest statements by mean time (pg_stat_statements), or why they are not "
           "available", tags=TAGS, response=SLOW, params=(LIMIT,), errors=(400, 503))
async def slow_queries(request: Request) -> Response:
    limit = LIMIT.read(request)
    admin = _admin(request)
    if admin is None:
        return JSONResponse(_unavailable(request))
    return JSONResponse(dict(await admin.slow_queries(limit)))


@requires(DATABASE_ADMIN)
@operation("The plan of one read-only query (EXPLAIN), its estimated cost and suggestions; "
           "with analyze (a SELECT only) it runs in a read-only transaction rolled back",
           tags=TAGS, request=EXPLAIN, response=PLAN, errors=(400, 422, 503))
async def optimize_query(request: Request) -> Response:
    body = json_object(await read_json(request), "body")
    only_fields(body, {"query", "analyze"})
    query, analyze = body.get("query"), body.get("analyze", False)
    if not isinstance(query, str) or not query.strip():
        raise QueryRefused("'query' must be a non-empty string", details={"field": "query"})
    if not isinstance(analyze, bool):
        raise InputError("'analyze' must be true or false", details={"field": "analyze"})
    admin = _admin(request)
    if admin is None:
        raise QueryRefused(f"store {baseshift_of(request).store.name!r} has no database to "
                           "explain queries on", hint="use the sqlite or postgres store")
    try:
        found: Mapping[str, object] = await admin.explain_query(query, analyze)
    except BaseShiftError as exc:
        await _record(request, query, analyze, exc)
        raise
    await _record(request, query, analyze)
    return JSONResponse(dict(found))


async def _record(request: Request, query: str, analyze: bool,
                  refused: BaseShiftError | None = None) -> None:
    text, ran = query[:AUDITED_CHARS], str(analyze).lower()
    store = baseshift_of(request).store
    resource = f"database:{store.name}"
    done = (audit.entry("database.explain", resource, query=text, analyze=ran)
            if refused is None else
            audit.entry("database.explain", resource, audit.FAILURE, query=text, analyze=ran,
                        reason=refused.message[:AUDITED_CHARS]))
    await audit.record(store, [done])


def routes() -> list[BaseRoute]:
    return [
        Route("/api/v1/database/performance", performance, methods=["GET"],
              name="database:performance"),
        Route("/api/v1/database/slow_queries", slow_queries, methods=["GET"],
              name="database:slow_queries"),
        Route("/api/v1/database/optimize_query", optimize_query, methods=["POST"],
              name="database:optimize_query"),
    ]
