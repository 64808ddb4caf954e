"""What plugins implement: executors (step types) and the state store."""
from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager, AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol, runtime_checkable

from .audit import AuditEntry
from .records import (
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
from .states import RunState


@dataclass(slots=True)
class JobContext:
    """Everything an executor gets for one attempt of one job.

    `config` is the job's `with` block, evaluated (secrets resolved). `log` appends a line to
    the attempt's log, which is stored with the attempt and shown by `baseshift show`.
    """

    run_id: str
    job: str
    attempt: int
    config: dict[str, Any]
    timeout: float | None = None
    workdir: str | None = None
    lines: list[str] = field(default_factory=list)

    def log(self, line: str) -> None:
        self.lines.append(line)


@dataclass(slots=True)
class JobResult:
    """A successful attempt's output (any JSON value) and its captured log."""

    output: Any = None
    log: str = ""


Wrapper = AbstractContextManager[object] | AbstractAsyncContextManager[object]
"""What a `job_wrapper` implementation returns: a context manager entered around an
attempt, plain or async (core/attempts.py `_Wrapped`)."""


@runtime_checkable
class Executor(Protocol):
    """A step type (`uses NAME`). One instance per application, shared by all attempts.

    `execute` raises `ExecutionError` (or any exception) to fail the attempt; it must stop
    its work and clean up when cancelled (asyncio cancellation is how timeouts and
    `baseshift cancel` reach it). `config_schema` is the JSON Schema of the `with` block,
    checked before a workflow runs.
    """

    name: ClassVar[str]
    config_schema: ClassVar[dict[str, Any]]

    async def execute(self, ctx: JobContext) -> JobResult: ...


@runtime_checkable
class AcceptsCalls(Protocol):
    """An executor whose attempts wait for an outside call (`manual`): the run service hands
    it the API's complete or fail with `accept`. `accept` raises `Conflict` while the job is
    not waiting (yet) and `InputError` for an output it refuses. Jobs of such an executor run
    in the scheduling process, never on a queue's workers: the call arrives there."""

    def accept(self, run_id: str, job: str, output: Any, error: str | None) -> None: ...


@runtime_checkable
class Closable(Protocol):
    """An executor holding what its attempts share (a client, a channel, a pool): `aclose`
    is awaited once, when the application stops, after its last attempt."""

    async def aclose(self) -> None: ...


@runtime_checkable
class StateStore(Protocol):
    """The system of record for runs, jobs and attempts.

    `apply` and `create_run` are each one transaction: either every record is written or none.
    The engine calls `apply` before it acts on any change, which is what makes runs survive
    a crash. Both append the audit entries of the change (`audit`, `Changes.audit`) in their
    transaction when the store keeps an audit trail (`AuditLog`, core/audit.py).

    A store also answers `RunAnalytics` (the builtin ones do; the analytics API needs it), and
    may offer the optional abilities of `core/capabilities.py` (backups, retention, leading,
    shared locks and documents), each a protocol the core checks with `isinstance`.
    """

    name: ClassVar[str]
    kind: ClassVar[str]

    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def create_run(self, run: RunRecord, jobs: Sequence[JobRecord],
                         audit: Sequence[AuditEntry] = ()) -> None: ...

    async def apply(self, changes: Changes) -> None: ...

    async def load_run(self, run_id: str, *, attempts: bool = True) -> RunSnapshot | None:
        """The run with its jobs and (unless `attempts=False`, for progress reads that need
        no logs) its attempts, as one consistent snapshot; None if there is no such run."""
        ...

    async def list_runs(self, *, limit: int = 50, workflow: str | None = None,
                        states: Sequence[RunState] | None = None) -> list[RunRecord]: ...

    async def unfinished_runs(self) -> list[str]: ...

    async def claim_run(self, run_id: str) -> bool:
        """Take the right to execute a run in this process; False if a live process has it.

        A claim ends with `release_run`, `close`, or the death of the process holding it, so
        an unfinished run whose claim is free was orphaned by a crash and may be resumed.
        """
        ...

    async def release_run(self, run_id: str) -> None: ...

    async def run_states(self, run_ids: Sequence[str]) -> dict[str, RunState]:
        """The stored states of some runs (how an engine notices a cancel made elsewhere)."""
        ...

    async def query_runs(self, query: RunQuery) -> RunPage:
        """A page of runs, newest first by `(created_at, id)`, continuing below the query's
        cursor (keyset pagination: runs inserted meanwhile never shift or repeat a page)."""
        ...

    async def count_runs_by_state(self, workflow: str | None = None) -> dict[RunState, int]:
        """How many runs (of one workflow, or of all) are in each state; every state is a
        key, with 0 when none is in it."""
        ...


@runtime_checkable
class RunAnalytics(Protocol):
    """Aggregates over stored runs, for the analytics API (`plugins/api/analytics_routes.py`).

    Apart from `StateStore` because only that API needs them: a store without them still
    runs workflows, and a server whose store lacks them stops at start, naming both.
    """

    async def workflow_performance(self, run_id: str) -> RunPerformance | None:
        """Job counts and durations of one run (None if there is no such run). Analytics
        count logical jobs: fan-out items are folded into their parent job."""
        ...

    async def workflow_performance_summary(self, workflow: str | None = None,
                                           since: float | None = None,
                                           until: float | None = None) -> WorkflowPerformance:
        """Runs of a workflow (or all) with `since <= created_at < until`, aggregated."""
        ...

    async def job_success_rate(self, workflow: str | None = None, since: float | None = None,
                               until: float | None = None) -> SuccessRates:
        """Succeeded and failed jobs per job name, over runs created in the range."""
        ...

    async def average_job_duration(self, workflow: str | None = None,
                                   since: float | None = None,
                                   until: float | None = None) -> list[JobDuration]:
        """Durations of finished jobs per job name (sorted by name), over runs created in
        the range."""
        ...

    async def runs_per_hour(self, since: float, until: float,
                            workflows: Sequence[str] | None = None) -> list[HourCount]:
        """Runs with `since <= created_at < until` (of the `workflows` named, or of all),
        counted per hour of creation (`floor(created_at / 3600) * 3600`) and present state,
        sorted by hour then state; only non-zero counts are listed."""
        ...

    async def workflow_runs(self, since: float, until: float,
                            workflows: Sequence[str] | None = None) -> list[WorkflowRuns]:
        """Per workflow (sorted by name) with a run created in the range: its runs by
        outcome and the p50/p95 of its finished runs' durations (ended - started)."""
        ...


@dataclass(frozen=True, slots=True)
class QueuedAttempt:
    """One attempt handed to an attempt queue: which job, which attempt, and the labels a
    worker must all have to take it (`runs-on`)."""

    run_id: str
    job: str
    number: int
    labels: tuple[str, ...] = ()


class LostAttempt(Exception):
    """The attempt's worker vanished (its lease expired): the job starts a new attempt, and
    the lost one does not count as a failure."""


@runtime_checkable
class AttemptQueue(Protocol):
    """Where attempts execute when not in the scheduling process (`kind = "queue"`, chosen by
    `settings.queue`; `local`, the default, has no queue: the engine runs attempts itself).

    `run` hands the attempt to a worker and returns its outcome, `(output, error or None,
    retryable, log)`, or raises `LostAttempt`. Cancelling the task awaiting `run` (a user
    cancel, shutdown) stops the attempt on its worker. `forget` drops every attempt of a run
    queued by any process (before this process resumes the run).
    """

    name: ClassVar[str]
    kind: ClassVar[str]

    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def run(self, attempt: QueuedAttempt) -> tuple[Any, str | None, bool, str]: ...

    async def forget(self, run_id: str) -> None: ...


@runtime_checkable
class Pingable(Protocol):
    """A backend that can tell whether its server answers (the readiness check asks it):
    `ping` makes the cheapest round trip it has and raises when there is no answer."""

    async def ping(self) -> None: ...
