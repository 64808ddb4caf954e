"""Run and job state machines: the states, the legal transitions, and a checked `transition()`.

The states' values are the one status vocabulary: every interface that reports a run's or a
job's status (REST and its seed-shaped paths, server-sent events, the CLI, the web UI)
says `RUNNING`, `COMPLETED`, ... with these words, and the OpenAPI document declares them as
the `RunStatus` and `JobStatus` enums (docs/server.md, "Status words").
"""
from __future__ import annotations

from enum import StrEnum
from typing import TypeVar

from .errors import IllegalTransition


class RunState(StrEnum):
    INITIALIZED = "INITIALIZED"
    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"

    @property
    def finished(self) -> bool:
        return self in _RUN_FINISHED


class JobState(StrEnum):
    PENDING = "PENDING"
    READY = "READY"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    RETRYING = "RETRYING"
    SKIPPED = "SKIPPED"
    CANCELLED = "CANCELLED"

    @property
    def finished(self) -> bool:
        return self in _JOB_FINISHED


_RUN_FINISHED = frozenset({RunState.COMPLETED, RunState.FAILED, RunState.CANCELLED})
_JOB_FINISHED = frozenset({JobState.SUCCEEDED, JobState.FAILED, JobState.SKIPPED,
                           JobState.CANCELLED})

# FAILED/CANCELLED -> RUNNING exist only for "retry from failed": the run is reopened and its
# failed jobs go back to PENDING; succeeded jobs keep their results. COMPLETED -> RUNNING is
# "re-run from a job": that job and its dependants go back to PENDING.
RUN_TRANSITIONS: dict[RunState, frozenset[RunState]] = {
    RunState.INITIALIZED: frozenset({RunState.RUNNING, RunState.FAILED, RunState.CANCELLED}),
    RunState.RUNNING: frozenset({RunState.COMPLETED, RunState.FAILED, RunState.CANCELLED}),
    RunState.COMPLETED: frozenset({RunState.RUNNING}),
    RunState.FAILED: frozenset({RunState.RUNNING}),
    RunState.CANCELLED: frozenset({RunState.RUNNING}),
}

JOB_TRANSITIONS: dict[JobState, frozenset[JobState]] = {
    JobState.PENDING: frozenset({JobState.READY, JobState.SKIPPED, JobState.CANCELLED,
                                 JobState.RUNNING, JobState.FAILED}),
    JobState.READY: frozenset({JobState.RUNNING, JobState.SKIPPED, JobState.CANCELLED}),
    JobState.RUNNING: frozenset({JobState.SUCCEEDED, JobState.FAILED, JobState.RETRYING,
                                 JobState.CANCELLED, JobState.READY, JobState.SKIPPED}),
    JobState.RETRYING: frozenset({JobState.READY, JobState.CANCELLED}),
    JobState.SUCCEEDED: frozenset({JobState.PENDING}),
    JobState.FAILED: frozenset({JobState.PENDING}),
    JobState.SKIPPED: frozenset({JobState.PENDING}),
    JobState.CANCELLED: frozenset({JobState.PENDING}),
}
"""Legal job moves. RUNNING -> READY is a crash recovery (the attempt was lost, a new one
starts); a fan-out parent goes PENDING -> RUNNING while its items run, and RUNNING ->
SKIPPED when every item was skipped; PENDING -> FAILED when its condition or fan-out list
cannot be evaluated; finished -> PENDING is a retry or re-run that the user
asked for."""

S = TypeVar("S", RunState, JobState)


def transition(current: S, target: S) -> S:
    """Return `target` if moving there from `current` is legal, else raise IllegalTransition."""
    table: dict[S, frozenset[S]] = (
        RUN_TRANSITIONS if isinstance(current, RunState) else JOB_TRANSITIONS
    )
    if target not in table[current]:
        kind = "run" if isinstance(current, RunState) else "job"
        raise IllegalTransition(f"illegal {kind} transition {current.value} -> {target.value}")
    return target

JOB_FINISHED = _JOB_FINISHED
"""The final job states, for code that checks many events (`state in JOB_FINISHED` is a set
lookup, `state.finished` a call)."""
RUN_FINISHED = _RUN_FINISHED
"""The final run states (as `JOB_FINISHED`)."""
