"""The PostgreSQL attempt queue (`queue = "postgres"`): the scheduling side.

The engine's attempts become rows of `job_queue` (created by the PostgreSQL store's
migrations); `baseshift worker`s claim them with `FOR UPDATE SKIP LOCKED` (see
`plugins/queue/worker.py`). Everything is event-driven:

- rows queued in one event-loop tick are inserted by one statement, then `NOTIFY bs_work`
  wakes the workers;
- a worker stores a result in its row and `NOTIFY bs_done, '<owner>'`; the owner (this
  process) takes every finished row of its own in one `DELETE ... RETURNING`;
- a timer every `lease / 2` seconds (not a busy poll) turns rows whose lease ran out into
  `LostAttempt`s and catches results whose notification was missed.

The LISTEN connection survives database outages and catches up when it is back
(`pg_listen`); channel names carry the schema (`Channels`).

Why PostgreSQL rather than Redis Streams: the queue row, the job state and the lease live in
the same database, so "claimed" and "result stored" are transactions against the records
they are about, with no second system to keep consistent; and a deployment that runs the
PostgreSQL store needs nothing more. docs/workers.md has the measurements.
"""
from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import socket
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import psycopg

from baseshift.core.config import option
from baseshift.core.errors import ConfigError, StoreError
from baseshift.core.json_text import dumps_compact
from baseshift.core.protocols import LostAttempt, QueuedAttempt
from baseshift.core.settings import Settings

from ..storage.pg_connect import PgSession, PgTarget
from .pg_listen import PgListener

log = logging.getLogger("baseshift.queue")

CHANNEL_MAX = 63
"""Bytes in a PostgreSQL identifier, so in a channel name (NAMEDATALEN - 1)."""
DEFAULT_LEASE = 15.0
"""Seconds a claim lasts unless its worker renews it; a dead worker's attempts run again
after at most this long."""

Outcome = tuple[Any, str | None, bool, str]


@dataclass(frozen=True, slots=True)
class Channels:
    """The notification channels of the queue in one schema. PostgreSQL channels belong to
    the database, not to a schema: without the schema in their names, two stores in one
    database would wake each other (and a server collect its outcomes for nothing)."""

    work: str
    done: str
    cancel: str

    @classmethod
    def of(cls, target: PgTarget) -> Channels:
        return cls(*(channel_name(base, target.schema)
                     for base in ("bs_work", "bs_done", "bs_cancel")))


def channel_name(base: str, schema: str) -> str:
    """`base` alone in schema `public` (the names a deployment in one schema always used,
    so processes of different versions still wake each other during an upgrade), else
    `base_schema`, or a digest of the schema where that name would be too long."""
    if schema == "public":
        return base
    name = f"{base}_{schema}"
    if len(name.encode()) <= CHANNEL_MAX:
        return name
    return f"{base}_{hashlib.blake2b(schema.encode(), digest_size=16).hexdigest()}"


async def notify(db: PgSession, channel: str, payload: str = "") -> None:
    """`NOTIFY channel, payload` (as a function call, since channel names are data here)."""
    await db.execute("SELECT pg_notify(%s, %s)", (channel, payload))


def lease_seconds(settings: Settings) -> float:
    return option(settings, "queue_postgres", "lease", DEFAULT_LEASE)


def require_shared_store(settings: Settings, what: str) -> None:
    """Workers read the runs they execute from the store: it must be the shared one."""
    if settings.store != "postgres":
        raise ConfigError(f"{what} needs store = \"postgres\" (the store is "
                          f"{settings.store!r}): workers read the runs from the database",
                          hint="set store = \"postgres\" and database_url in baseshift.toml")


def process_id(role: str) -> str:
    """A name for this process in the queue: host, pid and a random part."""
    return f"{role}-{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


class PostgresAttemptQueue:
    """Queues this process's attempts for workers and waits for their outcomes."""

    kind: ClassVar[str] = "queue"
    name: ClassVar[str] = "postgres"

    def __init__(self, target: PgTarget, lease: float = DEFAULT_LEASE) -> None:
        self.target = target
        self.lease = lease
        self.owner = process_id("server")
        self.channels = Channels.of(target)
        self._db = PgSession(target, "the attempt queue")
        self._listener = PgListener(target, [self.channels.done], self._notified,
                                    what="the attempt queue", log=log,
                                    caught_up=self._missed_outcomes)
        self._outbox: list[tuple[QueuedAttempt, asyncio.Future[int],
                                 asyncio.Future[Outcome]]] = []
        self._flushing: asyncio.Task[None] | None = None
        self._waiting: dict[int, asyncio.Future[Outcome]] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._withdrawing: set[asyncio.Task[None]] = set()
        self._collect = asyncio.Event()
        self.lease_expiries = 0
        """Attempts of this process whose worker stopped renewing its lease (metrics)."""

    @classmethod
    def from_settings(cls, settings: Settings) -> PostgresAttemptQueue:
        require_shared_store(settings, "queue = \"postgres\"")
        return cls(PgTarget.required(settings), lease_seconds(settings))

    async def open(self) -> None:
        await self._db.connect()
        await self._listener.start()
        self._tasks = [asyncio.create_task(self._collector(), name="queue-collect"),
                       asyncio.create_task(self._reaper(), name="queue-reaper")]

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        await self._listener.stop()
        await self._db.close()

    async def ping(self) -> None:
        """The queue's database answers (the readiness check, `Pingable`)."""
        await self._db.execute("SELECT 1")

    # ------------------------------------------------------------ the engine's side

    async def run(self, attempt: QueuedAttempt) -> Outcome:
        loop = asyncio.get_running_loop()
        queued: asyncio.Future[int] = loop.create_future()
        outcome: asyncio.Future[Outcome] = loop.create_future()
        self._outbox.append((attempt, queued, outcome))
        if self._flushing is None or self._flushing.done():
            self._flushing = asyncio.create_task(self._flush())
        row_id: int | None = None
        try:
            row_id = await asyncio.shield(queued)
            return await outcome
        except asyncio.CancelledError:
            if row_id is None and not queued.done():
                # cancelled while its insert is in flight: withdraw the row once it exists
                queued.add_done_callback(self._withdraw_when_queued)
            elif row_id is None and not queued.cancelled() and queued.exception() is None:
                row_id = queued.result()
            if row_id is not None:
                await asyncio.shield(self._withdraw(row_id))
            raise
        finally:
            if row_id is not None:
                self._waiting.pop(row_id, None)

    def _withdraw_when_queued(self, queued: asyncio.Future[int]) -> None:
        if queued.cancelled() or queued.exception() is not None:
            return
        row_id = queued.result()
        self._waiting.pop(row_id, None)
        task = asyncio.get_running_loop().create_task(self._withdraw(row_id))
        self._withdrawing.add(task)
        task.add_done_callback(self._withdrawing.discard)

    async def depth(self) -> dict[str, int]:
        """Rows of the shared queue by state (`queued`, `leased`, `done`), every server's."""
        rows = await self._db.execute("SELECT state, count(*) FROM job_queue GROUP BY state")
        return {str(state): int(n) for state, n in rows}

    async def waiting(self) -> tuple[int, float | None]:
        """Attempts queued but not claimed (every server's), and how long (seconds, by the
        database's clock) the oldest has waited; None when none waits (`queue_lag`)."""
        rows = await self._db.execute(
            "SELECT count(*), extract(epoch FROM now() - min(created_at)) FROM job_queue "
            "WHERE state = 'queued'")
        count, oldest = rows[0]
        return int(count), None if oldest is None else max(0.0, float(oldest))

    async def last_worker_seen(self) -> float | None:
        """Seconds since any worker last showed life (`worker_heartbeats`, by the
        database's clock); None when no worker ever did (`no_worker`)."""
        rows = await self._db.execute(
            "SELECT extract(epoch FROM now() - max(seen_at)) FROM worker_heartbeats")
        seen = rows[0][0] if rows else None
        return None if seen is None else max(0.0, float(seen))

    async def forget(self, run_id: str) -> None:
        rows = await self._db.execute(
            "DELETE FROM job_queue WHERE run_id = %s RETURNING worker", (run_id,))
        await self._tell_workers({str(r[0]) for r in rows if r[0]})

    async def _flush(self) -> None:
        """Insert the attempts queued so far in one statement, wake the workers, and repeat
        while more were queued meanwhile."""
        await asyncio.sleep(0)  # let the rest of this round's launches join the batch
        while self._outbox:
            batch, self._outbox = self._outbox, []
            await self._insert(batch)

    async def _insert(self, batch: list[tuple[QueuedAttempt, asyncio.Future[int],
                                              asyncio.Future[Outcome]]]) -> None:
        try:
            rows = await self._db.execute(
                "INSERT INTO job_queue (owner, run_id, job_key, number, labels) "
                "SELECT %s, r, k, n, l::text[] "
                "FROM unnest(%s::text[], %s::text[], %s::int[], %s::text[]) AS u(r, k, n, l) "
                "RETURNING id, run_id, job_key, number",
                (self.owner, [a.run_id for a, _, _ in batch], [a.job for a, _, _ in batch],
                 [a.number for a, _, _ in batch],
                 ["{" + ",".join(a.labels) + "}" for a, _, _ in batch]))
            await notify(self._db, self.channels.work)
        except Exception as exc:  # each waiting attempt gets the error
            for _, future, _ in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        except asyncio.CancelledError:
            for _, future, _ in batch:
                future.cancel()
            raise
        ids = {(str(r[1]), str(r[2]), int(r[3])): int(r[0]) for r in rows}
        for attempt, queued, outcome in batch:
            row_id = ids[(attempt.run_id, attempt.job, attempt.number)]
            self._waiting[row_id] = outcome
            if not queued.done():
                queued.set_result(row_id)

    async def _withdraw(self, row_id: int) -> None:
        """Stop a cancelled attempt: its row goes, and its worker is told."""
        try:
            rows = await self._db.execute("DELETE FROM job_queue WHERE id = %s RETURNING worker",
                                       (row_id,))
            await self._tell_workers({str(r[0]) for r in rows if r[0]})
        except (StoreError, RuntimeError) as exc:
            log.warning("could not withdraw queued attempt %s: %s", row_id, exc)

    async def _tell_workers(self, workers: set[str]) -> None:
        for worker in workers:
            await notify(self._db, self.channels.cancel, worker)

    # ------------------------------------------------------------ outcomes

    async def _notified(self, note: psycopg.Notify) -> None:
        if note.payload == self.owner:
            self._collect.set()

    async def _missed_outcomes(self) -> None:
        """After listening again: take the outcomes notified while the listener was away
        now, not at the next lease check."""
        await self._db.renew()
        self._collect.set()

    async def _collector(self) -> None:
        while True:
            await self._collect.wait()
            self._collect.clear()
            await self._take_finished()

    async def _take_finished(self) -> None:
        try:
            rows = await self._db.execute(
                "DELETE FROM job_queue WHERE owner = %s AND state = 'done' "
                "RETURNING id, result", (self.owner,))
        except StoreError as exc:
            log.warning("could not read finished attempts: %s", exc)
            return
        for row_id, result in rows:
            future = self._waiting.get(int(row_id))
            if future is not None and not future.done():
                future.set_result(_outcome(result))

    async def _reaper(self) -> None:
        while True:
            await asyncio.sleep(self.lease / 2)
            await self._take_finished()
            try:
                rows = await self._db.execute(
                    "DELETE FROM job_queue WHERE owner = %s AND state = 'leased' "
                    "AND leased_until < now() RETURNING id, worker", (self.owner,))
            except StoreError as exc:
                log.warning("could not check leases: %s", exc)
                continue
            self.lease_expiries += len(rows)
            for row_id, worker in rows:
                future = self._waiting.get(int(row_id))
                if future is not None and not future.done():
                    future.set_exception(LostAttempt(
                        f"worker {worker} stopped renewing its lease for {self.lease:g}s"))
            _log_lost(rows, self.lease)


def _log_lost(rows: Sequence[Any], lease: float) -> None:
    """A line per worker whose leases ran out: it stopped (killed, or cut off from the
    database); its attempts run again."""
    lost: dict[str, int] = {}
    for _, worker in rows:
        lost[str(worker)] = lost.get(str(worker), 0) + 1
    for worker, count in sorted(lost.items()):
        log.warning("worker %s lost: it stopped renewing its lease for %gs; %d attempt(s) "
                    "will run again", worker, lease, count,
                    extra={"event": "worker.lost", "worker_id": worker, "attempts": count})


def result_text(outcome: Outcome) -> str:
    """How a worker stores an attempt's outcome in its `job_queue` row (`_outcome` reads it)."""
    output, error, retryable, log_text = outcome
    return dumps_compact({"output": output, "error": error, "retryable": retryable,
                          "log": log_text})


def _outcome(result: Any) -> Outcome:
    data = result if isinstance(result, dict) else json.loads(result)
    return data.get("output"), data.get("error"), bool(data.get("retryable")), \
        str(data.get("log") or "")
