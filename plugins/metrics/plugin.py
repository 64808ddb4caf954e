"""The metrics plugin's hooks: one `Metrics` per application (made at `configure`), fed by
the HTTP middleware, `track_event` and `job_wrapper`; its routes; and, in a process that
serves no HTTP API (`baseshift worker --metrics-port N`), `/metrics` on 127.0.0.1:N.

Options (`[plugins.metrics]`): `public` (default false: scraping needs `metrics:read`),
`max_workflows` (distinct workflow label values, then `other`; default 500), `port` (set by
`baseshift worker --metrics-port`).
"""
from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from baseshift.core.config import option
from baseshift.core.hookspecs import hookimpl
from baseshift.core.stash import SERVING, StashKey

from .access import METRICS_READ
from .collector import OPTIONS, Metrics, QueueGauges, metrics_of

if TYPE_CHECKING:
    from starlette.routing import BaseRoute

    from baseshift.core.access import Permission
    from baseshift.core.appface import App
    from baseshift.core.events import Event
    from baseshift.core.protocols import JobContext
    from baseshift.core.records import RunRecord

log = logging.getLogger("baseshift.metrics")

PORT_SERVER: StashKey[Any] = StashKey("metrics_port")
LOOPBACK = "127.0.0.1"


@hookimpl
def configure(baseshift: App) -> None:
    metrics_of(baseshift)
    option(baseshift.settings, OPTIONS, "public", False)  # a wrong value fails the start
    option(baseshift.settings, OPTIONS, "port", 0)


@hookimpl
def register_permissions() -> list[Permission]:
    return [METRICS_READ]


@hookimpl
def register_routes(baseshift: App) -> list[BaseRoute]:
    from .http import routes

    return routes(bool(option(baseshift.settings, OPTIONS, "public", False)))


@hookimpl
def register_middleware(baseshift: App) -> list[Any]:
    from starlette.middleware import Middleware

    from .http import RequestMetrics

    return [Middleware(RequestMetrics, metrics=metrics_of(baseshift))]


@hookimpl
def track_event(baseshift: App, event: Event) -> None:
    metrics_of(baseshift).observe(event)


@hookimpl
def job_wrapper(baseshift: App, run: RunRecord, ctx: JobContext) -> Any:
    return _timed(metrics_of(baseshift), run.workflow)


@asynccontextmanager
async def _timed(m: Metrics, workflow: str) -> AsyncIterator[None]:
    label = m.workflow(workflow)
    outcome = "error"
    began = time.perf_counter()
    m.in_flight.inc()
    try:
        yield
        outcome = "ok"
    except BaseException as exc:
        outcome = "cancelled" if not isinstance(exc, Exception) else "error"
        raise
    finally:
        m.in_flight.dec()
        m.attempts.labels(label, outcome).inc()
        m.attempt_seconds.labels(label).observe(time.perf_counter() - began)


@hookimpl
def startup(baseshift: App) -> None:
    """Note the queue when it reports its depth, listen for the catalog's bad reloads; in
    a process that serves no HTTP API (a worker), serve `/metrics` on the loopback port
    `[plugins.metrics] port` when one is set."""
    metrics = metrics_of(baseshift)
    queue = baseshift.queue
    if isinstance(queue, QueueGauges):
        metrics.watch_queue(queue)
    if metrics.reloaded_badly not in baseshift.catalog.reload_listeners:
        baseshift.catalog.reload_listeners.append(metrics.reloaded_badly)
    port = option(baseshift.settings, OPTIONS, "port", 0)
    if not port or baseshift.stash.get(SERVING) or PORT_SERVER in baseshift.stash:
        return
    from prometheus_client import start_http_server

    server, thread = start_http_server(port, addr=LOOPBACK,
                                       registry=metrics.exposition())
    baseshift.stash[PORT_SERVER] = (server, thread)
    log.info("metrics on http://%s:%d/metrics", LOOPBACK, server.server_port)


@hookimpl
def shutdown(baseshift: App) -> None:
    served = baseshift.stash.pop(PORT_SERVER)
    if served is not None:
        server, thread = served
        server.shutdown()
        server.server_close()
        thread.join()
