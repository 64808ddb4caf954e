"""The one handler of Base Shift's log records, on stderr, and its plain text formatter.

A quick command prints its warnings and errors as `warning: ...` with `ConsoleFormatter`
(no structlog to import). `serve`, `worker` and `run`, and any command when
`BASESHIFT_LOG_FORMAT` says so, install the structured formatter of core/app/logs.py here
instead: JSON lines, or console lines with a timestamp and the bound context. Messages can
carry text from outside (a request path, a file name, an error from a step), so console text
escapes every non-printable character: a terminal escape sequence in a URL must not clear or
recolour the operator's terminal, and a newline must not forge a log line.
"""
from __future__ import annotations

import logging
import sys
from typing import TextIO

from .diagnostics import printable

LOGGER = "baseshift"


class ConsoleFormatter(logging.Formatter):
    """`warning: message`, or `2026-12-04 20:50:01 info message` with timestamps; the
    message escaped (`diagnostics.printable`), a traceback kept as it is (our own text)."""

    def __init__(self, *, timestamps: bool) -> None:
        super().__init__(datefmt="%Y-%m-%d %H:%M:%S")
        self.timestamps = timestamps

    def format(self, record: logging.LogRecord) -> str:
        stamp = self.formatTime(record, self.datefmt) + " " if self.timestamps else ""
        level = record.levelname.lower()
        line = f"{stamp}{level}{' ' if self.timestamps else ': '}{printable(record.getMessage())}"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


_handler: logging.Handler | None = None


def configure_console(*, verbose: bool = False, timestamps: bool = False,
                      stream: TextIO | None = None,
                      formatter: logging.Formatter | None = None) -> None:
    """Send Base Shift's log records to stderr: warnings and errors only, or, `verbose`,
    informational lines too; `timestamps` for a long-running process (a server). The
    command line passes its structured `formatter` (core/app/logs.py: JSON or console
    lines with the bound context); without one, `ConsoleFormatter`. Calling it again
    replaces the earlier setting. Records still propagate: an application that embeds Base
    Shift and configured the root logger gets them too."""
    global _handler
    root = logging.getLogger(LOGGER)
    if _handler is not None:
        root.removeHandler(_handler)
    _handler = logging.StreamHandler(stream or sys.stderr)
    _handler.setFormatter(formatter or ConsoleFormatter(timestamps=timestamps))
    root.addHandler(_handler)
    root.setLevel(logging.INFO if verbose else logging.WARNING)
