"""The SQLite state store's schema: SQLModel tables for runs, jobs and attempts, and the rows
they map to and from `core.records`."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import JSON, ForeignKeyConstraint, Index, Table
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel

from baseshift.core.records import AttemptRecord, JobRecord, RunRecord
from baseshift.core.states import JobState, RunState

SCHEMA_VERSION = 1
"""Bumped whenever a table changes; `open()` refuses a database with a newer version."""

# A private registry keeps these tables out of the global SQLModel.metadata, so another plugin
# defining a `runs` table cannot collide with ours.
STORE_REGISTRY = registry()
METADATA = STORE_REGISTRY.metadata


def _json() -> Any:
    # SQL NULL for None rather than the JSON text 'null', so `IS NULL` means "no value".
    return Field(default=None, sa_type=JSON(none_as_null=True), nullable=True)


class _StoreModel(SQLModel, registry=STORE_REGISTRY):
    """Base of the store's tables, bound to the private registry."""


class MetaRow(_StoreModel, table=True):
    """Key/value facts about the database itself, such as `schema_version`."""

    __tablename__ = "meta"

    key: str = Field(primary_key=True)
    value: str


class RunRow(_StoreModel, table=True):
    """One row per run (`core.records.RunRecord`)."""

    __tablename__ = "runs"

    id: str = Field(primary_key=True)
    workflow: str
    version: str
    source: str
    path: str
    inputs: dict[str, Any] = Field(sa_type=JSON(), nullable=False)
    state: str
    created_at: float
    started_at: float | None = None
    ended_at: float | None = None
    outputs: dict[str, Any] | None = _json()
    error: str | None = None


class JobRow(_StoreModel, table=True):
    """One row per job or fan-out item (`core.records.JobRecord`); `(run_id, key)` is the
    primary key, which also serves every "jobs of a run" lookup."""

    __tablename__ = "jobs"
    __table_args__ = (
        ForeignKeyConstraint(["run_id"], ["runs.id"], ondelete="CASCADE"),
    )

    run_id: str = Field(primary_key=True)
    key: str = Field(primary_key=True)
    name: str
    index: int | None = None
    state: str
    attempts: int
    failures: int
    output: Any = _json()
    error: str | None = None
    inputs: dict[str, Any] | None = _json()
    ready_at: float | None = None
    started_at: float | None = None
    ended_at: float | None = None
    next_attempt_at: float | None = None
    template: str | None = None
    handler: bool


class AttemptRow(_StoreModel, table=True):
    """One row per attempt (`core.records.AttemptRecord`); the primary key
    `(run_id, job_key, number)` is also the order `load_run` returns them in."""

    __tablename__ = "attempts"
    __table_args__ = (
        ForeignKeyConstraint(["run_id", "job_key"], ["jobs.run_id", "jobs.key"],
                             ondelete="CASCADE"),
    )

    run_id: str = Field(primary_key=True)
    job_key: str = Field(primary_key=True)
    number: int = Field(primary_key=True)
    state: str
    started_at: float
    ended_at: float | None = None
    error: str | None = None
    log: str


def _table(model: type[SQLModel]) -> Table:
    table = model.__table__  # type: ignore[attr-defined]
    assert isinstance(table, Table)
    return table


META: Table = _table(MetaRow)
RUNS: Table = _table(RunRow)
JOBS: Table = _table(JobRow)
ATTEMPTS: Table = _table(AttemptRow)

# Ascending on purpose: "newest first" orders by (created_at DESC, id DESC), which SQLite reads
# from an ascending index scanned backwards, keyset pagination included. The filtered variants
# serve run listings by workflow or by state without a sort; `state` leading also makes
# counting runs by state a covering index scan.
# Jobs by run_id needs no index of its own: it is the leading column of the jobs primary key.
Index("ix_runs_created_id", RUNS.c.created_at, RUNS.c.id)
Index("ix_runs_workflow_created_id", RUNS.c.workflow, RUNS.c.created_at, RUNS.c.id)
Index("ix_runs_state_created_id", RUNS.c.state, RUNS.c.created_at, RUNS.c.id)
RETIRED_INDEXES = ("ix_runs_created_at", "ix_runs_workflow_created_at", "ix_runs_state_created_at")
"""Indexes of earlier builds that the ones above replace; `open()` drops them."""

_RUN_STATES = {s.value: s for s in RunState}
_JOB_STATES = {s.value: s for s in JobState}


def run_row(r: RunRecord) -> dict[str, Any]:
    """The `runs` row of a record, with the enum as its string value."""
    return {
        "id": r.id, "workflow": r.workflow, "version": r.version, "source": r.source,
        "path": r.path, "inputs": r.inputs, "state": r.state.value,
        "created_at": r.created_at, "started_at": r.started_at, "ended_at": r.ended_at,
        "outputs": r.outputs, "error": r.error,
    }


def job_row(j: JobRecord) -> dict[str, Any]:
    """The `jobs` row of a record, with the enum as its string value."""
    return {
        "run_id": j.run_id, "key": j.key, "name": j.name, "index": j.index,
        "state": j.state.value, "attempts": j.attempts, "failures": j.failures,
        "output": j.output, "error": j.error, "inputs": j.inputs, "ready_at": j.ready_at,
        "started_at": j.started_at, "ended_at": j.ended_at,
        "next_attempt_at": j.next_attempt_at, "template": j.template, "handler": j.handler,
    }


def attempt_row(a: AttemptRecord) -> dict[str, Any]:
    """The `attempts` row of a record, with the enum as its string value."""
    return {
        "run_id": a.run_id, "job_key": a.job_key, "number": a.number,
        "state": a.state.value, "started_at": a.started_at, "ended_at": a.ended_at,
        "error": a.error, "log": a.log,
    }


def run_record(m: Mapping[Any, Any]) -> RunRecord:
    """Rebuild a RunRecord from a `runs` row mapping."""
    return RunRecord(
        id=m["id"], workflow=m["workflow"], version=m["version"], source=m["source"],
        path=m["path"], inputs=m["inputs"], state=_RUN_STATES[m["state"]],
        created_at=m["created_at"], started_at=m["started_at"], ended_at=m["ended_at"],
        outputs=m["outputs"], error=m["error"],
    )


def job_record(m: Mapping[str, Any]) -> JobRecord:
    """Rebuild a JobRecord from a `jobs` row mapping."""
    return JobRecord(
        run_id=m["run_id"], key=m["key"], name=m["name"], index=m["index"],
        state=_JOB_STATES[m["state"]], attempts=m["attempts"], failures=m["failures"],
        output=m["output"], error=m["error"], inputs=m["inputs"], ready_at=m["ready_at"],
        started_at=m["started_at"], ended_at=m["ended_at"],
        next_attempt_at=m["next_attempt_at"], template=m["template"],
        handler=bool(m["handler"]),
    )


def attempt_record(m: Mapping[str, Any]) -> AttemptRecord:
    """Rebuild an AttemptRecord from an `attempts` row mapping."""
    return AttemptRecord(
        run_id=m["run_id"], job_key=m["job_key"], number=m["number"],
        state=_JOB_STATES[m["state"]], started_at=m["started_at"], ended_at=m["ended_at"],
        error=m["error"], log=m["log"],
    )
