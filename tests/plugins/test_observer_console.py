"""The console line for a failed run: it names the failed jobs as the store has them."""
from __future__ import annotations

import logging
import time
from types import SimpleNamespace
from typing import Any

import pytest

from baseshift.core.events import RunStateChanged
from baseshift.core.states import JobState, RunState
from baseshift.plugins.observers import console


class Runs:
    """The run service's snapshot, as a run that finished in another server left it."""

    def __init__(self, states: dict[str, JobState]) -> None:
        self.states = states
        self.reads: list[dict[str, Any]] = []

    async def snapshot(self, run_id: str, **options: Any) -> Any:
        self.reads.append({"run_id": run_id, **options})
        return SimpleNamespace(run=SimpleNamespace(error=None),
                               jobs={k: SimpleNamespace(state=s, error=None)
                                     for k, s in self.states.items()})


def failed(run_id: str) -> RunStateChanged:
    return RunStateChanged(run_id, time.time(), "orders", RunState.RUNNING, RunState.FAILED, 3)


async def test_a_failed_run_names_its_failed_jobs_from_the_store(
        caplog: pytest.LogCaptureFixture) -> None:
    runs = Runs({"a": JobState.FAILED, "b": JobState.SUCCEEDED, "c": JobState.FAILED})
    app: Any = SimpleNamespace(runs=runs, stash={})
    with caplog.at_level(logging.INFO, logger="baseshift.runs"):
        await console.track_event(app, failed("r1"))
        runs.states = {"a": JobState.CANCELLED}
        await console.track_event(app, failed("r2"))
    assert [r.getMessage() for r in caplog.records] == [
        "run r1 of workflow orders failed (jobs a, c); `baseshift show r1` gives the reasons",
        "run r2 of workflow orders failed; `baseshift show r2` gives the reasons"]
    assert runs.reads == [{"run_id": "r1", "attempts": False},
                          {"run_id": "r2", "attempts": False}]


async def test_only_a_failed_run_is_read_and_only_when_the_line_is_shown(
        caplog: pytest.LogCaptureFixture) -> None:
    runs = Runs({"a": JobState.FAILED})
    app: Any = SimpleNamespace(runs=runs, stash={})
    done = RunStateChanged("r1", time.time(), "orders", RunState.RUNNING, RunState.COMPLETED, 1)
    with caplog.at_level(logging.INFO, logger="baseshift.runs"):
        assert console.track_event(app, done) is None  # no coroutine: nothing to do
    with caplog.at_level(logging.WARNING, logger="baseshift.runs"):
        assert console.track_event(app, failed("r2")) is None
    assert runs.reads == [] and caplog.records == []
