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
import time
from collections.abc import MutableMapping, Sequence
from typing import Any, TextIO

import structlog
from structlog.typing import Processor

from ..audit import acting
from ..console import LOGGER, configure_console
from ..diagnostics import printable
from ..errors import ConfigError
from ..logcontext import log_fields

FORMATS = ("json", "console")
FORMAT_ENV = "BASESHIFT_LOG_FORMAT"
FIRST = ("timestamp", "level", "logger", "message", "event")
"""The keys a JSON line starts with, in this order; the rest follow as they were added."""

EventDict = MutableMapping[str, Any]


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
    structlog.configure(  # for code that logs with structlog.stdlib.get_logger(...) itself
        processors=[_message, *_SHARED, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger, cache_logger_on_first_use=False)


def make_formatter(fmt: str, *, timestamps: bool = True) -> logging.Formatter:
    """The formatter of `fmt` lines; tests capture records with it."""
    render: list[Processor] = (
        [structlog.stdlib.ProcessorFormatter.remove_processors_meta, _ordered,
         structlog.processors.format_exc_info, structlog.processors.JSONRenderer()]
        if fmt == "json" else
        [structlog.processors.format_exc_info, ConsoleLine(timestamps=timestamps)])
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[_message, structlog.stdlib.ExtraAdder(), *_SHARED],
        processors=render)


def _message(logger: Any, name: str, ed: EventDict) -> EventDict:
    """The text of the line is `message`; `event` is left for a line's stable name
    (`http.request`, `run.failed`, ...) that a query can select on."""
    ed["message"] = ed.pop("event", "")
    return ed


def _context(logger: Any, name: str, ed: EventDict) -> EventDict:
    """Merge the bound fields and who is acting (a call site's own fields win)."""
    bound = log_fields()
    for key, value in bound.items():
        ed.setdefault(key, value)
    ed["_bound"] = tuple(bound)
    who = acting()
    ed.setdefault("actor", who.actor)
    if who.request_id is not None:
        ed.setdefault("request_id", who.request_id)
    return ed


_SHARED: Sequence[Processor] = (
    structlog.contextvars.merge_contextvars,
    _context,
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
    structlog.processors.TimeStamper(fmt="iso", utc=True, key="timestamp"),
)


def _ordered(logger: Any, name: str, ed: EventDict) -> EventDict:
    ed.pop("_bound", None)
    first = {k: ed.pop(k) for k in FIRST if k in ed}
    return {**first, **ed}


class ConsoleLine:
    """`warning: message`, or `2026-12-04 20:50:01 info message` with timestamps, then the
    bound context as `key=value`; escaped (`diagnostics.printable`): text from outside (a
    request path, a file name) must not clear the terminal or forge a line. A traceback is
    kept as it is (our own text)."""

    def __init__(self, *, timestamps: bool) -> None:
        self.timestamps = timestamps

    def __call__(self, logger: Any, name: str, ed: EventDict) -> str:
        record = ed.get("_record")
        stamp = ""
        if self.timestamps:
            at = record.created if isinstance(record, logging.LogRecord) else time.time()
            stamp = time.strftime("%Y-%m-%d %H:%M:%S ", time.localtime(at))
        context = "".join(f" {k}={printable(str(ed[k]))}" for k in ed.get("_bound", ())
                          if k in ed)
        line = (f"{stamp}{ed.get('level', name)}{' ' if stamp else ': '}"
                f"{printable(str(ed.get('message', '')))}{context}")
        if ed.get("exception"):
            line += "\n" + str(ed["exception"])
        return line


