"""One active run's bookkeeping: which jobs may start, skip propagation, fan-out, phases.

This module decides; it does no I/O. Every change is recorded in an `Effects` batch that the
engine stores in one transaction before it acts on any of it (launching attempts, waking
timers, telling observers).
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

from .errors import ExpressionError
from .events import Event, JobsAdded, JobStateChanged, RunStateChanged
from .expr import condition, evaluate, references
from .plan import JobSpec, Plan
from .records import AttemptRecord, Changes, JobRecord, RunRecord
from .scope import Redacted, RunScope
from .secretvalues import stored_config
from .states import JobState, RunState, transition

FAILED_LIKE = (JobState.FAILED, JobState.CANCELLED)


@dataclass
class Effects:
    """What one scheduling round decided: records to store, then things to do."""

    now: float
    changes: Changes = field(default_factory=Changes)
    events: list[Event] = field(default_factory=list)
    ready: list[tuple[ActiveRun, str]] = field(default_factory=list)
    timers: list[tuple[float, ActiveRun, str]] = field(default_factory=list)
    finished: list[ActiveRun] = field(default_factory=list)

    def drop_runs(self, run_ids: set[str]) -> None:
        """Forget everything decided about these runs (another process owns them now)."""
        self.changes.drop_runs(run_ids)
        self.events = [e for e in self.events if e.run_id not in run_ids]
        self.ready = [r for r in self.ready if r[0].id not in run_ids]
        self.timers = [t for t in self.timers if t[1].id not in run_ids]
        self.finished = [r for r in self.finished if r.id not in run_ids]


class ActiveRun:
    """A run the engine is executing: its plan, records and dependency counters."""

    def __init__(self, plan: Plan, record: RunRecord, jobs: dict[str, JobRecord]) -> None:
        self.plan = plan
        self.record = record
        self.jobs = jobs
        self.remaining: dict[str, int] = {}
        self.open_instances: dict[str, int] = {}
        self.unfinished = 0
        self.in_handlers = False
        self.running_stored = False  # set by the engine once RUNNING is in the store
        self.failure_reason: str | None = None  # why the run fails when no job did
        self._eligible: deque[str] = deque()

    @property
    def id(self) -> str:
        return self.record.id

    # ------------------------------------------------------------ state changes

    def set_job(self, rec: JobRecord, state: JobState, fx: Effects,
                error: str | None = None) -> None:
        old = rec.state
        rec.state = transition(old, state)
        if error is not None or state in (JobState.SUCCEEDED, JobState.PENDING):
            rec.error = error
        if state.finished:
            rec.ended_at = fx.now
        fx.changes.moved_job(rec, old)
        fx.events.append(JobStateChanged(self.id, fx.now, rec.key, old, state, rec.attempts,
                                         error))

    def set_run(self, state: RunState, fx: Effects, error: str | None = None) -> None:
        old = self.record.state
        self.record.state = transition(old, state)
        self.record.error = error
        if state is RunState.RUNNING and self.record.started_at is None:
            self.record.started_at = fx.now
        if state.finished:
            self.record.ended_at = fx.now
            fx.finished.append(self)
        fx.changes.moved_run(self.record, old)
        fx.events.append(RunStateChanged(self.id, fx.now, self.record.workflow, old, state,
                                         len(self.jobs), error))

    # ------------------------------------------------------------ activation

    def activate(self, fx: Effects) -> None:
        """(Re)build counters from the records and queue what can run: start, resume, retry."""
        if self.record.state is RunState.INITIALIZED:
            self.set_run(RunState.RUNNING, fx)
        main = self.plan.jobs
        self.in_handlers = all(self.jobs[j.name].state.finished for j in main) and any(
            self.jobs[j.name].state is JobState.FAILED for j in main)
        phase = self.plan.handlers if self.in_handlers else main
        self.unfinished = sum(not self.jobs[j.name].state.finished for j in phase)
        for spec in phase:
            self._restore(spec, fx)
        self.drain(fx)
        self._check_phase(fx)

    def _restore(self, spec: JobSpec, fx: Effects) -> None:
        rec = self.jobs[spec.name]
        if rec.state is JobState.PENDING:
            self.remaining[spec.name] = sum(1 for d in spec.needs if self._blocks(spec, d.job))
            if self.remaining[spec.name] == 0:
                self._eligible.append(spec.name)
        elif rec.state is JobState.RUNNING and spec.fanout is not None:
            keys = [k for k, r in self.jobs.items() if r.name == spec.name and r.index is not None]
            self.open_instances[spec.name] = sum(not self.jobs[k].state.finished for k in keys)
            for key in keys:
                self._restore_instance(self.jobs[key], fx)
            if self.open_instances[spec.name] == 0:
                self._finish_fanout(spec.name, fx)
        else:
            self._restore_instance(rec, fx)

    def _restore_instance(self, rec: JobRecord, fx: Effects) -> None:
        if rec.state is JobState.RUNNING:  # its attempt was lost with the process
            self._close_attempt(rec, JobState.CANCELLED, fx, "interrupted: the process running "
                                "this attempt stopped; a new attempt starts")
            self.set_job(rec, JobState.READY, fx)
        if rec.state is JobState.PENDING and rec.index is not None:
            self.set_job(rec, JobState.READY, fx)
        if rec.state is JobState.READY:
            rec.ready_at = fx.now
            fx.ready.append((self, rec.key))
        elif rec.state is JobState.RETRYING:
            fx.timers.append((rec.next_attempt_at or fx.now, self, rec.key))

    def _blocks(self, spec: JobSpec, dep: str) -> bool:
        """Whether dependency `dep` still holds `spec` back."""
        return self._blocks_kind(spec, dep) and not self.jobs[dep].state.finished

    # ------------------------------------------------------------ readiness

    def drain(self, fx: Effects) -> None:
        """Decide every job whose dependencies just finished (a worklist, not recursion,
        so a long chain of skips cannot overflow the stack)."""
        while self._eligible:
            self._decide(self._eligible.popleft(), fx)

    def _decide(self, name: str, fx: Effects) -> None:
        spec, rec = self.plan.job(name), self.jobs[name]
        blocker = self._blocked_by(spec)
        if blocker is not None:
            state, why = blocker
            self.set_job(rec, state, fx, why)
            return self._plan_job_finished(name, fx)
        if spec.when is not None and not self._when_per_item(spec):
            verdict = self._condition(spec, self.scope(), rec, fx)
            if verdict is not True:
                return self._plan_job_finished(name, fx)
        if spec.fanout is not None:
            return self._expand(spec, fx)
        self._make_ready(rec, fx)

    def _blocked_by(self, spec: JobSpec) -> tuple[JobState, str] | None:
        """Why a job cannot run: an upstream failure wins over an upstream skip."""
        deps = [d for d in spec.needs if self._blocks_kind(spec, d.job)]
        for dep in deps:
            state = self.jobs[dep.job].state
            if state in FAILED_LIKE:
                return JobState.CANCELLED, f"upstream job '{dep.job}' {state.value.lower()}"
        for dep in deps:
            if self.jobs[dep.job].state is JobState.SKIPPED and not dep.optional:
                return JobState.SKIPPED, f"upstream job '{dep.job}' was skipped"
        return None

    def _condition(self, spec: JobSpec, scope: RunScope, rec: JobRecord,
                   fx: Effects) -> bool | None:
        """Evaluate `when`; on false or error the job is finished here (skipped/failed)."""
        assert spec.when is not None
        try:
            if condition(spec.when, scope):
                return True
        except ExpressionError as exc:
            self.set_job(rec, JobState.FAILED, fx, f"condition could not be evaluated: {exc}")
            return None
        self.set_job(rec, JobState.SKIPPED, fx, "condition is false")
        return False

    def _when_per_item(self, spec: JobSpec) -> bool:
        if spec.fanout is None or spec.when is None:
            return False
        return any(name == spec.fanout.var for name, _, _ in references(spec.when))

    def _make_ready(self, rec: JobRecord, fx: Effects) -> None:
        self.set_job(rec, JobState.READY, fx)
        rec.ready_at = fx.now
        fx.ready.append((self, rec.key))

    # ------------------------------------------------------------ fan-out

    def _expand(self, spec: JobSpec, fx: Effects) -> None:
        assert spec.fanout is not None
        parent = self.jobs[spec.name]
        try:
            items = evaluate(spec.fanout.over, self.scope())
        except ExpressionError as exc:
            self.set_job(parent, JobState.FAILED, fx, f"fan-out list could not be evaluated: {exc}")
            return self._plan_job_finished(spec.name, fx)
        if not isinstance(items, list):
            self.set_job(parent, JobState.FAILED, fx,
                         f"fan-out needs a list, got {type(items).__name__}")
            return self._plan_job_finished(spec.name, fx)
        self.set_job(parent, JobState.RUNNING, fx)
        parent.started_at = parent.started_at or fx.now
        parent.output = items  # the items, until the instances' outputs replace them
        self.open_instances[spec.name] = 0
        for i in range(len(items)):
            self._expand_one(spec, i, fx)
        self._drop_stale_items(spec.name, len(items), fx)
        fx.events.append(JobsAdded(self.id, fx.now, spec.name, len(items)))
        if self.open_instances[spec.name] == 0:
            self._finish_fanout(spec.name, fx)

    def _expand_one(self, spec: JobSpec, i: int, fx: Effects) -> None:
        key = f"{spec.name}[{i}]"
        rec = self.jobs.get(key)
        if rec is not None and rec.state in (JobState.SUCCEEDED, JobState.SKIPPED):
            return  # decided before a retry, on the same inputs: kept
        if rec is None:
            rec = self.jobs[key] = JobRecord(self.id, key, spec.name, index=i,
                                             template=self.jobs[spec.name].template)
            fx.changes.job(rec)
        self.open_instances[spec.name] += 1
        if spec.when is not None and self._when_per_item(spec):
            if self._condition(spec, self.item_scope(rec), rec, fx) is not True:
                self.open_instances[spec.name] -= 1
                return
        self._make_ready(rec, fx)

    def _drop_stale_items(self, name: str, size: int, fx: Effects) -> None:
        """Items of an earlier expansion beyond this list's end (a re-run produced a shorter
        list) are finished as SKIPPED and left out of the output."""
        for rec in self.jobs.values():
            if rec.name == name and rec.index is not None and rec.index >= size \
                    and not rec.state.finished:
                self.set_job(rec, JobState.SKIPPED, fx, "no longer in the fan-out list")

    def _finish_fanout(self, name: str, fx: Effects) -> None:
        parent = self.jobs[name]
        size = len(parent.output) if isinstance(parent.output, list) else None
        instances = sorted((r for r in self.jobs.values()
                            if r.name == name and r.index is not None
                            and (size is None or r.index < size)),
                           key=lambda r: r.index or 0)
        failed = [r.key for r in instances if r.state in FAILED_LIKE]
        parent.output = [r.output for r in instances]
        if instances and all(r.state is JobState.SKIPPED for r in instances):
            self.set_job(parent, JobState.SKIPPED, fx, "every item's condition is false")
        elif failed:
            self.set_job(parent, JobState.FAILED, fx, f"{len(failed)} of {len(instances)} "
                         f"instances failed: {', '.join(failed[:5])}")
        else:
            self.set_job(parent, JobState.SUCCEEDED, fx)
        self._plan_job_finished(name, fx)

    # ------------------------------------------------------------ attempts

    def begin_attempt(self, key: str, fx: Effects) -> bool:
        """Move a READY job to RUNNING with a new attempt, its inputs evaluated (whatever
        reads a secret, a secret input or a secret output as `***`); False if it failed
        before starting (`attempts.prepare_attempt` follows)."""
        rec = self.jobs[key]
        spec = self.plan.job(rec.name)
        rec.attempts += 1
        rec.started_at = fx.now
        rec.next_attempt_at = None
        self.set_job(rec, JobState.RUNNING, fx)
        fx.changes.attempt(AttemptRecord(self.id, key, rec.attempts, JobState.RUNNING, fx.now))
        try:
            rec.inputs = stored_config(spec, self.item_scope(rec).with_values(secret=Redacted()),
                                       self.plan)
        except ExpressionError as exc:
            self.attempt_failed(key, rec.attempts, f"inputs could not be evaluated: {exc}",
                                False, "", fx)
            return False
        return True

    def attempt_succeeded(self, key: str, number: int, output: Any, log: str,
                          fx: Effects) -> None:
        rec = self.jobs[key]
        if rec.state is not JobState.RUNNING or rec.attempts != number:
            return  # a stale result (the job was cancelled meanwhile)
        rec.output = output
        self._close_attempt(rec, JobState.SUCCEEDED, fx, None, log)
        self.set_job(rec, JobState.SUCCEEDED, fx)
        self._job_finished(rec, fx)

    def attempt_lost(self, key: str, number: int, reason: str, fx: Effects) -> None:
        """The attempt vanished with its worker: close it and run the job again as a new
        attempt, without counting a failure (as after a crash of this process)."""
        rec = self.jobs[key]
        if rec.state is not JobState.RUNNING or rec.attempts != number:
            return
        self._close_attempt(rec, JobState.CANCELLED, fx, f"lost: {reason}; a new attempt "
                            "starts")
        self.set_job(rec, JobState.READY, fx)
        rec.ready_at = fx.now
        fx.ready.append((self, key))

    def attempt_failed(self, key: str, number: int, error: str, retryable: bool, log: str,
                       fx: Effects) -> None:
        rec = self.jobs[key]
        if rec.state is not JobState.RUNNING or rec.attempts != number:
            return
        self._close_attempt(rec, JobState.FAILED, fx, error, log)
        rec.failures += 1
        spec = self.plan.job(rec.name)
        if retryable and rec.failures <= spec.retry.retries:
            delay = spec.retry.delay_before(rec.failures)
            rec.next_attempt_at = fx.now + delay
            self.set_job(rec, JobState.RETRYING, fx, error)
            fx.timers.append((rec.next_attempt_at, self, key))
            return
        self.set_job(rec, JobState.FAILED, fx, error)
        self._job_finished(rec, fx)

    def retry_due(self, key: str, fx: Effects) -> None:
        rec = self.jobs.get(key)
        due = rec.next_attempt_at if rec is not None else None
        if rec is not None and rec.state is JobState.RETRYING and (due or 0) <= fx.now:
            self.set_job(rec, JobState.READY, fx)
            rec.ready_at = fx.now
            fx.ready.append((self, key))

    def _close_attempt(self, rec: JobRecord, state: JobState, fx: Effects, error: str | None,
                       log: str = "") -> None:
        fx.changes.attempt(AttemptRecord(self.id, rec.key, rec.attempts, state,
                                         rec.started_at or fx.now, fx.now, error, log))

    # ------------------------------------------------------------ completion

    def _job_finished(self, rec: JobRecord, fx: Effects) -> None:
        if rec.index is None:
            self._plan_job_finished(rec.name, fx)
            return
        self.open_instances[rec.name] -= 1
        if self.open_instances[rec.name] == 0 and self.jobs[rec.name].state is JobState.RUNNING:
            self._finish_fanout(rec.name, fx)

    def _plan_job_finished(self, name: str, fx: Effects) -> None:
        self.unfinished -= 1
        for dependant in self.plan.dependants[name]:
            if dependant in self.remaining and self.jobs[dependant].state is JobState.PENDING:
                if self._blocks_kind(self.plan.job(dependant), name):
                    self.remaining[dependant] -= 1
                    if self.remaining[dependant] == 0:
                        self._eligible.append(dependant)
        if self.unfinished == 0:
            self._check_phase(fx)

    def _blocks_kind(self, spec: JobSpec, dep: str) -> bool:
        """Handlers wait only for other handlers; main jobs are all finished by then."""
        return not (spec.handler and not self.plan.job(dep).handler)

    def _check_phase(self, fx: Effects) -> None:
        if self.unfinished > 0 or self._eligible or self.record.state is not RunState.RUNNING:
            return
        failed = [j.name for j in self.plan.jobs if self.jobs[j.name].state is JobState.FAILED]
        if self.in_handlers:
            self.set_run(RunState.FAILED, fx, self._failure_message(failed))
        elif failed and self.plan.handlers:
            self._start_handlers(fx)
        elif failed:
            self.set_run(RunState.FAILED, fx, self._failure_message(failed))
        else:
            self._complete(fx)

    def _start_handlers(self, fx: Effects) -> None:
        self.in_handlers = True
        self.unfinished = len(self.plan.handlers)
        for spec in self.plan.handlers:
            self._restore(spec, fx)
        self.drain(fx)

    def _complete(self, fx: Effects) -> None:
        try:
            scope = self.scope()
            self.record.outputs = {k: evaluate(v, scope) for k, v in self.plan.outputs}
        except ExpressionError as exc:
            self.failure_reason = f"workflow outputs could not be evaluated: {exc}"
            if self.plan.handlers:
                self._start_handlers(fx)
            else:
                self.set_run(RunState.FAILED, fx, self.failure_reason)
            return
        for spec in self.plan.handlers:
            rec = self.jobs[spec.name]
            if rec.state is JobState.PENDING:
                self.set_job(rec, JobState.SKIPPED, fx, "the workflow did not fail")
        self.set_run(RunState.COMPLETED, fx)

    def _failure_message(self, failed: list[str]) -> str:
        if not failed and self.failure_reason:
            return self.failure_reason
        first = self.jobs[failed[0]].error if failed else None
        names = ", ".join(failed)
        return f"job{'s' if len(failed) != 1 else ''} {names} failed" + (
            f": {first}" if first else "")

    # ------------------------------------------------------------ user actions

    def cancel(self, fx: Effects, reason: str = "cancelled by user") -> list[str]:
        """Cancel every unfinished job and the run; returns keys whose attempts were running."""
        running = []
        for rec in self.jobs.values():
            if rec.state.finished:
                continue
            if rec.state is JobState.RUNNING and (rec.index is not None or
                                                  self.plan.job(rec.name).fanout is None):
                running.append(rec.key)
                self._close_attempt(rec, JobState.CANCELLED, fx, reason)
            self.set_job(rec, JobState.CANCELLED, fx, reason)
        self._eligible.clear()
        self.set_run(RunState.CANCELLED, fx, reason)
        return running

    def reset_for_retry(self, fx: Effects) -> None:
        """Put failed, cancelled and handler jobs back to PENDING; successes are kept."""
        for rec in self.jobs.values():
            if rec.state in FAILED_LIKE or (rec.handler and rec.state.finished):
                rec.failures = 0
                rec.next_attempt_at = None
                self.set_job(rec, JobState.PENDING, fx)
        self.set_run(RunState.RUNNING, fx)
        self.record.ended_at = None
        self.record.outputs = None

    def reset_from(self, job: str, fx: Effects) -> None:
        """Put `job`, everything downstream of it, the handlers and every job that did not
        succeed (failed or cancelled) back to PENDING; other results are reused."""
        again = self._downstream(job)
        for rec in self.jobs.values():
            redo = rec.name in again or rec.handler or rec.state in FAILED_LIKE
            if redo and rec.state is not JobState.PENDING:
                rec.failures = 0
                rec.next_attempt_at = None
                rec.output = None
                self.set_job(rec, JobState.PENDING, fx)
        self.set_run(RunState.RUNNING, fx)
        self.record.ended_at = None
        self.record.outputs = None
        self.record.error = None

    def _downstream(self, job: str) -> set[str]:
        seen, todo = {job}, [job]
        while todo:
            for name in self.plan.dependants[todo.pop()]:
                if name not in seen:
                    seen.add(name)
                    todo.append(name)
        return seen

    # ------------------------------------------------------------ scopes

    def scope(self) -> RunScope:
        base: dict[str, Any] = {"input": self.record.inputs,
                                "run": {"id": self.id, "workflow": self.record.workflow}}
        if self.in_handlers:
            failed = [j.name for j in self.plan.jobs if self.jobs[j.name].state is JobState.FAILED]
            base["failure"] = {"jobs": failed, "error": self._failure_message(failed)}
        return RunScope(self, base)

    def item_scope(self, rec: JobRecord) -> RunScope:
        scope = self.scope()
        spec = self.plan.job(rec.name)
        if rec.index is None or spec.fanout is None:
            return scope
        items = self.jobs[rec.name].output
        item = items[rec.index] if isinstance(items, list) and rec.index < len(items) else None
        return scope.with_values(**{spec.fanout.var: item})
