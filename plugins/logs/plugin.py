"""The log store plugin's hooks: its routes and page, capturing this process's own lines
(in a server or a worker; `[plugins.logs] capture = false` turns it off) and the lines of
each attempt that ends, when the state store keeps log lines (core/capabilities.py)."""
from __future__ import annotations

from typing import TYPE_CHECKING

from baseshift.core.capabilities import LogLines
from baseshift.core.config import option
from baseshift.core.hookspecs import hookimpl
from baseshift.core.stash import SERVING, WORKING, StashKey
from baseshift.core.tracecontext import TRACE_URL

if TYPE_CHECKING:
    from collections.abc import Sequence

    from starlette.routing import BaseRoute

    from baseshift.core.app.logbatch import LogBatcher
    from baseshift.core.appface import App
    from baseshift.core.events import Event

    from .capture import AttemptLines

OPTIONS = "logs"
"""The plugin's table in `settings.extra` (`[plugins.logs]`)."""
PROCESS_LINES: StashKey[LogBatcher] = StashKey("logs_process_lines")
ATTEMPT_LINES: StashKey[AttemptLines] = StashKey("logs_attempt_lines")


@hookimpl
def register_routes() -> list[BaseRoute]:
    from .routes import routes

    return routes()


@hookimpl
def configure(baseshift: App) -> None:
    from pathlib import Path

    from baseshift.web.render import add_templates

    add_templates(baseshift, Path(__file__).parent / "templates")


@hookimpl
def startup(baseshift: App) -> None:
    """In a server or a worker whose store keeps log lines: collect its own lines and the
    lines of the attempts that end."""
    store = baseshift.store
    source = "server" if baseshift.stash.get(SERVING) else \
        "worker" if baseshift.stash.get(WORKING) else None
    # both checked even where nothing is captured: a bad value fails every start
    capture = bool(option(baseshift.settings, OPTIONS, "capture", True))
    access = bool(option(baseshift.settings, OPTIONS, "access", False))
    if not isinstance(store, LogLines) or source is None or not capture \
            or PROCESS_LINES in baseshift.stash:
        return
    from .capture import AttemptLines, process_lines

    traced = TRACE_URL in baseshift.stash  # traces are recorded (the tracing plugin)
    batcher = process_lines(store, source, access=access, traced=traced)
    attempts = AttemptLines(store, store, traced)
    baseshift.stash[PROCESS_LINES] = batcher
    baseshift.stash[ATTEMPT_LINES] = attempts
    batcher.start()
    attempts.start()


@hookimpl
def track_events(baseshift: App, events: Sequence[Event]) -> None:
    attempts = baseshift.stash.get(ATTEMPT_LINES)
    if attempts is not None:
        attempts.follow(events)


@hookimpl
async def shutdown(baseshift: App) -> None:
    attempts = baseshift.stash.pop(ATTEMPT_LINES)
    if attempts is not None:
        await attempts.stop()
    batcher = baseshift.stash.pop(PROCESS_LINES)
    if batcher is not None:
        await batcher.stop()
