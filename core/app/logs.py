"""Structured log lines: JSON for a log shipper, or console lines for a person.

Every line of the server, the workers and the command line goes through one structlog
`ProcessorFormatter` on the `baseshift` logger: the `logging.getLogger(...)` call sites of
the kernel and the plugins, and the libraries routed there (Hypercorn's error log). Fields a
call site passes with `extra=` (`log.info("...", extra={"event": "run.failed", ...})`), the
bound context (core/logcontext.py: run, job, attempt, worker, trace) and who is acting
(core/audit.py: actor, request id) are merged into every line. docs/operations.md "Logs"
lists the fields.

JSON when stderr is not a terminal (a container, a service manager, a pipe), console lines
when it is; `--log-format` or `BASESHIFT_LOG_FORMAT` chooses otherwise.
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import TextIO

from ..console import LOGGER, configure_console
from ..errors import ConfigError

FORMATS = ("json", "console")
FORMAT_ENV = "BASESHIFT_LOG_FORMAT"


def log_format_arg(p: argparse.ArgumentParser) -> None:
    """The `--log-format` option of the long-running commands (serve, worker, run)."""
    p.add_argument("--log-format", choices=FORMATS, default=None,
                   help="log lines as JSON objects or console text (env "
                   f"{FORMAT_ENV}; default: console when stderr is a terminal, else JSON)")


def log_format(chosen: str | None = None, *, stream: TextIO | None = None,
               default: str | None = None) -> str:
    """The format to log in: `chosen` (`--log-format`), else `BASESHIFT_LOG_FORMAT`, else
    `default`, else console when `stream` (stderr) is a terminal and JSON when it is not."""
    chosen = chosen or os.environ.get(FORMAT_ENV) or default
    if chosen is not None:
        if chosen not in FORMATS:
            raise ConfigError(f"{FORMAT_ENV} has value {chosen!r}. Expected one of: "
                              f"{', '.join(FORMATS)}.")
        return chosen
    return "console" if _is_terminal(stream or sys.stderr) else "json"


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # a closed or a stream-like object
        return False


_library_handler: logging.Handler | None = None


def configure_logging(fmt: str, *, verbose: bool = False, timestamps: bool = False,
                      stream: TextIO | None = None) -> None:
    """Log in `fmt` (json or console) to `stream` (stderr): Base Shift's lines (INFO and up
    when `verbose`, else warnings and errors), and other libraries' warnings and errors,
    all through the same processors. Calling it again replaces the earlier setting."""
    global _library_handler
    from .logrender import configure_structlog, make_formatter

    formatter = make_formatter(fmt, timestamps=timestamps)
    configure_console(verbose=verbose, timestamps=timestamps, stream=stream,
                      formatter=formatter)
    root = logging.getLogger()
    if _library_handler is not None:
        root.removeHandler(_library_handler)
    _library_handler = logging.StreamHandler(stream or sys.stderr)
    _library_handler.setLevel(logging.WARNING)
    _library_handler.addFilter(lambda r: not r.name.startswith(LOGGER))  # ours: above
    _library_handler.setFormatter(formatter)
    root.addHandler(_library_handler)
    configure_structlog()  # for code that logs with structlog.stdlib.get_logger(...)


