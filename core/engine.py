"""The engine: an event-driven loop that stores each round of decisions, then acts on them.

One round = drain the inbox (finished attempts, due retries, user commands), let each
`ActiveRun` decide, start attempts for the best ready jobs, store everything in ONE
transaction, and only then launch the attempts and tell observers. Only the dependants of a
finished job are re-examined; nothing rescans all jobs.

Guarantee: at-least-once per job attempt. A job whose SUCCEEDED state was stored never runs
again; an attempt that was running when the process died is retried as a new attempt.
"""
from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import time
import uuid
from collections import deque
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol

from .attempts import AttemptRunner
from .errors import BaseShiftError, Conflict, NotFound, StaleState, StoreError
from .inputs import prepare_inputs
from .plan import Plan
from .protocols import AttemptQueue, Executor, LostAttempt, QueuedAttempt, StateStore
from .records import JobRecord, RunRecord, RunSnapshot
from .runstate import ActiveRun, Effects, Launch
from .scheduler import ReadyQueue
from .states import JobState, RunState

if TYPE_CHECKING:
    from .hooks import Hooks
    from .settings import Settings

log = logging.getLogger("baseshift.engine")

Message = tuple[Any, ...]
WATCH_INTERVAL = 0.5
"""Seconds between checks for runs cancelled by another process."""


class EngineHost(Protocol):
    """What the engine needs of the application: settings, the hooks, the executor classes,
    the state store and the attempt queue (built on first use)."""

    settings: Settings
    hooks: Hooks
    executor_classes: dict[str, type[Executor]]

    @property
    def store(self) -> StateStore: ...

    @property
    def queue(self) -> AttemptQueue | None: ...


class Engine:
    """Runs workflows in this process against the configured state store."""

    def __init__(self, baseshift: EngineHost) -> None:
        self.bs = baseshift
        self.hooks = baseshift.hooks
        self.executors: dict[str, Executor] = {
            name: cls() for name, cls in baseshift.executor_classes.items()}
        self.queue: ReadyQueue[tuple[str, str]] = ReadyQueue(baseshift.settings.max_parallel)
        self.runs: dict[str, ActiveRun] = {}
        self.attempts = AttemptRunner(baseshift, self.executors)
        self._inbox: deque[Message] = deque()
        self._wake = asyncio.Event()
        self._timers: list[tuple[float, int, ActiveRun, str]] = []
        self._seq = itertools.count()
        self._tasks: dict[tuple[str, str], asyncio.Task[None]] = {}
        self._holding: dict[tuple[str, str, int], str] = {}
        self._timer_handle: asyncio.TimerHandle | None = None
        self._watch_task: asyncio.Task[None] | None = None
        self._to_stop: list[asyncio.Task[None]] = []
        self._background: set[asyncio.Task[None]] = set()
        self._stopping: set[asyncio.Task[None]] = set()
        """Cancelled attempts still cleaning up (a shell job's grace period): `stop` waits."""
        self._waiters: dict[str, list[asyncio.Future[RunRecord]]] = {}
        self._loop_task: asyncio.Task[None] | None = None
        self._failure: BaseException | None = None

    # ------------------------------------------------------------ lifecycle


    @property
    def store(self) -> StateStore:
        return self.bs.store

    @property
    def remote(self) -> AttemptQueue | None:
        """Where attempts run when not here (`baseshift worker`s); None runs them here."""
        return self.bs.queue

    async def start(self) -> None:
        # jobs run in the data dir: it must exist even when no store created it (memory)
        self.bs.settings.data_dir.mkdir(parents=True, exist_ok=True)
        if self._loop_task is None:
            self._loop_task = asyncio.create_task(self._loop(), name="baseshift-engine")
            self._watch_task = asyncio.create_task(self._watch(), name="baseshift-watch")

    async def stop(self) -> None:
        """Stop the loop and abandon running attempts; they stay RUNNING in the store and
        are retried as new attempts when the runs are resumed."""
        if self._loop_task is None:
            return
        self._loop_task.cancel()
        if self._watch_task is not None:
            self._watch_task.cancel()
        if self._timer_handle is not None:
            self._timer_handle.cancel()
        tasks = [*self._tasks.values(), *self._stopping]
        for task in tasks:
            task.cancel()
        await asyncio.gather(self._loop_task, *filter(None, [self._watch_task]), *tasks,
                             return_exceptions=True)
        self._loop_task = None
        self._tasks.clear()
        for futures in self._waiters.values():
            for f in futures:
                if not f.done():
                    f.cancel()
        for executor in self.executors.values():
            close = getattr(executor, "aclose", None)
            if close is not None:
                await close()

    # ------------------------------------------------------------ public API

    async def submit(self, plan: Plan, inputs: Mapping[str, Any], *,
                     run_id: str | None = None, start: bool = True) -> str:
        """Accept a run: check inputs, store the run and its jobs, then start it.

        With `start=False` the run is stored INITIALIZED and unclaimed (queued); `resume`
        starts it later."""
        values = prepare_inputs(plan.inputs, inputs)
        now = time.time()
        record = RunRecord(run_id or new_run_id(), plan.name, plan.version, plan.source,
                           plan.path, values, created_at=now)
        jobs = [JobRecord(record.id, j.name, j.name, handler=j.handler,
                          template=j.template.ref if j.template else None)
                for j in (*plan.jobs, *plan.handlers)]
        await self.store.create_run(record, jobs)
        if not start:
            return record.id
        if not await self.store.claim_run(record.id):
            raise Conflict(f"run '{record.id}' is claimed by another process")
        self._accept(("activate",), ActiveRun(plan, record, {j.key: j for j in jobs}))
        return record.id

    async def resume(self, plan: Plan, run_id: str, *, retry: bool = False) -> None:
        """Continue a stored run (after a crash), or with `retry`, rerun its failed jobs."""
        snapshot = await self._load_idle(run_id)
        state = snapshot.run.state
        if retry and state not in (RunState.FAILED, RunState.CANCELLED):
            raise Conflict(f"run '{run_id}' is {state.value}; only a failed or cancelled run "
                           "can be retried")
        if not retry and state.finished:
            raise Conflict(f"run '{run_id}' is already {state.value}")
        await self._claim(run_id)
        await self._forget_queued(run_id)
        active = ActiveRun(plan, snapshot.run, snapshot.jobs)
        active.running_stored = state is RunState.RUNNING and not retry
        self._accept(("retry",) if retry else ("activate",), active)

    async def rerun_from(self, plan: Plan, run_id: str, job: str) -> None:
        """Run `job` and every job downstream of it again in a finished run; the results of
        the jobs upstream are kept. The run is reopened (RUNNING) until they finish."""
        snapshot = await self._load_idle(run_id)
        if not snapshot.run.state.finished:
            raise Conflict(f"run '{run_id}' is {snapshot.run.state.value}; re-run from a job "
                           "once the run has finished (or cancel it first)")
        if job not in plan.by_name or plan.job(job).handler:
            raise NotFound(f"run '{run_id}' has no job '{job}'",
                           hint=f"its jobs: {', '.join(j.name for j in plan.jobs)}")
        await self._claim(run_id)
        await self._forget_queued(run_id)
        self._accept(("rerun", job), ActiveRun(plan, snapshot.run, snapshot.jobs))

    def deliver(self, run_id: str, key: str, *, output: Any, error: str | None) -> None:
        """Finish a job that waits for an outside call (an executor with `accept`):
        the API's complete/fail. Conflict if no attempt of it is waiting here."""
        task = self._tasks.get((run_id, key))
        accept = self._acceptor(run_id, key)
        if task is None or accept is None:
            raise Conflict(f"job '{key}' of run '{run_id}' is not waiting for a result here",
                           hint="only jobs that use an executor waiting for outside calls "
                           "(such as `manual`) can be completed or failed")
        accept(run_id, key, output, error)

    def waits_for_calls(self, run_id: str, key: str) -> bool:
        """Whether the job runs here with an executor that outside calls finish (`manual`)."""
        return self._acceptor(run_id, key) is not None

    def _acceptor(self, run_id: str, key: str) -> Any:
        run = self.runs.get(run_id)
        if run is None or key not in run.jobs:
            return None
        executor = self.executors.get(run.plan.job(run.jobs[key].name).uses)
        return getattr(executor, "accept", None)

    async def _load_idle(self, run_id: str) -> RunSnapshot:
        snapshot = await self.store.load_run(run_id)
        if snapshot is None:
            raise NotFound(f"run '{run_id}' not found")
        if run_id in self.runs:
            raise Conflict(f"run '{run_id}' is already running in this process")
        return snapshot

    async def _claim(self, run_id: str) -> None:
        if not await self.store.claim_run(run_id):
            raise Conflict(f"run '{run_id}' is being executed by another process",
                           hint="wait for it, or cancel it with `baseshift cancel`")

    async def _forget_queued(self, run_id: str) -> None:
        """Attempts a dead process queued for this run must not run beside the new ones."""
        if self.remote is not None:
            await self.remote.forget(run_id)

    def _accept(self, command: tuple[Any, ...], run: ActiveRun) -> None:
        self.runs[run.id] = run
        self._inbox.append((command[0], run, *command[1:]))
        self._wake.set()

    async def cancel(self, run_id: str, reason: str = "cancelled by user") -> bool:
        """Cancel a run active in this process; False if it is not active here."""
        if run_id not in self.runs:
            return False
        self._inbox.append(("cancel", run_id, reason))
        self._wake.set()
        return True

    async def wait(self, run_id: str) -> RunRecord:
        """Wait until a run active in this process finishes; return its final record."""
        if self._failure is not None:
            raise self._failure
        if run_id not in self.runs:
            snapshot = await self.store.load_run(run_id)
            if snapshot is None or not snapshot.run.state.finished:
                raise NotFound(f"run '{run_id}' is not active in this process")
            return snapshot.run
        future: asyncio.Future[RunRecord] = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(run_id, []).append(future)
        return await future

    # ------------------------------------------------------------ the loop

    async def _loop(self) -> None:
        try:
            while True:
                await self._wake.wait()
                self._wake.clear()
                await self._round()
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # the store failed: nothing can be trusted any more
            log.exception("engine stopped")
            self._failure = exc
            for futures in self._waiters.values():
                for f in futures:
                    if not f.done():
                        f.set_exception(exc)

    async def _watch(self) -> None:
        """Notice runs cancelled by another process (`baseshift cancel` writes the store)."""
        while True:
            await asyncio.sleep(WATCH_INTERVAL)
            watched = {i: r for i, r in self.runs.items() if r.running_stored}
            if not watched:
                continue
            states = await self.store.run_states(list(watched))
            for run_id, state in states.items():
                if state is RunState.CANCELLED and self.runs.get(run_id) is watched[run_id]:
                    self._inbox.append(("cancel", watched[run_id],
                                        "cancelled from another process"))
                    self._wake.set()

    async def _round(self) -> None:
        fx = Effects(time.time())
        while self._inbox:
            msg = self._inbox.popleft()
            try:
                self._handle(msg, fx)
            except Exception as exc:  # a bug met by one run must not stop every other run
                self._abandon(msg, exc)
        self._fire_timers(fx)
        launches: list[Launch] = []
        queued = 0
        # A job failing while being dispatched can make others ready (its failure handlers,
        # say): keep queueing and dispatching until the round decides nothing new.
        while True:
            for run, key in fx.ready[queued:]:
                spec = run.plan.job(run.jobs[key].name)
                self.queue.push((run.id, key), run.record.workflow, spec.priority,
                                run.jobs[key].ready_at or fx.now)
            queued = len(fx.ready)
            launches += self._dispatch(fx)
            if queued == len(fx.ready):
                break
        if fx.changes:
            launches = await self._store(fx, launches)
        self._mark_stored(fx)
        for task in self._to_stop:
            task.cancel()
            self._stopping.add(task)
            task.add_done_callback(self._stopping.discard)
        self._to_stop.clear()
        for launch in launches:
            self._launch(launch)
        self._arm_timers(fx)
        for event in fx.events:
            await self.hooks.track_event(event)
        for run in fx.finished:
            await self._finish(run)

    async def _store(self, fx: Effects, launches: list[Launch]) -> list[Launch]:
        """Store the round. When a shared store reports runs that another process moved
        (cancelled them, say), stop executing those runs here and store the rest. When the
        store fails (a database restart), let go of every run of the round: what was stored
        before stays true, and the runs resume from it once a server adopts them (this one
        too, within seconds, once the store answers again)."""
        while True:
            try:
                await self.store.apply(fx.changes)
                return launches
            except StaleState as exc:
                if not exc.run_ids:
                    raise
                gone, error = set(exc.run_ids), None
                log.warning("runs %s were changed by another process; no longer executed "
                            "here", ", ".join(sorted(gone)))
            except StoreError as exc:
                gone = fx.changes.run_ids() | {x.run.id for x in launches}
                error = exc
                log.error("storing a scheduling round failed (%s); runs %s stop here and "
                          "resume from their stored state", exc, ", ".join(sorted(gone)))
            fx.drop_runs(gone)
            for launch in launches:
                if launch.run.id in gone:
                    self._release(launch.run.id, launch.key, launch.number)
            launches = [x for x in launches if x.run.id not in gone]
            for run_id in gone:
                self._let_go(run_id, error)

    def _let_go(self, run_id: str, error: StoreError | None = None) -> None:
        """Forget a run another process has taken over (or that could not be stored): stop
        its attempts, free its claim."""
        self.runs.pop(run_id, None)
        self.queue.remove(lambda item: item[0] == run_id)
        for (rid, key), task in list(self._tasks.items()):
            if rid == run_id:
                del self._tasks[(rid, key)]
                self._to_stop.append(task)
        for rid, key, number in [h for h in self._holding if h[0] == run_id]:
            self._release(rid, key, number)
        task = asyncio.get_running_loop().create_task(
            self._settled_elsewhere(run_id, self._waiters.pop(run_id, []), error))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _settled_elsewhere(self, run_id: str, waiters: list[asyncio.Future[RunRecord]],
                                 error: StoreError | None) -> None:
        """Free the claim of a run let go, and answer its waiters with the stored record
        (or, when it is unfinished because the store failed, with that failure)."""
        try:
            await self.store.release_run(run_id)
            snapshot = await self.store.load_run(run_id, attempts=False)
        except BaseShiftError as exc:
            snapshot, error = None, error or StoreError(str(exc))
        for future in waiters:
            if future.done():
                continue
            if snapshot is not None and (error is None or snapshot.run.state.finished):
                future.set_result(snapshot.run)
            elif error is not None:
                future.set_exception(StoreError(
                    f"run '{run_id}' was interrupted: {error.message}",
                    hint="it resumes from its stored state when a server adopts it, or "
                    "with `baseshift resume`"))
            else:
                future.set_exception(NotFound(f"run '{run_id}' is gone from the store"))

    def _handle(self, msg: Message, fx: Effects) -> None:
        kind = msg[0]
        if kind == "done":
            _, run_id, key, number, result, error, retryable, log_text = msg
            self._release(run_id, key, number)
            run = self.runs.get(run_id)
            if run is None:
                return
            if error is None:
                run.attempt_succeeded(key, number, result, log_text, fx)
            else:
                run.attempt_failed(key, number, error, retryable, log_text, fx)
            run.drain(fx)
        elif kind == "lost":
            _, run_id, key, number, reason = msg
            self._release(run_id, key, number)
            run = self.runs.get(run_id)
            if run is not None:
                run.attempt_lost(key, number, reason, fx)
                run.drain(fx)
        elif kind in ("activate", "retry", "rerun"):
            run = msg[1]
            self.queue.set_limit(run.record.workflow, run.plan.concurrency)
            if kind == "retry":
                run.reset_for_retry(fx)
            elif kind == "rerun":
                run.reset_from(msg[2], fx)
            run.activate(fx)
        elif kind == "cancel":
            self._cancel(msg[1], fx, *msg[2:])

    def _abandon(self, msg: Message, exc: Exception) -> None:
        """Stop executing the run a message was about; it stays unfinished in the store."""
        target = msg[1]
        run_id = target.id if isinstance(target, ActiveRun) else str(target)
        log.error("run %s: internal error, no longer executed here: %r", run_id, exc,
                  exc_info=exc)
        self.runs.pop(run_id, None)
        for future in self._waiters.pop(run_id, []):
            if not future.done():
                future.set_exception(exc)

    def _cancel(self, target: str | ActiveRun, fx: Effects,
                reason: str = "cancelled by user") -> None:
        run_id = target.id if isinstance(target, ActiveRun) else target
        run = self.runs.get(run_id)
        if run is None or run.record.state.finished or (
                isinstance(target, ActiveRun) and run is not target):
            return
        self.queue.remove(lambda item: item[0] == run_id)
        for key in run.cancel(fx, reason):
            task = self._tasks.pop((run_id, key), None)
            if task is not None:
                self._to_stop.append(task)  # stopped once the cancel is stored
            self._release(run_id, key, run.jobs[key].attempts)

    def _mark_stored(self, fx: Effects) -> None:
        """Runs whose RUNNING state is now in the store may be watched for outside cancels."""
        for run_id, record in fx.changes.runs.items():
            run = self.runs.get(run_id)
            if run is not None and run.record is record and record.state is RunState.RUNNING:
                run.running_stored = True

    def _release(self, run_id: str, key: str, number: int) -> None:
        """Free the slot of an attempt exactly once, whichever of cancel or finish comes first."""
        lane = self._holding.pop((run_id, key, number), None)
        if lane is not None:
            self.queue.release(lane)

    def _fire_timers(self, fx: Effects) -> None:
        while self._timers and self._timers[0][0] <= fx.now:
            _, _, run, key = heapq.heappop(self._timers)
            if self.runs.get(run.id) is run:  # not a timer left by a cancelled activation
                run.retry_due(key, fx)

    def _arm_timers(self, fx: Effects) -> None:
        """Keep exactly one wake-up scheduled, for the earliest pending retry."""
        for due, run, key in fx.timers:
            heapq.heappush(self._timers, (due, next(self._seq), run, key))
        if self._timer_handle is not None:
            self._timer_handle.cancel()
            self._timer_handle = None
        if self._timers:
            delay = max(self._timers[0][0] - time.time(), 0.0) + 0.001
            self._timer_handle = asyncio.get_running_loop().call_later(delay, self._wake.set)

    def _dispatch(self, fx: Effects) -> list[Launch]:
        launches: list[Launch] = []
        while (picked := self.queue.pop()) is not None:
            (run_id, key), lane = picked
            run = self.runs.get(run_id)
            if run is None or run.jobs[key].state is not JobState.READY:
                self.queue.release(lane)  # cancelled while it waited
                continue
            launch = run.begin_attempt(key, fx)
            if launch is None:
                self.queue.release(lane)
                run.drain(fx)
                continue
            self._holding[(run_id, key, launch.number)] = lane
            launches.append(launch)
        return launches

    def _launch(self, launch: Launch) -> None:
        task = asyncio.create_task(self._attempt(launch))
        self._tasks[(launch.run.id, launch.key)] = task

    async def _finish(self, run: ActiveRun) -> None:
        if self.runs.get(run.id) is run:
            del self.runs[run.id]
        await self.store.release_run(run.id)
        for future in self._waiters.pop(run.id, []):
            if not future.done():
                future.set_result(run.record)

    # ------------------------------------------------------------ one attempt

    async def _attempt(self, launch: Launch) -> None:
        run = launch.run
        message: Message
        try:
            if self._runs_remotely(launch):
                message = await self._remote_attempt(launch)
            else:
                message = ("done", run.id, launch.key, launch.number,
                           *await self.attempts.run(launch))
        finally:
            if self._tasks.get((run.id, launch.key)) is asyncio.current_task():
                del self._tasks[(run.id, launch.key)]
        self._inbox.append(message)
        self._wake.set()

    def _runs_remotely(self, launch: Launch) -> bool:
        """With a queue, every attempt goes to the workers except those of executors that
        wait for calls to this process (`manual`)."""
        return self.remote is not None and self._acceptor(launch.run.id, launch.key) is None

    async def _remote_attempt(self, launch: Launch) -> Message:
        assert self.remote is not None
        ids = (launch.run.id, launch.key, launch.number)
        try:
            return ("done", *ids,
                    *await self.remote.run(QueuedAttempt(*ids, launch.spec.runs_on)))
        except LostAttempt as exc:
            return ("lost", *ids, str(exc))
        except BaseShiftError as exc:  # the queue's database failed: try another attempt
            return ("done", *ids, None, f"the attempt could not be queued: {exc}", True, "")


def new_run_id() -> str:
    """Run ids sort by creation time (a millisecond prefix) and are unique (random suffix)."""
    return f"{int(time.time() * 1000):x}-{uuid.uuid4().hex[:8]}"
