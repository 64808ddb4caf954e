"""Active runs built by hand, for unit tests of the engine's collaborators (no app, no store)."""
from __future__ import annotations

from baseshift.core.plan import Plan
from baseshift.core.records import JobRecord, RunRecord
from baseshift.core.runstate import ActiveRun, Effects

NOW = 1000.0


def active_run(plan: Plan, run_id: str = "r1") -> ActiveRun:
    """A run of `plan` as the engine holds it before its first round."""
    record = RunRecord(run_id, plan.name, plan.version, "", plan.path, {})
    jobs = {j.name: JobRecord(run_id, j.name, j.name, handler=j.handler)
            for j in (*plan.jobs, *plan.handlers)}
    return ActiveRun(plan, record, jobs)


def started(plan: Plan, run_id: str = "r1") -> tuple[ActiveRun, Effects]:
    """A run activated at `NOW`, with the round that did it: its first jobs are ready."""
    run, fx = active_run(plan, run_id), Effects(NOW)
    run.activate(fx)
    return run, fx
