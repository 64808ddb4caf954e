"""Records for state-store tests: a run, a job, an attempt with plausible defaults, and a
batch of changes holding them (shared by the contract and the PostgreSQL tests)."""
from __future__ import annotations

from typing import Any

from baseshift.core.records import AttemptRecord, Changes, JobRecord, RunRecord


def a_run(run_id: str = "r1", **fields: Any) -> RunRecord:
    values: dict[str, Any] = {"workflow": "orders", "version": "1.2.0", "source": "job a {}",
                              "path": "workflows/orders.bsw", "inputs": {"n": 1},
                              "created_at": 100.0}
    return RunRecord(id=run_id, **(values | fields))


def a_job(key: str, run_id: str = "r1", **fields: Any) -> JobRecord:
    return JobRecord(run_id=run_id, key=key, name=key.split("[")[0], **fields)


def an_attempt(key: str, number: int, run_id: str = "r1", **fields: Any) -> AttemptRecord:
    return AttemptRecord(run_id=run_id, job_key=key, number=number, **fields)


def changes(*records: RunRecord | JobRecord | AttemptRecord) -> Changes:
    batch = Changes()
    for r in records:
        if isinstance(r, RunRecord):
            batch.run(r)
        elif isinstance(r, JobRecord):
            batch.job(r)
        else:
            batch.attempt(r)
    return batch
