"""The HTTP side of the metrics: the request middleware, `GET /metrics` (Prometheus text) and
`GET /api/v1/metrics` (a JSON summary with the process's and host's resources)."""
from __future__ import annotations

import functools
import os
import time
from typing import TYPE_CHECKING, Any

import psutil
from prometheus_client import generate_latest
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from baseshift.core.instance import instance_id
from baseshift.web.access import public, requires
from baseshift.web.openapi import operation
from baseshift.web.requests import baseshift_of
from baseshift.web.responses import JSONResponse

from .access import METRICS_READ
from .collector import Metrics, metrics_of

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

UNMATCHED = "unmatched"
"""The endpoint label of a request no route matched (404s, refused hosts)."""
SIGN_IN_ROUTES = frozenset({"auth:login", "auth:login_form"})
"""Routes whose refusal (401, 429) counts as a failed sign-in."""
STARTED = time.time()


class RequestMetrics:
    """ASGI middleware: counts each HTTP request by method, route template and status, and
    times it. A request that raises counts as 500."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500
        began = time.perf_counter()

        async def sent(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, sent)
        finally:
            self._count(scope, status, time.perf_counter() - began)

    def _count(self, scope: Scope, status: int, seconds: float) -> None:
        route = scope.get("route")
        endpoint = getattr(route, "path", None) or UNMATCHED
        method = str(scope.get("method", "GET"))
        if method not in _METHODS:
            method = "other"
        m = self.metrics
        m.child(m.requests, method, endpoint, str(status)).inc()
        m.child(m.request_seconds, endpoint).observe(seconds)
        if status in (401, 429) and getattr(route, "name", None) in SIGN_IN_ROUTES:
            m.login_failures.inc()


_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


async def _exposition(request: Request) -> Response:
    metrics = metrics_of(baseshift_of(request))
    await metrics.refresh()
    return Response(generate_latest(metrics.exposition()),
                    media_type=CONTENT_TYPE_PLAIN_0_0_4)


scrape = requires(METRICS_READ)(_exposition)
scrape_public = public("[plugins.metrics] public = true: the operator opened the metrics "
                       "to scrapers without a token")(_exposition)

_COUNT: dict[str, Any] = {"type": "integer", "minimum": 0}
_NUMBER: dict[str, Any] = {"type": "number"}
_COUNTS: dict[str, Any] = {"type": "object", "additionalProperties": _COUNT}


def _object(properties: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "required": sorted(properties), "properties": properties}


SUMMARY = _object({
    "endpoints": {"type": "object", "additionalProperties": _object({
        "requests": _COUNT, "statuses": _COUNTS, "seconds_total": _NUMBER,
        "seconds_average": {"type": ["number", "null"]}})},
    "runs": _COUNTS, "jobs": _COUNTS, "workflows_loaded": _COUNT,
    "process": _object({"pid": _COUNT, "instance": {"type": "string"}, "cpu_percent": _NUMBER,
                        "memory_rss_bytes": _COUNT,
                        "threads": _COUNT, "uptime_seconds": _NUMBER}),
    "host": _object({"cpu_count": _COUNT, "cpu_percent": _NUMBER, "load_average": {
        "type": "array", "items": _NUMBER}, "memory_total_bytes": _COUNT,
        "memory_available_bytes": _COUNT, "memory_percent": _NUMBER,
        "disk": _object({"path": {"type": "string"}, "total_bytes": _COUNT,
                         "used_bytes": _COUNT, "free_bytes": _COUNT,
                         "percent": _NUMBER})}),
})


@requires(METRICS_READ)
@operation("Request, run and job counts, and the process's and host's CPU, memory and disk",
           tags=["metrics"], response=SUMMARY)
async def summary(request: Request) -> JSONResponse:
    bs = baseshift_of(request)
    m = metrics_of(bs)
    return JSONResponse({
        "endpoints": _endpoints(m),
        "runs": _totals(m.runs.collect(), "status"),
        "jobs": _totals(m.jobs.collect(), "state"),
        "workflows_loaded": len(bs.catalog.entries()),
        "process": _process(),
        "host": _host(str(bs.settings.data_dir)),
    })


def _totals(families: Iterable[Any], label: str) -> dict[str, int]:
    out: dict[str, int] = {}
    for family in families:
        for s in family.samples:
            if s.name.endswith("_total"):
                key = s.labels[label]
                out[key] = out.get(key, 0) + int(s.value)
    return out


def _endpoints(m: Metrics) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}

    def entry(endpoint: str) -> dict[str, Any]:
        return out.setdefault(endpoint, {"requests": 0, "statuses": {}, "seconds_total": 0.0,
                                         "seconds_average": None})

    for family in m.requests.collect():
        for s in family.samples:
            if s.name.endswith("_total"):
                e = entry(s.labels["endpoint"])
                e["requests"] += int(s.value)
                status = s.labels["status"]
                e["statuses"][status] = e["statuses"].get(status, 0) + int(s.value)
    counts: dict[str, float] = {}
    for family in m.request_seconds.collect():
        for s in family.samples:
            if s.name.endswith("_sum"):
                entry(s.labels["endpoint"])["seconds_total"] = s.value
            elif s.name.endswith("_count"):
                counts[s.labels["endpoint"]] = s.value
    for endpoint, n in counts.items():
        if n:
            out[endpoint]["seconds_average"] = out[endpoint]["seconds_total"] / n
    return out


@functools.cache
def _this_process(pid: int) -> Any:
    """This process, kept: its CPU use is measured between one call and the next."""
    return psutil.Process(pid)


def _process() -> dict[str, Any]:
    me = _this_process(os.getpid())
    with me.oneshot():
        return {"pid": me.pid, "instance": instance_id(),
                "cpu_percent": me.cpu_percent(interval=None),
                "memory_rss_bytes": me.memory_info().rss, "threads": me.num_threads(),
                "uptime_seconds": max(0.0, time.time() - me.create_time())}


def _host(path: str) -> dict[str, Any]:
    memory = psutil.virtual_memory()
    where = path if os.path.exists(path) else os.getcwd()
    disk = psutil.disk_usage(where)
    return {"cpu_count": psutil.cpu_count() or 1,
            "cpu_percent": psutil.cpu_percent(interval=None),
            "load_average": list(os.getloadavg()),
            "memory_total_bytes": memory.total, "memory_available_bytes": memory.available,
            "memory_percent": memory.percent,
            "disk": {"path": where, "total_bytes": disk.total, "used_bytes": disk.used,
                     "free_bytes": disk.free, "percent": disk.percent}}


def routes(public_scrape: bool) -> list[BaseRoute]:
    view: Callable[[Request], Any] = scrape_public if public_scrape else scrape
    return [Route("/metrics", view, methods=["GET"], name="metrics:scrape"),
            Route("/api/v1/metrics", summary, methods=["GET"], name="metrics:summary")]
