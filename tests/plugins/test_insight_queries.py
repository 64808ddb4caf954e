"""The insight queries every builtin state store answers (`RunAnalytics.runs_per_hour` and
`workflow_runs`): the same counts, hours and nearest-rank percentiles from memory, SQLite and
PostgreSQL, limited to a time range and to the workflows named."""
from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from baseshift.core.backends import STATE
from baseshift.core.protocols import RunAnalytics
from baseshift.core.records import HourCount, WorkflowRuns
from baseshift.core.states import RunState
from tests.plugins.backends import names, opened_state_store
from tests.plugins.store_records import a_run

H = 3600.0
T0 = 1000 * H  # an hour's start
C, F, X, R = RunState.COMPLETED, RunState.FAILED, RunState.CANCELLED, RunState.RUNNING


@pytest.fixture(params=names(STATE))
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Any]:
    async with opened_state_store(request.param, tmp_path) as s:
        assert isinstance(s, RunAnalytics)
        yield s


async def add(store: Any, run_id: str, workflow: str, created: float, state: RunState,
              duration: float | None = None) -> None:
    times = {} if duration is None else {"started_at": created, "ended_at": created + duration}
    await store.create_run(a_run(run_id, workflow=workflow, created_at=created, state=state,
                                 **times), [])


async def test_runs_per_hour_count_each_hour_and_state_in_the_range(store: Any) -> None:
    await add(store, "early", "a", T0 - 1, C)           # before the range
    await add(store, "r1", "a", T0, C, 1.0)
    await add(store, "r2", "a", T0 + H - 0.5, C, 2.0)
    await add(store, "r3", "b", T0 + 10, F, 3.0)
    await add(store, "r4", "a", T0 + 2 * H + 5, R)
    await add(store, "late", "a", T0 + 3 * H, C)         # at `until`: outside
    assert await store.runs_per_hour(T0, T0 + 3 * H) == [
        HourCount(T0, C, 2), HourCount(T0, F, 1), HourCount(T0 + 2 * H, R, 1)]
    assert await store.runs_per_hour(T0, T0 + 3 * H, ["b"]) == [HourCount(T0, F, 1)]
    assert await store.runs_per_hour(T0, T0 + 3 * H, []) == []
    assert await store.runs_per_hour(T0 + 4 * H, T0 + 5 * H) == []


async def test_workflow_runs_give_outcomes_and_nearest_rank_percentiles(store: Any) -> None:
    for i, d in enumerate([5.0, 1.0, 4.0, 2.0, 3.0]):   # sorted: 1 2 3 4 5
        await add(store, f"a{i}", "a", T0 + i, C if i % 2 == 0 else F, d)
    await add(store, "a-x", "a", T0 + 10, X)               # cancelled, never started
    await add(store, "a-r", "a", T0 + 11, R)               # unfinished: no duration
    await add(store, "b1", "b", T0 + 12, R)
    await add(store, "old", "a", T0 - 100, C, 99.0)
    # p50 = ceil(0.5 * 5) = 3rd smallest; p95 = ceil(0.95 * 5) = 5th
    assert await store.workflow_runs(T0, T0 + H) == [
        WorkflowRuns("a", 7, 3, 2, 1, 3.0, 5.0), WorkflowRuns("b", 1, 0, 0, 0, None, None)]
    [b] = await store.workflow_runs(T0, T0 + H, ["b", "zzz"])
    assert b.workflow == "b" and b.success_rate is None
    [a] = await store.workflow_runs(T0, T0 + H, ["a"])
    assert a.success_rate == 3 / 5
    assert await store.workflow_runs(T0 + 2 * H, T0 + 3 * H) == []


async def test_one_finished_run_is_its_own_median_and_p95(store: Any) -> None:
    await add(store, "only", "solo", T0, C, 7.5)
    assert await store.workflow_runs(T0, T0 + H) == [WorkflowRuns("solo", 1, 1, 0, 0, 7.5, 7.5)]
