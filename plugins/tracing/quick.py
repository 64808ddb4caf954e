"""A span made without the SDK's per-span machinery, for the one span every attempt has.

The SDK's `start_span` and `end` cost tens of microseconds a span (sampler, limits, locks,
the processors' `on_start`), as much as the engine spends on a no-op job. An attempt span
needs none of it: its trace and sampling are decided by its run (core/tracecontext.py
`run_trace`), its parent is the run span, its attributes are ours. So `QuickSpan` keeps
what the span becomes (name, ids, times, attributes, events, status) and, when it ends,
hands the span processor the very `ReadableSpan` the SDK would have: the exporters and the
batch queue see no difference. While it runs it is a full span of the API (recording, with
attributes, events, status), so the spans made under it (store, gRPC, a step's own) are its
children as they would be of an SDK span.
"""
from __future__ import annotations

import time
import traceback
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from opentelemetry import trace
from opentelemetry.attributes import BoundedAttributes
from opentelemetry.sdk.trace import Event, ReadableSpan, SpanLimits, SpanProcessor
from opentelemetry.sdk.util import BoundedList
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode

if TYPE_CHECKING:
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.util.types import Attributes, AttributeValue

_UNSET = Status(StatusCode.UNSET)


class SpanSink:
    """Where quick spans go when they end: the processor of the application's provider,
    with the resource and scope its tracer gives its own spans."""

    __slots__ = ("limits", "processor", "resource", "scope")

    def __init__(self, processor: SpanProcessor, resource: Resource, scope: str) -> None:
        self.processor = processor
        self.resource = resource
        # as `provider.get_tracer(scope)` makes it (tests/web/test_tracing.py compares them)
        self.scope = InstrumentationScope(scope, "")
        self.limits = SpanLimits()


class QuickSpan(trace.Span):
    """A recording span, exported as the SDK's when it ends (module docstring)."""

    __slots__ = ("_attributes", "_context", "_end", "_events", "_name", "_parent", "_sink",
                 "_start", "_status")

    def __init__(self, sink: SpanSink, name: str, context: SpanContext, parent: SpanContext,
                 attributes: dict[str, AttributeValue]) -> None:
        """`attributes`: valid ones (str, int); the span keeps this dict."""
        self._sink, self._name, self._context, self._parent = sink, name, context, parent
        self._attributes: dict[str, Any] | BoundedAttributes = attributes
        self._events: BoundedList[Event] | tuple[()] = ()  # a list only when needed
        self._status = _UNSET
        self._start = time.time_ns()
        self._end: int | None = None

    def get_span_context(self) -> SpanContext:
        return self._context

    def is_recording(self) -> bool:
        return self._end is None

    def end(self, end_time: int | None = None) -> None:
        if self._end is not None:
            return
        self._end = time.time_ns() if end_time is None else end_time
        sink = self._sink
        sink.processor.on_end(ReadableSpan(
            name=self._name, context=self._context, parent=self._parent,
            resource=sink.resource, attributes=self._attributes, events=self._events,
            kind=SpanKind.INTERNAL, status=self._status, start_time=self._start,
            end_time=self._end, instrumentation_scope=sink.scope))

    def update_name(self, name: str) -> None:
        if self.is_recording():
            self._name = name

    def set_attribute(self, key: str, value: AttributeValue) -> None:
        self.set_attributes({key: value})

    def set_attributes(self, attributes: Mapping[str, AttributeValue]) -> None:
        """Others' attributes are checked and bounded as the SDK's span does (ours, given
        at the start, are known to be valid)."""
        if not self.is_recording():
            return
        if not isinstance(self._attributes, BoundedAttributes):
            limits = self._sink.limits
            self._attributes = BoundedAttributes(
                limits.max_span_attributes, self._attributes, immutable=False,
                max_value_len=limits.max_span_attribute_length)
        for key, value in attributes.items():
            self._attributes[key] = value

    def add_event(self, name: str, attributes: Attributes = None,
                  timestamp: int | None = None) -> None:
        if not self.is_recording():
            return
        limits = self._sink.limits
        if not isinstance(self._events, BoundedList):
            self._events = BoundedList(limits.max_events)
        self._events.append(Event(name, BoundedAttributes(
            limits.max_event_attributes, attributes, immutable=True,
            max_value_len=limits.max_attribute_length), timestamp))

    def set_status(self, status: Status | StatusCode, description: str | None = None) -> None:
        """As the SDK's span: OK is final, UNSET changes nothing."""
        if not self.is_recording() or self._status.status_code is StatusCode.OK:
            return
        new = status if isinstance(status, Status) else Status(status, description)
        if new.status_code is not StatusCode.UNSET:
            self._status = new

    def record_exception(self, exception: BaseException, attributes: Attributes = None,
                         timestamp: int | None = None, escaped: bool = False) -> None:
        """The `exception` event, with the attributes the SDK's span gives it."""
        kind = type(exception)
        module = kind.__module__
        recorded: dict[str, Any] = {
            "exception.type": f"{module}.{kind.__qualname__}"
            if module and module != "builtins" else kind.__qualname__,
            "exception.message": str(exception),
            "exception.stacktrace": "".join(traceback.format_exception(exception)),
            "exception.escaped": str(escaped),
        }
        recorded.update(attributes or {})
        self.add_event("exception", recorded, timestamp)
