"""The JobExecutor gRPC service: run jobs that other processes send, with this process's
executors (`baseshift worker --grpc HOST:PORT` serves it; the `grpc` executor calls it).

`ExecuteJob` runs one job to its end (queued while `max_parallel` jobs already run) and
answers with its status, output, log and error; a job running longer than its
`timeout_seconds` is cancelled and FAILED. `GetJobStatus` reports where a job is: QUEUED,
RUNNING, SUCCEEDED, FAILED or CANCELLED (the last 1,000 finished jobs are remembered).
`CancelJob` cancels the job's asyncio task, so the executor gets a real cancellation (the
shell executor kills the command's process group), and answers once the job has stopped; a
cancel that overtakes its job's `ExecuteJob` is remembered, and that job never runs. A caller
that cancels its `ExecuteJob` call or goes away cancels the job too.

A job's task is cancelled at most once, whatever asks (cancel, timeout, caller gone, server
stopping): a second cancellation would interrupt the executor's own cleanup.

The server's protection comes from `security.ServerSecurity` (by default, the application's
`[plugins.executor_grpc]` options and `BASESHIFT_GRPC_TOKEN`): TLS when it has a certificate
and key, and a bearer token every call must carry (`token_check.TokenCheck`) when one is
configured. Without them the port is plain HTTP/2 that anyone reaching it may use; the
`baseshift worker` command refuses to serve such a port beyond loopback unless told
`--grpc-insecure`.
"""
from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import OrderedDict
from collections.abc import Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from enum import Enum
from functools import partial
from typing import TYPE_CHECKING, Any

import grpc
from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match

from baseshift.core.attempts import describe_failure, output_text
from baseshift.core.errors import ConfigError, Conflict, IllegalTransition
from baseshift.core.json_text import replace_surrogates
from baseshift.core.protocols import Executor, JobContext, JobResult
from baseshift.core.tracecontext import traceparent_bound
from baseshift.web.accesslog import trace_fields

from ..tracing.stashed import tracing_of
from .codegen import CHANNEL_OPTIONS, stubs
from .security import ServerSecurity
from .token_check import TokenCheck

if TYPE_CHECKING:
    from baseshift.core.appface import App

    from ..tracing.spans import Tracing

KEEP_FINISHED = 1000
log = logging.getLogger("baseshift.grpc")


class RemoteStatus(Enum):
    """A job's status on the worker; names match the proto's `JOB_STATUS_*` values."""

    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"

    def to_proto(self) -> int:
        value: int = stubs().pb2.JobStatus.Value(f"JOB_STATUS_{self.value}")
        return value


_NEXT: dict[RemoteStatus, frozenset[RemoteStatus]] = {
    RemoteStatus.QUEUED: frozenset({RemoteStatus.RUNNING, RemoteStatus.CANCELLED}),
    RemoteStatus.RUNNING: frozenset({RemoteStatus.SUCCEEDED, RemoteStatus.FAILED,
                                     RemoteStatus.CANCELLED}),
    RemoteStatus.SUCCEEDED: frozenset(),
    RemoteStatus.FAILED: frozenset(),
    RemoteStatus.CANCELLED: frozenset(),
}
_ACTIVE = frozenset({RemoteStatus.QUEUED, RemoteStatus.RUNNING})


@dataclass(slots=True)
class RemoteJob:
    """One job sent to this worker: its status, outcome and the task running it."""

    id: str
    status: RemoteStatus = RemoteStatus.QUEUED
    output: bytes = b""
    log: str = ""
    error: str = ""
    cancel_reason: str = ""
    timed_out: bool = False
    early: bool = False
    """Cancelled by a CancelJob that overtook its ExecuteJob: that call must not run it."""
    task: asyncio.Task[None] | None = field(default=None, repr=False)

    def move(self, target: RemoteStatus, *, error: str = "") -> None:
        if target not in _NEXT[self.status]:
            raise IllegalTransition(f"illegal remote job transition {self.status.value} -> "
                                    f"{target.value}")
        self.status, self.error = target, error

    def stop(self, reason: str, *, timed_out: bool = False) -> None:
        """Cancel the job's task, once: a second cancellation (a timeout firing during a
        cancel's cleanup) would cut the executor's cleanup short, leaving processes behind."""
        if self.cancel_reason or self.task is None or self.task.done():
            return
        self.cancel_reason, self.timed_out = reason, timed_out
        self.task.cancel()

    async def stopped(self) -> None:
        if self.task is not None and not self.task.done():
            await asyncio.wait({self.task})


class JobTable:
    """Every queued and running job by id, and the most recent finished ones."""

    def __init__(self, keep_finished: int = KEEP_FINISHED) -> None:
        self._jobs: dict[str, RemoteJob] = {}
        self._finished: OrderedDict[str, None] = OrderedDict()
        self._keep = keep_finished

    def admit(self, job_id: str) -> RemoteJob:
        """A new QUEUED job; an id that is still queued or running is a Conflict."""
        old = self._jobs.get(job_id)
        if old is not None and old.status in _ACTIVE:
            raise Conflict(f"job {job_id!r} is already {old.status.value.lower()} here")
        self._finished.pop(job_id, None)
        job = self._jobs[job_id] = RemoteJob(job_id)
        return job

    def cancelled_early(self, job_id: str) -> RemoteJob:
        """Record a cancel for a job not seen yet, so its ExecuteJob, arriving later, does
        not run it (the two calls may overtake each other)."""
        job = self._jobs[job_id] = RemoteJob(job_id, early=True)
        job.move(RemoteStatus.CANCELLED, error="cancelled by a CancelJob request before "
                                               "the job arrived")
        self.finished(job)
        return job

    def get(self, job_id: str) -> RemoteJob | None:
        return self._jobs.get(job_id)

    def active(self) -> list[RemoteJob]:
        return [j for j in self._jobs.values() if j.status in _ACTIVE]

    def finished(self, job: RemoteJob) -> None:
        """Remember a finished job, forgetting the oldest beyond the limit."""
        self._finished[job.id] = None
        while len(self._finished) > self._keep:
            old, _ = self._finished.popitem(last=False)
            self._jobs.pop(old, None)


class _Refused(Exception):
    """A request that cannot become a job; answered with a gRPC error status."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True, slots=True)
class _Order:
    """A checked `ExecuteJobRequest`."""

    executor: Executor
    ctx: JobContext


class JobExecutorServicer:
    """The three RPCs, run against one process's executors and one job table."""

    def __init__(self, executors: Mapping[str, Executor], workdir: str | None,
                 max_parallel: int, tracing: Tracing | None = None) -> None:
        self.executors = executors
        self.tracing = tracing
        """The application's tracing when it is on: each call gets a server span."""
        self.workdir = workdir
        self.jobs = JobTable()
        self._slots = asyncio.Semaphore(max_parallel)
        self._validators: dict[str, Draft202012Validator] = {}
        self.closing = ""
        """Why jobs are being cancelled when the whole service stops."""

    async def ExecuteJob(self, request: Any, context: Any) -> Any:
        with self._served("ExecuteJob", context) as parent:
            return await self._execute(request, context, parent)

    async def GetJobStatus(self, request: Any, context: Any) -> Any:
        with self._served("GetJobStatus", context):
            job = await self._known(request.job_id, context)
            return stubs().pb2.GetJobStatusResponse(status=job.status.to_proto(),
                                                    error=job.error, job_id=job.id)

    async def CancelJob(self, request: Any, context: Any) -> Any:
        with self._served("CancelJob", context):
            if not request.job_id:
                await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "job_id is empty")
            job = self.jobs.get(request.job_id)
            if job is None:
                job = self.jobs.cancelled_early(request.job_id)
            job.stop("cancelled by a CancelJob request")
            await job.stopped()
            return stubs().pb2.CancelJobResponse(success=job.status is RemoteStatus.CANCELLED,
                                                 status=job.status.to_proto())

    def _served(self, method: str, context: Any) -> AbstractContextManager[str | None]:
        """Around one call: its server span, continuing the caller's trace, when tracing is
        on here; giving the `traceparent` the call's job runs under (the caller's own when
        tracing is off here, None when it sent none)."""
        caller = _traceparent(context)
        if self.tracing is None:
            return contextlib.nullcontext(caller)
        return self.tracing.rpc_server(method, caller)

    async def _execute(self, request: Any, context: Any, parent: str | None) -> Any:
        early = self.jobs.get(request.job_id)
        if early is not None and early.early:
            return _answer(early)
        try:
            order = self._order(request)
            job = self.jobs.admit(request.job_id)
        except _Refused as exc:
            await context.abort(exc.code, str(exc))
        except Conflict as exc:
            await context.abort(grpc.StatusCode.ALREADY_EXISTS, exc.message)
        with traceparent_bound(parent) if parent else contextlib.nullcontext():
            # the caller's trace goes on into the job (docs/operations.md "Traces")
            job.task = asyncio.create_task(self._run(job, order), name=f"grpc-job-{job.id}")
        try:
            # Shielded: every cancellation of the job goes through `RemoteJob.stop`.
            await asyncio.shield(job.task)
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                job.stop(self.closing or "the caller cancelled its call or went away")
                raise  # no one is left to answer
        return _answer(job)

    async def cancel_all(self, reason: str) -> None:
        """Cancel every queued and running job and wait until they have stopped."""
        self.closing = reason
        jobs = self.jobs.active()
        for job in jobs:
            job.stop(reason)
        for job in jobs:
            await job.stopped()

    async def _known(self, job_id: str, context: Any) -> RemoteJob:
        job = self.jobs.get(job_id)
        if job is None:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"no job {job_id!r} on this worker")
        assert job is not None  # abort raises
        return job

    def _order(self, request: Any) -> _Order:
        if not request.job_id:
            raise _Refused(grpc.StatusCode.INVALID_ARGUMENT, "job_id is empty")
        executor = self.executors.get(request.job_type)
        if executor is None:
            raise _Refused(grpc.StatusCode.INVALID_ARGUMENT,
                           f"no executor {request.job_type!r} on this worker; it has: "
                           f"{', '.join(sorted(self.executors)) or '(none)'}")
        config = self._config(request.job_type, executor, bytes(request.job_data))
        timeout = request.timeout_seconds if request.timeout_seconds > 0 else None
        ctx = JobContext(request.run_id or request.job_id, request.job_name or request.job_id,
                         request.attempt or 1, config, timeout, self.workdir)
        return _Order(executor, ctx)

    def _config(self, name: str, executor: Executor, data: bytes) -> dict[str, Any]:
        try:
            config = json.loads(data) if data else {}
        except ValueError as exc:
            raise _Refused(grpc.StatusCode.INVALID_ARGUMENT,
                           f"job_data is not JSON: {exc}") from None
        if not isinstance(config, dict):
            raise _Refused(grpc.StatusCode.INVALID_ARGUMENT, "job_data must be a JSON object")
        validator = self._validators.get(name)
        if validator is None:
            validator = self._validators[name] = Draft202012Validator(
                dict(executor.config_schema or {}))
        error = best_match(validator.iter_errors(config))
        if error is not None:
            where = "/".join(map(str, error.absolute_path)) or "(the settings)"
            raise _Refused(grpc.StatusCode.INVALID_ARGUMENT,
                           f"settings of executor {name!r} are invalid at {where}: "
                           f"{error.message}")
        return config

    async def _run(self, job: RemoteJob, order: _Order) -> None:
        """Run the job, recording every way it can end. A cancellation propagates, except
        the one this job's own timeout asked for."""
        ctx, timer = order.ctx, None
        try:
            async with self._slots:
                job.move(RemoteStatus.RUNNING)
                if ctx.timeout is not None:
                    timer = asyncio.get_running_loop().call_later(
                        ctx.timeout, partial(job.stop, f"timed out after {ctx.timeout:g}s",
                                             timed_out=True))
                result = await order.executor.execute(ctx)
            if not isinstance(result, JobResult):
                result = JobResult(output=result)
            job.log = result.log or "\n".join(ctx.lines)
            job.output = output_text(result.output).encode()
            job.move(RemoteStatus.SUCCEEDED)
        except asyncio.CancelledError:
            if not job.timed_out:
                self._end(job, ctx, RemoteStatus.CANCELLED,
                          job.cancel_reason or "the caller cancelled its call or went away")
                raise
            task = asyncio.current_task()
            assert task is not None
            task.uncancel()
            self._end(job, ctx, RemoteStatus.FAILED, job.cancel_reason)
        except (Exception, SystemExit) as exc:  # any failure of executor code fails the job
            self._end(job, ctx, RemoteStatus.FAILED, describe_failure(exc))
        finally:
            if timer is not None:
                timer.cancel()
            self.jobs.finished(job)

    @staticmethod
    def _end(job: RemoteJob, ctx: JobContext, status: RemoteStatus, reason: str) -> None:
        job.log = job.log or "\n".join(ctx.lines)
        job.move(status, error=reason)


def _answer(job: RemoteJob) -> Any:
    # protobuf strings are UTF-8: a step printing bytes that are not shows U+FFFD instead
    return stubs().pb2.ExecuteJobResponse(status=job.status.to_proto(), result=job.output,
                                          log=replace_surrogates(job.log),
                                          error=replace_surrogates(job.error), job_id=job.id)


class JobExecutorServer:
    """A `grpc.aio` server offering the JobExecutor service for one application.

    ```
    server = JobExecutorServer(baseshift, "127.0.0.1:50051")
    port = await server.start()
    ...
    await server.stop(grace=5)
    ```

    Jobs run with the application's executors (`baseshift.executors`), at most
    `settings.max_parallel` at once; the others wait QUEUED. Stop the server before the
    application closes: closing it closes the executors. `security` (TLS files, token)
    defaults to the application's configuration; a file it names that cannot be read is a
    ConfigError here, before anything is bound.
    """

    def __init__(self, baseshift: App, address: str,
                 security: ServerSecurity | None = None) -> None:
        self.address = address
        self.security = security or ServerSecurity.from_settings(baseshift.settings)
        self.servicer = JobExecutorServicer(baseshift.executors,
                                            str(baseshift.settings.data_dir),
                                            baseshift.settings.max_parallel,
                                            tracing_of(baseshift))
        self._server: Any = None

    async def start(self) -> int:
        """Bind and start serving; returns the bound port (useful with port 0).

        Raises ConfigError when the address cannot be bound."""
        # SO_REUSEPORT off: a second worker on a taken port must fail, not share it silently
        token = self.security.token
        server = grpc.aio.server(options=(*CHANNEL_OPTIONS, ("grpc.so_reuseport", 0)),
                                 interceptors=[TokenCheck(token)] if token else None)
        stubs().pb2_grpc.add_JobExecutorServicer_to_server(self.servicer, server)
        try:
            port = int(self._add_port(server))
        except RuntimeError as exc:
            raise ConfigError(f"cannot serve gRPC on {self.address}: {exc}",
                              hint="use HOST:PORT with a free port, e.g. 127.0.0.1:50051"
                              ) from None
        if port == 0:
            raise ConfigError(f"cannot serve gRPC on {self.address}: the address cannot be "
                              "bound", hint="use HOST:PORT with a free port")
        await server.start()
        self._server = server
        log.info("gRPC JobExecutor on %s: %s", self.address, self.security.describe())
        return port

    def _add_port(self, server: Any) -> Any:
        security = self.security
        if security.certificate is None or security.key is None:
            return server.add_insecure_port(self.address)
        credentials = grpc.ssl_server_credentials([(security.key, security.certificate)])
        return server.add_secure_port(self.address, credentials)

    async def stop(self, grace: float | None = None) -> None:
        """Stop taking jobs; after `grace` seconds cancel running ones and wait for them."""
        if self._server is None:
            return
        server, self._server = self._server, None
        self.servicer.closing = "the worker is stopping"
        await server.stop(grace)
        await self.servicer.cancel_all(self.servicer.closing)

    async def wait_for_termination(self) -> None:
        """Wait until the server stops (for a command that serves until interrupted)."""
        if self._server is not None:
            await self._server.wait_for_termination()


def _traceparent(context: Any) -> str | None:
    """The caller's W3C `traceparent` (call metadata), when it sent a valid one."""
    for key, value in context.invocation_metadata() or ():
        if key == "traceparent" and isinstance(value, str) and trace_fields(value):
            return value.strip().lower()
    return None
