"""The tracing plugin's hooks. Off (no hook does anything) unless `[plugins.tracing]` sets
`endpoint` (an OTLP/HTTP collector) or `exporter` (`"memory"`, `"console"`); then it needs
`pip install 'baseshift[otel]'`, and the OpenTelemetry modules are imported at `configure`.

Options (`[plugins.tracing]`): `endpoint` (the collector's traces URL,
`http://collector:4318/v1/traces`), `exporter` (`otlp`, the default with an endpoint;
`memory` keeps the spans in the process, for tests; `console` prints them), `service_name`
(default `baseshift`), `trace_url` (a link to a trace on the run page, `{trace_id}` in it),
`sample_ratio` (the share of traces recorded, by trace id; default 1).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from baseshift.core.config import option
from baseshift.core.errors import ConfigError
from baseshift.core.events import RunStateChanged
from baseshift.core.hookspecs import hookimpl
from baseshift.core.storecalls import ObservedStore
from baseshift.core.tracecontext import TRACE_URL, follow_spans

from ..extras import OTEL
from .stashed import TRACING, tracing_of

if TYPE_CHECKING:
    from collections.abc import Sequence

    from baseshift.core.appface import App
    from baseshift.core.events import Event
    from baseshift.core.protocols import JobContext
    from baseshift.core.records import RunRecord

    from .spans import Tracing

OPTIONS = "tracing"
"""`[plugins.tracing]`."""
EXPORTERS = ("otlp", "memory", "console")
LISTENER = "tracing"
"""The name the store spans listen under (core/storecalls.py)."""


@hookimpl
def configure(baseshift: App) -> None:
    settings = baseshift.settings
    endpoint = option(settings, OPTIONS, "endpoint", "")
    exporter = option(settings, OPTIONS, "exporter", "otlp" if endpoint else "")
    trace_url = option(settings, OPTIONS, "trace_url", "")
    service = option(settings, OPTIONS, "service_name", "baseshift")
    ratio = option(settings, OPTIONS, "sample_ratio", 1.0)
    if not exporter:
        return
    if exporter not in EXPORTERS:
        raise ConfigError(f"Config 'plugins.tracing.exporter' has value {exporter!r}. "
                          f"Expected one of {', '.join(EXPORTERS)}.")
    if exporter == "otlp" and not endpoint.startswith(("http://", "https://")):
        raise ConfigError("Config 'plugins.tracing.endpoint' must be the http(s):// URL of an "
                          "OTLP/HTTP collector's traces endpoint",
                          hint='e.g. endpoint = "http://127.0.0.1:4318/v1/traces"')
    if ratio > 1:
        raise ConfigError(f"Config 'plugins.tracing.sample_ratio' has value {ratio!r}. "
                          "Expected a share of traces, above 0 and at most 1.")
    if trace_url and "{trace_id}" not in trace_url:
        raise ConfigError("Config 'plugins.tracing.trace_url' must contain {trace_id}")
    OTEL.check("[plugins.tracing]")
    from .spans import Tracing, current_spot

    follow_spans(current_spot)  # log lines and executors learn the current span's ids

    if TRACING in baseshift.stash:  # configured once per application
        return
    tracing = baseshift.stash[TRACING] = Tracing(exporter, endpoint, service, ratio)
    baseshift.stash[TRACE_URL] = trace_url
    # The per-attempt and per-event hooks exist only when tracing is on: off, they cost
    # nothing (core/hooks.py `refresh`).
    baseshift.pm.register(_Spans(tracing), name=f"{__name__}.spans")


@hookimpl
def register_middleware(baseshift: App) -> list[Any]:
    tracing = tracing_of(baseshift)
    if tracing is None:
        return []
    from starlette.middleware import Middleware

    from .http import TraceRequests

    return [Middleware(TraceRequests, tracing=tracing)]


class _Spans:
    """The hooks of the run and attempt spans, registered when tracing is configured."""

    def __init__(self, tracing: Tracing) -> None:
        from .spans import AttemptSpan, RunSpanCurrent

        self.tracing = tracing
        self.sink, self.run_trace = tracing.sink, tracing.run_trace
        self.span, self.unsampled = AttemptSpan, RunSpanCurrent

    @hookimpl
    def job_wrapper(self, run: RunRecord, ctx: JobContext) -> Any:
        """`tracing.attempt(run, ctx)`, with no call in between: this runs at every
        attempt."""
        run_trace = self.run_trace(run.id)
        return self.span(self.sink, run, ctx, run_trace) if run_trace.sampled \
            else self.unsampled(run_trace)

    @hookimpl
    async def track_events(self, baseshift: App, events: Sequence[Event]) -> None:
        """Only runs' events matter (a run span when one ends): a batch, not a call for
        each of the jobs' events, several times as many."""
        for event in [e for e in events if type(e) is RunStateChanged]:
            ended = self.tracing.observe(baseshift, event)
            if ended is not None:
                await ended


@hookimpl
def startup(baseshift: App) -> None:
    """A span per store operation made while a span is current."""
    tracing = tracing_of(baseshift)
    store = baseshift.store
    if tracing is not None and isinstance(store, ObservedStore):
        store.calls.listen(LISTENER, tracing.store_call)


@hookimpl
def shutdown(baseshift: App) -> None:
    """Export the spans not sent yet."""
    store = baseshift.store
    if isinstance(store, ObservedStore):
        store.calls.unlisten(LISTENER)
    tracing = baseshift.stash.pop(TRACING)
    if tracing is not None:
        tracing.close()
