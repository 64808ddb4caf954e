"""The cancel watch: a run cancelled in the store by another process is cancelled here."""
from __future__ import annotations

import asyncio
from typing import Any

import pytest
from active_runs import active_run, started
from plans import job

from baseshift.core import cancel_watch
from baseshift.core.cancel_watch import CancelWatch
from baseshift.core.inbox import Cancel, Message
from baseshift.core.plan import Plan
from baseshift.core.records import Changes, RunRecord
from baseshift.core.runstate import ActiveRun
from baseshift.core.states import RunState

PLAN = Plan("p", "1.0.0", jobs=(job("a"),))


class Host:
    """A store that reports the states a test sets."""

    def __init__(self, states: dict[str, RunState]) -> None:
        self.states = states
        self.store = self

    async def run_states(self, run_ids: list[str]) -> dict[str, RunState]:
        return {r: self.states[r] for r in run_ids if r in self.states}


def stored_running(runs: dict[str, ActiveRun], run_id: str) -> ActiveRun:
    run, fx = started(PLAN, run_id)
    runs[run_id] = run
    watch = CancelWatch(Host({}), runs, lambda m: None)
    watch.stored(fx.changes)
    return run


def test_a_run_is_watched_once_its_running_state_is_stored() -> None:
    runs: dict[str, ActiveRun] = {}
    run = stored_running(runs, "r1")
    assert run.running_stored


def test_a_record_other_than_the_run_holds_marks_nothing() -> None:
    run = active_run(PLAN)
    changes = Changes()
    changes.moved_run(RunRecord("r1", "p", "1.0.0", "", "", {}, state=RunState.RUNNING),
                      RunState.INITIALIZED)  # an older activation's record
    CancelWatch(Host({}), {"r1": run}, lambda m: None).stored(changes)
    assert not run.running_stored


async def test_a_watched_run_cancelled_in_the_store_is_cancelled_here(
        monkeypatch: Any) -> None:
    monkeypatch.setattr(cancel_watch, "WATCH_INTERVAL", 0.0)
    runs: dict[str, ActiveRun] = {}
    watched = stored_running(runs, "r1")
    runs["r2"] = active_run(PLAN, "r2")  # not stored RUNNING yet: not watched
    posted: list[Message] = []
    host = Host({"r1": RunState.CANCELLED, "r2": RunState.CANCELLED})
    watch = CancelWatch(host, runs, posted.append)
    watch.start()
    while not posted:
        await asyncio.sleep(0.001)
    for task in watch.cancel():
        with pytest.raises(asyncio.CancelledError):
            await task
    assert set(posted) == {Cancel("r1", "cancelled from another process", watched)}


def test_cancel_before_start_has_nothing_to_await() -> None:
    assert CancelWatch(Host({}), {}, lambda m: None).cancel() == []
