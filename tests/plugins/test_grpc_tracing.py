"""Traces across the gRPC JobExecutor (docs/operations.md "Traces"): with tracing on, each
call of the `grpc` executor is a client span under the attempt's span, and the worker's
service answers each call in a server span continuing the caller's trace, so the remote
step runs under the worker's span. Spans are kept in memory (the `memory` exporter)."""
from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import grpc
import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind, StatusCode

from baseshift.core.protocols import JobContext
from baseshift.core.records import RunRecord
from baseshift.plugins.grpc.codegen import stubs
from baseshift.plugins.grpc.executor import GrpcExecutor
from baseshift.plugins.grpc.service import JobExecutorServer
from baseshift.plugins.tracing.spans import RPC_SERVICE, Tracing
from baseshift.plugins.tracing.stashed import tracing_of

LIMIT = 20  # seconds; only to keep a broken test from hanging the suite
MEMORY = {"tracing": {"exporter": "memory"}}
RUN = RunRecord("run-1", "remote", "1.0.0", "", "", {})


@asynccontextmanager
async def traced_worker(make_baseshift: Any) -> AsyncIterator[tuple[str, Tracing]]:
    """A worker app with tracing on, serving JobExecutor: its target and its tracing."""
    async with make_baseshift(extra=MEMORY) as bs:
        tracing = tracing_of(bs)
        assert tracing is not None
        server = JobExecutorServer(bs, "127.0.0.1:0")
        port = await server.start()
        try:
            yield f"127.0.0.1:{port}", tracing
        finally:
            await server.stop(0)


@pytest.fixture
async def caller() -> AsyncIterator[tuple[GrpcExecutor, Tracing]]:
    """A `grpc` executor whose application traces (in memory)."""
    executor, tracing = GrpcExecutor(), Tracing("memory", "", "caller")
    executor.tracing = tracing
    yield executor, tracing
    await executor.aclose()
    tracing.close()


def finished(tracing: Tracing) -> list[ReadableSpan]:
    return list(tracing.finished_spans())


def one(spans: Sequence[ReadableSpan], name: str, kind: SpanKind) -> ReadableSpan:
    (found,) = [s for s in spans if s.name == name and s.kind is kind]
    return found


async def served(tracing: Tracing, method: str) -> ReadableSpan:
    """The worker's server span of `method`, once it has ended: a call refused with
    `context.abort` sends its status before the handler (and its span) unwinds, so the
    caller can hold the answer a moment before the span ends."""
    name = f"{RPC_SERVICE}/{method}"
    async with asyncio.timeout(LIMIT):
        while not any(s.name == name and s.kind is SpanKind.SERVER
                      for s in finished(tracing)):
            await asyncio.sleep(0.01)
    return one(finished(tracing), name, SpanKind.SERVER)


def context(target: str, command: str) -> JobContext:
    return JobContext(run_id=RUN.id, job="build", attempt=1,
                      config={"target": target, "executor": "shell",
                              "with": {"command": command}})


async def test_a_call_is_a_client_span_under_the_attempt_and_a_server_span_under_it(
        make_baseshift: Any, caller: tuple[GrpcExecutor, Tracing]) -> None:
    executor, tracing = caller
    async with traced_worker(make_baseshift) as (target, worker_tracing):
        job = context(target, "echo $TRACEPARENT")
        with tracing.attempt(RUN, job):
            result = await asyncio.wait_for(executor.execute(job), LIMIT)
        server = await served(worker_tracing, "ExecuteJob")

    spans = finished(tracing)
    attempt = one(spans, "job build", SpanKind.INTERNAL)
    client = one(spans, f"{RPC_SERVICE}/ExecuteJob", SpanKind.CLIENT)
    assert client.parent is not None and client.parent.span_id == attempt.context.span_id
    assert server.parent is not None and server.parent.span_id == client.context.span_id
    assert server.context.trace_id == client.context.trace_id == attempt.context.trace_id
    assert server.attributes is not None and dict(server.attributes) == {
        "rpc.system": "grpc", "rpc.service": RPC_SERVICE, "rpc.method": "ExecuteJob"}
    # the remote step runs under the worker's span
    here = server.context
    assert result.output["stdout"].strip() == \
        f"00-{here.trace_id:032x}-{here.span_id:016x}-01"


async def test_a_cancelled_call_traces_its_cancel_on_both_sides(
        make_baseshift: Any, caller: tuple[GrpcExecutor, Tracing], tmp_path: Path) -> None:
    executor, tracing = caller
    started = tmp_path / "started"
    async with traced_worker(make_baseshift) as (target, worker_tracing):
        job = context(target, f"touch {started} && exec sleep 60")
        with tracing.attempt(RUN, job):
            task = asyncio.create_task(executor.execute(job))
            async with asyncio.timeout(LIMIT):
                while not started.exists():
                    await asyncio.sleep(0.02)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
        cancelled = await served(worker_tracing, "CancelJob")

    spans = finished(tracing)
    call = one(spans, f"{RPC_SERVICE}/ExecuteJob", SpanKind.CLIENT)
    cancel = one(spans, f"{RPC_SERVICE}/CancelJob", SpanKind.CLIENT)
    assert cancel.parent is not None and cancel.parent.span_id == call.context.span_id
    assert cancelled.parent is not None and cancelled.parent.span_id == cancel.context.span_id


async def test_a_call_without_a_trace_starts_one_and_a_refusal_is_an_error(
        make_baseshift: Any) -> None:
    async with traced_worker(make_baseshift) as (target, worker_tracing), \
            grpc.aio.insecure_channel(target) as channel:
        stub = stubs().pb2_grpc.JobExecutorStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stub.GetJobStatus(stubs().pb2.GetJobStatusRequest(job_id="nope"))
        assert refused.value.code() == grpc.StatusCode.NOT_FOUND
        status = await served(worker_tracing, "GetJobStatus")
    assert status.parent is None
    assert status.status.status_code is StatusCode.ERROR
