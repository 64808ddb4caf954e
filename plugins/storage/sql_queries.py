"""Read queries of the SQLite store: run pages with keyset pagination, counts by state, and
analytics computed by SQLite's aggregates (COUNT, AVG, MIN, MAX, window functions), so only
one row per group ever reaches Python.

The analytics count logical jobs (`index IS NULL`), as `core.records` explains.
"""
from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from sqlalchemy import Connection, Integer, Select, and_, case, cast, func, select, tuple_
from sqlalchemy.sql import ColumnElement

from baseshift.core.records import (
    HourCount,
    JobDuration,
    JobSuccess,
    RunPage,
    RunPerformance,
    RunQuery,
    RunRecord,
    SuccessRates,
    WorkflowPerformance,
    WorkflowRuns,
)
from baseshift.core.states import JobState, RunState
from baseshift.core.storecalls import StoreCalls, observed

from .sql_models import JOBS, RUNS, run_record

_S, _F = JobState.SUCCEEDED.value, JobState.FAILED.value
_OUTCOMES = (_S, _F)
_RUN_STATES = {s.value: s for s in RunState}
_FINISHED_RUNS = tuple(s.value for s in RunState if s.finished)
_JOB_DURATION = JOBS.c.ended_at - JOBS.c.started_at
_RUN_DURATION = RUNS.c.ended_at - RUNS.c.started_at
_NEWEST_FIRST = (RUNS.c.created_at.desc(), RUNS.c.id.desc())
T = TypeVar("T")


def _count(condition: ColumnElement[bool]) -> ColumnElement[int]:
    # COUNT skips NULLs, and a CASE without ELSE is NULL: a filtered count that is 0, not
    # NULL, over no rows (SUM would be NULL).
    return func.count(case((condition, 1)))


def _states(*states: JobState) -> ColumnElement[bool]:
    return JOBS.c.state.in_([s.value for s in states])


def _timed_outcome() -> ColumnElement[bool]:
    return and_(JOBS.c.state.in_(_OUTCOMES), JOBS.c.started_at.is_not(None),
                JOBS.c.ended_at.is_not(None))


# ------------------------------------------------------------------ runs


def _run_filters(query: RunQuery) -> list[ColumnElement[bool]]:
    found = _range_filters(query.workflow, query.created_after, query.created_before)
    if query.states is not None:
        found.append(RUNS.c.state.in_([RunState(s).value for s in query.states]))
    if query.workflows is not None:
        found.append(RUNS.c.workflow.in_(list(query.workflows)))
    position = query.position()
    if position is not None:
        found.append(tuple_(RUNS.c.created_at, RUNS.c.id)
                     < tuple_(position.created_at, position.id))
    return found


def _range_filters(workflow: str | None, since: float | None,
                   until: float | None) -> list[ColumnElement[bool]]:
    found: list[ColumnElement[bool]] = []
    if workflow is not None:
        found.append(RUNS.c.workflow == workflow)
    if since is not None:
        found.append(RUNS.c.created_at >= since)
    if until is not None:
        found.append(RUNS.c.created_at < until)
    return found


def runs_page_statement(query: RunQuery) -> Select[Any]:
    """The page's SELECT, one row past the limit to tell whether another page follows."""
    return (select(RUNS).where(*_run_filters(query)).order_by(*_NEWEST_FIRST)
            .limit(query.limit + 1))


def query_runs(conn: Connection, query: RunQuery) -> RunPage:
    """A page of runs, newest first, and the cursor of the next page."""
    runs = [run_record(m) for m in conn.execute(runs_page_statement(query)).mappings()]
    return RunPage.of(runs, query.limit)


def count_runs_by_state(conn: Connection, workflow: str | None) -> dict[RunState, int]:
    """Runs per state, every state present."""
    stmt = (select(RUNS.c.state, func.count()).where(*_range_filters(workflow, None, None))
            .group_by(RUNS.c.state))
    counts = dict.fromkeys(RunState, 0)
    for state, n in conn.execute(stmt):
        counts[_RUN_STATES[state]] = n
    return counts


# ------------------------------------------------------------------ analytics


def run_performance(conn: Connection, run_id: str) -> RunPerformance | None:
    """One run's job counts and durations; None if there is no such run."""
    run = conn.execute(select(RUNS.c.workflow, RUNS.c.state, RUNS.c.started_at,
                              RUNS.c.ended_at).where(RUNS.c.id == run_id)).first()
    if run is None:
        return None
    stmt = select(
        func.count(), _count(_states(JobState.SUCCEEDED)), _count(_states(JobState.FAILED)),
        _count(_states(JobState.RUNNING, JobState.RETRYING)),
        _count(_states(JobState.PENDING, JobState.READY)), _count(_states(JobState.SKIPPED)),
        _count(_states(JobState.CANCELLED)), func.avg(case((_timed_outcome(), _JOB_DURATION))),
    ).where(JOBS.c.run_id == run_id, JOBS.c.index.is_(None))
    total, done, failed, active, pending, skipped, cancelled, avg = conn.execute(stmt).one()
    end = run.ended_at if run.ended_at is not None else time.time()
    return RunPerformance(
        run_id=run_id, workflow=run.workflow, status=_RUN_STATES[run.state],
        total_jobs=total, completed_jobs=done, failed_jobs=failed, in_progress_jobs=active,
        pending_jobs=pending, skipped_jobs=skipped, cancelled_jobs=cancelled,
        average_job_duration=avg,
        total_workflow_duration=None if run.started_at is None else end - run.started_at,
        start_time=run.started_at, end_time=run.ended_at)


def workflow_performance(conn: Connection, workflow: str | None, since: float | None,
                         until: float | None) -> WorkflowPerformance:
    """Runs created in the range, and their logical jobs, aggregated."""
    where = _range_filters(workflow, since, until)
    runs = conn.execute(select(
        func.count(), _count(RUNS.c.state == RunState.COMPLETED.value),
        _count(RUNS.c.state == RunState.FAILED.value),
        _count(RUNS.c.state == RunState.CANCELLED.value),
        _count(RUNS.c.state.not_in(_FINISHED_RUNS)),
        func.avg(case((and_(RUNS.c.state.in_(_FINISHED_RUNS), RUNS.c.started_at.is_not(None),
                            RUNS.c.ended_at.is_not(None)), _RUN_DURATION))),
        func.min(RUNS.c.started_at), func.max(RUNS.c.ended_at),
    ).where(*where)).one()
    jobs = conn.execute(_jobs_of_runs(
        select(func.count(), _count(_states(JobState.SUCCEEDED)),
               _count(_states(JobState.FAILED)),
               func.avg(case((_timed_outcome(), _JOB_DURATION)))), where)).one()
    return WorkflowPerformance(
        workflow=workflow, runs=runs[0], completed_runs=runs[1], failed_runs=runs[2],
        cancelled_runs=runs[3], unfinished_runs=runs[4], average_run_duration=runs[5],
        total_jobs=jobs[0], completed_jobs=jobs[1], failed_jobs=jobs[2],
        average_job_duration=jobs[3], first_start=runs[6], last_end=runs[7])


def _jobs_of_runs(stmt: Select[Any], where: list[ColumnElement[bool]]) -> Select[Any]:
    # Logical jobs of the runs `where` selects; without run filters the join is not needed.
    stmt = stmt.select_from(JOBS).where(JOBS.c.index.is_(None))
    if where:
        stmt = stmt.join(RUNS, RUNS.c.id == JOBS.c.run_id).where(*where)
    return stmt


def job_success_rate(conn: Connection, workflow: str | None, since: float | None,
                     until: float | None) -> SuccessRates:
    """Succeeded and failed logical jobs per name; `overall` sums the groups."""
    stmt = _jobs_of_runs(
        select(JOBS.c.name, _count(JOBS.c.state == _S), _count(JOBS.c.state == _F)),
        _range_filters(workflow, since, until))
    stmt = stmt.where(JOBS.c.state.in_(_OUTCOMES)).group_by(JOBS.c.name).order_by(JOBS.c.name)
    jobs = [JobSuccess(name, ok + bad, ok, bad) for name, ok, bad in conn.execute(stmt)]
    return SuccessRates.of(jobs)


def average_job_duration(conn: Connection, workflow: str | None, since: float | None,
                         until: float | None) -> list[JobDuration]:
    """Count, average, min, max and nearest-rank p95 of durations per job name."""
    ranked = _jobs_of_runs(select(
        JOBS.c.name.label("name"), _JOB_DURATION.label("d"),
        func.row_number().over(partition_by=JOBS.c.name, order_by=_JOB_DURATION).label("rn"),
        func.count().over(partition_by=JOBS.c.name).label("n"),
    ), _range_filters(workflow, since, until)).where(_timed_outcome()).subquery()
    # Nearest rank ceil(0.95 n) in integer arithmetic: SQLite may lack ceil().
    p95_rank = (ranked.c.n * 95 + 99) // 100
    stmt = (select(ranked.c.name, func.count(), func.avg(ranked.c.d), func.min(ranked.c.d),
                   func.max(ranked.c.d), func.max(case((ranked.c.rn == p95_rank, ranked.c.d))))
            .group_by(ranked.c.name).order_by(ranked.c.name))
    return [JobDuration(name, n, avg, low, high, p95)
            for name, n, avg, low, high, p95 in conn.execute(stmt)]


HOUR = 3600


def _insight_filters(since: float, until: float,
                     workflows: Sequence[str] | None) -> list[ColumnElement[bool]]:
    found = _range_filters(None, since, until)
    if workflows is not None:
        found.append(RUNS.c.workflow.in_(list(workflows)))
    return found


def runs_per_hour(conn: Connection, since: float, until: float,
                  workflows: Sequence[str] | None) -> list[HourCount]:
    """Runs created in the range per hour of creation and state (only non-zero counts)."""
    hours = RUNS.c.created_at / HOUR
    # floor() of a non-negative time: PostgreSQL's CAST rounds, SQLite's may lack floor()
    index = (func.floor(hours) if conn.dialect.name == "postgresql"
             else cast(hours, Integer)).label("hour")
    stmt = (select(index, RUNS.c.state, func.count())
            .where(*_insight_filters(since, until, workflows))
            .group_by(index, RUNS.c.state).order_by(index, RUNS.c.state))
    return [HourCount(float(int(hour) * HOUR), _RUN_STATES[state], n)
            for hour, state, n in conn.execute(stmt)]


def workflow_runs(conn: Connection, since: float, until: float,
                  workflows: Sequence[str] | None) -> list[WorkflowRuns]:
    """Runs per workflow by outcome, and nearest-rank p50/p95 of finished runs' durations."""
    where = _insight_filters(since, until, workflows)
    counts = conn.execute(
        select(RUNS.c.workflow, func.count(), _count(RUNS.c.state == RunState.COMPLETED.value),
               _count(RUNS.c.state == RunState.FAILED.value),
               _count(RUNS.c.state == RunState.CANCELLED.value))
        .where(*where).group_by(RUNS.c.workflow).order_by(RUNS.c.workflow)).all()
    ranked = select(
        RUNS.c.workflow.label("workflow"), _RUN_DURATION.label("d"),
        func.row_number().over(partition_by=RUNS.c.workflow,
                               order_by=_RUN_DURATION).label("rn"),
        func.count().over(partition_by=RUNS.c.workflow).label("n"),
    ).where(*where, RUNS.c.state.in_(_FINISHED_RUNS), RUNS.c.started_at.is_not(None),
            RUNS.c.ended_at.is_not(None)).subquery()
    stmt = (select(ranked.c.workflow,
                   func.max(case((ranked.c.rn == (ranked.c.n * 50 + 99) // 100, ranked.c.d))),
                   func.max(case((ranked.c.rn == (ranked.c.n * 95 + 99) // 100, ranked.c.d))))
            .group_by(ranked.c.workflow))
    quantiles = {name: (p50, p95) for name, p50, p95 in conn.execute(stmt)}
    return [WorkflowRuns(name, n, ok, bad, cancelled, *quantiles.get(name, (None, None)))
            for name, n, ok, bad, cancelled in counts]


def list_runs_query(limit: int, workflow: str | None,
                     states: Sequence[RunState] | None) -> Select[Any]:
    """The newest `limit` runs, of one workflow and in some states if given (the stores'
    `list_runs`)."""
    conditions: list[ColumnElement[bool]] = []
    if workflow is not None:
        conditions.append(RUNS.c.workflow == workflow)
    if states is not None:
        conditions.append(RUNS.c.state.in_([RunState(s).value for s in states]))
    return (select(RUNS).where(*conditions)
            .order_by(RUNS.c.created_at.desc(), RUNS.c.id.desc()).limit(limit))


class SQLRunQueries(ABC):
    """The StateStore read queries, for the stores these SQL queries serve: each store says
    only how a query gets its Connection (`_query`), on the event loop or in a thread."""

    calls: StoreCalls

    @abstractmethod
    async def _query(self, fn: Callable[[Connection], T]) -> T:
        """`fn`'s result, called with a Connection in a transaction of this store."""

    @observed("list_runs")
    async def list_runs(self, *, limit: int = 50, workflow: str | None = None,
                        states: Sequence[RunState] | None = None) -> list[RunRecord]:
        stmt = list_runs_query(max(limit, 0), workflow, states)
        return await self._query(
            lambda c: [run_record(m) for m in c.execute(stmt).mappings()])

    @observed("query_runs")
    async def query_runs(self, query: RunQuery) -> RunPage:
        return await self._query(lambda c: query_runs(c, query))

    @observed("count_runs_by_state")
    async def count_runs_by_state(self, workflow: str | None = None) -> dict[RunState, int]:
        return await self._query(lambda c: count_runs_by_state(c, workflow))

    @observed("workflow_performance")
    async def workflow_performance(self, run_id: str) -> RunPerformance | None:
        return await self._query(lambda c: run_performance(c, run_id))

    @observed("workflow_performance_summary")
    async def workflow_performance_summary(self, workflow: str | None = None,
                                           since: float | None = None,
                                           until: float | None = None) -> WorkflowPerformance:
        return await self._query(lambda c: workflow_performance(c, workflow, since, until))

    @observed("job_success_rate")
    async def job_success_rate(self, workflow: str | None = None, since: float | None = None,
                               until: float | None = None) -> SuccessRates:
        return await self._query(lambda c: job_success_rate(c, workflow, since, until))

    @observed("average_job_duration")
    async def average_job_duration(self, workflow: str | None = None,
                                   since: float | None = None,
                                   until: float | None = None) -> list[JobDuration]:
        return await self._query(lambda c: average_job_duration(c, workflow, since, until))

    @observed("runs_per_hour")
    async def runs_per_hour(self, since: float, until: float,
                            workflows: Sequence[str] | None = None) -> list[HourCount]:
        return await self._query(lambda c: runs_per_hour(c, since, until, workflows))

    @observed("workflow_runs")
    async def workflow_runs(self, since: float, until: float,
                            workflows: Sequence[str] | None = None) -> list[WorkflowRuns]:
        return await self._query(lambda c: workflow_runs(c, since, until, workflows))
