"""What users do with runs, in one place for the API, the web UI, triggers and the CLI.

Each operation checks its request against the stored state first and raises a core error
(NotFound, Conflict, InputError) before anything changes. Starts, retries and the runs left
INITIALIZED go through the admission hooks (`admit_run`, `reopen_run`, `take_up_runs`),
through which the `run_limits` plugin applies workflows' run limits.
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

from .. import audit
from ..capabilities import Erasure
from ..errors import BaseShiftError, Conflict, Gone, NotFound
from ..json_text import refuse_surrogates
from ..records import MAX_LISTED, RunRecord, RunSnapshot
from ..runstate import ActiveRun, Effects
from ..states import JobState, RunState
from .unapplied_limits import refuse_unapplied

if TYPE_CHECKING:
    from ..engine import Engine
    from ..hooks import Hooks
    from ..plan import Plan
    from ..protocols import StateStore
    from ..records import JobRecord
    from .catalog import WorkflowCatalog

log = logging.getLogger("baseshift.service")

SETTLE_SECONDS = 5.0
"""How long cancel waits for the engine to store the cancellation before answering."""
ADOPT_INTERVAL = 10.0
"""Seconds between a server's looks for runs whose process died (several servers, one store)."""
ADOPT_AGE = 30.0
"""INITIALIZED runs younger than this (seconds) may still be started by their own process."""


DELIVERY_TRIES = 20
DELIVERY_PAUSE = 0.05
"""A complete/fail call that finds its job RUNNING but not yet listening retries this often."""


class ServiceHost(Protocol):
    """What the run service needs of the application: the engine, the store, the hooks,
    the plan of a stored run, and the catalog of workflows runs are started from."""

    engine: Engine
    hooks: Hooks
    catalog: WorkflowCatalog

    @property
    def store(self) -> StateStore: ...

    def plan_for_run(self, run: RunRecord, jobs: dict[str, JobRecord]) -> Plan: ...


class RunService:
    """Start, inspect, cancel, retry and re-run runs; complete or fail waiting jobs."""

    def __init__(self, baseshift: ServiceHost) -> None:
        self.bs = baseshift

    async def start(self, workflow: str, inputs: Mapping[str, Any]) -> str:
        """Start a run of a loaded workflow (subject to its run limit); returns the run id."""
        return await self.start_plan(self.bs.catalog.plan(workflow), inputs)

    async def start_plan(self, plan: Plan, inputs: Mapping[str, Any]) -> str:
        """Start a run of `plan`, or let a plugin start, queue or refuse it (`admit_run`);
        returns the run id. ConfigError for a run limit that no plugin applied."""
        run_id = await self.bs.hooks.admit_run(plan, dict(inputs))
        if run_id is not None:
            return run_id
        refuse_unapplied(plan)
        return await self.bs.engine.submit(plan, dict(inputs))

    async def snapshot(self, run_id: str, *, attempts: bool = True) -> RunSnapshot:
        """The stored run (NotFound if none); `attempts=False` skips attempts and their
        logs, for progress reads."""
        snapshot = await self.bs.store.load_run(run_id, attempts=attempts)
        if snapshot is None:
            store = self.bs.store
            erased = await store.tombstone(run_id) if isinstance(store, Erasure) else None
            if erased is not None:
                raise Gone(f"run '{run_id}' of workflow '{erased.workflow}' was erased by "
                           f"{erased.erased_by}: its data is gone for good",
                           details={"tombstone": erased.to_json()})
            raise NotFound(f"run '{run_id}' not found")
        return snapshot

    async def cancel(self, run_id: str) -> RunRecord:
        """Cancel an unfinished run, here or in the store for a run no process executes."""
        snapshot = await self.snapshot(run_id)
        if snapshot.run.state.finished:
            raise Conflict(f"run '{run_id}' is already {snapshot.run.state.value}")
        if await self.bs.engine.cancel(run_id):
            return await self._settled(run_id)
        plan = self.bs.plan_for_run(snapshot.run, snapshot.jobs)
        await self.cancel_stored(snapshot, plan)
        return snapshot.run

    async def cancel_stored(self, snapshot: RunSnapshot, plan: Plan,
                            reason: str = "cancelled by user") -> None:
        """Store a run that no engine here executes as CANCELLED, with `reason` as the error
        of its unfinished jobs (a process executing it elsewhere notices the stored cancel)."""
        fx = Effects(time.time())
        ActiveRun(plan, snapshot.run, snapshot.jobs).cancel(fx, reason)
        fx.changes.audit.append(audit.entry("run.cancel", f"run:{snapshot.run.id}",
                                            reason=reason[:200]))
        await self.bs.store.apply(fx.changes)
        await self.bs.hooks.track_events(fx.events)

    async def _settled(self, run_id: str) -> RunRecord:
        try:
            return await asyncio.wait_for(asyncio.shield(self.bs.engine.wait(run_id)),
                                          SETTLE_SECONDS)
        except TimeoutError:
            return (await self.snapshot(run_id)).run

    async def retry(self, run_id: str) -> None:
        """Rerun a failed or cancelled run's unfinished jobs; successes are kept. The run
        counts against its workflow's run limit again (Conflict when its key is full)."""
        snapshot = await self.snapshot(run_id)
        plan = self.bs.plan_for_run(snapshot.run, snapshot.jobs)
        await self._reopen(plan, snapshot.run,
                           lambda: self.bs.engine.resume(plan, run_id, retry=True))

    async def rerun_from(self, run_id: str, job: str) -> None:
        """Run `job` and everything downstream of it again, reusing upstream results."""
        snapshot = await self.snapshot(run_id)
        plan = self.bs.plan_for_run(snapshot.run, snapshot.jobs)
        await self._reopen(plan, snapshot.run,
                           lambda: self.bs.engine.rerun_from(plan, run_id, job))

    async def _reopen(self, plan: Plan, run: RunRecord,
                      action: Callable[[], Awaitable[None]]) -> None:
        """Reopen a finished run with `action`, unless a plugin decides about it
        (`reopen_run`: a run limit may refuse it)."""
        if await self.bs.hooks.reopen_run(plan, run, action):
            return
        refuse_unapplied(plan)
        await action()

    async def complete_job(self, run_id: str, job: str, output: Any = None,
                           by: str | None = None) -> None:
        """Finish a job that waits for an external call (`uses manual`) with `output`. The
        actor completing it (`by`) is its `approver`, whatever the output says: an object
        output (or none) gets the field set to that name."""
        refuse_surrogates(output, "output")
        if by is not None and (output is None or isinstance(output, dict)):
            output = {**(output or {}), "approver": by}
        await self._deliver(run_id, job, output=output, error=None)

    async def fail_job(self, run_id: str, job: str, error: str, by: str | None = None) -> None:
        """Fail a job that waits for an external call; its retry policy applies. The error
        names the actor failing it (`by`)."""
        refuse_surrogates(error, "error")
        await self._deliver(run_id, job, output=None,
                            error=error if by is None else f"failed by {by}: {error}")

    async def _deliver(self, run_id: str, job: str, *, output: Any, error: str | None) -> None:
        snapshot = await self.snapshot(run_id)
        record = snapshot.jobs.get(job)
        if record is None:
            raise NotFound(f"run '{run_id}' has no job '{job}'",
                           hint=f"its jobs: {', '.join(sorted(snapshot.jobs))}")
        if record.state is not JobState.RUNNING:
            raise Conflict(f"job '{job}' is {record.state.value}, not waiting for a result")
        # RUNNING is stored a moment before the attempt starts listening: give it that moment
        tries = DELIVERY_TRIES if self.bs.engine.calls.waits_for_calls(run_id, job) else 1
        for _ in range(tries - 1):
            try:
                return self.bs.engine.calls.deliver(run_id, job, output=output, error=error)
            except Conflict:
                await asyncio.sleep(DELIVERY_PAUSE)
        self.bs.engine.calls.deliver(run_id, job, output=output, error=error)

    async def resume_interrupted(self, *, quiet: bool = False) -> list[str]:
        """Resume every RUNNING run that no live process executes: after a crash or stop of
        this server, or, with several servers on one store, of another one (the server
        calls this again every `ADOPT_INTERVAL` seconds). `quiet` logs only what it resumes."""
        resumed = []
        states = await self.bs.store.run_states(await self.bs.store.unfinished_runs())
        for run_id, state in states.items():
            if state is not RunState.RUNNING or run_id in self.bs.engine.runs:
                continue
            if not await self.bs.store.claim_run(run_id):
                continue  # a live process executes it
            await self.bs.store.release_run(run_id)
            try:
                await self.retry_or_resume(run_id)
                resumed.append(run_id)
            except Conflict as exc:
                if not quiet:
                    log.info("not resuming %s: %s", run_id, exc.message,
                             extra={"run_id": run_id})
            except Exception:
                log.exception("could not resume run %s", run_id,
                              extra={"event": "run.resume_failed", "run_id": run_id})
        return resumed

    async def adopt_orphans_forever(self, interval: float = ADOPT_INTERVAL) -> None:
        """Resume, every `interval` seconds, runs whose process died (see above), and take
        up the runs such a process had queued or not yet begun."""
        while True:
            await asyncio.sleep(interval)
            try:
                adopted = await self.resume_interrupted(quiet=True)
                await self.take_up_waiting(older_than=ADOPT_AGE)
            except Exception:
                log.exception("looking for interrupted runs failed")
                continue
            if adopted:
                log.warning("resumed %d run(s) whose process stopped: %s", len(adopted),
                            ", ".join(adopted),
                            extra={"event": "runs.adopted", "run_ids": adopted})

    async def take_up_waiting(self, older_than: float | None = None) -> None:
        """Take up the runs left INITIALIZED by a previous process, oldest first: plugins
        take theirs (`take_up_runs`: runs queued behind a run limit wait for their turn),
        the others (interrupted before they began) start now. Called by the server after
        interrupted RUNNING runs are resumed, then again every few seconds with
        `older_than` (seconds), for the runs of a server that died (young runs may be about
        to start in the process that made them; who starts one is decided by its claim)."""
        waiting = await self.bs.store.list_runs(limit=MAX_LISTED, states=[RunState.INITIALIZED])
        born_before = time.time() - older_than if older_than is not None else float("inf")
        runs = [r for r in sorted(waiting, key=lambda r: (r.created_at, r.id))
                if r.id not in self.bs.engine.runs and r.created_at <= born_before]
        if not runs:
            return
        taken = await self.bs.hooks.take_up_runs(runs)
        for run in runs:
            if run.id not in taken:
                await self._start_waiting(run.id)

    async def _start_waiting(self, run_id: str) -> None:
        """Start a run that was stored INITIALIZED, unless its plan cannot be rebuilt or
        has a run limit (which no plugin took up: starting it would run it unlimited)."""
        snapshot = await self.bs.store.load_run(run_id)
        if snapshot is None:
            return
        try:
            plan = self.bs.plan_for_run(snapshot.run, snapshot.jobs)
            refuse_unapplied(plan)
        except BaseShiftError as exc:
            log.warning("run %s stays INITIALIZED: %s", run_id, exc, extra={"run_id": run_id})
            return
        try:
            await self.bs.engine.resume(plan, run_id)
        except BaseShiftError as exc:  # cancelled meanwhile, or claimed elsewhere
            log.info("run %s not started: %s", run_id, exc, extra={"run_id": run_id})

    async def resume(self, run_id: str) -> None:
        """Continue a stored run that no process executes: a RUNNING one where it stopped,
        an INITIALIZED one as a server takes it up (a plugin may queue it behind its run
        limit). Conflict when another live process executes it."""
        snapshot = await self.snapshot(run_id)
        waiting = snapshot.run.state is RunState.INITIALIZED
        if waiting and run_id in await self.bs.hooks.take_up_runs([snapshot.run]):
            return
        plan = self.bs.plan_for_run(snapshot.run, snapshot.jobs)
        if waiting:
            refuse_unapplied(plan)
        await self.bs.engine.resume(plan, run_id)

    async def retry_or_resume(self, run_id: str) -> None:
        snapshot = await self.snapshot(run_id)
        plan = self.bs.plan_for_run(snapshot.run, snapshot.jobs)
        await self.bs.engine.resume(plan, run_id)
