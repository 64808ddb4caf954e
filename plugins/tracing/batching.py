"""Ended spans, batched for an exporter on a thread of their own.

Why not the SDK's `BatchSpanProcessor`: its `on_end` costs about a microsecond a span (a
check of the span's flags, a `getpid` system call to notice a fork, a bounded deque, the
processor's own metrics), and an attempt span ends for every job: in a fan-out of no-op
jobs that is as much as the rest of the span. Here `on_end` appends to a bounded deque
(and counts what a full one drops); the thread takes it a batch at a time. The rest is as
the SDK's processor does it, sized by the same variables: a batch goes out when
`OTEL_BSP_MAX_EXPORT_BATCH_SIZE` spans (512) wait, or every `OTEL_BSP_SCHEDULE_DELAY`
milliseconds (5000); at most `OTEL_BSP_MAX_QUEUE_SIZE` spans (2048) wait, the oldest
dropped beyond (a warning says how many); `force_flush` exports what waits, `shutdown`
too, then shuts the exporter down.

The processes of a fleet are started, not forked (plugins/server/processes.py), so no fork
check is needed.
"""
from __future__ import annotations

import logging
import os
import threading
from collections import deque
from collections.abc import Sequence

from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.sdk.trace.export import SpanExporter

from .quick import QuickSpan

log = logging.getLogger("baseshift.tracing")

QUEUE_SIZE = "OTEL_BSP_MAX_QUEUE_SIZE"
BATCH_SIZE = "OTEL_BSP_MAX_EXPORT_BATCH_SIZE"
DELAY = "OTEL_BSP_SCHEDULE_DELAY"
"""The SDK's variables (milliseconds for the delay), read here with the same defaults."""


def _sampled(span: ReadableSpan) -> bool:
    """Whether a span is exported: only sampled ones are, as the SDK's processors decide
    (an attempt's span, a `QuickSpan`, always is: one is made only for a sampled run)."""
    return span.context is not None and bool(span.context.trace_flags.sampled)


def _setting(name: str, default: int) -> int:
    """A positive whole number from the environment, else `default` (as the SDK: a bad
    value is logged and ignored)."""
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value <= 0:
        log.warning("%s=%r is not a positive whole number: %d used", name, text, default)
        return default
    return value


class SpanBatcher(SpanProcessor):
    """Batches ended spans for `exporter` (module docstring). Spans may end in any thread:
    the queue is a bounded deque, whose `append` is atomic (and drops the oldest when
    full); exports never overlap."""

    def __init__(self, exporter: SpanExporter, *, queue_size: int | None = None,
                 batch_size: int | None = None, delay: float | None = None) -> None:
        """`delay` in seconds; each of the three defaults to its variable."""
        self.exporter = exporter
        self.queue_size = queue_size or _setting(QUEUE_SIZE, 2048)
        self.batch_size = min(batch_size or _setting(BATCH_SIZE, 512), self.queue_size)
        self.delay = delay if delay is not None else _setting(DELAY, 5000) / 1000
        self._queue: deque[ReadableSpan] = deque(maxlen=self.queue_size)
        self._wake = threading.Event()
        self._exporting = threading.Lock()
        self._closed = False
        self.dropped = 0
        """Spans dropped so far because the queue was full (the oldest each time)."""
        self._told = 0
        self._thread = threading.Thread(target=self._work, name="baseshift-spans",
                                        daemon=True)
        self._thread.start()

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        pass

    def on_end(self, span: ReadableSpan) -> None:
        queue = self._queue
        if len(queue) == self.queue_size:  # the append below drops the oldest
            self.dropped += 1
        queue.append(span)
        if len(queue) == self.batch_size:  # a batch is full: wake the thread once for it
            self._wake.set()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Export every span waiting now, in this thread."""
        self._export()
        return True

    def shutdown(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._wake.set()
        self._thread.join()
        self._export()
        self.exporter.shutdown()

    def _work(self) -> None:
        while not self._closed:
            self._wake.wait(self.delay)
            self._wake.clear()
            if not self._closed:
                self._export()

    def _export(self) -> None:
        """Send every span waiting, a batch at a time (the oldest first)."""
        queue, size = self._queue, self.batch_size
        with self._exporting:
            dropped, self._told = self.dropped - self._told, self.dropped
            if dropped:
                log.warning("the span queue was full (OTEL_BSP_MAX_QUEUE_SIZE=%d): the %d "
                            "oldest spans were dropped unexported", self.queue_size, dropped)
            while queue:
                batch = [queue.popleft() for _ in range(min(size, len(queue)))]
                batch = [s for s in batch if isinstance(s, QuickSpan) or _sampled(s)]
                if batch:
                    self._send(batch)

    def _send(self, batch: Sequence[ReadableSpan]) -> None:
        try:
            self.exporter.export(batch)
        except Exception:  # an exporter's failure must not stop the thread
            log.exception("exporting %d spans failed", len(batch))
