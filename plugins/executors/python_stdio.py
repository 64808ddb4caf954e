"""What a `python` step prints goes to its attempt's log, never to the process's stdout.

A step function runs inside the server or the CLI process, so a bare `print()` would write
to that process's stdout: into `baseshift run --json`'s JSON document, or between the
server's log lines. `sys.stdout` and `sys.stderr` are replaced, once, by proxies that send
text to the log of the attempt whose context is current (a context variable: set for the
step's task, and copied into the worker thread of a sync step), and to the real stream
everywhere else. Concurrent steps therefore each keep their own lines.
"""
from __future__ import annotations

import io
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, TextIO

_sink: ContextVar[Callable[[str], None] | None] = ContextVar("baseshift_step_output",
                                                              default=None)


class StepStream(io.TextIOBase):
    """Writes to the current step's log, or to the stream it replaced outside any step."""

    def __init__(self, real: TextIO) -> None:
        self.real = real

    def write(self, text: str) -> int:
        sink = _sink.get()
        if sink is None:
            return self.real.write(text)
        sink(text)
        return len(text)

    def flush(self) -> None:
        if _sink.get() is None:
            self.real.flush()

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return _sink.get() is None and self.real.isatty()

    def fileno(self) -> int:
        return self.real.fileno()

    def __getattr__(self, name: str) -> Any:  # encoding, errors, buffer... of the real stream
        return getattr(self.real, name)


def _install() -> None:
    """Put the proxies in place (again, if something such as a test harness swapped the
    streams since)."""
    if not isinstance(sys.stdout, StepStream):
        sys.stdout = StepStream(sys.stdout)
    if not isinstance(sys.stderr, StepStream):
        sys.stderr = StepStream(sys.stderr)


class _LineLog:
    """Collects written text and hands each complete line to `log`."""

    def __init__(self, log: Callable[[str], None]) -> None:
        self.log = log
        self.partial = ""

    def write(self, text: str) -> None:
        *lines, self.partial = (self.partial + text).split("\n")
        for line in lines:
            self.log(line)

    def close(self) -> None:
        if self.partial:
            self.log(self.partial)
            self.partial = ""


@contextmanager
def output_to(log: Callable[[str], None]) -> Iterator[None]:
    """Within this block (and the threads it starts through `ThreadRunner`), text written to
    sys.stdout or sys.stderr becomes lines of `log`."""
    _install()
    lines = _LineLog(log)
    token = _sink.set(lines.write)
    try:
        yield
    finally:
        _sink.reset(token)
        lines.close()
