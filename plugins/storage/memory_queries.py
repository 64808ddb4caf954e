"""Read queries of the memory store in plain Python: the same answers the SQLite store computes
with SQL (the state store contract suite runs both), over the records it holds.

The analytics count logical jobs (`index is None`), as `core.records` explains.
"""
from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from operator import attrgetter
from statistics import fmean

from baseshift.core.records import (
    HourCount,
    JobDuration,
    JobRecord,
    JobSuccess,
    RunPerformance,
    RunQuery,
    RunRecord,
    SuccessRates,
    WorkflowPerformance,
    WorkflowRuns,
)
from baseshift.core.states import JobState, RunState

JobsByRun = Mapping[str, Mapping[str, JobRecord]]

_newest_key = attrgetter("created_at", "id")
_OUTCOMES = frozenset({JobState.SUCCEEDED, JobState.FAILED})
_ACTIVE = frozenset({JobState.RUNNING, JobState.RETRYING})
_WAITING = frozenset({JobState.PENDING, JobState.READY})


def run_matches(query: RunQuery) -> Callable[[RunRecord], bool]:
    """The predicate of a query's filters and cursor."""
    in_range = in_time_range(query.workflow, query.created_after, query.created_before)
    states = None if query.states is None else frozenset(RunState(s) for s in query.states)
    position = query.position()
    below = None if position is None else (position.created_at, position.id)
    workflows = None if query.workflows is None else frozenset(query.workflows)

    def matches(run: RunRecord) -> bool:
        return (in_range(run) and (states is None or run.state in states)
                and (workflows is None or run.workflow in workflows)
                and (below is None or _newest_key(run) < below))

    return matches


def page_runs(runs: Iterable[RunRecord], query: RunQuery) -> list[RunRecord]:
    """Matching runs newest first, one past the limit (`RunPage.of` cuts the page)."""
    found = sorted(filter(run_matches(query), runs), key=_newest_key, reverse=True)
    return found[:query.limit + 1]


def in_time_range(workflow: str | None, since: float | None,
                  until: float | None) -> Callable[[RunRecord], bool]:
    """Runs of `workflow` (any if None) with `since <= created_at < until`."""
    def matches(run: RunRecord) -> bool:
        return ((workflow is None or run.workflow == workflow)
                and (since is None or run.created_at >= since)
                and (until is None or run.created_at < until))

    return matches


def count_by_state(runs: Iterable[RunRecord]) -> dict[RunState, int]:
    """Runs per state, every state present."""
    counts = dict.fromkeys(RunState, 0)
    for run in runs:
        counts[run.state] += 1
    return counts


def _logical(jobs: Iterable[JobRecord]) -> list[JobRecord]:
    return [j for j in jobs if j.index is None]


def _duration(job: JobRecord) -> float | None:
    if job.state in _OUTCOMES and job.started_at is not None and job.ended_at is not None:
        return job.ended_at - job.started_at
    return None


def _average(values: Iterable[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return fmean(present) if present else None


def _count(jobs: Iterable[JobRecord], states: frozenset[JobState]) -> int:
    return sum(1 for j in jobs if j.state in states)


def run_performance(run: RunRecord, jobs: Iterable[JobRecord]) -> RunPerformance:
    """One run's job counts and durations."""
    mine = _logical(jobs)
    end = run.ended_at if run.ended_at is not None else time.time()
    return RunPerformance(
        run_id=run.id, workflow=run.workflow, status=run.state, total_jobs=len(mine),
        completed_jobs=_count(mine, frozenset({JobState.SUCCEEDED})),
        failed_jobs=_count(mine, frozenset({JobState.FAILED})),
        in_progress_jobs=_count(mine, _ACTIVE), pending_jobs=_count(mine, _WAITING),
        skipped_jobs=_count(mine, frozenset({JobState.SKIPPED})),
        cancelled_jobs=_count(mine, frozenset({JobState.CANCELLED})),
        average_job_duration=_average(map(_duration, mine)),
        total_workflow_duration=None if run.started_at is None else end - run.started_at,
        start_time=run.started_at, end_time=run.ended_at)


def _run_duration(run: RunRecord) -> float | None:
    if run.state.finished and run.started_at is not None and run.ended_at is not None:
        return run.ended_at - run.started_at
    return None


def workflow_performance(workflow: str | None, runs: list[RunRecord],
                         jobs_by_run: JobsByRun) -> WorkflowPerformance:
    """The runs given (already filtered) and their logical jobs, aggregated."""
    jobs = [j for r in runs for j in _logical(jobs_by_run[r.id].values())]
    starts = [r.started_at for r in runs if r.started_at is not None]
    ends = [r.ended_at for r in runs if r.ended_at is not None]
    return WorkflowPerformance(
        workflow=workflow, runs=len(runs),
        completed_runs=sum(1 for r in runs if r.state is RunState.COMPLETED),
        failed_runs=sum(1 for r in runs if r.state is RunState.FAILED),
        cancelled_runs=sum(1 for r in runs if r.state is RunState.CANCELLED),
        unfinished_runs=sum(1 for r in runs if not r.state.finished),
        average_run_duration=_average(map(_run_duration, runs)),
        total_jobs=len(jobs), completed_jobs=_count(jobs, frozenset({JobState.SUCCEEDED})),
        failed_jobs=_count(jobs, frozenset({JobState.FAILED})),
        average_job_duration=_average(map(_duration, jobs)),
        first_start=min(starts, default=None), last_end=max(ends, default=None))


def _jobs_of(runs: Iterable[RunRecord], jobs_by_run: JobsByRun) -> list[JobRecord]:
    return [j for r in runs for j in jobs_by_run[r.id].values() if j.index is None]


def job_success_rate(runs: Iterable[RunRecord], jobs_by_run: JobsByRun) -> SuccessRates:
    """Succeeded and failed logical jobs per name, sorted by name."""
    tally: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for job in _jobs_of(runs, jobs_by_run):
        if job.state in _OUTCOMES:
            tally[job.name][job.state is JobState.FAILED] += 1
    return SuccessRates.of([JobSuccess(name, ok + bad, ok, bad)
                            for name, (ok, bad) in sorted(tally.items())])


def average_job_duration(runs: Iterable[RunRecord], jobs_by_run: JobsByRun
                         ) -> list[JobDuration]:
    """Count, average, min, max and nearest-rank p95 of durations per job name."""
    durations: dict[str, list[float]] = defaultdict(list)
    for job in _jobs_of(runs, jobs_by_run):
        d = _duration(job)
        if d is not None:
            durations[job.name].append(d)
    return [_summary(name, sorted(ds)) for name, ds in sorted(durations.items())]


def _summary(name: str, ds: list[float]) -> JobDuration:
    n = len(ds)
    return JobDuration(name, n, fmean(ds), ds[0], ds[-1], ds[(n * 95 + 99) // 100 - 1])


HOUR = 3600


def runs_per_hour(runs: Iterable[RunRecord]) -> list[HourCount]:
    """The runs given (already filtered) per hour of creation and state."""
    tally: dict[tuple[float, RunState], int] = defaultdict(int)
    for run in runs:
        tally[(float(int(run.created_at // HOUR) * HOUR), run.state)] += 1
    return [HourCount(hour, state, n) for (hour, state), n
            in sorted(tally.items(), key=lambda kv: (kv[0][0], kv[0][1].value))]


def workflow_runs(runs: Iterable[RunRecord]) -> list[WorkflowRuns]:
    """The runs given (already filtered) per workflow: outcomes and p50/p95 durations."""
    by_name: dict[str, list[RunRecord]] = defaultdict(list)
    for run in runs:
        by_name[run.workflow].append(run)
    out = []
    for name, mine in sorted(by_name.items()):
        ds = sorted(d for d in map(_run_duration, mine) if d is not None)
        n = len(ds)
        out.append(WorkflowRuns(
            name, len(mine), sum(1 for r in mine if r.state is RunState.COMPLETED),
            sum(1 for r in mine if r.state is RunState.FAILED),
            sum(1 for r in mine if r.state is RunState.CANCELLED),
            ds[(n * 50 + 99) // 100 - 1] if n else None,
            ds[(n * 95 + 99) // 100 - 1] if n else None))
    return out
