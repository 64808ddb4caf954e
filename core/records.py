"""What the state store keeps: runs, jobs and attempts as plain mutable records."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

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
    """A batch of records to write in one transaction (the engine's unit of durability)."""

    runs: dict[str, RunRecord] = field(default_factory=dict)
    jobs: dict[tuple[str, str], JobRecord] = field(default_factory=dict)
    attempts: dict[tuple[str, str, int], AttemptRecord] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.runs or self.jobs or self.attempts)

    def run(self, r: RunRecord) -> None:
        self.runs[r.id] = r

    def job(self, j: JobRecord) -> None:
        self.jobs[(j.run_id, j.key)] = j

    def attempt(self, a: AttemptRecord) -> None:
        self.attempts[(a.run_id, a.job_key, a.number)] = a
