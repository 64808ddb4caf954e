"""What the state store keeps: runs, jobs and attempts as plain mutable records."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, ClassVar

from .audit import AuditEntry
from .errors import BadRequest
from .states import JobState, RunState


@dataclass(slots=True)
class RunRecord:
    """One run of a workflow. `source` pins the exact workflow text the run was started with,
    so a resumed run follows the plan it began with even if the file changed since."""

    id: str
    workflow: str
    version: str
    source: str
    path: str
    inputs: dict[str, Any]
    state: RunState = RunState.INITIALIZED
    created_at: float = 0.0
    started_at: float | None = None
    ended_at: float | None = None
    outputs: dict[str, Any] | None = None
    error: str | None = None


@dataclass(slots=True)
class JobRecord:
    """One job of a run; a fan-out job also has one record per item, keyed `name[i]`."""

    run_id: str
    key: str
    name: str
    index: int | None = None
    state: JobState = JobState.PENDING
    attempts: int = 0
    failures: int = 0
    output: Any = None
    error: str | None = None
    inputs: dict[str, Any] | None = None
    ready_at: float | None = None
    started_at: float | None = None
    ended_at: float | None = None
    next_attempt_at: float | None = None
    template: str | None = None
    handler: bool = False


@dataclass(slots=True)
class AttemptRecord:
    """One try of a job. `state` is RUNNING, SUCCEEDED, FAILED or CANCELLED (an attempt lost
    to a crash or stopped by cancel is CANCELLED and does not use up a retry)."""

    run_id: str
    job_key: str
    number: int
    state: JobState = JobState.RUNNING
    started_at: float = 0.0
    ended_at: float | None = None
    error: str | None = None
    log: str = ""


@dataclass(slots=True)
class RunSnapshot:
    """A run with all its jobs and attempts, as loaded for display or for resuming."""

    run: RunRecord
    jobs: dict[str, JobRecord] = field(default_factory=dict)
    attempts: list[AttemptRecord] = field(default_factory=list)

    def attempts_of(self, key: str) -> list[AttemptRecord]:
        return [a for a in self.attempts if a.job_key == key]


@dataclass(slots=True)
class Changes:
    """A batch of records to write in one transaction (the engine's unit of durability).

    `was_job` / `was_run` hold the state each record had before the batch moved it: a store
    shared by several processes writes a transition only where the stored state is still
    that one (a guarded transition) and rejects the whole batch otherwise.
    """

    runs: dict[str, RunRecord] = field(default_factory=dict)
    jobs: dict[tuple[str, str], JobRecord] = field(default_factory=dict)
    attempts: dict[tuple[str, str, int], AttemptRecord] = field(default_factory=dict)
    was_job: dict[tuple[str, str], JobState] = field(default_factory=dict)
    was_run: dict[str, RunState] = field(default_factory=dict)
    audit: list[AuditEntry] = field(default_factory=list)
    """Audit entries of the actions this batch carries out (a cancel, a retry, an approval),
    written in its transaction."""

    def moved_job(self, j: JobRecord, before: JobState) -> None:
        """Record `j`, which was `before` when the batch first moved it."""
        self.was_job.setdefault((j.run_id, j.key), before)
        self.jobs[(j.run_id, j.key)] = j

    def moved_run(self, r: RunRecord, before: RunState) -> None:
        """Record `r`, which was `before` when the batch first moved it."""
        self.was_run.setdefault(r.id, before)
        self.runs[r.id] = r

    def run_ids(self) -> set[str]:
        """The runs this batch writes records of."""
        return {*self.runs, *(k[0] for k in self.jobs), *(k[0] for k in self.attempts)}

    def drop_runs(self, run_ids: set[str]) -> None:
        """Remove every record of these runs from the batch."""
        self.runs = {k: v for k, v in self.runs.items() if k not in run_ids}
        self.was_run = {k: v for k, v in self.was_run.items() if k not in run_ids}
        self.jobs = {k: v for k, v in self.jobs.items() if k[0] not in run_ids}
        self.was_job = {k: v for k, v in self.was_job.items() if k[0] not in run_ids}
        self.attempts = {k: v for k, v in self.attempts.items() if k[0] not in run_ids}
        dropped = {f"run:{run_id}" for run_id in run_ids}
        self.audit = [e for e in self.audit if e.resource not in dropped]

    def __bool__(self) -> bool:
        return bool(self.runs or self.jobs or self.attempts or self.audit)

    def run(self, r: RunRecord) -> None:
        self.runs[r.id] = r

    def job(self, j: JobRecord) -> None:
        self.jobs[(j.run_id, j.key)] = j

    def attempt(self, a: AttemptRecord) -> None:
        self.attempts[(a.run_id, a.job_key, a.number)] = a


# ------------------------------------------------------------------ run queries

MAX_PAGE = 500
"""The largest page `RunQuery.limit` accepts."""

MAX_LISTED = 1_000_000
"""The `limit` passed to `StateStore.list_runs` when every matching run is wanted (the
unfinished runs of a workflow, the runs left INITIALIZED)."""


@dataclass(frozen=True, slots=True)
class RunCursor:
    """Where a page of runs ended: the last run's `(created_at, id)`, the keyset that the next
    page continues below. `encode()` makes the string clients pass back: `created_at` as
    Python writes a float exactly, `~`, then the id (`1712345678.1234567~18f-ab`).

    Any text matching `PATTERN` is a position (runs below it), so the API document declares
    the pattern and every value it admits is accepted."""

    created_at: float
    id: str

    PATTERN: ClassVar[str] = r"-?[0-9]{1,17}(?:\.[0-9]{1,17})?(?:e[+-][0-9]{1,2})?~[\s\S]*"
    """The cursor's syntax (unanchored); bounded so that every match is a finite time."""

    def encode(self) -> str:
        return f"{self.created_at!r}~{self.id}"

    @classmethod
    def decode(cls, text: str) -> RunCursor:
        """The cursor `encode()` made; BadRequest for anything else."""
        if re.fullmatch(cls.PATTERN, text) is None:
            raise _bad_cursor()
        created_at, run_id = text.split("~", 1)
        return cls(float(created_at), run_id)


def _bad_cursor() -> BadRequest:
    return BadRequest("Parameter 'cursor' is not a cursor this server made.",
                      hint="pass the next_cursor of the previous page unchanged, or omit it",
                      details={"parameter": "cursor"})


@dataclass(frozen=True, slots=True)
class RunQuery:
    """A page of runs, newest first (`created_at` then `id`, both descending).

    `states` None means any state (an empty tuple matches nothing); the time range is
    `created_after <= created_at < created_before` in epoch seconds; `cursor` is the
    `next_cursor` of the previous page. A limit outside 1..500 or a malformed cursor raise
    BadRequest when the query is built.
    """

    workflow: str | None = None
    states: tuple[RunState, ...] | None = None
    workflows: tuple[str, ...] | None = None
    """Only runs of these workflows (None: of any; empty: of none), for an actor whose
    grants reach some workflows only."""
    created_after: float | None = None
    created_before: float | None = None
    limit: int = 50
    cursor: str | None = None

    def __post_init__(self) -> None:
        if not 1 <= self.limit <= MAX_PAGE:
            raise BadRequest(f"Parameter 'limit' is {self.limit}; it must be 1 to {MAX_PAGE}.",
                             details={"parameter": "limit"})
        self.position()

    def position(self) -> RunCursor | None:
        """The decoded cursor, or None for the first page."""
        return None if self.cursor is None else RunCursor.decode(self.cursor)


@dataclass(frozen=True, slots=True)
class RunPage:
    """One page of runs and the cursor of the next one (None on the last page)."""

    runs: list[RunRecord]
    next_cursor: str | None = None

    @classmethod
    def of(cls, runs: list[RunRecord], limit: int) -> RunPage:
        """The first `limit` of `runs` (fetched one past the limit), with a cursor if more
        were found."""
        if len(runs) <= limit:
            return cls(runs)
        last = runs[limit - 1]
        return cls(runs[:limit], RunCursor(last.created_at, last.id).encode())


# ------------------------------------------------------------------ analytics
#
# Durations are a job record's `ended_at - started_at`: for a job that was retried, its last
# attempt; for a fan-out job, from its expansion until its last item finished. Analytics count
# logical jobs only (`index is None`: plain jobs, handlers and fan-out parents); fan-out items
# are folded into their parent, whose state says whether the fan-out as a whole succeeded.


@dataclass(frozen=True, slots=True)
class RunPerformance:
    """How one run went (the seed's `workflow-performance` shape, times in epoch seconds).

    `in_progress_jobs` are RUNNING or RETRYING; `pending_jobs` are PENDING or READY;
    `total_workflow_duration` runs to `ended_at`, or to now while the run is unfinished.
    """

    run_id: str
    workflow: str
    status: RunState
    total_jobs: int
    completed_jobs: int
    failed_jobs: int
    in_progress_jobs: int
    pending_jobs: int
    skipped_jobs: int
    cancelled_jobs: int
    average_job_duration: float | None
    total_workflow_duration: float | None
    start_time: float | None
    end_time: float | None


@dataclass(frozen=True, slots=True)
class WorkflowPerformance:
    """Runs of one workflow (or of all, when `workflow` is None) created in a time range:
    how many ended how, their average duration (finished runs), and their jobs' outcomes."""

    workflow: str | None
    runs: int
    completed_runs: int
    failed_runs: int
    cancelled_runs: int
    unfinished_runs: int
    average_run_duration: float | None
    total_jobs: int
    completed_jobs: int
    failed_jobs: int
    average_job_duration: float | None
    first_start: float | None
    last_end: float | None


@dataclass(frozen=True, slots=True)
class JobSuccess:
    """Outcomes of one job name: `total` is succeeded + failed (skipped, cancelled and
    unfinished jobs say nothing about success); `success_rate` is None when total is 0."""

    name: str
    total: int
    succeeded: int
    failed: int

    @property
    def success_rate(self) -> float | None:
        return None if self.total == 0 else self.succeeded / self.total


@dataclass(frozen=True, slots=True)
class SuccessRates:
    """`job_success_rate`: one entry per job name (sorted by name) and all of them together
    (`overall.name` is "*")."""

    jobs: list[JobSuccess]
    overall: JobSuccess

    @classmethod
    def of(cls, jobs: list[JobSuccess]) -> SuccessRates:
        """The per-name entries with their sum as `overall`."""
        ok, bad = sum(j.succeeded for j in jobs), sum(j.failed for j in jobs)
        return cls(jobs, JobSuccess("*", ok + bad, ok, bad))


@dataclass(frozen=True, slots=True)
class JobDuration:
    """Durations in seconds of one job name's finished (succeeded or failed) jobs; `p95` is
    the nearest-rank 95th percentile (the ceil(0.95 n)-th smallest)."""

    name: str
    count: int
    average: float
    minimum: float
    maximum: float
    p95: float


@dataclass(frozen=True, slots=True)
class HourCount:
    """`runs_per_hour`: how many runs created in the hour starting at `hour` (epoch seconds,
    a multiple of 3600) are now in `state`."""

    hour: float
    state: RunState
    count: int


@dataclass(frozen=True, slots=True)
class WorkflowRuns:
    """`workflow_runs`: one workflow's runs created in a range, by outcome, and the
    nearest-rank median and 95th percentile of its finished runs' durations (seconds;
    None when none finished with both times)."""

    workflow: str
    runs: int
    completed: int
    failed: int
    cancelled: int
    p50: float | None
    p95: float | None

    @property
    def success_rate(self) -> float | None:
        """Completed among completed and failed runs (cancelled and unfinished ones count
        for neither); None when no run completed or failed."""
        decided = self.completed + self.failed
        return self.completed / decided if decided else None


@dataclass(frozen=True, slots=True)
class Retired:
    """One partition `baseshift retention` looked at, and what it did (or would do, in a
    dry run)."""

    partition: str
    runs: int
    action: str  # "dropped", "archived and dropped", "kept: N unfinished run(s)", "would drop"
    archive: str | None = None
