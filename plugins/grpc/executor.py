"""The `grpc` step type: send the job to a remote `baseshift worker --grpc` and return its result.

```
job build uses grpc {
  with {
    target: "127.0.0.1:50051"       # required: the worker's JobExecutor address
    executor: "shell"               # required: the executor that runs it there
    with: { command: "make -j4" }   # that executor's settings (default {})
    connect_timeout: 10             # seconds to wait for a connection; default 5
  }
  timeout 10m
}
```

The remote executor's output and log become this job's. A job that fails remotely fails
here with the remote error; settings the worker refuses (an executor it does not have,
settings its schema rejects) fail without a retry, since another attempt cannot fix them. A
worker that cannot be reached within `connect_timeout` fails the attempt with "cannot reach
JobExecutor at TARGET".

When the attempt is cancelled (by a user, a timeout or the server stopping), the remote job is
cancelled with `CancelJob` and the attempt ends once the worker says it stopped (the shell
executor there kills its command's process group). The job's `timeout` (plus 5 s) is also
sent, so a worker stops the job itself if this process dies.

One channel per target is shared by every attempt of an executor instance and closed by
`aclose()`. How channels are protected is configuration, not a `with` key, so a workflow
cannot weaken it (`security.ClientSecurity`): with `[plugins.executor_grpc] ca_file` (or
`tls = true` for the system's CAs) every channel is TLS and a worker whose certificate does
not check out fails the attempt with "cannot reach JobExecutor at TARGET: <the TLS error>";
otherwise channels are plaintext. The token (`BASESHIFT_GRPC_TOKEN` or `token_file`) is sent
on every call as `authorization: Bearer ...`; a worker refusing it fails the job without a
retry, since every attempt of this process would send the same token.
"""
from __future__ import annotations

import asyncio
import json
import secrets
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, NoReturn

from baseshift.core.attempts import NotRetryable
from baseshift.core.errors import ExecutionError
from baseshift.core.hookspecs import hookimpl
from baseshift.core.json_text import loads_strict
from baseshift.core.protocols import JobContext, JobResult
from baseshift.core.tracecontext import traceparent

from ..extras import GRPC, missing_driver
from ..tracing.stashed import tracing_of
from .codegen import CHANNEL_OPTIONS, stubs
from .security import TOKEN_SOURCES, ClientSecurity

if TYPE_CHECKING:
    from baseshift.core.appface import App
    from baseshift.core.diagnostics import Diagnostic
    from baseshift.core.plan import Plan

    from ..tracing.spans import Tracing

DEFAULT_CONNECT_TIMEOUT = 5.0
REMOTE_TIMEOUT_MARGIN = 5.0
"""Seconds added to the job's timeout when it is sent: here the timeout cancels the remote
job explicitly; the worker's own limit is the backstop for when this process is gone."""
CANCEL_TIMEOUT = 30.0
"""Seconds to wait for the worker to confirm a cancel (a shell job's grace fits in it)."""
RECONNECT_OPTIONS = (("grpc.initial_reconnect_backoff_ms", 200),
                     ("grpc.max_reconnect_backoff_ms", 2000))
"""Retry a lost worker every 2 s at most (gRPC's default backoff grows to 2 minutes)."""

PROBE_TIMEOUT = 2.0
"""Seconds for the call that asks a TLS channel why it cannot connect."""

_REFUSED = frozenset({"INVALID_ARGUMENT"})
"""Status codes (by name) of a job the service will never accept: not worth a retry."""


@dataclass(frozen=True, slots=True)
class _Call:
    """A checked `with` block."""

    target: str
    executor: str
    config: bytes
    connect_timeout: float


class GrpcExecutor:
    """Forwards jobs to JobExecutor services, one shared channel per target."""

    name: ClassVar[str] = "grpc"
    config_schema: ClassVar[dict[str, Any]] = {
        "type": "object",
        "properties": {
            "target": {"type": "string", "minLength": 1,
                       "description": "HOST:PORT of a `baseshift worker --grpc`"},
            "executor": {"type": "string", "minLength": 1,
                         "description": "The executor that runs the job on the worker"},
            "with": {"type": "object", "description": "That executor's settings"},
            "connect_timeout": {"type": "number", "exclusiveMinimum": 0},
        },
        "required": ["target", "executor"],
        "additionalProperties": False,
    }

    def __init__(self, security: ClientSecurity | None = None) -> None:
        self._channels: dict[str, Any] = {}
        self.security = security or ClientSecurity()
        """TLS and token; the application's own are set at its `startup` (executors are
        built with no arguments)."""
        self.tracing: Tracing | None = None
        """The application's tracing when it is on (set at `startup`): each call gets a
        client span."""

    def channel(self, target: str) -> Any:
        """The shared channel to `target`, opened on first use (and again after `aclose`)."""
        channel = self._channels.get(target)
        if channel is None:
            channel = self._channels[target] = self.security.channel(
                target, (*CHANNEL_OPTIONS, *RECONNECT_OPTIONS))
        return channel

    async def aclose(self) -> None:
        """Close every channel; running calls to them are cancelled."""
        channels, self._channels = list(self._channels.values()), {}
        for channel in channels:
            await channel.close()

    async def execute(self, ctx: JobContext) -> JobResult:

        call = _parse_config(ctx.config)
        # the first use generates and imports the stubs: blocking work, kept off the loop
        await asyncio.to_thread(stubs)
        job_id = f"{ctx.run_id}:{ctx.job}:{ctx.attempt}:{secrets.token_hex(4)}"
        ctx.log(f"sending {call.executor} job {job_id} to JobExecutor at {call.target}")
        channel = self.channel(call.target)
        stub = stubs().pb2_grpc.JobExecutorStub(channel)
        await _connect(channel, stub, call, self.security)
        request = stubs().pb2.ExecuteJobRequest(
            job_id=job_id, job_type=call.executor, job_data=call.config,
            timeout_seconds=ctx.timeout + REMOTE_TIMEOUT_MARGIN if ctx.timeout else 0,
            attempt=ctx.attempt, run_id=ctx.run_id,
            job_name=ctx.job)
        response = await _execute(stub, request, call, ctx, self.security, self.tracing)
        if response.log:
            ctx.log(response.log)
        return JobResult(output=_outcome(response, call), log="\n".join(ctx.lines))


def _parse_config(config: dict[str, Any]) -> _Call:
    target, executor = config.get("target"), config.get("executor")
    if not isinstance(target, str) or not target:
        raise NotRetryable(f"'target' must be HOST:PORT of a JobExecutor, got {target!r}")
    if not isinstance(executor, str) or not executor:
        raise NotRetryable(f"'executor' must name an executor of the worker, got {executor!r}")
    settings = config.get("with", {})
    if not isinstance(settings, dict):
        raise NotRetryable(f"'with' must be an object, got {settings!r}")
    try:
        data = json.dumps(settings).encode()
    except (TypeError, ValueError) as exc:
        raise NotRetryable(f"'with' is not JSON-serialisable: {exc}") from None
    wait = config.get("connect_timeout", DEFAULT_CONNECT_TIMEOUT)
    if isinstance(wait, bool) or not isinstance(wait, int | float) or wait <= 0:
        raise NotRetryable(f"'connect_timeout' must be a positive number of seconds, "
                           f"got {wait!r}")
    return _Call(target, executor, data, float(wait))


async def _connect(channel: Any, stub: Any, call: _Call, security: ClientSecurity) -> None:
    try:
        async with asyncio.timeout(call.connect_timeout):
            await channel.channel_ready()
    except TimeoutError:
        waited = (f"no connection within {call.connect_timeout:g}s (is `baseshift worker "
                  f"--grpc {call.target}` running?)")
        reason = await _tls_failure(stub, security) if security.tls else None
        raise ExecutionError(f"cannot reach JobExecutor at {call.target}: "
                             f"{f'{reason}; {waited}' if reason else waited}") from None


async def _tls_failure(stub: Any, security: ClientSecurity) -> str | None:
    """Why a TLS channel does not connect (a wrong CA, a name the certificate does not
    cover, a plaintext worker): gRPC tells the reason only to a call, so one is made that
    does not wait for the connection (with the token, in case the connection is made just
    now: the worker would log a refusal otherwise)."""
    import grpc

    probe = stubs().pb2.GetJobStatusRequest(job_id="")
    try:
        await stub.GetJobStatus(probe, wait_for_ready=False, timeout=PROBE_TIMEOUT,
                                metadata=security.metadata())
    except grpc.aio.AioRpcError as exc:
        if exc.code() == grpc.StatusCode.UNAVAILABLE:
            return str(exc.details())
    return None


def _traced(tracing: Tracing | None, method: str) -> AbstractContextManager[str | None]:
    """Around one call: its client span when tracing is on here, giving the `traceparent` to
    send; otherwise the one bound by whoever traces this attempt, if any (so the worker's
    side may still join the trace)."""
    return tracing.rpc_client(method) if tracing is not None else nullcontext(traceparent())


def _metadata(security: ClientSecurity, parent: str | None) -> tuple[tuple[str, str], ...]:
    metadata = security.metadata()
    return (*metadata, ("traceparent", parent)) if parent else metadata


async def _execute(stub: Any, request: Any, call: _Call, ctx: JobContext,
                   security: ClientSecurity, tracing: Tracing | None = None) -> Any:
    """Run the remote call; on cancellation, cancel the remote job before giving up."""
    import grpc

    with _traced(tracing, "ExecuteJob") as parent:
        rpc = stub.ExecuteJob(request, wait_for_ready=False,
                              metadata=_metadata(security, parent))
        # Shielded so that our cancellation does not cut the call before CancelJob has
        # stopped the job: the worker then knows it was cancelled on purpose and waits for
        # it to stop.
        answer: asyncio.Future[Any] = asyncio.ensure_future(rpc)
        try:
            return await asyncio.shield(answer)
        except asyncio.CancelledError:
            try:
                await _cancel_remote(stub, request.job_id, call, ctx, security, tracing)
            finally:
                rpc.cancel()
                answer.add_done_callback(_consume)
            raise
        except grpc.aio.AioRpcError as exc:
            _rpc_failed(exc, call, security)


async def _cancel_remote(stub: Any, job_id: str, call: _Call, ctx: JobContext,
                         security: ClientSecurity, tracing: Tracing | None) -> None:
    import grpc

    cancel = stubs().pb2.CancelJobRequest(job_id=job_id)
    try:
        with _traced(tracing, "CancelJob") as parent:
            reply = await stub.CancelJob(cancel, timeout=CANCEL_TIMEOUT,
                                         metadata=_metadata(security, parent))
    except grpc.aio.AioRpcError as exc:
        ctx.log(f"CancelJob at {call.target}: {exc.code().name}: {exc.details()}")
        return
    status = stubs().pb2.JobStatus.Name(reply.status).removeprefix("JOB_STATUS_")
    ctx.log(f"CancelJob at {call.target}: the remote job is {status}")


def _consume(answer: asyncio.Future[Any]) -> None:
    """Read an abandoned call's outcome, so asyncio does not report it as never retrieved."""
    if not answer.cancelled():
        answer.exception()


def _outcome(response: Any, call: _Call) -> Any:
    status = stubs().pb2.JobStatus.Name(response.status).removeprefix("JOB_STATUS_")
    where = f"{call.executor} job on {call.target}"
    if status == "SUCCEEDED":
        return loads_strict(response.result.decode()) if response.result else None
    if status == "CANCELLED":
        raise ExecutionError(f"{where} was cancelled there: {response.error}")
    raise ExecutionError(f"{where} failed: {response.error or status}")


def _rpc_failed(exc: Any, call: _Call, security: ClientSecurity) -> NoReturn:
    import grpc

    code, details = exc.code(), exc.details()
    if code.name in _REFUSED:
        raise NotRetryable(f"JobExecutor at {call.target} refused the job: {details}")
    if code == grpc.StatusCode.UNAUTHENTICATED:
        what = "the token" if security.token else "the call"
        raise NotRetryable(f"JobExecutor at {call.target} refused {what}: {details}; set "
                           f"{TOKEN_SOURCES} here to the worker's token")
    if code == grpc.StatusCode.UNAVAILABLE:
        raise ExecutionError(f"cannot reach JobExecutor at {call.target}: {details}")
    raise ExecutionError(f"JobExecutor at {call.target} failed: {code.name}: {details}")


@hookimpl
def register_executors() -> list[type]:
    return [GrpcExecutor]


@hookimpl
def startup(baseshift: App) -> None:
    """Give the application's `grpc` executor its TLS and token settings (read at start, so
    an unreadable `ca_file` or `token_file` stops the start instead of failing jobs later)
    and its tracing."""
    executor = baseshift.executors.get(GrpcExecutor.name)
    if isinstance(executor, GrpcExecutor):
        executor.security = ClientSecurity.from_settings(baseshift.settings)
        executor.tracing = tracing_of(baseshift)


@hookimpl
def validate_plan(plan: Plan) -> list[Diagnostic]:
    """`uses grpc` needs `baseshift[grpc]`: say so at check time."""
    return missing_driver(plan, GrpcExecutor.name, GRPC)
