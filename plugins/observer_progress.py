"""Live progress in the terminal: a progress bar on a TTY, one plain line per change otherwise.

Enabled when settings.extra["progress"] is "bar" or "lines" (the CLI sets it for `run`,
`resume` and `retry`): `configure` then registers a display object as an extra plugin.
"""
from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING, Any, TextIO

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from baseshift.core.events import Event, JobsAdded, JobStateChanged, RunStateChanged
from baseshift.core.hookspecs import hookimpl
from baseshift.core.states import JobState

if TYPE_CHECKING:
    from baseshift.core.app import BaseShift

_COUNTED = {JobState.SUCCEEDED, JobState.FAILED, JobState.SKIPPED, JobState.CANCELLED}


class LineDisplay:
    """One line per job or run state change: good for logs, CI and pipes."""

    def __init__(self, out: TextIO) -> None:
        self.out = out

    def handle(self, event: Event) -> None:
        stamp = time.strftime("%H:%M:%S", time.localtime(event.at))
        if isinstance(event, RunStateChanged):
            tail = f": {event.error}" if event.error else ""
            self.out.write(f"{stamp} run {event.run_id} {event.workflow} {event.new.value}{tail}\n")
        elif isinstance(event, JobStateChanged) and event.new is not JobState.READY:
            attempt = f" (attempt {event.attempt})" if event.attempt else ""
            tail = f": {event.error}" if event.error and event.new is not JobState.RUNNING else ""
            self.out.write(f"{stamp}   {event.job} {event.new.value}{attempt}{tail}\n")
        self.out.flush()

    def close(self) -> None:
        self.out.flush()


class BarDisplay:
    """A rich progress bar per run, counting finished jobs against all jobs."""

    def __init__(self, out: TextIO) -> None:
        self.progress = Progress(TextColumn("{task.description}"), BarColumn(),
                                 MofNCompleteColumn(), TextColumn("{task.fields[status]}"),
                                 TimeElapsedColumn(), console=Console(file=out),
                                 transient=False)
        self.tasks: dict[str, Any] = {}
        self.progress.start()

    def handle(self, event: Event) -> None:
        task = self.tasks.get(event.run_id)
        if isinstance(event, RunStateChanged):
            if task is None:
                task = self.tasks[event.run_id] = self.progress.add_task(
                    event.workflow, total=event.jobs_total, status=event.new.value)
            self.progress.update(task, status=event.new.value)
        elif task is None:
            return
        elif isinstance(event, JobsAdded):
            self.progress.update(task, total=(self.progress.tasks[task].total or 0) + event.count)
        elif isinstance(event, JobStateChanged):
            if event.new in _COUNTED:
                self.progress.advance(task)
            elif event.old in _COUNTED:
                self.progress.advance(task, -1)
            self.progress.update(task, status=f"{event.job} {event.new.value.lower()}")

    def close(self) -> None:
        self.progress.stop()


def make_display(mode: str, out: TextIO | None = None) -> LineDisplay | BarDisplay:
    stream = out or sys.stderr
    return BarDisplay(stream) if mode == "bar" else LineDisplay(stream)


class _Observer:
    """Registered only when progress is on, so runs without a display pay for no observer."""

    def __init__(self, display: LineDisplay | BarDisplay) -> None:
        self.display = display

    @hookimpl
    def track_event(self, event: Event) -> None:
        self.display.handle(event)

    @hookimpl
    def shutdown(self) -> None:
        self.display.close()


@hookimpl
def configure(baseshift: BaseShift) -> None:
    mode = baseshift.settings.extra.get("progress")
    if mode in ("bar", "lines"):
        baseshift.pm.register(_Observer(make_display(mode)), name=f"{__name__}.display")
