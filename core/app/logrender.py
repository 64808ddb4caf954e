"""The structlog side of the log (core/app/logs.py chooses and installs it): the processors
that turn a log record into a JSON object or a console line.

Kept apart from the options because structlog takes a while to import (it loads `rich` when
installed): a quick command that logs nothing but a warning in console text never needs it.
"""
from __future__ import annotations

import json
import logging
import time
from collections.abc import MutableMapping, Sequence
from typing import Any

import structlog
from structlog.typing import Processor

from ..audit import acting
from ..diagnostics import printable
from ..logcontext import log_fields, log_masker

FIRST = ("timestamp", "level", "logger", "message", "event")
"""The keys a JSON line starts with, in this order; the rest follow as they were added."""

EventDict = MutableMapping[str, Any]


def configure_structlog() -> None:
    """Route structlog's own loggers (`structlog.stdlib.get_logger`) through `logging`, to
    the formatter below, with the same fields."""
    structlog.configure(
        processors=[_message, *_SHARED, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger, cache_logger_on_first_use=False)


def make_formatter(fmt: str, *, timestamps: bool = True) -> logging.Formatter:
    """The formatter of `fmt` lines; tests capture records with it."""
    render: list[Processor] = (
        [structlog.stdlib.ProcessorFormatter.remove_processors_meta, _ordered,
         structlog.processors.format_exc_info, _masked, structlog.processors.JSONRenderer()]
        if fmt == "json" else
        [structlog.processors.format_exc_info, _masked, ConsoleLine(timestamps=timestamps)])
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[_message, structlog.stdlib.ExtraAdder(), *_SHARED],
        processors=render)


_json_formatter: logging.Formatter | None = None


def record_fields(record: logging.LogRecord) -> dict[str, Any]:
    """The fields of `record`'s JSON line, for a handler that stores or ships lines rather
    than writing text (core/app/logbatch.py)."""
    global _json_formatter
    if _json_formatter is None:
        _json_formatter = make_formatter("json")
    fields: dict[str, Any] = json.loads(_json_formatter.format(record))
    return fields


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


def _masked(logger: Any, name: str, ed: EventDict) -> EventDict:
    """Every secret of the attempt logging this line masked, in the message, the fields and
    the traceback (core/logcontext.py `log_masked`)."""
    masker = log_masker()
    if masker:
        for key, value in ed.items():
            if not key.startswith("_"):
                ed[key] = masker.value(value)
    return ed


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


