"""The spans: one OpenTelemetry tracer provider per application (never the global one), its
exporter, and the run and attempt spans.

A run's trace id and span id are derived from the run id (core/tracecontext.py `run_trace`):
an attempt span, here or in a `baseshift worker`, is a child of its run's span without
anything being stored or sent along. The run span itself is recorded when the run ends, with
the time it started, by the process that ends it; it links to the span of the HTTP request
that started the run when the same process served it.
"""
from __future__ import annotations

import functools
import logging
import random
import time
import traceback
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterator
from contextlib import (
    AbstractContextManager,
    contextmanager,
)
from contextvars import ContextVar, Token
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.context.contextvars_context import ContextVarsRuntimeContext
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import (
    ConsoleSpanExporter,
    SimpleSpanProcessor,
    SpanExporter,
)
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
from opentelemetry.trace import Link, SpanContext, SpanKind, Status, StatusCode, TraceFlags
from opentelemetry.trace import propagation as trace_propagation
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from baseshift.core.events import RunStateChanged
from baseshift.core.logcontext import log_masker
from baseshift.core.masking import Masker
from baseshift.core.states import RunState
from baseshift.core.tracecontext import TraceSpot, run_trace

from .batching import SpanBatcher
from .quick import UNSET as _UNSET
from .quick import QuickSpan, SpanSink

if TYPE_CHECKING:
    from types import TracebackType

    from opentelemetry.trace import TraceState

    from baseshift.core.appface import App
    from baseshift.core.events import Event
    from baseshift.core.protocols import JobContext
    from baseshift.core.records import RunRecord

log = logging.getLogger(__name__)

TRACKED = 10_000
"""At most this many runs are followed (start time, starting request) at once; the oldest
are forgotten first, so runs that end elsewhere never make the process grow."""
SAMPLED = TraceFlags(TraceFlags.SAMPLED)
RPC_SERVICE = "jobexecution.JobExecutor"
"""The gRPC service whose calls have spans (plugins/grpc)."""
_PROPAGATOR = TraceContextTextMapPropagator()
SCOPE = "baseshift"
"""The instrumentation scope of every span made here."""
DB_SYSTEMS = {"sqlite": "sqlite", "postgres": "postgresql"}
"""The OpenTelemetry `db.system.name` of the builtin SQL stores."""


class _Ids(RandomIdGenerator):
    """Random ids, except for a run span, whose ids are derived from the run id."""

    def __init__(self) -> None:
        self.forced: ContextVar[tuple[int, int] | None] = ContextVar("forced", default=None)

    def generate_trace_id(self) -> int:
        forced = self.forced.get()
        return super().generate_trace_id() if forced is None else forced[0]

    def generate_span_id(self) -> int:
        forced = self.forced.get()
        return super().generate_span_id() if forced is None else forced[1]


def _exporter(kind: str, endpoint: str) -> SpanExporter:
    if kind == "memory":
        return InMemorySpanExporter()
    if kind == "console":
        return ConsoleSpanExporter()
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter(endpoint=endpoint)


def traceparent_of(context: SpanContext) -> str:
    """The W3C `traceparent` header of a span."""
    return f"00-{context.trace_id:032x}-{context.span_id:016x}-{int(context.trace_flags):02x}"


def run_context(run_id: str, sampled: bool = True) -> SpanContext:
    """The span context of run `run_id`'s span (whether or not it is recorded yet)."""
    trace_id, span_id = run_trace(run_id)
    return SpanContext(trace_id, span_id, is_remote=True,
                       trace_flags=SAMPLED if sampled else TraceFlags(TraceFlags.DEFAULT))


class _Ratio(TraceIdRatioBased):
    """Samples by trace id, as the standard ratio sampler; also tells whether a run's
    trace is sampled, so every process (server, worker) decides alike for a run."""

    def sampled(self, trace_id: int) -> bool:
        return trace_id & self.TRACE_ID_LIMIT < self.bound


class Tracing:
    """The tracer of one application and what it remembers of the runs it follows."""

    def __init__(self, kind: str, endpoint: str, service: str, ratio: float = 1.0) -> None:
        """`ratio`: the share of traces recorded (by trace id: a run's whole trace, or
        none of it; a request carrying a `traceparent` follows its caller's choice)."""
        self.exporter = _exporter(kind, endpoint)
        self._ids = _Ids()
        self._ratio = _Ratio(ratio)
        self.provider = TracerProvider(resource=Resource.create({"service.name": service}),
                                       id_generator=self._ids, shutdown_on_exit=False,
                                       sampler=ParentBased(self._ratio))
        self.run_trace = functools.lru_cache(maxsize=1024)(self._run_trace_of)
        """What the attempts of a run share of its trace, by run id (`_run_trace_of`)."""
        # batched, as a collector is sent spans: `memory` too, so that what it costs is
        # what an exporter's spans cost (bench/engine.py --tracing memory); `console`
        # prints each span as it ends
        processor = (SimpleSpanProcessor(self.exporter) if kind == "console"
                     else SpanBatcher(self.exporter))
        self.provider.add_span_processor(processor)
        self.tracer = self.provider.get_tracer(SCOPE)
        self.sink = SpanSink(processor, self.provider.resource, SCOPE)
        self._started: OrderedDict[str, float] = OrderedDict()
        self._requests: OrderedDict[str, SpanContext] = OrderedDict()

    def close(self) -> None:
        self.provider.shutdown()  # exports what is left

    def finished_spans(self) -> tuple[ReadableSpan, ...]:
        """The spans the `memory` exporter keeps, those still in the batch queue included."""
        if not isinstance(self.exporter, InMemorySpanExporter):
            raise TypeError("only the memory exporter keeps its spans")
        self.provider.force_flush()
        return self.exporter.get_finished_spans()

    # ------------------------------------------------------------------ requests

    def run_requested(self, run_id: str, request: SpanContext) -> None:
        """Run `run_id` was started by the request of span `request`."""
        _remember(self._requests, run_id, request)

    # ------------------------------------------------------------------ attempts

    def attempt(self, run: RunRecord, ctx: JobContext) -> AbstractContextManager[object]:
        """The span of one attempt (all of a template's steps), a child of its run's span; its
        trace context is bound to log lines and to what executors send out."""
        run_trace = self.run_trace(run.id)
        return AttemptSpan(self.sink, run, ctx, run_trace) if run_trace.sampled \
            else RunSpanCurrent(run_trace)

    def _run_trace_of(self, run_id: str) -> RunTrace:
        """What the attempts of run `run_id` share of its trace (kept for the latest runs
        by `run_trace`: every attempt of a fan-out asks)."""
        trace_id, _ = run_trace(run_id)
        parent = run_context(run_id, self._ratio.sampled(trace_id))
        return RunTrace(parent, bool(parent.trace_flags.sampled),
                         trace.NonRecordingSpan(parent), trace_id, parent.trace_flags,
                         parent.trace_state)

    # ------------------------------------------------------------------ store

    def store_call(self, store: str, operation: str) -> AbstractContextManager[object] | None:
        """The span of one store operation (a `core/storecalls.py` listener), a child of the
        current span. None, no span, when nothing is being traced here: the engine's own
        scheduling rounds (each a batch of many runs) are timed by the metrics instead."""
        if not trace.get_current_span().is_recording():
            return None
        attributes = {"baseshift.store": store, "db.operation.name": operation}
        system = DB_SYSTEMS.get(store)
        if system is not None:
            attributes["db.system.name"] = system
        return self.tracer.start_as_current_span(f"store {operation}", kind=SpanKind.CLIENT,
                                                 attributes=attributes)

    # ------------------------------------------------------------------ gRPC

    @contextmanager
    def rpc_client(self, method: str) -> Iterator[str]:
        """The client span of one JobExecutor call, a child of the current span (the
        attempt's); yields the `traceparent` to send with the call, so the worker's span is
        this one's child."""
        with self.tracer.start_as_current_span(
                f"{RPC_SERVICE}/{method}", kind=SpanKind.CLIENT,
                attributes=_rpc(method)) as span:
            yield traceparent_of(span.get_span_context())

    @contextmanager
    def rpc_server(self, method: str, caller: str | None) -> Iterator[str]:
        """The server span of one JobExecutor call, continuing the caller's trace (its
        `traceparent`; a new trace without one); yields this span's `traceparent`, for the
        job the call runs."""
        parent = _PROPAGATOR.extract({"traceparent": caller}) if caller \
            else otel_context.Context()
        with self.tracer.start_as_current_span(
                f"{RPC_SERVICE}/{method}", context=parent, kind=SpanKind.SERVER,
                attributes=_rpc(method)) as span:
            yield traceparent_of(span.get_span_context())

    # ------------------------------------------------------------------ runs

    def observe(self, bs: App, event: Event) -> Awaitable[None] | None:
        """Note when a run starts; record its span when it ends."""
        match event:
            case RunStateChanged(new=RunState.RUNNING, old=old) if old is not RunState.RUNNING:
                _remember(self._started, event.run_id, event.at)
            case RunStateChanged(new=new) if new.finished:
                return self._run_ended(bs, event)
            case _:
                pass
        return None

    async def _run_ended(self, bs: App, event: RunStateChanged) -> None:
        started = self._started.pop(event.run_id, None)
        if started is None:  # started before a restart, or by another server
            stored = await bs.store.load_run(event.run_id)
            started = event.at if stored is None else (
                stored.run.started_at or stored.run.created_at or event.at)
        request = self._requests.pop(event.run_id, None)
        token = self._ids.forced.set(run_trace(event.run_id))
        try:
            span = self.tracer.start_span(
                f"run {event.workflow}", context=trace.set_span_in_context(
                    trace.INVALID_SPAN), kind=SpanKind.INTERNAL,
                attributes={"baseshift.run_id": event.run_id,
                            "baseshift.workflow": event.workflow,
                            "baseshift.run.state": event.new.value},
                links=[Link(request)] if request is not None else None,
                start_time=_nanoseconds(started))
        finally:
            self._ids.forced.reset(token)
        if event.new is RunState.FAILED:
            span.set_status(Status(StatusCode.ERROR))
        span.end(end_time=_nanoseconds(event.at))


@dataclass(frozen=True, slots=True)
class RunTrace:
    """What every attempt of one run shares of its trace, worked out once per run: the run
    span's context (its parent, flagged sampled or not) and the parts of it an attempt
    span's context copies, and for an attempt of a run not sampled, which makes no span, the
    run span to make current."""

    parent: SpanContext
    sampled: bool
    parent_span: trace.NonRecordingSpan
    trace_id: int
    flags: TraceFlags
    state: TraceState


class AttemptSpan(QuickSpan):
    """The span of one attempt of a sampled run, and the context manager that makes it
    current while the attempt runs (log lines and executors learn its ids from it:
    `current_spot`); a failure is recorded on it, as `start_as_current_span` does.

    It runs around every attempt, so it costs as little as it can: one object, the span
    itself (quick.py), started when the attempt's wrappers are made, just before they are
    entered, and six Python calls in all (made, entered and bound, left and unbound,
    queued). Its context is made as `SpanContext(...)` makes it, without the checks, which
    cost as much as the rest of the span (the ids are known to be valid: the trace's is the
    parent's, the span's comes from `random.getrandbits(64) or 1`;
    tests/plugins/test_span_batcher.py compares the two). It is made current through the
    context's own ContextVar (`_bind`), and ends as `QuickSpan.end` ends it, in place. An
    attempt of a run not sampled makes no span (`RunSpanCurrent`)."""

    __slots__ = ("_token",)

    def __init__(self, sink: SpanSink, run: RunRecord, ctx: JobContext,
                 run_trace: RunTrace) -> None:
        """`run_trace`: a sampled run's."""
        self._sink, self._name, self._parent = sink, f"job {ctx.job}", run_trace.parent
        self._context = tuple.__new__(SpanContext, (  # never the invalid span id 0
            run_trace.trace_id, random.getrandbits(64) or 1, False, run_trace.flags,
            run_trace.state, True))
        self._resource, self._instrumentation_scope = sink.resource, sink.scope
        self._attributes = {"baseshift.run_id": run.id, "baseshift.workflow": run.workflow,
                            "baseshift.job": ctx.job, "baseshift.attempt": ctx.attempt}
        self._events, self._status, self._end_time = (), _UNSET, None
        self._start_time = time.time_ns()

    def __enter__(self) -> AttemptSpan:
        """Made current (and, as any span entered, itself the value of the `with`)."""
        self._token = _bind(self)
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        _unbind(self._token)
        del self._token  # the span waits for the exporter: not the context before it
        if isinstance(exc, Exception):
            _record_failure(self, exc)
        if self._end_time is None:  # `end()`, unless the attempt ended its span itself
            self._end_time = time.time_ns()
            self._sink.processor.on_end(self)


class RunSpanCurrent:
    """Around an attempt of a run not sampled: no span, the run's (not recorded) is current,
    so what the attempt calls out carries the run's unsampled context on, as the sampler
    would have decided (by the run's trace id)."""

    __slots__ = ("span", "token")

    def __init__(self, run_trace: RunTrace) -> None:
        self.span = run_trace.parent_span

    def __enter__(self) -> None:
        self.token = _bind(self.span)

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        _unbind(self.token)


def _bind(span: trace.Span) -> Token[Context]:
    """Make `span` current in the current context (as `set_span_in_context` and `attach`
    do, through the context's own ContextVar: `_current_context`)."""
    return _set_context(Context({**_get_context(), _SPAN_KEY: span})
                        if _SPAN_KEY else trace.set_span_in_context(span))


def _unbind(token: Token[Context]) -> None:
    """Restore the context `_bind` changed."""
    try:
        _reset_context(token)
    except ValueError:  # left in another context than it entered: as `detach` does
        log.exception("Failed to detach context")


def _record_failure(span: QuickSpan, exc: Exception) -> None:
    """The failure of an attempt on its span, masked with the attempt's secrets, as its
    stored error: a trace is an output too."""
    mask = log_masker() or Masker()
    span.record_exception(exc, attributes={
        "exception.message": mask.text(str(exc)),
        "exception.stacktrace": mask.text("".join(traceback.format_exception(exc)))})
    span.set_status(Status(StatusCode.ERROR, mask.text(f"{type(exc).__name__}: {exc}")))


def _current_context() -> tuple[Callable[[], Context], Callable[[Context], Token[Context]],
                                Callable[[Token[Context]], None]]:
    """How to read, set and reset the current OpenTelemetry context: with the default
    runtime context (contextvars), its ContextVar's own methods, so binding an attempt's
    span makes no Python call; with another one (`OTEL_PYTHON_CONTEXT`), the API's
    functions."""
    runtime = getattr(otel_context, "_RUNTIME_CONTEXT", None)
    if type(runtime) is ContextVarsRuntimeContext:
        var: ContextVar[Context] = runtime._current_context
        return var.get, var.set, var.reset
    return otel_context.get_current, otel_context.attach, otel_context.detach


def _span_key() -> str:
    """The key of the current span in a context, as `set_span_in_context` sets it; "" if
    the API no longer keeps it there (then attempts ask the API to set it)."""
    key = getattr(trace_propagation, "_SPAN_KEY", "")
    probe = trace.NonRecordingSpan(run_context("probe"))
    if not isinstance(key, str) or not key or \
            trace.get_current_span(Context({key: probe})) is not probe:
        return ""
    return key


_get_context, _set_context, _reset_context = _current_context()
_SPAN_KEY = _span_key()


class _SpanSpot:
    """A span's place in its trace, as log lines and executors want it (`TraceSpot`)."""

    __slots__ = ("context",)

    def __init__(self, context: SpanContext) -> None:
        self.context = context

    def traceparent(self) -> str:
        return traceparent_of(self.context)

    def log_fields(self) -> dict[str, object]:
        return {"trace_id": f"{self.context.trace_id:032x}",
                "span_id": f"{self.context.span_id:016x}"}


def current_spot() -> TraceSpot | None:
    """The current OpenTelemetry span's place in its trace (None: no valid span is
    current): the `SpotSource` of core/tracecontext.py, asked only when a line is logged
    or a step calls out."""
    context = trace.get_current_span().get_span_context()
    return _SpanSpot(context) if context.is_valid else None


def _rpc(method: str) -> dict[str, str]:
    return {"rpc.system": "grpc", "rpc.service": RPC_SERVICE, "rpc.method": method}


def _nanoseconds(seconds: float) -> int:
    return int(seconds * 1e9)


def _remember(table: OrderedDict[str, Any], key: str, value: Any) -> None:
    table[key] = value
    if len(table) > TRACKED:
        table.popitem(last=False)
