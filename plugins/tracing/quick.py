"""A span made without the SDK's per-span machinery, for the one span every attempt has.

The SDK's `start_span` and `end` cost tens of microseconds a span (sampler, limits, locks,
the processors' `on_start`), as much as the engine spends on a no-op job. An attempt span
needs none of it: its trace and sampling are decided by its run (core/tracecontext.py
`run_trace`), its parent is the run span, its attributes are ours. So `QuickSpan` is itself
the `ReadableSpan` the SDK would have made (as the SDK's own span is one), and when it ends
it hands itself to the span processor: the exporters and the batch queue see no
difference, and no second object is made. While it runs it is a full span of the API
(recording, with attributes, events, status), so the spans made under it (store, gRPC, a
step's own) are its children as they would be of an SDK span.
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
from opentelemetry.trace import (
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
)

if TYPE_CHECKING:
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.util.types import Attributes, AttributeValue

UNSET = Status(StatusCode.UNSET)
"""The status of a span until it is set."""


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


class QuickSpan(trace.Span, ReadableSpan):
    """A recording span, exported as it is when it ends (module docstring). It sets the
    fields `ReadableSpan` reads itself: `ReadableSpan.__init__` would set them twice."""

    __slots__ = ("_attributes", "_context", "_end_time", "_events", "_instrumentation_scope",
                 "_name", "_parent", "_resource", "_sink", "_start_time", "_status")
    _kind = SpanKind.INTERNAL
    _links: tuple[()] = ()
    _instrumentation_info = None

    def __init__(self, sink: SpanSink, name: str, context: SpanContext, parent: SpanContext,
                 attributes: dict[str, AttributeValue]) -> None:
        """`attributes`: valid ones (str, int); the span keeps this dict."""
        self._sink, self._name, self._context, self._parent = sink, name, context, parent
        self._resource, self._instrumentation_scope = sink.resource, sink.scope
        self._attributes: dict[str, Any] | BoundedAttributes = attributes
        self._events: BoundedList[Event] | tuple[()] = ()  # a list only when needed
        self._status = UNSET
        self._start_time = time.time_ns()
        self._end_time: int | None = None

    def get_span_context(self) -> SpanContext:
        return self._context  # type: ignore[return-value]  # set at the start, never None

    def is_recording(self) -> bool:
        return self._end_time is None

    def end(self, end_time: int | None = None) -> None:
        if self._end_time is not None:
            return
        self._end_time = time.time_ns() if end_time is None else end_time
        self._sink.processor.on_end(self)

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
