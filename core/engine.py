"""The engine: an event-driven loop that stores each round of decisions, then acts on them.

One round = handle the inbox (finished attempts, user commands, outside cancels) and the due
retry timers, let each `ActiveRun` decide, begin attempts for the best ready jobs, store
everything in ONE transaction, and only then start the attempts and tell observers. Only the
dependants of a finished job are re-examined; nothing rescans all jobs.

The engine holds the runs it executes and the loop; its collaborators each keep one kind of
state: the inbox (core/inbox.py), retry timers, attempt slots (the concurrency limits), the
attempts' tasks, the waiters, the cancel watch and the jobs waiting for outside calls.

Guarantee: at-least-once per job attempt. A job whose SUCCEEDED state was stored never runs
again; an attempt that was running when the process died is retried as a new attempt.
"""
from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

from . import audit
from .attempt_slots import AttemptSlots
from .attempt_tasks import AttemptTasks
from .attempts import AttemptRunner, Launch
from .cancel_watch import CancelWatch
from .errors import Conflict, NotFound, StaleState, StoreError
from .inbox import Activate, AttemptDone, AttemptLost, Cancel, Inbox, Message, Rerun, Retry
from .inputs import prepare_inputs
from .outside_calls import OutsideCalls
from .plan import Plan
from .protocols import AttemptQueue, StateStore
from .records import JobRecord, RunRecord, RunSnapshot
from .retry_timers import RetryTimers
from .runstate import ActiveRun, Effects
from .secretvalues import seal_inputs
from .states import RunState
from .tracecontext import run_started
from .waiters import Waiters

if TYPE_CHECKING:
    from .executors import Executors
    from .hooks import Hooks
    from .settings import Settings

log = logging.getLogger("baseshift.engine")


class EngineHost(Protocol):
    """What the engine needs of the application: settings, the hooks, the executors, the
    state store and the attempt queue (built on first use)."""

    settings: Settings
    hooks: Hooks
    executors: Executors

    @property
    def store(self) -> StateStore: ...

    @property
    def queue(self) -> AttemptQueue | None: ...


class Engine:
    """Runs workflows in this process against the configured state store."""

    def __init__(self, baseshift: EngineHost) -> None:
        self.bs = baseshift
        self.runs: dict[str, ActiveRun] = {}
        self._inbox = Inbox()
        self._slots = AttemptSlots(baseshift.settings.max_parallel)
        self._timers: RetryTimers[tuple[ActiveRun, str]] = RetryTimers(self._inbox.wake)
        self._tasks = AttemptTasks(AttemptRunner(baseshift, baseshift.executors), baseshift,
                                   self._inbox.post)
        self._waiters = Waiters()
        self._watch = CancelWatch(baseshift, self.runs, self._inbox.post)
        self.calls = OutsideCalls(self.runs, baseshift.executors, self._tasks)
        """The API's complete/fail of jobs waiting for outside calls (`manual`)."""
        self._loop_task: asyncio.Task[None] | None = None

    # ------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        # jobs run in the data dir: it must exist even when no store created it (memory);
        # made private, as the stores and the key file in it are (docs/security.md)
        self.bs.settings.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        if self._loop_task is None:
            self._loop_task = asyncio.create_task(self._loop(), name="baseshift-engine")
            self._watch.start()

    async def stop(self) -> None:
        """Stop the loop and abandon running attempts; they stay RUNNING in the store and
        are retried as new attempts when the runs are resumed."""
        if self._loop_task is None:
            return
        self._loop_task.cancel()
        stopping = [self._loop_task, *self._watch.cancel()]
        self._timers.cancel()
        stopping += self._tasks.cancel_all()
        await asyncio.gather(*stopping, return_exceptions=True)
        self._loop_task = None
        self._waiters.cancel_all()

    # ------------------------------------------------------------ public API

    async def submit(self, plan: Plan, inputs: Mapping[str, Any], *,
                     run_id: str | None = None, start: bool = True) -> str:
        """Accept a run: check inputs, store the run and its jobs, then start it.

        With `start=False` the run is stored INITIALIZED and unclaimed (queued); `resume`
        starts it later."""
        values = prepare_inputs(plan.inputs, inputs)
        if any(i.secret for i in plan.inputs):  # sealed before anything is stored
            values = await seal_inputs(self.bs.hooks.sealer(), plan.inputs, values)
        now = time.time()
        record = RunRecord(run_id or new_run_id(), plan.name, plan.version, plan.source,
                           plan.path, values, created_at=now)
        jobs = [JobRecord(record.id, j.name, j.name, handler=j.handler,
                          template=j.template.ref if j.template else None)
                for j in (*plan.jobs, *plan.handlers)]
        await self.bs.store.create_run(record, jobs, audit=[
            audit.entry("run.start", f"run:{record.id}", workflow=plan.name)])
        run_started(record.id)
        if not start:
            return record.id
        if not await self.bs.store.claim_run(record.id):
            raise Conflict(f"run '{record.id}' is claimed by another process")
        self._accept(Activate(ActiveRun(plan, record, {j.key: j for j in jobs})))
        return record.id

    async def resume(self, plan: Plan, run_id: str, *, retry: bool = False) -> None:
        """Continue a stored run (after a crash), or with `retry`, rerun its failed jobs."""

        def check(state: RunState) -> None:
            if retry and state not in (RunState.FAILED, RunState.CANCELLED):
                raise Conflict(f"run '{run_id}' is {state.value}; only a failed or cancelled "
                               "run can be retried")
            if not retry and state.finished:
                raise Conflict(f"run '{run_id}' is already {state.value}")

        snapshot = await self._take(run_id, check)
        active = ActiveRun(plan, snapshot.run, snapshot.jobs)
        active.running_stored = snapshot.run.state is RunState.RUNNING and not retry
        self._accept(Retry(active, (audit.entry("run.retry", f"run:{run_id}"),)) if retry
                     else Activate(active))

    async def rerun_from(self, plan: Plan, run_id: str, job: str) -> None:
        """Run `job` and every job downstream of it again in a finished run; the results of
        the jobs upstream are kept. The run is reopened (RUNNING) until they finish."""

        def check(state: RunState) -> None:
            if not state.finished:
                raise Conflict(f"run '{run_id}' is {state.value}; re-run from a job once the "
                               "run has finished (or cancel it first)")
            if job not in plan.by_name or plan.job(job).handler:
                raise NotFound(f"run '{run_id}' has no job '{job}'",
                               hint=f"its jobs: {', '.join(j.name for j in plan.jobs)}")

        snapshot = await self._take(run_id, check)
        self._accept(Rerun(ActiveRun(plan, snapshot.run, snapshot.jobs), job,
                           (audit.entry("run.rerun", f"run:{run_id}", job=job),)))

    async def cancel(self, run_id: str, reason: str = "cancelled by user") -> bool:
        """Cancel a run active in this process; False if it is not active here."""
        if run_id not in self.runs:
            return False
        self._inbox.post(Cancel(run_id, reason,
                                audit=(audit.entry("run.cancel", f"run:{run_id}"),)))
        return True

    async def wait(self, run_id: str) -> RunRecord:
        """Wait until a run active in this process finishes; return its final record."""
        if run_id in self.runs or self._waiters.failure is not None:
            return await self._waiters.wait(run_id)
        snapshot = await self.bs.store.load_run(run_id)
        if snapshot is None or not snapshot.run.state.finished:
            raise NotFound(f"run '{run_id}' is not active in this process")
        return snapshot.run

    async def _take(self, run_id: str, check: Callable[[RunState], None]) -> RunSnapshot:
        """Load a stored run no process executes, `check` its state, and claim it; attempts
        a dead process queued for it must not run beside the new ones."""
        snapshot = await self.bs.store.load_run(run_id)
        if snapshot is None:
            raise NotFound(f"run '{run_id}' not found")
        if run_id in self.runs:
            raise Conflict(f"run '{run_id}' is already running in this process")
        check(snapshot.run.state)
        if not await self.bs.store.claim_run(run_id):
            raise Conflict(f"run '{run_id}' is being executed by another process",
                           hint="wait for it, or cancel it with `baseshift cancel`")
        if self.bs.queue is not None:
            await self.bs.queue.forget(run_id)
        return snapshot

    def _accept(self, message: Activate | Retry | Rerun) -> None:
        self.runs[message.run_id] = message.run
        self._inbox.post(message)

    # ------------------------------------------------------------ the loop

    async def _loop(self) -> None:
        try:
            while True:
                await self._inbox.wait()
                await self._round()
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # the store failed: nothing can be trusted any more
            log.exception("engine stopped")
            self._waiters.stopped_by(exc)

    async def _round(self) -> None:
        fx = Effects(time.time())
        for message in self._inbox.take():
            try:
                self._handle(message, fx)
            except Exception as exc:  # a bug met by one run must not stop every other run
                self._abandon(message.run_id, exc)
        for run, key in self._timers.due(fx.now):
            if self.runs.get(run.id) is run:  # not a timer left by a cancelled activation
                run.retry_due(key, fx)
        launches = self._slots.dispatch(self.runs, fx)
        if fx.changes:
            launches = await self._store(fx, launches)
        self._watch.stored(fx.changes)
        self._tasks.stop_decided()
        for launch in launches:
            self._tasks.start(launch, here=self.calls.waits_for_calls(launch.run.id, launch.key))
        for due, run, key in fx.timers:
            self._timers.add(due, (run, key))
        self._timers.arm()
        await self.bs.hooks.track_events(fx.events)
        for run in fx.finished:
            await self._finish(run)

    def _handle(self, message: Message, fx: Effects) -> None:
        match message:
            case AttemptDone(run_id, key, number, outcome):
                self._slots.release(run_id, key, number)
                run = self.runs.get(run_id)
                delivered = self.calls.delivered(run_id, key)
                if run is None:
                    return
                fx.changes.audit.extend(delivered)
                if outcome.error is None:
                    run.attempt_succeeded(key, number, outcome.output, outcome.log, fx)
                else:
                    run.attempt_failed(key, number, outcome.error, outcome.retryable,
                                       outcome.log, fx)
                run.drain(fx)
            case AttemptLost(run_id, key, number, reason):
                self._slots.release(run_id, key, number)
                run = self.runs.get(run_id)
                if run is not None:
                    run.attempt_lost(key, number, reason, fx)
                    run.drain(fx)
            case Activate(run) | Retry(run) | Rerun(run):
                self._slots.limit(run.record.workflow, run.plan.concurrency)
                match message:
                    case Retry(audit=entries):
                        run.reset_for_retry(fx)
                        fx.changes.audit.extend(entries)
                    case Rerun(job=job, audit=entries):
                        run.reset_from(job, fx)
                        fx.changes.audit.extend(entries)
                run.activate(fx)
            case Cancel(run_id, reason, activation, entries):
                if self._cancel(run_id, reason, activation, fx):
                    fx.changes.audit.extend(entries)

    def _cancel(self, run_id: str, reason: str, activation: ActiveRun | None,
                fx: Effects) -> bool:
        """Cancel the run if it is still executing here (as `activation`); whether it was."""
        run = self.runs.get(run_id)
        if run is None or run.record.state.finished or (
                activation is not None and run is not activation):
            return False
        self._slots.drop_queued(run_id)
        running = run.cancel(fx, reason)
        self._tasks.stop_later(run_id, running)  # stopped once the cancel is stored
        for key in running:
            self._slots.release(run_id, key, run.jobs[key].attempts)
        return True

    def _abandon(self, run_id: str, exc: Exception) -> None:
        """Stop executing the run a message was about; it stays unfinished in the store."""
        log.error("run %s: internal error, no longer executed here: %r", run_id, exc,
                  exc_info=exc, extra={"event": "run.abandoned", "run_id": run_id})
        self.runs.pop(run_id, None)
        self._waiters.failed(run_id, exc)

    async def _store(self, fx: Effects, launches: list[Launch]) -> list[Launch]:
        """Store the round. When a shared store reports runs that another process moved
        (cancelled them, say), stop executing those runs here and store the rest. When the
        store fails (a database restart), let go of every run of the round: what was stored
        before stays true, and the runs resume from it once a server adopts them (this one
        too, within seconds, once the store answers again)."""
        while True:
            try:
                await self.bs.store.apply(fx.changes)
                return launches
            except StaleState as exc:
                if not exc.run_ids:
                    raise
                gone, error = set(exc.run_ids), None
                log.warning("runs %s were changed by another process; no longer executed "
                            "here", ", ".join(sorted(gone)),
                            extra={"event": "runs.taken_over", "run_ids": sorted(gone)})
            except StoreError as exc:
                gone = fx.changes.run_ids() | {x.run.id for x in launches}
                error = exc
                log.error("storing a scheduling round failed (%s); runs %s stop here and "
                          "resume from their stored state", exc, ", ".join(sorted(gone)),
                          extra={"event": "runs.store_failed", "run_ids": sorted(gone)})
            fx.drop_runs(gone)
            launches = [x for x in launches if x.run.id not in gone]
            for run_id in gone:
                self._let_go(run_id, error)

    def _let_go(self, run_id: str, error: StoreError | None = None) -> None:
        """Forget a run another process has taken over (or that could not be stored): stop
        its attempts, free its slots and its claim, answer its waiters from the store."""
        self.runs.pop(run_id, None)
        self._slots.forget(run_id)
        self._tasks.stop_later(run_id)
        self._waiters.let_go(run_id, self.bs.store, error)

    async def _finish(self, run: ActiveRun) -> None:
        if self.runs.get(run.id) is run:
            del self.runs[run.id]
        await self.bs.store.release_run(run.id)
        self._waiters.finished(run.id, run.record)


def new_run_id() -> str:
    """Run ids sort by creation time (a millisecond prefix) and are unique (random suffix)."""
    return f"{int(time.time() * 1000):x}-{uuid.uuid4().hex[:8]}"
