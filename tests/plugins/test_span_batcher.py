"""The tracing plugin's span batcher (plugins/tracing/batching.py), which stands in for the
SDK's batch span processor, and an attempt's span (plugins/tracing/spans.py `AttemptSpan`),
whose context is made without the API's constructor: both must give what the SDK's own
would, as exporters and other processes see it."""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from typing import Any

import pytest

pytest.importorskip("opentelemetry.sdk", reason="needs the otel extra")

from opentelemetry.sdk.trace import ReadableSpan, TracerProvider  # noqa: E402
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult  # noqa: E402
from opentelemetry.trace import (  # noqa: E402
    SpanContext,
    TraceFlags,
    TraceState,
    format_span_id,
)

from baseshift.plugins.tracing.batching import SpanBatcher  # noqa: E402


class Recorder(SpanExporter):
    """Keeps each batch it is given; fails the batches named in `fail` (by number)."""

    def __init__(self, fail: Sequence[int] = ()) -> None:
        self.batches: list[list[str]] = []
        self.fail = set(fail)
        self.closed = False
        self.got = threading.Event()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        number = len(self.batches)
        self.batches.append([s.name for s in spans])
        self.got.set()
        if number in self.fail:
            raise ConnectionError("the collector is down")
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        self.closed = True

    def names(self) -> list[str]:
        return [name for batch in self.batches for name in batch]


def _ended(provider: TracerProvider, count: int, prefix: str = "s") -> None:
    tracer = provider.get_tracer("test")
    for i in range(count):
        tracer.start_span(f"{prefix}{i}").end()


def _batching(recorder: Recorder | None = None, **sizes: Any
              ) -> tuple[Recorder, SpanBatcher, TracerProvider]:
    """A recorder, a batcher of `sizes` sending to it, and a provider whose spans it takes."""
    recorder = recorder or Recorder()
    batcher = SpanBatcher(recorder, **sizes)
    provider = TracerProvider(shutdown_on_exit=False)
    provider.add_span_processor(batcher)
    return recorder, batcher, provider


def test_spans_go_out_in_batches_of_the_batch_size_oldest_first() -> None:
    recorder, _, provider = _batching(queue_size=100, batch_size=4, delay=60)
    _ended(provider, 10)
    assert recorder.got.wait(10), "a full batch wakes the exporting thread"
    provider.force_flush()
    assert recorder.names() == [f"s{i}" for i in range(10)]
    assert all(len(batch) <= 4 for batch in recorder.batches)
    provider.shutdown()
    assert recorder.closed


def test_a_batch_not_full_goes_out_after_the_delay() -> None:
    recorder, _, provider = _batching(queue_size=100, batch_size=50, delay=0.05)
    _ended(provider, 3)
    assert recorder.got.wait(10), "the delay sends what waits"
    deadline = time.monotonic() + 10
    while len(recorder.names()) < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert recorder.names() == ["s0", "s1", "s2"]
    provider.shutdown()


def test_shutdown_exports_what_waits_then_shuts_the_exporter_down() -> None:
    recorder, batcher, provider = _batching(queue_size=100, batch_size=50, delay=60)
    _ended(provider, 7)
    provider.shutdown()
    assert recorder.names() == [f"s{i}" for i in range(7)]
    assert recorder.closed
    batcher.shutdown()  # a second time changes nothing


def test_a_full_queue_keeps_the_newest_spans_and_says_so(
        caplog: pytest.LogCaptureFixture) -> None:
    # a batch size above the queue's is cut to it; a long delay: nothing leaves meanwhile
    recorder, batcher, provider = _batching(queue_size=5, batch_size=50, delay=60)
    assert batcher.batch_size == 5
    with caplog.at_level(logging.WARNING, "baseshift.tracing"):
        with batcher._exporting:  # a slow export: nothing leaves while the spans end
            _ended(provider, 12)
        provider.force_flush()
    assert recorder.names() == [f"s{i}" for i in range(7, 12)]
    assert batcher.dropped == 7
    assert [r.getMessage() for r in caplog.records] == [
        "the span queue was full (OTEL_BSP_MAX_QUEUE_SIZE=5): the 7 oldest spans were "
        "dropped unexported"]
    provider.shutdown()


def test_an_exporter_that_fails_is_logged_and_later_batches_still_go_out(
        caplog: pytest.LogCaptureFixture) -> None:
    recorder, _, provider = _batching(Recorder(fail=[0]), queue_size=100, batch_size=2,
                                      delay=60)
    with caplog.at_level(logging.ERROR, "baseshift.tracing"):
        _ended(provider, 2, "a")
        provider.force_flush()
        _ended(provider, 2, "b")
        provider.force_flush()
    assert recorder.names() == ["a0", "a1", "b0", "b1"]
    assert any("exporting 2 spans failed" in r.getMessage() for r in caplog.records)
    provider.shutdown()


def test_spans_ended_in_many_threads_are_all_exported_once() -> None:
    recorder, _, provider = _batching(queue_size=100_000, batch_size=64, delay=0.01)
    threads = [threading.Thread(target=_ended, args=(provider, 500, f"t{n}-"))
               for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    provider.shutdown()
    names = recorder.names()
    assert len(names) == len(set(names)) == 2000


@pytest.mark.parametrize(("variable", "value", "attribute", "expected"), [
    ("OTEL_BSP_MAX_QUEUE_SIZE", "300", "queue_size", 300),
    ("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "20", "batch_size", 20),
    ("OTEL_BSP_SCHEDULE_DELAY", "250", "delay", 0.25),
    ("OTEL_BSP_SCHEDULE_DELAY", "soon", "delay", 5.0),
    ("OTEL_BSP_MAX_QUEUE_SIZE", "-1", "queue_size", 2048),
])
def test_the_sdk_s_variables_size_it(monkeypatch: pytest.MonkeyPatch, variable: str,
                                     value: str, attribute: str, expected: float) -> None:
    monkeypatch.setenv(variable, value)
    batcher = SpanBatcher(Recorder())
    try:
        assert getattr(batcher, attribute) == expected
    finally:
        batcher.shutdown()


@pytest.mark.parametrize(("drawn", "span_id"), [(0, 1), (1, 1), (0xB7AD6B7169203331,) * 2,
                                                (2**64 - 1,) * 2])
@pytest.mark.parametrize("flags", [TraceFlags(TraceFlags.SAMPLED), TraceFlags(0)])
def test_an_attempt_span_s_context_is_what_the_api_makes(
        monkeypatch: pytest.MonkeyPatch, drawn: int, span_id: int, flags: TraceFlags) -> None:
    """The span id is drawn at random (never the invalid 0); the rest is the run span's."""
    from opentelemetry import trace
    from opentelemetry.sdk.resources import Resource

    from baseshift.core.protocols import JobContext
    from baseshift.core.records import RunRecord
    from baseshift.plugins.tracing import spans
    from baseshift.plugins.tracing.quick import SpanSink

    parent = SpanContext(0x0AF7651916CD43DD8448EB211C80319C, 0x1234, is_remote=True,
                         trace_flags=flags, trace_state=TraceState([("vendor", "v1")]))
    monkeypatch.setattr(spans.random, "getrandbits", lambda bits: drawn)
    batcher = SpanBatcher(Recorder())
    try:
        made = spans.AttemptSpan(
            SpanSink(batcher, Resource.create({}), "test"), RunRecord("r", "w", "1", "", "", {}),
            JobContext("r", "j", 1, {}), spans.RunTrace(
                parent, True, trace.NonRecordingSpan(parent), parent.trace_id, flags,
                parent.trace_state)).get_span_context()
    finally:
        batcher.shutdown()
    expected = SpanContext(parent.trace_id, span_id, is_remote=False, trace_flags=flags,
                           trace_state=parent.trace_state)
    assert made == expected and type(made) is SpanContext
    assert made.is_valid and not made.is_remote and made.span_id == span_id
    assert made.trace_flags == flags and made.trace_state == parent.trace_state
    assert format_span_id(made.span_id) == f"{span_id:016x}"


def test_only_sampled_spans_go_out_and_an_attempt_s_quick_span_does() -> None:
    """As the SDK's processors: a span recorded but not sampled (a sampler's RECORD_ONLY)
    is not exported. An attempt's `QuickSpan` (made only for a sampled run) is."""
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace.sampling import Decision, SamplingResult, StaticSampler

    from baseshift.plugins.tracing.quick import QuickSpan, SpanSink

    class RecordOnly(StaticSampler):
        def should_sample(self, *args: Any, **kwargs: Any) -> SamplingResult:
            return SamplingResult(Decision.RECORD_ONLY)

    recorder = Recorder()
    batcher = SpanBatcher(recorder, queue_size=100, batch_size=50, delay=60)
    provider = TracerProvider(shutdown_on_exit=False, sampler=RecordOnly(Decision.RECORD_ONLY))
    provider.add_span_processor(batcher)
    _ended(provider, 2, "unsampled")
    parent = SpanContext(0x0AF7651916CD43DD8448EB211C80319C, 0x1234, is_remote=True,
                         trace_flags=TraceFlags(TraceFlags.SAMPLED))
    QuickSpan(SpanSink(batcher, Resource.create({}), "test"), "job j",
              SpanContext(parent.trace_id, 7, is_remote=False, trace_flags=parent.trace_flags),
              parent, {"baseshift.job": "j"}).end()
    sampled = TracerProvider(shutdown_on_exit=False)
    sampled.add_span_processor(batcher)
    _ended(sampled, 1, "sampled")
    provider.shutdown()
    assert recorder.names() == ["job j", "sampled0"]
