"""The metrics plugin's hooks: one `Metrics` per application (made at `configure`), fed by
the HTTP middleware, `track_events` and, in a worker, `job_wrapper`; its routes; and, in a
process that serves no HTTP API (`baseshift worker --metrics-port N`), `/metrics` on
127.0.0.1:N.

Options (`[plugins.metrics]`): `public` (default false: scraping needs `metrics:read`),
`max_workflows` (distinct workflow label values, then `other`; default 500), `port` (set by
`baseshift worker --metrics-port`).
"""
from __future__ import annotations

import logging
import time
from bisect import bisect_left
from typing import TYPE_CHECKING, Any

from baseshift.core.config import option
from baseshift.core.hookspecs import hookimpl
from baseshift.core.stash import SERVING, WORKING, StashKey
from baseshift.core.storecalls import ObservedStore

from .access import METRICS_READ
from .collector import OPTIONS, AttemptSeries, Metrics, QueueGauges, metrics_of

if TYPE_CHECKING:
    from collections.abc import Sequence
    from types import TracebackType

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
    metrics = metrics_of(baseshift)
    option(baseshift.settings, OPTIONS, "public", False)  # a wrong value fails the start
    option(baseshift.settings, OPTIONS, "port", 0)
    name = f"{__name__}.counting"
    if baseshift.pm.get_plugin(name) is None:  # configured once per application
        baseshift.pm.register(_Counting(metrics), name=name)


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


class _Counting:
    """The hook called for every batch of events, bound to the application's metrics:
    looking them up in the stash each time would cost as much as the counting."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    @hookimpl
    def track_events(self, events: Sequence[Event]) -> None:
        self.metrics.observe_all(events)


class _Timing:
    """The hook called around every attempt, in a process that runs attempts of another's
    runs (a worker of a queue); where the engine runs them, its events count them
    (`Metrics.attempts_here`)."""

    def __init__(self, metrics: Metrics) -> None:
        self.series = metrics.attempt_series
        self.known = metrics.attempt_series_kept
        self.timed: type[_Timed] = _Timed if metrics.fleet is not None else _TimedHere

    @hookimpl
    def job_wrapper(self, run: RunRecord, ctx: JobContext) -> Any:
        """(`ctx` unused: asking for exactly the hook's arguments lets core/hooks.py call
        this with no adapter in between, at every attempt.)"""
        found = self.known.get(run.workflow)  # `series` without a call, once it is kept
        return self.timed(self.series(run.workflow) if found is None else found)


class _Timed:
    """Around one attempt: in flight meanwhile, then counted by outcome and timed. A class,
    not a generator, and not async: it runs for every attempt."""

    __slots__ = ("began", "series")

    def __init__(self, series: AttemptSeries) -> None:
        self.series = series
        self.began = 0.0

    def __enter__(self) -> None:
        self.series.running.inc()
        self.began = time.perf_counter()

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        seconds = time.perf_counter() - self.began
        series = self.series
        series.running.dec()
        (series.ok if kind is None else series.error if issubclass(kind, Exception)
         else series.cancelled).inc()
        series.seconds.observe(seconds)


class _TimedHere(_Timed):
    """`_Timed` over one process's own series (local.py, not a fleet's): their numbers
    changed in place, as their `inc`, `dec` and `observe` would, with no call for each."""

    __slots__ = ()

    def __enter__(self) -> None:
        here: Any = self.series
        here.running.value += 1
        self.began = time.perf_counter()

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        seconds = time.perf_counter() - self.began
        here: Any = self.series
        here.running.value -= 1
        (here.ok if kind is None else here.error if issubclass(kind, Exception)
         else here.cancelled).value += 1
        histogram = here.seconds
        histogram.sum += seconds
        histogram.counts[bisect_left(histogram.bounds, seconds)] += 1


LISTENER = "metrics"
"""The name the store-operation timer listens under (core/storecalls.py), and the reload
error counter on the catalog."""


@hookimpl
def startup(baseshift: App) -> None:
    """Time the store's operations; note the queue when it reports its depth; listen for
    the catalog's bad reloads; in a fleet, copy other plugins' figures to the shared files
    every few seconds; in a process that serves no HTTP API (a worker), serve `/metrics` on
    the loopback port `[plugins.metrics] port` when one is set."""
    metrics = metrics_of(baseshift)
    if metrics.mirror is not None:
        metrics.mirror.start()
    _count_attempts(baseshift, metrics)
    store = baseshift.store
    if isinstance(store, ObservedStore):
        store.calls.listen(LISTENER, metrics.store_call)
    queue = baseshift.queue
    if isinstance(queue, QueueGauges):
        metrics.watch_queue(queue)
    baseshift.catalog.reload_listeners[LISTENER] = metrics.reloaded_badly
    port = option(baseshift.settings, OPTIONS, "port", 0)
    if not port or baseshift.stash.get(SERVING) or PORT_SERVER in baseshift.stash:
        return
    from prometheus_client import start_http_server

    server, thread = start_http_server(port, addr=LOOPBACK,
                                       registry=metrics.exposition())
    baseshift.stash[PORT_SERVER] = (server, thread)
    log.info("metrics on http://%s:%d/metrics", LOOPBACK, server.server_port)


def _count_attempts(baseshift: App, metrics: Metrics) -> None:
    """Where the engine runs the attempts (no queue, not a worker: a server, `baseshift
    run`), its events count them, at no cost per attempt (`Metrics.attempts_here`);
    elsewhere (a worker) a wrapper around each attempt it executes does. Decided at the
    start, when a worker is known to be one (`WORKING`)."""
    metrics.attempts_here = baseshift.settings.queue == "local" and \
        not baseshift.stash.get(WORKING)
    name = f"{__name__}.timing"
    if not metrics.attempts_here and baseshift.pm.get_plugin(name) is None:
        baseshift.pm.register(_Timing(metrics), name=name)
        baseshift.hooks.refresh()  # the wrappers are bound once (core/hooks.py)


@hookimpl
async def shutdown(baseshift: App) -> None:
    metrics = metrics_of(baseshift)
    if metrics.mirror is not None:  # what the plugins counted until now stays counted
        await metrics.mirror.stop()
        metrics.mirror.copy()
    store = baseshift.store
    if isinstance(store, ObservedStore):
        store.calls.unlisten(LISTENER)
    baseshift.catalog.reload_listeners.pop(LISTENER, None)
    served = baseshift.stash.pop(PORT_SERVER)
    if served is not None:
        server, thread = served
        server.shutdown()
        server.server_close()
        thread.join()
