"""The `baseshift worker` loop: executes the attempts that `baseshift serve` (or
`baseshift run`) queues in PostgreSQL (`queue = "postgres"`, see plugins/queue/pg_queue.py).

A worker claims up to `--concurrency` rows at once with `FOR UPDATE SKIP LOCKED` (workers
never wait on each other's rows), only rows whose labels it has all of (`runs-on`). It renews
its lease on them every `lease / 3` seconds; the scheduling process gives the attempt to
another worker when a lease runs out (the worker was killed, or lost the database). Claims
wait on `LISTEN bs_work`, not a busy poll; a slow safety poll covers lost notifications,
and after a database outage the LISTEN connection comes back and catches up at once
(`pg_listen`).

A worker rebuilds each attempt exactly as the scheduling process would run it: the run's
plan from its stored source, the job's scope from the stored records, secrets resolved here.
"""
from __future__ import annotations

import asyncio
import dataclasses
import logging
import signal
import sys
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import psycopg

from baseshift.core.attempts import AttemptRunner, Launch, Outcome, claimed_attempt
from baseshift.core.command import ExitCode
from baseshift.core.errors import BaseShiftError, StoreError
from baseshift.core.logcontext import log_bound
from baseshift.core.stash import WORKING

from ..storage.pg_connect import PgSession, PgTarget
from .pg_listen import PgListener
from .pg_queue import (
    Channels,
    lease_seconds,
    notify,
    process_id,
    require_shared_store,
    result_text,
)

if TYPE_CHECKING:
    from baseshift.core.app.application import BaseShift
    from baseshift.core.plan import Plan
    from baseshift.core.records import JobRecord, RunRecord

log = logging.getLogger("baseshift.worker")

SAFETY_POLL = 5.0
"""Seconds between claims when no notification arrives (one may be lost on a reconnect)."""
PLAN_CACHE = 256

_CLAIM = (
    "UPDATE job_queue SET state = 'leased', worker = %(worker)s, "
    "leased_until = now() + make_interval(secs => %(lease)s) "
    "WHERE id IN (SELECT id FROM job_queue WHERE state = 'queued' "
    "AND labels <@ %(labels)s::text[] ORDER BY id LIMIT %(n)s FOR UPDATE SKIP LOCKED) "
    "RETURNING id, run_id, job_key, number")
_RENEW = ("UPDATE job_queue SET leased_until = now() + make_interval(secs => %s) "
          "WHERE worker = %s AND state = 'leased' AND id <> ALL(%s) RETURNING id")
_STORE = (
    "UPDATE job_queue q SET state = 'done', result = v.result::json "
    "FROM unnest(%s::bigint[], %s::text[]) AS v(id, result) "
    "WHERE q.id = v.id AND q.worker = %s AND q.state = 'leased' RETURNING q.owner")
_ALIVE = ("INSERT INTO worker_heartbeats (worker, labels) VALUES (%s, %s::text[]) "
          "ON CONFLICT (worker) DO UPDATE SET seen_at = now()")
_GONE = "DELETE FROM worker_heartbeats WHERE worker = %s OR seen_at < now() - interval '1 day'"
_HAND_BACK = ("UPDATE job_queue SET state = 'queued', worker = NULL, leased_until = NULL "
              "WHERE worker = %s AND state = 'leased'")


@dataclasses.dataclass(frozen=True, slots=True)
class Claimed:
    id: int
    run_id: str
    key: str
    number: int


class Worker:
    """Claims queued attempts and executes them with this process's executors."""

    def __init__(self, bs: BaseShift, target: PgTarget, *, labels: Sequence[str] = (),
                 concurrency: int = 16, lease: float = 15.0) -> None:
        self.bs = bs
        self.target = target
        self.labels = sorted(set(labels))
        self.concurrency = concurrency
        self.lease = lease
        self.id = process_id("worker")
        self.runner = AttemptRunner(bs, bs.executors)
        self.active: dict[int, asyncio.Task[None]] = {}
        self.executed = 0
        self.channels = Channels.of(target)
        self._db = PgSession(target, "the worker's database call")
        self._listener = PgListener(target, [self.channels.work, self.channels.cancel],
                                    self._notified, what=f"worker {self.id}", log=log,
                                    caught_up=self._missed_notifications)
        self._wake = asyncio.Event()
        self._results: list[tuple[int, Outcome]] = []
        self._unstored: dict[int, float] = {}
        """Rows whose result could not be stored, with when: never renewed again (forgotten
        once their lease has surely run out, so the set does not grow for ever)."""
        self._storing: asyncio.Task[None] | None = None
        self._plans: dict[str, Plan] = {}

    async def run(self, stop: asyncio.Event) -> None:
        """Work until `stop` is set; then hand unfinished claims back to the queue. Every
        line logged meanwhile carries the worker's id (`worker_id`)."""
        with log_bound(worker_id=self.id):
            await self._run(stop)

    async def _run(self, stop: asyncio.Event) -> None:
        await self._db.connect()
        await self._listener.start()
        try:
            await self._alive()
        except BaseShiftError as exc:
            log.error("could not show life: %s", exc)
        helpers = [asyncio.create_task(self._heartbeat())]
        log.info("worker %s joined (labels: %s, concurrency %d)", self.id,
                 ", ".join(self.labels) or "none", self.concurrency,
                 extra={"event": "worker.joined", "labels": self.labels,
                        "concurrency": self.concurrency})
        try:
            while not stop.is_set():
                try:
                    claimed = await self._claim() if len(self.active) < self.concurrency else []
                except BaseShiftError as exc:  # the database is away: try again shortly
                    log.error("could not claim attempts: %s", exc)
                    claimed = []
                if claimed:
                    await self._start(claimed)
                    continue
                self._wake.clear()
                waits = [asyncio.create_task(self._wake.wait()),
                         asyncio.create_task(stop.wait())]
                await asyncio.wait(waits, timeout=SAFETY_POLL,
                                   return_when=asyncio.FIRST_COMPLETED)
                for w in waits:
                    w.cancel()
        finally:
            await self._shut_down(helpers)

    async def _shut_down(self, helpers: list[asyncio.Task[None]]) -> None:
        for task in [*helpers, *self.active.values()]:
            task.cancel()
        await asyncio.gather(*helpers, *self.active.values(), return_exceptions=True)
        if self._storing is not None:
            await asyncio.gather(self._storing, return_exceptions=True)
        await self._store_results()
        try:
            await self._db.execute(_HAND_BACK, (self.id,))
            await notify(self._db, self.channels.work)
            await self._db.execute(_GONE, (self.id,))
        except BaseShiftError as exc:
            log.warning("could not hand back claimed attempts: %s", exc)
        await self._listener.stop()
        await self._db.close()
        log.info("worker %s left after %d attempt(s)", self.id, self.executed,
                 extra={"event": "worker.left", "executed": self.executed})

    # ------------------------------------------------------------ claiming

    async def _claim(self) -> list[Claimed]:
        rows = await self._db.execute(_CLAIM, {
            "worker": self.id, "lease": self.lease, "labels": self.labels,
            "n": self.concurrency - len(self.active)})
        return [Claimed(int(r[0]), str(r[1]), str(r[2]), int(r[3])) for r in rows]

    async def _start(self, claimed: list[Claimed]) -> None:
        by_run: dict[str, list[Claimed]] = {}
        for c in claimed:
            by_run.setdefault(c.run_id, []).append(c)
        for run_id, items in by_run.items():
            try:
                launches = await self._launches(run_id, items)
            except StoreError as exc:  # the store is away for now: another worker, or later
                log.error("could not read run %s, its attempts go back to the queue: %s",
                          run_id, exc)
                await self._hand_back([c.id for c in items])
                continue
            except Exception as exc:  # the run cannot be prepared here: fail its attempts
                message = f"the worker could not prepare the attempt: {exc}"
                for c in items:
                    self._finished(c.id, Outcome(None, message, False, ""))
                continue
            for c, launch in launches:
                if launch is None:
                    self._finished(c.id, Outcome(None, "the job was not running when the "
                                               "worker took it", False, ""))
                else:
                    self.active[c.id] = asyncio.create_task(self._execute_attempt(c, launch))

    async def _hand_back(self, row_ids: list[int]) -> None:
        """Return claimed rows to the queue; if even that fails, their leases run out."""
        try:
            await self._db.execute(_HAND_BACK + " AND id = ANY(%s)", (self.id, row_ids))
        except BaseShiftError as exc:
            log.warning("could not hand back claimed attempts: %s", exc)

    async def _launches(self, run_id: str, items: list[Claimed]
                        ) -> list[tuple[Claimed, Launch | None]]:
        snapshot = await self.bs.store.load_run(run_id, attempts=False)
        if snapshot is None:
            raise LookupError(f"run {run_id} is not in the store")
        plan = self._plans.get(run_id)
        if plan is None:
            plan = await self._plan(snapshot.run, snapshot.jobs)
        return [(c, claimed_attempt(plan, snapshot, c.key, c.number)) for c in items]

    async def _plan(self, run: RunRecord, jobs: dict[str, JobRecord]) -> Plan:
        try:
            plan = self.bs.plan_for_run(run, jobs)
        except BaseShiftError:  # a template published since the worker started
            await self.bs.catalog.refresh(force=True)
            plan = self.bs.plan_for_run(run, jobs)
        if len(self._plans) >= PLAN_CACHE:
            self._plans.pop(next(iter(self._plans)))
        self._plans[run.id] = plan
        return plan

    async def _execute_attempt(self, c: Claimed, launch: Launch) -> None:
        try:
            outcome = await self.runner.run(launch)
        finally:
            self.active.pop(c.id, None)
            self._wake.set()  # a slot is free
        self.executed += 1
        self._finished(c.id, outcome)

    # ------------------------------------------------------------ results

    def _finished(self, row_id: int, outcome: Outcome) -> None:
        self._results.append((row_id, outcome))
        if self._storing is None or self._storing.done():
            self._storing = asyncio.create_task(self._store_soon())

    async def _store_soon(self) -> None:
        await asyncio.sleep(0)  # results finishing in the same tick share the statement
        await self._store_results()

    async def _store_results(self) -> None:
        while self._results:
            batch, self._results = self._results, []
            try:
                rows = await self._db.execute(_STORE, (
                    [i for i, _ in batch], [result_text(o) for _, o in batch], self.id))
                for owner in {str(r[0]) for r in rows}:
                    await notify(self._db, self.channels.done, owner)
            except BaseShiftError as exc:  # the lease runs out: the attempt runs again
                log.error("could not store %d result(s): %s", len(batch), exc)
                failed_at = time.monotonic()
                self._unstored.update((i, failed_at) for i, _ in batch)

    # ------------------------------------------------------------ leases and wake-ups

    async def _notified(self, note: psycopg.Notify) -> None:
        if note.channel == self.channels.work:
            self._wake.set()
        elif note.payload == self.id:
            await self._renew()

    async def _missed_notifications(self) -> None:
        """After listening again: claim the work queued while the listener was away, and
        stop attempts cancelled meanwhile, now rather than at the next timer."""
        await self._db.renew()
        self._wake.set()
        await self._renew()

    async def _heartbeat(self) -> None:
        while True:
            await asyncio.sleep(self.lease / 3)
            try:
                await self._renew()
            except BaseShiftError as exc:
                log.error("could not renew leases: %s", exc)
            try:  # after the leases, and apart: they matter more
                await self._alive()
            except BaseShiftError as exc:
                log.error("could not show life: %s", exc)

    async def _alive(self) -> None:
        """Show life (`worker_heartbeats`), busy or idle: the `no_worker` alert reads it."""
        await self._db.execute(_ALIVE, (self.id, "{" + ",".join(self.labels) + "}"))

    async def _renew(self) -> None:
        """Extend the leases of the rows this worker holds; stop attempts whose rows were
        withdrawn (cancelled, or the run was taken over)."""
        if not self.active:
            return
        # not rows whose result could not be stored: their leases must run out, so that
        # their server runs them again instead of waiting as long as this worker is busy
        expired = time.monotonic() - 2 * self.lease
        self._unstored = {i: t for i, t in self._unstored.items() if t > expired}
        held = {int(r[0]) for r in await self._db.execute(
            _RENEW, (self.lease, self.id, sorted(self._unstored)))}
        for row_id, task in list(self.active.items()):
            if row_id not in held and not task.done():
                task.cancel()


async def work(settings: Any, labels: list[str], concurrency: int | None,
                grpc: str | None) -> int:
    from baseshift.core.app.application import BaseShift

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    bs = BaseShift(settings)
    bs.stash[WORKING] = True
    async with bs:
        await bs.catalog.refresh(force=True)
        server = await _grpc_server(bs, grpc) if grpc else None
        try:
            if settings.database_url:
                require_shared_store(settings, "baseshift worker")
                worker = Worker(bs, PgTarget.required(settings), labels=labels,
                                concurrency=concurrency or settings.max_parallel,
                                lease=lease_seconds(settings))
                print(f"worker {worker.id} ready (labels: {', '.join(labels) or 'none'}, "
                      f"concurrency {worker.concurrency})", flush=True)
                await worker.run(stop)
                print(f"worker stopped after {worker.executed} attempt(s)", file=sys.stderr)
            else:
                await stop.wait()
        finally:
            if server is not None:
                await server.stop(5.0)
    return ExitCode.OK


async def _grpc_server(bs: BaseShift, address: str) -> Any:
    from ..grpc.service import JobExecutorServer

    server = JobExecutorServer(bs, address)
    port = await server.start()
    print(f"gRPC JobExecutor serving on {address.rsplit(':', 1)[0]}:{port}", flush=True)
    return server
