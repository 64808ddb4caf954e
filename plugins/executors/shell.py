"""The `shell` step type: run a command in its own process group and capture its output.

```
job build uses shell {
  with {
    command: "make -j4 && ./report --json"  # run as ["/bin/sh", "-c", command]
    # or argv: ["make", "-j4"]              # run directly, no shell (exactly one of the two)
    env: { CC: "clang" }                    # merged over the server's environment
    cwd: "src"                              # relative to the run's workdir, if it has one
    expect_exit: [0, 1]                     # integer or list; default 0
    stdin: "text fed to the command"        # default: /dev/null
  }
}
```

`command` is the shell script the workflow author wrote, so it runs through `/bin/sh -c` as
an explicit argv (never `shell=True`); `argv` runs a program with no shell at all. The
process also gets `BASESHIFT_RUN_ID`, `BASESHIFT_JOB` and `BASESHIFT_ATTEMPT`, and
`TRACEPARENT` when traces are recorded (docs/operations.md "Traces").

Output, from the captured stdout:

- the whole stdout (stripped) if it is valid JSON: `echo 42` gives `42`;
- else the last non-empty line if it is a JSON object or array, so a command can log freely
  and print its result last (a bare number or word on the last line is not taken as the
  result: that is too often ordinary log text);
- else `{"stdout": str, "stderr": str, "exit_code": int}`.

stdout and stderr are each captured up to 1 MiB; the rest is discarded and a note saying how
many bytes were dropped is appended to the text and the log (a truncated stdout is never
parsed as JSON). The log holds stdout and stderr lines in the order they arrived.

The command runs in a new session (its own process group). The step ends when the command
exits: processes it left running in its group are sent SIGTERM, then SIGKILL after a short
grace. On cancel or timeout the whole group gets the same treatment and the process is reaped
before the cancellation propagates. An exit code not in `expect_exit` fails the attempt with
the code and the last lines of stderr.
"""
from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Callable
from typing import Any, ClassVar

from baseshift.core.errors import ExecutionError
from baseshift.core.hookspecs import hookimpl
from baseshift.core.json_text import NOT_JSON, output_json
from baseshift.core.protocols import JobContext, JobResult
from baseshift.core.tracecontext import traceparent

CAPTURE_LIMIT = 1024 * 1024
TAIL_LINES = 10
TAIL_CHARS = 2000


class _Capture:
    """One output stream: the first `limit` bytes, the count of bytes dropped, and its lines."""

    def __init__(self, limit: int, on_line: Callable[[str], None]) -> None:
        self.data = bytearray()
        self.dropped = 0
        self._limit = limit
        self._on_line = on_line
        self._line_start = 0

    def feed(self, chunk: bytes) -> None:
        room = self._limit - len(self.data)
        kept = chunk[:room] if room > 0 else b""
        self.dropped += len(chunk) - len(kept)
        if kept:
            self.data += kept
            self._emit_lines()

    def finish(self) -> None:
        """Log the last unterminated line and the truncation note."""
        if self._line_start < len(self.data):
            self._on_line(_decode(self.data[self._line_start:]))
            self._line_start = len(self.data)
        if self.dropped:
            self._on_line(self.note())

    def text(self) -> str:
        body = _decode(self.data)
        return f"{body}\n{self.note()}" if self.dropped else body

    def note(self) -> str:
        return f"[baseshift: output truncated at {self._limit} bytes, {self.dropped} dropped]"

    def _emit_lines(self) -> None:
        while (end := self.data.find(b"\n", self._line_start)) != -1:
            self._on_line(_decode(self.data[self._line_start:end]).removesuffix("\r"))
            self._line_start = end + 1


class _Protocol(asyncio.SubprocessProtocol):
    """Feeds the pipes into captures and resolves futures on exit and on full close."""

    def __init__(self, stdout: _Capture, stderr: _Capture) -> None:
        loop = asyncio.get_running_loop()
        self.captures = {1: stdout, 2: stderr}
        self.exited: asyncio.Future[None] = loop.create_future()
        self.closed: asyncio.Future[None] = loop.create_future()

    def pipe_data_received(self, fd: int, data: bytes | str) -> None:
        self.captures[fd].feed(data if isinstance(data, bytes) else data.encode())

    def process_exited(self) -> None:
        if not self.exited.done():
            self.exited.set_result(None)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(None)


class ShellExecutor:
    """Runs `command` (through /bin/sh) or `argv` (directly) and returns its output."""

    name: ClassVar[str] = "shell"
    config_schema: ClassVar[dict[str, Any]] = {
        "type": "object",
        "properties": {
            "command": {"type": "string", "minLength": 1, "x-shell": "script",
                        "description": 'A shell script, run as ["/bin/sh", "-c", command]; '
                        "each ${...} in it is one quoted word holding its value."},
            "argv": {"type": "array", "items": {"type": "string"}, "minItems": 1,
                     "description": "A program and its arguments, run without a shell."},
            "env": {"type": "object", "additionalProperties": {"type": "string"},
                    "description": "Environment variables merged over the server's."},
            "cwd": {"type": "string", "minLength": 1,
                    "description": "Working directory, relative to the run's workdir."},
            "expect_exit": {
                "oneOf": [{"type": "integer"},
                          {"type": "array", "items": {"type": "integer"}, "minItems": 1}],
                "description": "Exit code(s) that mean success; default 0.",
            },
            "stdin": {"type": "string", "description": "Text written to the command's stdin."},
        },
        "oneOf": [{"required": ["command"]}, {"required": ["argv"]}],
        "additionalProperties": False,
    }

    def __init__(self) -> None:
        self.grace = 2.0  # seconds between SIGTERM and SIGKILL

    async def execute(self, ctx: JobContext) -> JobResult:
        config = ctx.config
        argv = _argv(config)
        expected = _expected_exits(config.get("expect_exit", 0))
        stdout = _Capture(CAPTURE_LIMIT, ctx.log)
        stderr = _Capture(CAPTURE_LIMIT, ctx.log)
        code = await self._run(argv, config, ctx, _Protocol(stdout, stderr))
        stdout.finish()
        stderr.finish()
        if code not in expected:
            raise ExecutionError(_exit_message(code, _decode(stderr.data or stdout.data)))
        return JobResult(output=_output(stdout, stderr, code), log="\n".join(ctx.lines))

    async def _run(self, argv: list[str], config: dict[str, Any], ctx: JobContext,
                   protocol: _Protocol) -> int:
        """Start the process, feed stdin, wait for it, and end its group; return the exit code."""
        stdin = config.get("stdin")
        transport = await self._spawn(
            protocol, argv,
            stdin=asyncio.subprocess.DEVNULL if stdin is None else asyncio.subprocess.PIPE,
            env=_environment(config, ctx), cwd=_cwd(config, ctx),
        )
        try:
            if stdin is not None:
                _feed_stdin(transport, str(stdin))
            # Shielded: a cancel must not cancel the future, the cleanup still needs it.
            await asyncio.shield(protocol.exited)
        finally:
            await self._stop(transport, protocol)
        code = transport.get_returncode()
        assert code is not None  # process_exited has fired
        return code

    async def _spawn(self, protocol: _Protocol, argv: list[str],
                     **options: Any) -> asyncio.SubprocessTransport:
        """Start the process in a new session.

        The start is shielded: cancelled half-way, the stdlib would kill only the leader and
        then wait for pipes that the leader's children may hold open for as long as they run.
        Instead the start completes and the group is stopped like any cancelled command.
        """
        loop = asyncio.get_running_loop()
        starting = asyncio.ensure_future(loop.subprocess_exec(
            lambda: protocol, *argv, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE, start_new_session=True, **options))
        try:
            transport, _ = await asyncio.shield(starting)
        except asyncio.CancelledError:
            await self._stop_when_started(starting, protocol)
            raise
        except OSError as exc:
            raise ExecutionError(f"cannot start {argv[0]!r}: {exc}") from exc
        return transport

    async def _stop_when_started(self, starting: asyncio.Future[Any], protocol: _Protocol) -> None:
        try:
            transport, _ = await asyncio.shield(starting)
        except asyncio.CancelledError:
            starting.add_done_callback(_kill_started)  # cancelled again: stop it unwaited
            raise
        except OSError:
            return
        await self._stop(transport, protocol)

    async def _stop(self, transport: asyncio.SubprocessTransport, protocol: _Protocol) -> None:
        """End the command's group (after the leader exited, or on cancel), wait until the
        leader is reaped and its output pipes are drained, and close the transport.

        Both waits are bounded by the grace period, so a process that escaped the group
        (its own `setsid`) while holding the pipes cannot hold the step forever.
        """
        try:
            await self._end_group(transport.get_pid(), protocol.closed)
            await self._reap(protocol.closed)
        except asyncio.CancelledError:
            # Cancelled again while stopping (an engine stopping while a cancel is under
            # way): the group has its SIGKILL, still see the leader reaped, or its process
            # outlives the loop as "still running".
            await self._reap(protocol.closed)
            raise
        finally:
            transport.close()

    async def _end_group(self, pgid: int, done: asyncio.Future[None]) -> None:
        """SIGTERM the process group, wait for `done` up to the grace period, then SIGKILL.

        The final SIGKILL is sent even if we are cancelled while waiting, so no process of
        the step outlives it.
        """
        if not _signal_group(pgid, signal.SIGTERM):
            return
        try:
            await self._reap(done)
        finally:
            _signal_group(pgid, signal.SIGKILL)

    async def _reap(self, done: asyncio.Future[None]) -> None:
        """Wait for `done` (process exit or pipe close), at most the grace period."""
        try:
            await asyncio.wait_for(asyncio.shield(done), self.grace)
        except TimeoutError:
            pass


def _argv(config: dict[str, Any]) -> list[str]:
    command, argv = config.get("command"), config.get("argv")
    if (command is None) == (argv is None):
        raise ExecutionError("a shell step needs exactly one of 'command' and 'argv'",
                             hint='command: "make test"  or  argv: ["make", "test"]')
    if command is not None:
        if not isinstance(command, str) or not command:
            raise ExecutionError(f"'command' must be a non-empty string, got {command!r}")
        return ["/bin/sh", "-c", command]
    if not isinstance(argv, list) or not argv or not all(isinstance(a, str) for a in argv):
        raise ExecutionError(f"'argv' must be a non-empty list of strings, got {argv!r}")
    return list(argv)


def _expected_exits(value: Any) -> frozenset[int]:
    values = value if isinstance(value, list) else [value]
    if not values or not all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        raise ExecutionError(f"'expect_exit' must be an integer or a list of integers, "
                             f"got {value!r}")
    return frozenset(values)


def _environment(config: dict[str, Any], ctx: JobContext) -> dict[str, str]:
    extra = config.get("env") or {}
    if not isinstance(extra, dict) or not all(isinstance(v, str) for v in extra.values()):
        raise ExecutionError(f"'env' must be an object of strings, got {extra!r}")
    env = dict(os.environ)
    env.update(BASESHIFT_RUN_ID=ctx.run_id, BASESHIFT_JOB=ctx.job,
               BASESHIFT_ATTEMPT=str(ctx.attempt))
    if parent := traceparent():  # tracing on (docs/operations.md "Traces")
        env["TRACEPARENT"] = parent
    env.update({str(k): v for k, v in extra.items()})
    return env


def _cwd(config: dict[str, Any], ctx: JobContext) -> str | None:
    cwd: object = config.get("cwd")
    if cwd is None:
        return ctx.workdir
    if not isinstance(cwd, str):
        raise ExecutionError(f"'cwd' must be a string, got {cwd!r}")
    return os.path.join(ctx.workdir, cwd) if ctx.workdir else cwd


def _feed_stdin(transport: asyncio.SubprocessTransport, text: str) -> None:
    pipe = transport.get_pipe_transport(0)
    assert isinstance(pipe, asyncio.WriteTransport)
    # The transport buffers what the pipe cannot take yet; a command that exits without
    # reading it all just closes the pipe (EPIPE is handled by the transport).
    pipe.write(text.encode())
    pipe.close()


def _kill_started(starting: asyncio.Future[Any]) -> None:
    """Done-callback of a start nobody waits for any more: SIGKILL its group at once."""
    if starting.cancelled() or starting.exception() is not None:
        return
    transport = starting.result()[0]
    _signal_group(transport.get_pid(), signal.SIGKILL)
    transport.close()


def _signal_group(pgid: int, sig: signal.Signals) -> bool:
    """Send `sig` to the group; False if it has no process left."""
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        return False
    return True


def _output(stdout: _Capture, stderr: _Capture, code: int) -> Any:
    if not stdout.dropped:
        value = output_json(_decode(stdout.data))
        if value is not NOT_JSON:
            return value
    return {"stdout": stdout.text(), "stderr": stderr.text(), "exit_code": code}




def _exit_message(code: int, text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()][-TAIL_LINES:]
    tail = "\n".join(lines)[-TAIL_CHARS:]
    if code < 0:
        head = f"command was killed by signal {-code} ({_signal_name(-code)})"
    else:
        head = f"command exited with {code}"
    return f"{head}: {tail}" if tail else head


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return "unknown signal"


def _decode(data: bytes | bytearray) -> str:
    return bytes(data).decode("utf-8", "replace")


@hookimpl
def register_executors() -> list[type]:
    return [ShellExecutor]
