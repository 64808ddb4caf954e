"""Run queries and analytics beyond the contract suite: SQLite's query plans use the indexes,
old databases gain them, and on random data the two stores agree with each other and paging
visits every run exactly once."""
from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Select, event

from baseshift.core.records import JobRecord, RunCursor, RunQuery, RunRecord
from baseshift.core.settings import Settings
from baseshift.core.states import JobState, RunState
from baseshift.plugins.storage import sql_queries as queries
from baseshift.plugins.storage.memory import MemoryStateStore
from baseshift.plugins.storage.sqlite_store import SQLiteStateStore

CURSOR = RunCursor(5.0, "x").encode()


@pytest.fixture
async def sqlite_store(tmp_path: Path) -> AsyncIterator[SQLiteStateStore]:
    s = SQLiteStateStore.from_settings(Settings(data_dir=tmp_path))
    await s.open()
    yield s
    await s.close()


def plan_of(store: SQLiteStateStore, stmt: Select[Any]) -> list[str]:
    sql = stmt.compile(dialect=store.engine.dialect, compile_kwargs={"literal_binds": True})
    with store.engine.begin() as conn:
        return [row[3] for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}")]


@pytest.mark.parametrize("query, index", [
    (RunQuery(), "ix_runs_created_id"),
    (RunQuery(cursor=CURSOR), "ix_runs_created_id ((created_at,id)<(?,?))"),
    (RunQuery(workflow="w", cursor=CURSOR),
     "ix_runs_workflow_created_id (workflow=? AND (created_at,id)<(?,?))"),
    (RunQuery(states=(RunState.FAILED,), cursor=CURSOR),
     "ix_runs_state_created_id (state=? AND (created_at,id)<(?,?))"),
    (RunQuery(created_after=1.0, created_before=2.0), "ix_runs_created_id (created_at>? AND"),
    (RunQuery(workflow="w", created_after=1.0), "ix_runs_workflow_created_id (workflow=? AND"),
], ids=["all", "cursor", "workflow", "state", "range", "workflow-range"])
async def test_run_pages_read_an_index_in_order(sqlite_store: SQLiteStateStore,
                                                query: RunQuery, index: str) -> None:
    [step] = plan_of(sqlite_store, queries.runs_page_statement(query))
    assert f"USING INDEX {index}" in step
    assert "TEMP B-TREE" not in step


async def test_counting_runs_by_state_reads_only_an_index(
        sqlite_store: SQLiteStateStore) -> None:
    with sqlite_store.engine.begin() as conn:
        steps = [r[3] for r in conn.exec_driver_sql(
            "EXPLAIN QUERY PLAN SELECT state, count(*) FROM runs GROUP BY state")]
    assert steps == ["SCAN runs USING COVERING INDEX ix_runs_state_created_id"]


async def test_analytics_of_one_workflow_search_its_runs_and_their_jobs(
        sqlite_store: SQLiteStateStore) -> None:
    statements: list[tuple[str, Any]] = []
    with sqlite_store.engine.begin() as conn:
        def capture(*args: Any) -> None:
            statements.append((args[2], args[3]))

        event.listen(conn, "before_cursor_execute", capture)
        queries.job_success_rate(conn, "w", 1.0, None)
        queries.average_job_duration(conn, "w", None, 2.0)
        event.remove(conn, "before_cursor_execute", capture)
        plans = [[r[3] for r in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}", params)]
                 for sql, params in statements]
    for (sql, _), steps in zip(statements, plans, strict=True):
        assert "GROUP BY" in sql
        assert any(s.startswith("SEARCH runs USING") and "ix_runs_workflow_created_id (workflow=?"
                   in s for s in steps)
        assert any("SEARCH jobs USING INDEX sqlite_autoindex_jobs_1 (run_id=?)" in s
                   for s in steps)


async def test_an_older_database_gets_the_new_indexes(tmp_path: Path) -> None:
    store = SQLiteStateStore.from_settings(Settings(data_dir=tmp_path))
    await store.open()
    await store.close()
    db = tmp_path / "baseshift.db"
    with sqlite3.connect(db) as conn:
        conn.execute("DROP INDEX ix_runs_workflow_created_id")
        conn.execute("CREATE INDEX ix_runs_created_at ON runs (created_at)")

    await store.open()
    await store.close()

    with sqlite3.connect(db) as conn:
        names = {r[0] for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'runs' "
            "AND name LIKE 'ix_%'")}
    assert names == {"ix_runs_created_id", "ix_runs_workflow_created_id",
                     "ix_runs_state_created_id"}


# ------------------------------------------------------------------ both stores agree

JOB_STATES = st.sampled_from(list(JobState))
TIMES = st.integers(0, 40).map(lambda t: t / 4)


@st.composite
def runs_with_jobs(draw: st.DrawFn) -> list[tuple[RunRecord, list[JobRecord]]]:
    found = []
    for i in range(draw(st.integers(0, 12))):
        created = draw(TIMES)
        run = RunRecord(id=f"r{draw(st.integers(0, 99)):02d}-{i}",
                        workflow=draw(st.sampled_from(["a", "b"])), version="1", source="",
                        path="", inputs={}, state=draw(st.sampled_from(list(RunState))),
                        created_at=created, started_at=draw(st.none() | TIMES),
                        ended_at=draw(st.none() | TIMES))
        found.append((run, [draw(a_job(run.id, k)) for k in range(draw(st.integers(0, 5)))]))
    return found


@st.composite
def a_job(draw: st.DrawFn, run_id: str, k: int) -> JobRecord:
    name = draw(st.sampled_from(["x", "y", "z"]))
    index = draw(st.none() | st.integers(0, 3))
    key = name if index is None else f"{name}[{index}]"
    return JobRecord(run_id=run_id, key=f"{key}#{k}", name=name, index=index,
                     state=draw(JOB_STATES), started_at=draw(st.none() | TIMES),
                     ended_at=draw(st.none() | TIMES))


FILTERS = st.fixed_dictionaries({}, optional={
    "workflow": st.sampled_from(["a", "b", "c"]), "since": TIMES, "until": TIMES})


async def _answers(store: Any, filters: dict[str, Any], limit: int,
                   runs: list[tuple[RunRecord, list[JobRecord]]]) -> dict[str, Any]:
    await store.open()
    for run, jobs in runs:
        await store.create_run(run, jobs)
    query = {"workflow": filters.get("workflow"), "created_after": filters.get("since"),
             "created_before": filters.get("until")}
    pages, cursor = [], None
    while True:
        page = await store.query_runs(RunQuery(limit=limit, cursor=cursor, **query))
        pages.append([r.id for r in page.runs])
        if (cursor := page.next_cursor) is None:
            break
    found = {
        "pages": pages,
        "counts": await store.count_runs_by_state(filters.get("workflow")),
        "summary": await store.workflow_performance_summary(**filters),
        "rates": await store.job_success_rate(**filters),
        "durations": await store.average_job_duration(**filters),
        "runs": [await store.workflow_performance(r.id) for r, _ in runs if r.ended_at],
    }
    await store.close()
    return found


@pytest.mark.slow
@settings(max_examples=60, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(runs=runs_with_jobs(), filters=FILTERS, limit=st.integers(1, 4))
def test_memory_and_sqlite_agree(runs: list[tuple[RunRecord, list[JobRecord]]],
                                 filters: dict[str, Any], limit: int) -> None:
    ids = [r.id for r, _ in runs]
    if len(set(ids)) != len(ids):
        return
    memory = asyncio.run(_answers(MemoryStateStore(), filters, limit, runs))
    sqlite = asyncio.run(_answers(SQLiteStateStore("sqlite://"), filters, limit, runs))
    assert memory == approx(sqlite)

    matching = sorted((r for r, _ in runs if _in_range(r, filters)),
                      key=lambda r: (r.created_at, r.id), reverse=True)
    paged = [run_id for page in memory["pages"] for run_id in page]
    assert paged == [r.id for r in matching]
    assert all(len(page) == limit for page in memory["pages"][:-1])


def _in_range(run: RunRecord, filters: dict[str, Any]) -> bool:
    return (filters.get("workflow", run.workflow) == run.workflow
            and run.created_at >= filters.get("since", run.created_at)
            and ("until" not in filters or run.created_at < filters["until"]))


def approx(value: Any) -> Any:
    """Averages summed in a different order may differ in the last bit."""
    if isinstance(value, dict):
        return {k: approx(v) for k, v in value.items()}
    if isinstance(value, list):
        return [approx(v) for v in value]
    if isinstance(value, float):
        return pytest.approx(value, rel=1e-12)
    if hasattr(value, "__dataclass_fields__"):
        return type(value)(**{f: approx(getattr(value, f)) for f in value.__dataclass_fields__})
    return value
