"""Live progress in the terminal: a progress bar on a TTY, one plain line per change otherwise.

Enabled when settings.extra["progress"] is "bar" or "lines" (the CLI sets it for `run`,
`resume` and `retry`): `configure` then registers a display object as an extra plugin.
"""
from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING, Any, TextIO

from baseshift.core.events import Event, JobsAdded, JobStateChanged, RunStateChanged
from baseshift.core.hookspecs import hookimpl
from baseshift.core.states import JobState

if TYPE_CHECKING:
    from baseshift.core.appface import App

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
    """A progress bar per run (tqdm), counting finished jobs against all jobs.

    tqdm is imported here, not at the top, so commands that show no bar never load it."""

    _FORMAT = "{desc} {bar} {n_fmt}/{total_fmt} {postfix} [{elapsed}]"

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.bars: dict[str, Any] = {}

    def handle(self, event: Event) -> None:
        bar = self.bars.get(event.run_id)
        if isinstance(event, RunStateChanged):
            if bar is None:
                bar = self.bars[event.run_id] = self._new_bar(event.workflow, event.jobs_total)
            bar.set_postfix_str(event.new.value)
        elif bar is None:
            return
        elif isinstance(event, JobsAdded):
            bar.total = (bar.total or 0) + event.count
            bar.refresh()
        elif isinstance(event, JobStateChanged):
            if event.new in _COUNTED:
                bar.update(1)
            elif event.old in _COUNTED:
                bar.update(-1)
            bar.set_postfix_str(f"{event.job} {event.new.value.lower()}")

    def _new_bar(self, workflow: str, total: int) -> Any:
        from tqdm import tqdm

        return tqdm(total=total, desc=workflow, file=self.out, bar_format=self._FORMAT,
                    position=len(self.bars), leave=True, dynamic_ncols=True)

    def close(self) -> None:
        for bar in self.bars.values():
            bar.close()


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
def configure(baseshift: App) -> None:
    mode = baseshift.settings.extra.get("progress")
    if mode in ("bar", "lines"):
        baseshift.pm.register(_Observer(make_display(mode)), name=f"{__name__}.display")
