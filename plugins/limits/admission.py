"""Admission of new runs: a workflow's `runs N per KEY on conflict POLICY` applied at start.

Unfinished runs are counted from the store (RUNNING and INITIALIZED runs of the workflow,
their stored inputs giving their key), so the count is right after a restart and includes
runs started by other processes. Queued runs are stored INITIALIZED and unclaimed; they
start in creation order when a run with their key finishes (seen on `bs.live`), and
`take_up()` queues them again after a restart. Admission decisions for one workflow are
made one at a time (a lock), so two simultaneous starts cannot both take the last place.
The `run_limits` plugin (`run_limits.py`) calls this through the run hooks.
"""
from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import AsyncExitStack, asynccontextmanager, suppress
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from baseshift.core.capabilities import SharedLocks
from baseshift.core.errors import BaseShiftError, Conflict, ExpressionError, InputError
from baseshift.core.events import Event, RunStateChanged
from baseshift.core.expr import describe, evaluate, to_text
from baseshift.core.inputs import prepare_inputs
from baseshift.core.plan import ConflictPolicy, Plan, RunLimit
from baseshift.core.records import MAX_LISTED, RunRecord
from baseshift.core.states import RunState

if TYPE_CHECKING:
    from baseshift.core.appface import Runs
    from baseshift.core.engine import Engine
    from baseshift.core.hub import EventHub, Subscription
    from baseshift.core.protocols import StateStore
    from baseshift.core.records import JobRecord

log = logging.getLogger("baseshift.admission")

SETTLE_SECONDS = 5.0
"""How long `cancel-running` waits for a cancelled run to be stored as finished."""


def run_key(limit: RunLimit, inputs: Mapping[str, Any]) -> str:
    """The key of a run with these (prepared) inputs: the key expression as text.

    Raises ExpressionError when the expression cannot be evaluated on these inputs."""
    if limit.key is None:
        return ""
    return to_text(evaluate(limit.key, {"input": dict(inputs)}))


@dataclass(slots=True)
class _Queued:
    run_id: str
    plan: Plan


class AdmissionHost(Protocol):
    """What admission needs of the application: the engine, the store, the live events, the
    run service (to store a cancel), and the plan of a stored run."""

    engine: Engine
    live: EventHub

    @property
    def runs(self) -> Runs: ...

    @property
    def store(self) -> StateStore: ...

    def plan_for_run(self, run: RunRecord, jobs: dict[str, JobRecord]) -> Plan: ...


class Admission:
    """Starts runs of workflows with a run limit through the engine, applying the limit."""

    def __init__(self, baseshift: AdmissionHost) -> None:
        self.bs = baseshift
        self._locks: dict[str, asyncio.Lock] = {}
        self._queues: dict[tuple[str, str], deque[_Queued]] = {}
        self._stack: AsyncExitStack | None = None
        self._listener: asyncio.Task[None] | None = None

    # ------------------------------------------------------------ starting runs

    async def start(self, plan: Plan, inputs: Mapping[str, Any]) -> str | None:
        """Start (or queue, or refuse) a run of `plan`; returns the new run's id, or None
        when `plan` has no run limit (nothing to decide: the engine starts it).

        Under `cancel-new` a run over the limit is still created, stored CANCELLED with the
        reason as its error, and its id returned: the caller (a webhook, a schedule) gets a
        run to look at instead of an error, and the refusal is on record.

        Raises InputError when the inputs do not fit the plan or the key cannot be computed.
        """
        limit = plan.run_limit
        if limit is None:
            return None
        values = prepare_inputs(plan.inputs, inputs)
        key = _key_of_new_run(limit, values)
        if limit.policy is ConflictPolicy.QUEUE:
            await self._listen()
        async with self._exclusive(plan.name):
            if self._queues.get((plan.name, key)):
                # runs finished unseen (in another process) may have freed places
                await self._drain_locked(plan.name)
            active = await self._active(plan.name, limit, key)
            waiting = limit.policy is ConflictPolicy.QUEUE and self._queues.get((plan.name, key))
            if len(active) < limit.limit and not waiting:
                return await self.bs.engine.submit(plan, values)
            return await self._over_limit(plan, values, key, active)

    async def reopen(self, plan: Plan, run: RunRecord, action: Callable[[], Awaitable[None]]
                     ) -> bool | None:
        """Retry or re-run a finished run (`action`) only if its key has a free place: a
        reopened run counts against the workflow's run limit like a new one. Conflict
        otherwise, whatever the policy (nothing is queued or cancelled for a reopen).
        True once `action` is done; None, without calling it, when `plan` has no limit."""
        limit = plan.run_limit
        if limit is None:
            return None
        key = _stored_key(limit, run)
        async with self._exclusive(plan.name):
            active = [r for r in await self._active(plan.name, limit, key or "")
                      if r.id != run.id] if key is not None else []
            if len(active) >= limit.limit:
                raise Conflict(f"run '{run.id}' cannot run again now: {len(active)} other "
                               f"run(s) {_with_key(limit, key or '')} are unfinished "
                               f"(runs {limit.limit})",
                               hint="retry it once those runs have finished")
            await action()
            return True

    async def _over_limit(self, plan: Plan, values: dict[str, Any], key: str,
                          active: list[RunRecord]) -> str:
        limit = plan.run_limit
        assert limit is not None
        if limit.policy is ConflictPolicy.CANCEL_RUNNING:
            reason = f"cancelled: a newer run {_with_key(limit, key)} started (cancel-running)"
            for old in active[: max(len(active) - limit.limit + 1, 0)]:
                await self._stop(old.id, reason)
            return await self.bs.engine.submit(plan, values)
        run_id = await self.bs.engine.submit(plan, values, start=False)
        if limit.policy is ConflictPolicy.CANCEL_NEW:
            await self._cancel_stored(run_id, plan, _refusal(limit, key, len(active)))
            log.info("run %s of %s cancelled: over its run limit %s", run_id, plan.name,
                     _with_key(limit, key), extra={"event": "run.limit_cancelled",
                                                   "run_id": run_id, "workflow": plan.name})
        else:
            self._queues.setdefault((plan.name, key), deque()).append(_Queued(run_id, plan))
            log.info("run %s of %s queued %s", run_id, plan.name, _with_key(limit, key),
                     extra={"event": "run.queued", "run_id": run_id, "workflow": plan.name})
        return run_id

    async def _active(self, workflow: str, limit: RunLimit, key: str) -> list[RunRecord]:
        """Unfinished runs of `workflow` with `key` that are not queued, oldest first."""
        queued = {q.run_id for (name, _), runs in self._queues.items() if name == workflow
                  for q in runs}
        runs = await self.bs.store.list_runs(
            limit=MAX_LISTED, workflow=workflow, states=[RunState.RUNNING, RunState.INITIALIZED])
        mine = [r for r in runs if r.id not in queued and _stored_key(limit, r) == key]
        return sorted(mine, key=lambda r: (r.created_at, r.id))

    @asynccontextmanager
    async def _exclusive(self, workflow: str) -> AsyncIterator[None]:
        """Decide about one workflow's runs alone: one decision at a time in this process,
        and, when the store has `SharedLocks` (PostgreSQL), in every process sharing it, so
        two servers cannot both take a run limit's last place."""
        async with self._locks.setdefault(workflow, asyncio.Lock()):
            store = self.bs.store
            if not isinstance(store, SharedLocks):
                yield
                return
            async with store.exclusive(f"admission:{workflow}"):
                yield

    # ------------------------------------------------------------ cancelling

    async def _stop(self, run_id: str, reason: str) -> None:
        """Cancel a run: through the engine if it runs here, else in the store (a process
        executing it elsewhere notices the stored cancel)."""
        engine = self.bs.engine
        if await engine.cancel(run_id, reason):
            with suppress(TimeoutError, BaseShiftError):
                await asyncio.wait_for(asyncio.shield(engine.wait(run_id)), SETTLE_SECONDS)
            return
        snapshot = await self.bs.store.load_run(run_id)
        if snapshot is None or snapshot.run.state.finished:
            return
        try:
            plan = self.bs.plan_for_run(snapshot.run, snapshot.jobs)
        except BaseShiftError as exc:
            log.warning("cannot cancel run %s over the run limit: %s", run_id, exc)
            return
        await self._cancel_stored(run_id, plan, reason)

    async def _cancel_stored(self, run_id: str, plan: Plan, reason: str) -> None:
        """Store a run that no engine executes as CANCELLED, with `reason` as its error."""
        snapshot = await self.bs.store.load_run(run_id)
        if snapshot is None or snapshot.run.state.finished:
            return
        await self.bs.runs.cancel_stored(snapshot, plan, reason)

    # ------------------------------------------------------------ the queue

    async def take_up(self, runs: list[RunRecord]) -> list[str]:
        """Take up runs left INITIALIZED by a previous process (`runs`, oldest first, from the
        run service: at server start, then every few seconds those of a server that died):
        the runs of limited workflows join their queue and start when their turn comes.
        Returns their ids (those queued here already included); the run service starts the
        others, and reports those whose plan cannot be rebuilt."""
        taken: list[str] = []
        workflows: set[str] = set()
        for run in runs:
            if self._is_queued(run.id):
                taken.append(run.id)
                continue
            plan = await self._plan_of(run.id)
            if plan is None or plan.run_limit is None:
                continue
            taken.append(run.id)
            key = _stored_key(plan.run_limit, run)
            if key is None:  # its inputs no longer give a key: nothing to wait for
                await self._resume(plan, run.id)
                continue
            self._queues.setdefault((plan.name, key), deque()).append(_Queued(run.id, plan))
            workflows.add(plan.name)
        if workflows:
            await self._listen()
        for workflow in sorted(workflows):
            await self._drain(workflow)
        return taken

    async def shutdown(self) -> None:
        """Stop following finished runs (queued runs stay stored for the next start)."""
        if self._listener is not None:
            self._listener.cancel()
            with suppress(asyncio.CancelledError):
                await self._listener
            self._listener = None
        if self._stack is not None:
            await self._stack.aclose()
            self._stack = None

    def queued(self, workflow: str | None = None) -> list[str]:
        """Ids of the runs waiting for a place, in the order they will start."""
        return [q.run_id for (name, _), runs in self._queues.items()
                if workflow is None or name == workflow for q in runs]

    def _is_queued(self, run_id: str) -> bool:
        return any(q.run_id == run_id for runs in self._queues.values() for q in runs)

    async def _plan_of(self, run_id: str) -> Plan | None:
        """The plan of a stored run; None, quietly, if it cannot be rebuilt (the run
        service, left to start it, says why)."""
        snapshot = await self.bs.store.load_run(run_id)
        if snapshot is None:
            return None
        try:
            return self.bs.plan_for_run(snapshot.run, snapshot.jobs)
        except BaseShiftError:
            return None

    async def _resume(self, plan: Plan, run_id: str) -> bool:
        try:
            await self.bs.engine.resume(plan, run_id)
        except BaseShiftError as exc:  # cancelled while it waited, or claimed elsewhere
            log.info("queued run %s not started: %s", run_id, exc)
            return False
        return True

    async def _drain(self, workflow: str) -> None:
        """Start queued runs of `workflow` while their key has room, oldest first."""
        async with self._exclusive(workflow):
            await self._drain_locked(workflow)

    async def _drain_locked(self, workflow: str) -> None:
        for (name, key), runs in list(self._queues.items()):
            if name != workflow:
                continue
            while runs:
                limit = runs[0].plan.run_limit
                assert limit is not None
                if len(await self._active(workflow, limit, key)) >= limit.limit:
                    break
                entry = runs.popleft()
                if await self._resume(entry.plan, entry.run_id):
                    log.info("queued run %s of %s started", entry.run_id, workflow,
                             extra={"event": "run.dequeued", "run_id": entry.run_id,
                                    "workflow": workflow})
            if not runs:
                del self._queues[(name, key)]

    async def _listen(self) -> None:
        """Follow every run's events, subscribed before any decision is taken so that no
        run can finish unseen between counting it and waiting for it. Only done once a
        queue may form: a server without queueing workflows pays nothing per event."""
        if self._listener is not None:
            return
        self._stack = AsyncExitStack()
        events = await self._stack.enter_async_context(self.bs.live.subscribe(None))
        self._listener = asyncio.create_task(self._follow(events), name="baseshift-admission")

    async def _follow(self, events: Subscription) -> None:
        async for event in events:
            for workflow in self._affected(event):
                try:
                    await self._drain(workflow)
                except Exception:  # a store failure must not end the queue for good
                    log.exception("starting queued runs of %s failed", workflow)

    def _affected(self, event: Event | object) -> list[str]:
        """Workflows whose queue may move after `event` (all of them if events were lost)."""
        waiting = sorted({name for name, _ in self._queues})
        if not isinstance(event, Event):  # Lagged: some events were dropped
            return waiting
        if isinstance(event, RunStateChanged) and event.new.finished:
            return [event.workflow] if event.workflow in waiting else []
        return []


def _key_of_new_run(limit: RunLimit, values: Mapping[str, Any]) -> str:
    try:
        return run_key(limit, values)
    except ExpressionError as exc:
        assert limit.key is not None
        raise InputError(f"the run key {describe(limit.key)} cannot be computed from these "
                         f"inputs: {exc.message}") from None


def _stored_key(limit: RunLimit, run: RunRecord) -> str | None:
    """The key of a stored run, or None if the current key expression fails on its inputs."""
    try:
        return run_key(limit, run.inputs)
    except ExpressionError:
        return None


def _with_key(limit: RunLimit, key: str) -> str:
    return f"with key '{key}'" if limit.key is not None else "of this workflow"


def _refusal(limit: RunLimit, key: str, active: int) -> str:
    what = "another run" if active == 1 else f"{active} other runs"
    return (f"not started: {what} {_with_key(limit, key)} "
            f"{'is' if active == 1 else 'are'} unfinished (runs {limit.limit}, "
            "on conflict cancel-new)")

