"""The terminal progress display: plain lines for pipes, a bar for terminals."""
from __future__ import annotations

import io
import time

from baseshift.core.events import JobsAdded, JobStateChanged, RunStateChanged
from baseshift.core.states import JobState, RunState
from baseshift.plugins.observers.progress import BarDisplay, LineDisplay

NOW = time.time()
EVENTS = [
    RunStateChanged("r1", NOW, "orders", RunState.INITIALIZED, RunState.RUNNING, 2),
    JobStateChanged("r1", NOW, "a", JobState.PENDING, JobState.READY),
    JobStateChanged("r1", NOW, "a", JobState.READY, JobState.RUNNING, 1),
    JobStateChanged("r1", NOW, "a", JobState.RUNNING, JobState.FAILED, 1, "boom"),
    JobsAdded("r1", NOW, "b", 3),
    JobStateChanged("r1", NOW, "b", JobState.PENDING, JobState.SKIPPED, 0, "condition is false"),
    RunStateChanged("r1", NOW, "orders", RunState.RUNNING, RunState.FAILED, 2, "job a failed"),
]


def test_line_display_prints_one_line_per_change_without_ready() -> None:
    out = io.StringIO()
    display = LineDisplay(out)
    for event in EVENTS:
        display.handle(event)
    lines = [line.split(" ", 1)[1] for line in out.getvalue().splitlines()]
    assert lines == [
        "run r1 orders RUNNING",
        "  a RUNNING (attempt 1)",
        "  a FAILED (attempt 1): boom",
        "  b SKIPPED: condition is false",
        "run r1 orders FAILED: job a failed",
    ]


def test_bar_display_counts_finished_jobs_against_all_jobs() -> None:
    out = io.StringIO()
    display = BarDisplay(out)
    for event in EVENTS:
        display.handle(event)
    bar = display.bars["r1"]
    display.close()
    assert (bar.n, bar.total) == (2, 5)
    assert bar.postfix == "FAILED"
    assert "orders" in out.getvalue()
    assert "2/5" in out.getvalue()
