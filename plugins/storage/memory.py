"""The in-memory state store: dictionaries of record copies, for tests and benchmarks."""
from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import fields
from operator import attrgetter
from typing import Any, ClassVar, TypeVar

from baseshift.core.audit import AuditEntry
from baseshift.core.errors import Conflict
from baseshift.core.hookspecs import hookimpl
from baseshift.core.records import (
    AttemptRecord,
    Changes,
    HourCount,
    JobDuration,
    JobRecord,
    RunPage,
    RunPerformance,
    RunQuery,
    RunRecord,
    RunSnapshot,
    SuccessRates,
    WorkflowPerformance,
    WorkflowRuns,
)
from baseshift.core.registry import Backend
from baseshift.core.retention import Tombstone
from baseshift.core.settings import Settings
from baseshift.core.states import RunState
from baseshift.core.storecalls import StoreCalls, observed

from . import memory_queries as queries
from .claims import ClaimedRuns, LocalClaims
from .memory_audit import AuditTrail
from .memory_identity import IdentityData, MemoryIdentity
from .memory_keys import MemoryDataKeys
from .memory_retention import MemoryRetention

R = TypeVar("R", RunRecord, JobRecord, AttemptRecord)

_IMMUTABLE = frozenset({str, int, float, bool, type(None)})
_UNFINISHED = frozenset({RunState.INITIALIZED, RunState.RUNNING})
_created_at = attrgetter("created_at")
_newest_key = attrgetter("created_at", "id")


def clone_json(value: Any) -> Any:
    """A deep copy of a JSON-like value: dicts, lists and tuples are rebuilt, the rest
    (scalars, and anything else, which a record should not hold) is shared."""
    kind = type(value)
    if kind in _IMMUTABLE:
        return value
    # Scalars are tested inline: most values are flat, and a call per scalar doubles the cost.
    if kind is dict:
        return {k: v if type(v) in _IMMUTABLE else clone_json(v) for k, v in value.items()}
    if kind is list:
        return [v if type(v) in _IMMUTABLE else clone_json(v) for v in value]
    if kind is tuple:
        return tuple(clone_json(v) for v in value)
    return value


def _copier(cls: type[R]) -> Callable[[R], R]:
    # Positional construction from one attrgetter is ~4x faster than dataclasses.replace.
    values = attrgetter(*(f.name for f in fields(cls)))

    def copy(record: R) -> R:
        return cls(*values(record))

    return copy


_copy_run_shallow = _copier(RunRecord)
_copy_job_shallow = _copier(JobRecord)
copy_attempt = _copier(AttemptRecord)


def copy_run(run: RunRecord) -> RunRecord:
    """A copy of `run` that shares no mutable value with it."""
    new = _copy_run_shallow(run)
    new.inputs = clone_json(run.inputs)
    if run.outputs is not None:
        new.outputs = clone_json(run.outputs)
    return new


def copy_job(job: JobRecord) -> JobRecord:
    """A copy of `job` that shares no mutable value with it."""
    new = _copy_job_shallow(job)
    if job.output is not None:
        new.output = clone_json(job.output)
    if job.inputs is not None:
        new.inputs = clone_json(job.inputs)
    return new


class MemoryStateStore(ClaimedRuns, MemoryRetention, MemoryIdentity, MemoryDataKeys):
    """A `StateStore` (and `IdentityStore`) held in this process's memory; its data lives as
    long as the instance.

    It keeps the SQLite store's rules so tests on it mean something: records are copied on
    the way in and out, jobs need their run and attempts their job (else `Conflict` and
    nothing is written), jobs load in the order they were first written.
    """

    kind: ClassVar[str] = "state"
    name: ClassVar[str] = "memory"

    def __init__(self) -> None:
        self._runs: dict[str, RunRecord] = {}
        self._jobs: dict[str, dict[str, JobRecord]] = {}
        self._attempts: dict[str, dict[tuple[str, int], AttemptRecord]] = {}
        self._claims = LocalClaims()
        self._identity = IdentityData()
        self._trail = AuditTrail()
        self._data_keys = {}
        self._key_state = None
        self._holds: set[str] = set()
        self._tombstones: dict[str, Tombstone] = {}
        self.calls = StoreCalls(self.name)
        self._log_lines = []
        self._log_next = 0

    @classmethod
    def from_settings(cls, settings: Settings) -> MemoryStateStore:
        """A new, empty store; no setting applies to it."""
        return cls()

    async def open(self) -> None:
        return None

    async def close(self) -> None:
        self._claims.release_all()

    @observed("run_states")
    async def run_states(self, run_ids: Sequence[str]) -> dict[str, RunState]:
        return {r: self._runs[r].state for r in run_ids if r in self._runs}

    @observed("create_run")
    async def create_run(self, run: RunRecord, jobs: Sequence[JobRecord],
                         audit: Sequence[AuditEntry] = ()) -> None:
        if run.id in self._runs:
            raise Conflict(f"creating run {run.id!r} was rejected, nothing was written: "
                           "a run with this id exists")
        keys = [(j.run_id, j.key) for j in jobs]
        if len(set(keys)) != len(keys):
            raise Conflict(f"creating run {run.id!r} was rejected, nothing was written: "
                           "two jobs have the same key")
        self._check_jobs(jobs, {run.id}, f"creating run {run.id!r}")
        self._write_runs([run])
        self._write_jobs(jobs)
        self._write_audit(audit)

    @observed("apply")
    async def apply(self, changes: Changes) -> None:
        if not changes:
            return
        self._check_jobs(changes.jobs.values(), changes.runs.keys(), "applying changes")
        self._check_attempts(changes.attempts.values(), changes.jobs.keys())
        self._write_runs(changes.runs.values())
        self._write_jobs(changes.jobs.values())
        self._write_attempts(changes.attempts.values())
        self._write_audit(changes.audit)

    def _check_jobs(self, jobs: Iterable[JobRecord], new_runs: Iterable[str], what: str) -> None:
        known = set(new_runs)
        for job in jobs:
            if job.run_id not in known and job.run_id not in self._runs:
                raise Conflict(f"{what} was rejected, nothing was written: job {job.key!r} "
                               f"belongs to run {job.run_id!r}, which does not exist")

    def _check_attempts(self, attempts: Iterable[AttemptRecord],
                        new_jobs: Iterable[tuple[str, str]]) -> None:
        known = set(new_jobs)
        for a in attempts:
            if (a.run_id, a.job_key) not in known and a.job_key not in self._jobs.get(a.run_id, {}):
                raise Conflict(f"applying changes was rejected, nothing was written: attempt "
                               f"{a.number} of job {a.job_key!r} in run {a.run_id!r} has no job")

    def _write_runs(self, runs: Iterable[RunRecord]) -> None:
        for run in runs:
            self._runs[run.id] = copy_run(run)
            self._jobs.setdefault(run.id, {})
            self._attempts.setdefault(run.id, {})

    def _write_jobs(self, jobs: Iterable[JobRecord]) -> None:
        for job in jobs:
            self._jobs[job.run_id][job.key] = copy_job(job)

    def _write_attempts(self, attempts: Iterable[AttemptRecord]) -> None:
        for a in attempts:
            self._attempts[a.run_id][(a.job_key, a.number)] = copy_attempt(a)

    @observed("load_run")
    async def load_run(self, run_id: str, *, attempts: bool = True) -> RunSnapshot | None:
        run = self._runs.get(run_id)
        if run is None:
            return None
        jobs = {key: copy_job(j) for key, j in self._jobs[run_id].items()}
        tries = [copy_attempt(a) for _, a in sorted(self._attempts[run_id].items())] \
            if attempts else []
        return RunSnapshot(run=copy_run(run), jobs=jobs, attempts=tries)

    @observed("load_attempts")
    async def load_attempts(self, run_id: str,
                            keys: Sequence[tuple[str, int]]) -> list[AttemptRecord]:
        stored = self._attempts.get(run_id, {})
        return [copy_attempt(stored[key]) for key in sorted(set(keys)) if key in stored]

    @observed("list_runs")
    async def list_runs(self, *, limit: int = 50, workflow: str | None = None,
                        states: Sequence[RunState] | None = None) -> list[RunRecord]:
        runs: Iterable[RunRecord] = self._runs.values()
        if workflow is not None:
            runs = (r for r in runs if r.workflow == workflow)
        if states is not None:
            wanted = {RunState(s) for s in states}
            runs = (r for r in runs if r.state in wanted)
        newest = sorted(runs, key=_newest_key, reverse=True)[:max(limit, 0)]
        return [copy_run(r) for r in newest]

    @observed("unfinished_runs")
    async def unfinished_runs(self) -> list[str]:
        runs = [r for r in self._runs.values() if r.state in _UNFINISHED]
        return [r.id for r in sorted(runs, key=_created_at)]

    @observed("query_runs")
    async def query_runs(self, query: RunQuery) -> RunPage:
        found = queries.page_runs(self._runs.values(), query)
        return RunPage.of([copy_run(r) for r in found], query.limit)

    @observed("count_runs_by_state")
    async def count_runs_by_state(self, workflow: str | None = None) -> dict[RunState, int]:
        matches = queries.in_time_range(workflow, None, None)
        return queries.count_by_state(filter(matches, self._runs.values()))

    @observed("workflow_performance")
    async def workflow_performance(self, run_id: str) -> RunPerformance | None:
        run = self._runs.get(run_id)
        if run is None:
            return None
        return queries.run_performance(run, self._jobs[run_id].values())

    @observed("workflow_performance_summary")
    async def workflow_performance_summary(self, workflow: str | None = None,
                                           since: float | None = None,
                                           until: float | None = None) -> WorkflowPerformance:
        return queries.workflow_performance(workflow, self._in_range(workflow, since, until),
                                            self._jobs)

    @observed("job_success_rate")
    async def job_success_rate(self, workflow: str | None = None, since: float | None = None,
                               until: float | None = None) -> SuccessRates:
        return queries.job_success_rate(self._in_range(workflow, since, until), self._jobs)

    @observed("average_job_duration")
    async def average_job_duration(self, workflow: str | None = None,
                                   since: float | None = None,
                                   until: float | None = None) -> list[JobDuration]:
        return queries.average_job_duration(self._in_range(workflow, since, until), self._jobs)

    @observed("runs_per_hour")
    async def runs_per_hour(self, since: float, until: float,
                            workflows: Sequence[str] | None = None) -> list[HourCount]:
        return queries.runs_per_hour(self._among(since, until, workflows))

    @observed("workflow_runs")
    async def workflow_runs(self, since: float, until: float,
                            workflows: Sequence[str] | None = None) -> list[WorkflowRuns]:
        return queries.workflow_runs(self._among(since, until, workflows))

    def _among(self, since: float, until: float,
               workflows: Sequence[str] | None) -> list[RunRecord]:
        names = None if workflows is None else frozenset(workflows)
        return [r for r in self._in_range(None, since, until)
                if names is None or r.workflow in names]

    def _in_range(self, workflow: str | None, since: float | None,
                  until: float | None) -> list[RunRecord]:
        return list(filter(queries.in_time_range(workflow, since, until),
                           self._runs.values()))


@hookimpl
def register_backends() -> list[Backend]:
    """Offer the in-memory state store (`store = "memory"`)."""
    return [Backend("state", "memory", "baseshift.plugins.storage.memory:MemoryStateStore")]
