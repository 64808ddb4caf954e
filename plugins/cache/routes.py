"""The cache API's views (see api.py). Keys are listed, never values: a value may hold
whatever a consumer keeps, and the key names only what it is about."""
from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from baseshift.core import audit
from baseshift.core.cache import Cache
from baseshift.core.errors import InputError
from baseshift.web.access import requires
from baseshift.web.limits import IntParam, Text, TextParam
from baseshift.web.openapi import operation
from baseshift.web.requests import baseshift_of, json_object, only_fields, read_json
from baseshift.web.responses import JSONResponse
from baseshift.web.schemas import obj

from .permissions import CACHE_ADMIN, CACHE_READ

TAGS = ["cache"]
MAX_KEYS = 1000
"""The most keys one listing shows, and one invalidation names."""
MAX_KEY = 500
"""The longest key (or prefix) a request may name."""

COUNT = {"type": "integer", "minimum": 0}
RATIO = {"type": ["number", "null"]}
PLANS = obj({"backend": {"type": "string"}, "hits": COUNT, "misses": COUNT,
             "hit_ratio": RATIO, "size": COUNT}, ("backend", "hits", "misses", "hit_ratio",
                                                  "size"))
STATS = obj({"backend": {"type": "string"}, "hits": COUNT, "misses": COUNT,
             "hit_ratio": RATIO, "sets": COUNT, "deletes": COUNT,
             "evictions": COUNT, "size": COUNT, "plans": PLANS},
            ("backend", "hits", "misses", "hit_ratio", "sets", "deletes", "evictions", "size",
             "plans"))
KEY = {"type": "string", "minLength": 1, "maxLength": MAX_KEY}
KEYS = obj({"keys": {"type": "array", "items": {"type": "string"}},
            "truncated": {"type": "boolean"}}, ("keys", "truncated"))
INVALIDATE = {"oneOf": [
    obj({"prefix": KEY}, ("prefix",), closed=True),
    obj({"keys": {"type": "array", "items": KEY, "minItems": 1, "maxItems": MAX_KEYS}},
        ("keys",), closed=True),
    obj({"all": {"type": "boolean", "enum": [True]}}, ("all",), closed=True)]}
REMOVED = obj({"removed": COUNT}, ("removed",))

PREFIX = TextParam("prefix", Text(r"[^\x00]{1,500}", max_length=MAX_KEY,
                                  hint="the start of the keys to list"))
LIMIT = IntParam("limit", 1, MAX_KEYS, default=100)


@requires(CACHE_READ)
@operation("The cache's counters: hits, misses, hit ratio, size and backend; `plans`: the "
           "workflow files this process kept compiled between reloads (files reused: hits, "
           "files compiled: misses)", tags=TAGS, response=STATS)
async def cache_stats(request: Request) -> Response:
    bs = baseshift_of(request)
    stats = await bs.cache.stats()
    size = stats.entries if stats.entries is not None else len(await bs.cache.keys())
    plans = bs.catalog.plan_stats()
    return JSONResponse({"backend": stats.backend, "hits": stats.hits, "misses": stats.misses,
                         "hit_ratio": stats.hit_ratio, "sets": stats.sets,
                         "deletes": stats.deletes, "evictions": stats.evictions,
                         "size": size,
                         "plans": {"backend": plans.backend, "hits": plans.hits,
                                   "misses": plans.misses, "hit_ratio": plans.hit_ratio,
                                   "size": plans.entries or 0}})


@requires(CACHE_READ)
@operation("The cache's keys (never their values), sorted, those starting with `prefix`",
           tags=TAGS, response=KEYS, errors=(400,), params=(PREFIX, LIMIT))
async def cache_keys(request: Request) -> Response:
    limit = LIMIT.read(request)
    found = await baseshift_of(request).cache.keys(PREFIX.read(request) or "", limit + 1)
    return JSONResponse({"keys": found[:limit], "truncated": len(found) > limit})


@requires(CACHE_ADMIN)
@operation("Drop cache entries: {\"prefix\": ...}, {\"keys\": [...]} or {\"all\": true}; "
           "answers how many were removed", tags=TAGS, request=INVALIDATE, response=REMOVED,
           errors=(400, 422))
async def cache_invalidate(request: Request) -> Response:
    bs = baseshift_of(request)
    body = json_object(await read_json(request), "the body")
    scope, removed = await _invalidate(bs.cache, body)
    await audit.record(bs.store, [audit.entry("cache.invalidate", "server:cache", scope=scope,
                                              removed=str(removed))])
    return JSONResponse({"removed": removed})


async def _invalidate(cache: Cache, body: dict[str, Any]) -> tuple[str, int]:
    """What to drop, as the audit entry names it, and how many values were dropped."""
    only_fields(body, {"prefix", "keys", "all"})
    if len(body) != 1:
        raise InputError("give exactly one of 'prefix', 'keys' or 'all'",
                         details={"field": "body"})
    if "all" in body:
        if body["all"] is not True:
            raise InputError("field 'all' must be true", details={"field": "all"})
        return "all", await cache.clear()
    if "prefix" in body:
        prefix = _key(body["prefix"], "prefix")
        return f"prefix {prefix}", await _drop(cache, await cache.keys(prefix))
    keys = body["keys"]
    if not isinstance(keys, list) or not 1 <= len(keys) <= MAX_KEYS:
        raise InputError(f"field 'keys' must be a list of 1 to {MAX_KEYS} keys",
                         details={"field": "keys"})
    named = [_key(k, "keys") for k in keys]
    return f"{len(named)} key(s)", await _drop(cache, named)


def _key(value: Any, field: str) -> str:
    if not isinstance(value, str) or not 1 <= len(value) <= MAX_KEY:
        raise InputError(f"field '{field}' must hold non-empty strings of at most {MAX_KEY} "
                         "characters", details={"field": field})
    return value


async def _drop(cache: Cache, keys: list[str]) -> int:
    removed = 0
    for key in dict.fromkeys(keys):
        removed += await cache.delete(key)
    return removed


def routes() -> list[BaseRoute]:
    return [
        Route("/api/v1/cache/stats", cache_stats, methods=["GET"], name="cache:stats"),
        Route("/api/v1/cache/keys", cache_keys, methods=["GET"], name="cache:keys"),
        Route("/api/v1/cache/invalidate", cache_invalidate, methods=["POST"],
              name="cache:invalidate"),
    ]
