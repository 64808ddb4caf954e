"""The trace an attempt belongs to, for whoever carries it further (docs/operations.md
"Traces"): the W3C `traceparent` of the current span, and the ids of a run's trace.

Where the work going on now is in a trace is a `TraceSpot`: the tracing plugin (plugins/tracing)
tells it from its current span (`follow_spans`), which it makes current around each attempt;
a gRPC worker binds the caller's (`traceparent_bound`). Executors that call out pass its
`traceparent` on (the `http` executor as a header, shell steps and Kubernetes pods as the
`TRACEPARENT` variable), and log lines name its trace and span (core/logcontext.py
`log_fields`). Both are worked out when asked for, not for every attempt. Nothing is told
when tracing is off, and nothing here imports OpenTelemetry.

A run's trace id and the id of its span are derived from the run id (`run_trace`), so an
attempt executed later, after a restart or by a `baseshift worker` on another machine, finds
its parent from the run id alone: nothing about the trace is stored.
"""
from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Callable, Iterator, Mapping
from contextvars import ContextVar
from types import MappingProxyType
from typing import Protocol

from .stash import StashKey


class TraceSpot(Protocol):
    """Where the work going on now is in a trace: its span's `traceparent`, and the fields
    its log lines carry (`trace_id`, `span_id`)."""

    def traceparent(self) -> str: ...

    def log_fields(self) -> Mapping[str, object]: ...


TRACE_SPOT: ContextVar[TraceSpot | None] = ContextVar("baseshift_trace_spot", default=None)
"""The `TraceSpot` bound now (`traceparent_bound`), if any."""
SpotSource = Callable[[], TraceSpot | None]
"""Tells where the work going on now is in a trace, when no spot is bound (None: nowhere)."""
_SOURCES: list[SpotSource] = []
_NO_FIELDS: Mapping[str, object] = MappingProxyType({})
_ON_RUN: ContextVar[Callable[[str], None] | None] = ContextVar("baseshift_on_run",
                                                                default=None)

TRACE_URL: StashKey[str] = StashKey("tracing_trace_url")
"""Set by the tracing plugin when traces are recorded: the URL template of a trace
(`{trace_id}` in it), or "" to show the trace id without a link (the run page)."""


def follow_spans(source: SpotSource) -> None:
    """Ask `source` where the work is in a trace when no spot is bound: the tracing plugin's
    current OpenTelemetry span, which it makes current around each attempt anyway, so that
    nothing more is bound for every attempt. Kept for the process (a source registered
    again is not added twice)."""
    if source not in _SOURCES:
        _SOURCES.append(source)


def current_spot() -> TraceSpot | None:
    """The spot bound now, else the first a source tells (None: no trace recorded here)."""
    spot = TRACE_SPOT.get()
    if spot is None:
        for source in _SOURCES:
            spot = source()
            if spot is not None:
                break
    return spot


def traceparent() -> str | None:
    """The `traceparent` of the current span, or None when no trace is being recorded."""
    spot = current_spot()
    return None if spot is None else spot.traceparent()


def trace_fields() -> Mapping[str, object]:
    """The trace fields of a log line written now (none when no trace is being recorded)."""
    spot = current_spot()
    return _NO_FIELDS if spot is None else spot.log_fields()


class _Given:
    """A `traceparent` received from a caller, passed on as it is; log lines are left as
    they are."""

    __slots__ = ("header",)

    def __init__(self, header: str) -> None:
        self.header = header

    def traceparent(self) -> str:
        return self.header

    def log_fields(self) -> Mapping[str, object]:
        return _NO_FIELDS


@contextlib.contextmanager
def traceparent_bound(value: str) -> Iterator[None]:
    """Make `value` the current `traceparent` until the block ends."""
    token = TRACE_SPOT.set(_Given(value))
    try:
        yield
    finally:
        TRACE_SPOT.reset(token)


@contextlib.contextmanager
def on_run_started(note: Callable[[str], None]) -> Iterator[None]:
    """Call `note(run_id)` for each run started inside the block (the request that started
    it links its span to the run's)."""
    token = _ON_RUN.set(note)
    try:
        yield
    finally:
        _ON_RUN.reset(token)


def run_started(run_id: str) -> None:
    """Tell the block of `on_run_started`, if any, that run `run_id` was started."""
    note = _ON_RUN.get()
    if note is not None:
        note(run_id)


def run_trace(run_id: str) -> tuple[int, int]:
    """The trace id (128 bits) and the run span's id (64 bits) of run `run_id`: the first 24
    bytes of SHA-256("baseshift.run:" + run_id), neither of them zero."""
    digest = hashlib.sha256(b"baseshift.run:" + run_id.encode()).digest()
    return (int.from_bytes(digest[:16], "big") or 1), (int.from_bytes(digest[16:24], "big") or 1)


def run_trace_id(run_id: str) -> str:
    """The trace id of run `run_id` as 32 hex digits (as trace viewers show it)."""
    return f"{run_trace(run_id)[0]:032x}"
