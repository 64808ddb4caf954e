"""The gRPC JobExecutor end to end on loopback: a real grpc.aio server in this process, the
`grpc` executor (and raw stubs) as clients, and the code generated from the proto."""
from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import grpc
import jsonschema
import pytest

from baseshift.core.attempts import NotRetryable
from baseshift.core.errors import ConfigError, ExecutionError, PluginError
from baseshift.core.hookspecs import hookimpl
from baseshift.core.plugins import DEFAULT_PLUGINS
from baseshift.core.protocols import Executor, JobContext, JobResult
from baseshift.core.states import JobState, RunState
from baseshift.core.tracecontext import traceparent_bound
from baseshift.plugins.grpc import codegen as grpc_codegen
from baseshift.plugins.grpc import executor as executor_grpc
from baseshift.plugins.grpc.codegen import stubs
from baseshift.plugins.grpc.executor import GrpcExecutor
from baseshift.plugins.grpc.service import JobExecutorServer

HERE = str(Path(__file__).parent)
if HERE not in sys.path:
    sys.path.insert(0, HERE)

from loopback_http import closed_port  # noqa: E402

LIMIT = 20  # seconds; only to keep a broken test from hanging the suite
CLIENT_PLUGINS = () if "executor_grpc" in DEFAULT_PLUGINS else (executor_grpc,)
"""The grpc executor, registered here until it is a builtin (registering it twice fails)."""
REPO = Path(__file__).resolve().parents[2]


class ContextEcho:
    """Answers with what it was given: the attempt's context as the worker built it."""

    name: ClassVar[str] = "context_echo"
    config_schema: ClassVar[dict[str, Any]] = {"type": "object"}

    async def execute(self, ctx: JobContext) -> JobResult:
        return JobResult(output={"run_id": ctx.run_id, "job": ctx.job, "attempt": ctx.attempt,
                                 "timeout": ctx.timeout, "config": ctx.config})


class EchoPlugin:
    @hookimpl
    def register_executors(self) -> list[type]:
        return [ContextEcho]


@dataclass
class Worker:
    server: JobExecutorServer
    target: str


@pytest.fixture
def serve(make_baseshift: Any) -> Callable[..., Any]:
    """`async with serve(max_parallel=1) as worker:` — a worker app serving JobExecutor."""

    @asynccontextmanager
    async def factory(**settings: Any) -> AsyncIterator[Worker]:
        async with make_baseshift(plugins=(EchoPlugin(),), **settings) as bs:
            server = JobExecutorServer(bs, "127.0.0.1:0")
            port = await server.start()
            try:
                yield Worker(server, f"127.0.0.1:{port}")
            finally:
                await server.stop(0)

    return factory


@pytest.fixture
async def worker(serve: Any) -> AsyncIterator[Worker]:
    async with serve() as running:
        yield running


@pytest.fixture
async def executor() -> AsyncIterator[GrpcExecutor]:
    forwarder = GrpcExecutor()
    yield forwarder
    await forwarder.aclose()


@pytest.fixture
async def stub(worker: Worker) -> AsyncIterator[Any]:
    async with grpc.aio.insecure_channel(worker.target) as channel:
        yield stubs().pb2_grpc.JobExecutorStub(channel)


def ctx(target: str, executor: str = "shell", timeout: float | None = None,
        **settings: Any) -> JobContext:
    return JobContext(run_id="run-1", job="build", attempt=2, timeout=timeout,
                      config={"target": target, "executor": executor, "with": settings})


def request(job_id: str, command: str, executor: str = "shell", **fields: Any) -> Any:
    return stubs().pb2.ExecuteJobRequest(job_id=job_id, job_type=executor,
                                         job_data=json.dumps({"command": command}).encode(),
                                         **fields)


def status_name(value: int) -> str:
    name: str = stubs().pb2.JobStatus.Name(value)
    return name.removeprefix("JOB_STATUS_")


async def status_of(stub: Any, job_id: str) -> str:
    return status_name((await stub.GetJobStatus(
        stubs().pb2.GetJobStatusRequest(job_id=job_id))).status)


async def until(check: Callable[[], Any]) -> None:
    """Wait for a condition (bounded by LIMIT only to fail instead of hanging)."""
    async with asyncio.timeout(LIMIT):
        while not await _maybe_await(check()):
            await asyncio.sleep(0.02)


async def _maybe_await(value: Any) -> Any:
    return await value if asyncio.iscoroutine(value) else value


def long_command(pidfile: Path) -> str:
    """A shell job that writes its pid (after `exec`, the sleep's own pid), then sleeps."""
    return f"echo $$ > {pidfile}.tmp && mv {pidfile}.tmp {pidfile} && exec sleep 60"


async def started_pid(pidfile: Path) -> int:
    await until(pidfile.exists)
    return int(pidfile.read_text())


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


# ------------------------------------------------------------------ contract


def test_is_an_executor_registered_by_the_hook() -> None:
    assert executor_grpc.register_executors() == [GrpcExecutor]
    assert isinstance(GrpcExecutor(), Executor)
    assert GrpcExecutor.name == "grpc"


def test_config_schema_is_valid_and_precise() -> None:
    schema = GrpcExecutor.config_schema
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    good = [{"target": "h:1", "executor": "shell"},
            {"target": "h:1", "executor": "http", "with": {"url": "http://x"},
             "connect_timeout": 0.5}]
    bad = [{}, {"target": "h:1"}, {"executor": "shell"}, {"target": "", "executor": "shell"},
           {"target": "h:1", "executor": "shell", "with": "x"},
           {"target": "h:1", "executor": "shell", "connect_timeout": 0},
           {"target": "h:1", "executor": "shell", "command": "ls"}]
    assert all(validator.is_valid(c) for c in good)
    for config in bad:
        assert not validator.is_valid(config), config


# ------------------------------------------------------------------ the executor


async def test_success_returns_remote_output_and_log(worker: Worker,
                                                     executor: GrpcExecutor) -> None:
    command = ('echo working >&2; echo "{\\"run\\": \\"$BASESHIFT_RUN_ID\\", '
               '\\"job\\": \\"$BASESHIFT_JOB\\", \\"attempt\\": $BASESHIFT_ATTEMPT}"')
    result = await asyncio.wait_for(executor.execute(ctx(worker.target, command=command)),
                                    LIMIT)
    assert result.output == {"run": "run-1", "job": "build", "attempt": 2}
    first, *rest = result.log.splitlines()
    assert first.startswith("sending shell job run-1:build:2:")
    assert first.endswith(f" to JobExecutor at {worker.target}")
    assert sorted(rest) == sorted(["working", json.dumps(result.output)])


async def test_output_of_other_executors_and_null(worker: Worker,
                                                  executor: GrpcExecutor) -> None:
    config = {"target": worker.target, "executor": "python",
              "with": {"function": "json:loads", "args": ["[1, {\"a\": null}]"]}}
    result = await executor.execute(JobContext("r", "j", 1, config))
    assert result.output == [1, {"a": None}]
    assert (await executor.execute(ctx(worker.target, command="echo null"))).output is None


async def test_a_log_holding_a_lone_surrogate_comes_back_as_u_fffd(
        worker: Worker, executor: GrpcExecutor) -> None:
    """Protobuf strings are UTF-8: the worker replaces what cannot be sent, not fail."""
    config = {"target": worker.target, "executor": "python",
              "with": {"function": "builtins:print", "args": ["x\ud800"]}}
    result = await executor.execute(JobContext("r", "j", 1, config))
    assert result.output is None
    assert "x\ufffd" in result.log


async def test_remote_failure_is_a_job_failure_with_its_log(worker: Worker,
                                                            executor: GrpcExecutor) -> None:
    context = ctx(worker.target, command="echo halfway; echo boom >&2; exit 3")
    with pytest.raises(ExecutionError) as info:
        await executor.execute(context)
    assert not isinstance(info.value, NotRetryable)
    assert info.value.message == (f"shell job on {worker.target} failed: "
                                  "command exited with 3: boom")
    assert "halfway" in context.lines[-1] and "boom" in context.lines[-1]


async def test_unknown_remote_executor_is_refused_without_retry(
        worker: Worker, executor: GrpcExecutor) -> None:
    with pytest.raises(NotRetryable) as info:
        await executor.execute(ctx(worker.target, executor="nope"))
    message = info.value.message
    assert message.startswith(f"JobExecutor at {worker.target} refused the job: "
                              "no executor 'nope' on this worker; it has: ")
    assert "shell" in message and "python" in message


async def test_settings_are_checked_against_the_remote_schema(
        worker: Worker, executor: GrpcExecutor) -> None:
    config = {"target": worker.target, "executor": "shell", "with": {"command": 7}}
    with pytest.raises(NotRetryable) as info:
        await executor.execute(JobContext("r", "j", 1, config))
    assert "settings of executor 'shell' are invalid at command: 7 is not of type 'string'" \
        in info.value.message


async def test_unreachable_target_is_a_clear_failure(executor: GrpcExecutor) -> None:
    target = f"127.0.0.1:{closed_port()}"
    config = {"target": target, "executor": "shell", "connect_timeout": 0.3,
              "with": {"command": "true"}}
    with pytest.raises(ExecutionError) as info:
        await asyncio.wait_for(executor.execute(JobContext("r", "j", 1, config)), LIMIT)
    assert info.value.message == (f"cannot reach JobExecutor at {target}: no connection "
                                  f"within 0.3s (is `baseshift worker --grpc {target}` "
                                  "running?)")


async def test_bad_settings_fail_before_any_call(executor: GrpcExecutor) -> None:
    for config, message in [
            ({"executor": "shell"}, "'target' must be HOST:PORT of a JobExecutor, got None"),
            ({"target": "h:1"}, "'executor' must name an executor of the worker, got None"),
            ({"target": "h:1", "executor": "shell", "with": [1]},
             "'with' must be an object, got [1]"),
            ({"target": "h:1", "executor": "shell", "connect_timeout": -1},
             "'connect_timeout' must be a positive number of seconds, got -1")]:
        with pytest.raises(NotRetryable) as info:
            await executor.execute(JobContext("r", "j", 1, config))
        assert info.value.message == message
    assert executor._channels == {}


async def test_one_channel_per_target_reopened_after_aclose(
        worker: Worker, executor: GrpcExecutor) -> None:
    await executor.execute(ctx(worker.target, command="echo 1"))
    channel = executor.channel(worker.target)
    assert (await executor.execute(ctx(worker.target, command="echo 2"))).output == 2
    assert executor.channel(worker.target) is channel
    await executor.aclose()
    assert (await executor.execute(ctx(worker.target, command="echo 3"))).output == 3
    assert executor.channel(worker.target) is not channel


async def test_local_timeout_cancels_the_remote_job(worker: Worker, executor: GrpcExecutor,
                                                    tmp_path: Path) -> None:
    pidfile = tmp_path / "pid"
    context = ctx(worker.target, command=long_command(pidfile))
    task = asyncio.create_task(executor.execute(context))
    pid = await started_pid(pidfile)
    assert alive(pid)
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0):  # what the engine's job timeout does to the attempt
            await task
    assert not alive(pid)
    assert context.lines[-1] == f"CancelJob at {worker.target}: the remote job is CANCELLED"
    (job,) = worker.server.servicer.jobs._jobs.values()
    assert job.error == "cancelled by a CancelJob request"


async def test_requests_and_answers_over_grpcs_default_4_mib_pass(
        worker: Worker, executor: GrpcExecutor) -> None:
    big = "x" * (5 * 1024 * 1024)
    config = {"target": worker.target, "executor": "python",
              "with": {"function": "json:loads", "args": [json.dumps(big)]}}
    result = await asyncio.wait_for(executor.execute(JobContext("r", "j", 1, config)), LIMIT)
    assert result.output == big


async def test_the_remote_executor_gets_the_attempt_context(worker: Worker,
                                                            executor: GrpcExecutor) -> None:
    context = ctx(worker.target, "context_echo", timeout=2, n=[1, {"k": None}])
    result = await executor.execute(context)
    assert result.output == {"run_id": "run-1", "job": "build", "attempt": 2,
                             "timeout": 2 + executor_grpc.REMOTE_TIMEOUT_MARGIN,
                             "config": {"n": [1, {"k": None}]}}
    assert (await executor.execute(ctx(worker.target, "context_echo"))).output["timeout"] \
        is None


async def test_the_callers_traceparent_reaches_the_remote_step(
        worker: Worker, executor: GrpcExecutor, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TRACEPARENT", raising=False)
    parent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    with traceparent_bound(parent):
        traced = await executor.execute(ctx(worker.target, command="echo $TRACEPARENT"))
    untraced = await executor.execute(ctx(worker.target, command="echo x$TRACEPARENT"))
    assert (traced.output["stdout"].strip(), untraced.output["stdout"].strip()) == (parent, "x")


async def test_the_first_use_generates_the_code_off_the_event_loop(
        worker: Worker, executor: GrpcExecutor, monkeypatch: pytest.MonkeyPatch) -> None:
    """The loop must run while the stubs are loaded: it is the one that opens the gate."""
    started, gate = threading.Event(), threading.Event()
    load = grpc_codegen.load_from

    def slow_load(folder: Path) -> Any:
        started.set()
        assert gate.wait(LIMIT), "the event loop was blocked while the code was loaded"
        return load(folder)

    monkeypatch.setattr(grpc_codegen, "_loaded", None)
    monkeypatch.setattr(grpc_codegen, "load_from", slow_load)
    task = asyncio.create_task(executor.execute(ctx(worker.target, command="echo 1")))
    await until(started.is_set)
    assert not task.done()
    gate.set()
    assert (await asyncio.wait_for(task, LIMIT)).output == 1


# ------------------------------------------------------------------ the service


async def test_a_job_over_its_timeout_fails_and_stops(stub: Any, tmp_path: Path) -> None:
    pidfile = tmp_path / "pid"
    call = stub.ExecuteJob(request("slow", long_command(pidfile), timeout_seconds=0.5))
    pid = await started_pid(pidfile)
    answer = await asyncio.wait_for(call, LIMIT)
    assert status_name(answer.status) == "FAILED"
    assert answer.error == "timed out after 0.5s"
    assert not alive(pid)


async def test_cancel_job_stops_a_long_shell_job(worker: Worker, stub: Any,
                                                 tmp_path: Path) -> None:
    pidfile = tmp_path / "pid"
    call = stub.ExecuteJob(request("long", long_command(pidfile)))
    pid = await started_pid(pidfile)
    assert await status_of(stub, "long") == "RUNNING"
    reply = await stub.CancelJob(stubs().pb2.CancelJobRequest(job_id="long"))
    assert reply.success and status_name(reply.status) == "CANCELLED"
    assert not alive(pid)  # the reply comes once the process group is gone
    answer = await asyncio.wait_for(call, LIMIT)
    assert status_name(answer.status) == "CANCELLED"
    assert answer.error == "cancelled by a CancelJob request"
    assert answer.job_id == "long"
    again = await stub.CancelJob(stubs().pb2.CancelJobRequest(job_id="long"))
    assert again.success and status_name(again.status) == "CANCELLED"


async def test_status_transitions_queued_running_then_finished(serve: Any,
                                                               tmp_path: Path) -> None:
    async with serve(max_parallel=1) as worker, \
            grpc.aio.insecure_channel(worker.target) as channel:
        stub = stubs().pb2_grpc.JobExecutorStub(channel)
        pidfile = tmp_path / "pid"
        first = stub.ExecuteJob(request("first", long_command(pidfile)))
        await started_pid(pidfile)
        second = stub.ExecuteJob(request("second", "echo '{\"n\": 2}'"))
        await until(lambda: worker.server.servicer.jobs.get("second") is not None)
        assert await status_of(stub, "first") == "RUNNING"
        assert await status_of(stub, "second") == "QUEUED"  # the only slot is taken
        await stub.CancelJob(stubs().pb2.CancelJobRequest(job_id="first"))
        answer = await asyncio.wait_for(second, LIMIT)
        assert status_name(answer.status) == "SUCCEEDED"
        assert json.loads(answer.result) == {"n": 2}
        assert await status_of(stub, "second") == "SUCCEEDED"
        assert await status_of(stub, "first") == "CANCELLED"
        await first
        failed = await stub.ExecuteJob(request("third", "exit 4"))
        assert status_name(failed.status) == "FAILED"
        reply = await stub.GetJobStatus(stubs().pb2.GetJobStatusRequest(job_id="third"))
        assert status_name(reply.status) == "FAILED"
        assert reply.error == "command exited with 4"
        done = await stub.CancelJob(stubs().pb2.CancelJobRequest(job_id="third"))
        assert not done.success and status_name(done.status) == "FAILED"


async def test_cancelled_queued_job_never_runs(serve: Any, tmp_path: Path) -> None:
    async with serve(max_parallel=1) as worker, \
            grpc.aio.insecure_channel(worker.target) as channel:
        stub = stubs().pb2_grpc.JobExecutorStub(channel)
        first = stub.ExecuteJob(request("first", long_command(tmp_path / "pid")))
        await started_pid(tmp_path / "pid")
        marker = tmp_path / "ran"
        queued = stub.ExecuteJob(request("queued", f"touch {marker}"))
        await until(lambda: worker.server.servicer.jobs.get("queued") is not None)
        reply = await stub.CancelJob(stubs().pb2.CancelJobRequest(job_id="queued"))
        assert reply.success
        assert status_name((await queued).status) == "CANCELLED"
        await stub.CancelJob(stubs().pb2.CancelJobRequest(job_id="first"))
        await first
        assert not marker.exists()


async def test_unknown_job_id_is_not_found(stub: Any) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.GetJobStatus(stubs().pb2.GetJobStatusRequest(job_id="ghost"))
    assert info.value.code() == grpc.StatusCode.NOT_FOUND
    assert info.value.details() == "no job 'ghost' on this worker"


async def test_a_cancel_that_overtakes_its_job_stops_it_from_running(
        stub: Any, tmp_path: Path) -> None:
    reply = await stub.CancelJob(stubs().pb2.CancelJobRequest(job_id="late"))
    assert reply.success and status_name(reply.status) == "CANCELLED"
    marker = tmp_path / "ran"
    answer = await stub.ExecuteJob(request("late", f"touch {marker}"))
    assert status_name(answer.status) == "CANCELLED"
    assert answer.error == "cancelled by a CancelJob request before the job arrived"
    assert not marker.exists()
    assert await status_of(stub, "late") == "CANCELLED"


async def test_a_running_job_id_cannot_be_reused(stub: Any, tmp_path: Path) -> None:
    call = stub.ExecuteJob(request("same", long_command(tmp_path / "pid")))
    await started_pid(tmp_path / "pid")
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.ExecuteJob(request("same", "true"))
    assert info.value.code() == grpc.StatusCode.ALREADY_EXISTS
    assert info.value.details() == "job 'same' is already running here"
    await stub.CancelJob(stubs().pb2.CancelJobRequest(job_id="same"))
    await call
    again = await stub.ExecuteJob(request("same", "echo 5"))  # finished ids may be reused
    assert json.loads(again.result) == 5


async def test_malformed_requests_are_invalid_arguments(stub: Any) -> None:
    bad = [(stubs().pb2.ExecuteJobRequest(job_type="shell"), "job_id is empty"),
           (stubs().pb2.ExecuteJobRequest(job_id="x", job_type="shell", job_data=b"{"),
            "job_data is not JSON: Expecting property name enclosed in double quotes: "
            "line 1 column 2 (char 1)"),
           (stubs().pb2.ExecuteJobRequest(job_id="x", job_type="shell", job_data=b"[]"),
            "job_data must be a JSON object")]
    for message, details in bad:
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await stub.ExecuteJob(message)
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert info.value.details() == details


async def test_caller_cancelling_its_call_cancels_the_job(worker: Worker, stub: Any,
                                                          tmp_path: Path) -> None:
    pidfile = tmp_path / "pid"
    call = stub.ExecuteJob(request("dropped", long_command(pidfile)))
    pid = await started_pid(pidfile)
    call.cancel()
    await until(lambda: not alive(pid))
    await until(lambda: worker.server.servicer.jobs.get("dropped").status.value == "CANCELLED")
    reply = await stub.GetJobStatus(stubs().pb2.GetJobStatusRequest(job_id="dropped"))
    assert status_name(reply.status) == "CANCELLED"
    assert reply.error == "the caller cancelled its call or went away"


async def test_stopping_the_server_stops_running_jobs(make_baseshift: Any,
                                                      tmp_path: Path) -> None:
    async with make_baseshift() as bs:
        server = JobExecutorServer(bs, "127.0.0.1:0")
        port = await server.start()
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = stubs().pb2_grpc.JobExecutorStub(channel)
            call = stub.ExecuteJob(request("left", long_command(tmp_path / "pid")))
            pid = await started_pid(tmp_path / "pid")
            await server.stop(0)
            assert not alive(pid)
            assert server.servicer.jobs.get("left").status.value == "CANCELLED"
            with pytest.raises(grpc.aio.AioRpcError):
                await call


async def test_a_taken_port_is_a_config_error(worker: Worker, make_baseshift: Any) -> None:
    async with make_baseshift() as bs:
        with pytest.raises(ConfigError) as info:
            await JobExecutorServer(bs, worker.target).start()
    assert info.value.message.startswith(f"cannot serve gRPC on {worker.target}")


# ------------------------------------------------------------------ a whole workflow

WORKFLOW = """
workflow remote {
  version "1.0.0"
  input { name: string = "grpc" }

  job greet uses grpc {
    with { target: "TARGET", executor: "shell",
           with: { command: "echo '{\\"greeting\\": \\"hello ${input.name}\\"}'" } }
  }

  job shout uses grpc {
    needs greet
    with { target: "TARGET", executor: "python",
           with: { function: "json:dumps", args: [greet.output.greeting] } }
  }

  output { message: shout.output }
}
"""

SLOW = """
workflow slow {
  version "1.0.0"
  job wait uses grpc {
    with { target: "TARGET", executor: "shell", with: { command: "COMMAND" } }
    timeout 1s
  }
}
"""


async def run_file(bs: Any, path: Path) -> Any:
    plan = bs.load_workflow(path)
    run_id = await bs.engine.submit(plan, {})
    await asyncio.wait_for(bs.engine.wait(run_id), LIMIT)
    return await bs.store.load_run(run_id)


async def test_workflow_runs_its_jobs_on_the_worker(worker: Worker, make_baseshift: Any,
                                                    tmp_path: Path) -> None:
    flow = tmp_path / "remote.bsw"
    flow.write_text(WORKFLOW.replace("TARGET", worker.target))
    async with make_baseshift(plugins=CLIENT_PLUGINS) as bs:
        snap = await run_file(bs, flow)
    assert snap.run.state is RunState.COMPLETED, snap.run.error
    assert snap.run.outputs == {"message": '"hello grpc"'}
    assert snap.jobs["greet"].output == {"greeting": "hello grpc"}
    finished = {j.status.value for j in worker.server.servicer.jobs._jobs.values()}
    assert finished == {"SUCCEEDED"}


async def test_workflow_timeout_cancels_the_remote_process(worker: Worker,
                                                           make_baseshift: Any,
                                                           tmp_path: Path) -> None:
    pidfile = tmp_path / "pid"
    flow = tmp_path / "slow.bsw"
    flow.write_text(SLOW.replace("TARGET", worker.target)
                    .replace("COMMAND", long_command(pidfile)))
    async with make_baseshift(plugins=CLIENT_PLUGINS) as bs:
        snap = await run_file(bs, flow)
    assert snap.run.state is RunState.FAILED
    job = snap.jobs["wait"]
    assert job.state is JobState.FAILED
    assert job.error == "timed out after 1s"
    assert not alive(int(pidfile.read_text()))
    (remote,) = worker.server.servicer.jobs._jobs.values()
    assert remote.status.value == "CANCELLED"


async def test_check_rejects_a_grpc_job_without_executor(make_baseshift: Any,
                                                         tmp_path: Path) -> None:
    flow = tmp_path / "bad.bsw"
    flow.write_text('workflow bad {\n  version "1.0.0"\n'
                    '  job a uses grpc { with { target: "h:1" } }\n}\n')
    async with make_baseshift(plugins=CLIENT_PLUGINS) as bs:
        (compiled,) = bs.compile_paths([flow])
    (diagnostic,) = compiled.diagnostics
    assert diagnostic.code == "dsl.config"
    assert "missing required setting 'executor'" in diagnostic.message


# ------------------------------------------------------------------ generated code


def test_generated_code_is_cached_outside_the_package(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    source = grpc_codegen.proto_source()
    folder = grpc_codegen.generate(source, tmp_path)
    assert folder == tmp_path / grpc_codegen.cache_key(source)
    generated = folder / "baseshift" / "plugins" / "grpc" / "proto"
    assert {p.name for p in generated.iterdir()} >= {
        "jobexecution_pb2.py", "jobexecution_pb2_grpc.py"}
    assert sorted(p.name for p in (REPO / "plugins" / "grpc" / "proto").iterdir()) == [
        "jobexecution.proto"]

    def no_protoc(source: bytes, work: Path) -> None:
        raise AssertionError("cached code must not be generated again")

    monkeypatch.setattr(grpc_codegen, "_run_protoc", no_protoc)
    assert grpc_codegen.generate(source, tmp_path) == folder


def test_editing_the_proto_regenerates_the_code(tmp_path: Path) -> None:
    source = grpc_codegen.proto_source()
    edited = source.replace(b"message CancelJobRequest {\n  string job_id = 1;",
                            b"message CancelJobRequest {\n  string job_id = 1;\n"
                            b"  string reason = 2;")
    assert edited != source
    old = grpc_codegen.generate(source, tmp_path)
    new = grpc_codegen.generate(edited, tmp_path)
    assert new != old and old.is_dir()
    # A fresh interpreter: one process can hold only one version of the proto's messages.
    script = ("import sys; from pathlib import Path; from baseshift.plugins.grpc import codegen"
              " as g; s = g.load_from(Path(sys.argv[1]));"
              " print(sorted(s.pb2.CancelJobRequest.DESCRIPTOR.fields_by_name))")
    fields = subprocess.run([sys.executable, "-c", script, str(new)], capture_output=True,
                            text=True, check=True, timeout=60).stdout
    assert fields.strip() == "['job_id', 'reason']"


def test_concurrent_first_use_by_processes(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    env = {**os.environ, "XDG_CACHE_HOME": str(cache)}
    script = ("from baseshift.plugins.grpc.codegen import stubs;"
              " print(stubs().pb2.ExecuteJobRequest(job_id='ok').job_id)")
    procs = [subprocess.Popen([sys.executable, "-c", script], env=env, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for _ in range(4)]
    results = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0] * 4, results
    assert [out for out, _ in results] == ["ok\n"] * 4
    root = cache / "baseshift" / "grpc"
    assert [p.name for p in root.iterdir()] == [
        grpc_codegen.cache_key(grpc_codegen.proto_source())]  # no temporary folder left


def test_unwritable_cache_falls_back_to_a_private_temp_folder(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    root = grpc_codegen.cache_root()
    assert root == tmp_path / "tmp" / f"baseshift-grpc-{os.getuid()}"
    assert root.stat().st_mode & 0o777 == 0o700


def test_a_temp_folder_others_can_write_is_refused(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    shared = tmp_path / f"baseshift-grpc-{os.getuid()}"
    shared.mkdir()
    shared.chmod(0o777)
    with pytest.raises(PluginError) as info:
        grpc_codegen._private_temp()
    assert "others can write it; set XDG_CACHE_HOME" in info.value.message


def test_a_full_disk_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def full(**kwargs: Any) -> str:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("tempfile.mkdtemp", full)
    with pytest.raises(PluginError) as info:
        grpc_codegen.generate(grpc_codegen.proto_source(), tmp_path)
    assert info.value.message == (f"cannot write generated gRPC code into {tmp_path}: "
                                  "[Errno 28] No space left on device")


def test_a_broken_proto_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(PluginError) as info:
        grpc_codegen.generate(b'syntax = "proto3";\nmessage {', tmp_path)
    assert info.value.message.startswith("grpc_tools.protoc could not compile "
                                         "jobexecution.proto: ")
    assert "jobexecution.proto:2" in info.value.message
    assert [p.name for p in tmp_path.iterdir()] == []

