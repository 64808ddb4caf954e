"""What goes into the log store: the process's own lines (a server's or a worker's, INFO and
up, collected by `core.app.logbatch.LogBatcher`) and the lines of each finished attempt's
stored log, with the failure as a line of its own.

An attempt's log is read from the store once the attempt has ended, so it is masked exactly
as the attempt log is (core/attempts.py masks secrets before storing it). The observer only
notes which attempt ended; a task of its own reads and writes, so the engine never waits on
the log store.
"""
from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from baseshift.core.app.logbatch import LogBatcher
from baseshift.core.capabilities import AttemptReads, LogLines
from baseshift.core.events import Event, JobStateChanged, RunStateChanged
from baseshift.core.logcontext import log_fields
from baseshift.core.loglines import LogLine, line_of
from baseshift.core.protocols import StateStore
from baseshift.core.records import AttemptRecord
from baseshift.core.states import JobState
from baseshift.core.tasks import cancel_and_wait

log = logging.getLogger("baseshift.logs")

MAX_ATTEMPT_LINES = 10_000
"""Lines kept of one attempt's log (its first ones), beside a line saying how many went."""
ATTEMPT_LOGGER = "baseshift.attempt"
BATCH = 200
"""Ended attempts written at once, at most."""
WORKFLOWS_KEPT = 10_000
"""Runs whose workflow is remembered (the newest), so their attempts are read alone."""


ACCESS_LOGGER = "baseshift.access"
"""The logger of the access line of each request (web/accesslog.py)."""


def process_lines(store: LogLines, source: str, *, access: bool = False,
                  traced: bool = False) -> LogBatcher:
    """A collector of this process's lines (`source`: server or worker) into `store`;
    the access line of each request only with `access`: a line per request, health probe
    and scrape would make the store grow with the traffic (stderr and a log shipper still
    get them). `traced`: traces are recorded (core/loglines.py `line_of`)."""

    async def send(batch: list[dict[str, Any]]) -> None:
        await store.append_log_lines([line_of(fields, source, traced=traced)
                                      for fields in batch])

    batcher = LogBatcher(send, name="log store")
    if not access:
        batcher.addFilter(lambda record: record.name != ACCESS_LOGGER)
    return batcher


def attempt_lines(attempt: AttemptRecord, workflow: str, worker: str | None,
                  traced: bool = False) -> list[LogLine]:
    """The lines of an ended attempt: one per line of its log, then its failure, if any;
    with `traced` (traces are recorded), each names its run's trace."""
    at = attempt.ended_at if attempt.ended_at is not None else attempt.started_at
    base = {"timestamp": at, "level": "info", "logger": ATTEMPT_LOGGER, "event": "attempt.log",
            "workflow_id": workflow, "run_id": attempt.run_id, "job": attempt.job_key,
            "attempt": attempt.number, "worker": worker}
    texts = attempt.log.splitlines()
    lines = [line_of({**base, "message": text}, "attempt", traced=traced)
             for text in texts[:MAX_ATTEMPT_LINES]]
    if len(texts) > MAX_ATTEMPT_LINES:
        lines.append(line_of({**base, "level": "warning", "event": "attempt.log-cut",
                              "message": f"{len(texts) - MAX_ATTEMPT_LINES} more lines of "
                              "this attempt's log are not in the log store"}, "attempt",
                             traced=traced))
    if attempt.state is JobState.FAILED:
        lines.append(line_of({**base, "level": "error", "event": "attempt.failed",
                              "message": f"attempt {attempt.number} of job "
                              f"{attempt.job_key} failed", "error": attempt.error or ""},
                             "attempt", traced=traced))
    return lines


@dataclass(frozen=True, slots=True)
class Ended:
    """An attempt that ended: which run, job and number, and the worker that saw it."""

    run_id: str
    job: str
    number: int
    worker: str | None


def ended_attempts(events: Sequence[Event]) -> list[Ended]:
    """The attempts `events` end (a job leaving RUNNING)."""
    running = JobState.RUNNING
    ending = [e for e in events if type(e) is JobStateChanged and e.old is running
              and e.new is not running and e.attempt > 0]
    if not ending:
        return []
    worker = log_fields().get("worker_id")
    seen_by = None if worker is None else str(worker)
    return [Ended(e.run_id, e.job, e.attempt, seen_by) for e in ending]


class AttemptLines:
    """Writes the lines of ended attempts into the log store, from a task of its own."""

    def __init__(self, store: StateStore, lines: LogLines, traced: bool = False) -> None:
        self.store = store
        self.lines = lines
        self.traced = traced
        self._queue: asyncio.Queue[Ended] = asyncio.Queue(maxsize=10_000)
        self._task: asyncio.Task[None] | None = None
        self._workflows: OrderedDict[str, str] = OrderedDict()
        self.dropped = 0

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="baseshift-attempt-lines")

    def follow(self, events: Sequence[Event]) -> None:
        """Note the attempts `events` end (to be written) and the workflow of the runs they
        start (a run's attempts are then read without the rest of the run)."""
        for event in events:
            if type(event) is RunStateChanged and event.run_id not in self._workflows:
                self._remember(event.run_id, event.workflow)
        for ended in ended_attempts(events):
            self.add(ended)

    def add(self, ended: Ended) -> None:
        try:
            self._queue.put_nowait(ended)
        except asyncio.QueueFull:  # the store is far behind: lose lines, never block a run
            self.dropped += 1

    async def flush(self) -> None:
        """Wait until every attempt noted so far is written (tests, shutdown)."""
        await self._queue.join()

    async def stop(self) -> None:
        if self._task is not None and not self._task.done():
            await asyncio.wait([asyncio.ensure_future(self.flush())], timeout=10)
        await cancel_and_wait(self._task)
        self._task = None

    async def _run(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while not self._queue.empty() and len(batch) < BATCH:
                batch.append(self._queue.get_nowait())
            try:
                await self._write(batch)
            except Exception as exc:  # the log store is not the system of record
                log.warning("could not store the log lines of %d attempts: %s", len(batch), exc)
            finally:
                for _ in batch:
                    self._queue.task_done()

    async def _write(self, batch: list[Ended]) -> None:
        """The lines of a batch of ended attempts, read by run: only those attempts when
        the store can (`AttemptReads`), else the run with all its attempts."""
        by_run: dict[str, list[Ended]] = {}
        for ended in batch:
            by_run.setdefault(ended.run_id, []).append(ended)
        lines: list[LogLine] = []
        for run_id, ends in by_run.items():
            wanted = {(e.job, e.number): e.worker for e in ends}
            found = await self._attempts(run_id, list(wanted))
            if found is None:
                continue
            workflow, attempts = found
            for attempt in attempts:
                key = (attempt.job_key, attempt.number)
                if key in wanted:
                    lines += attempt_lines(attempt, workflow, wanted[key], self.traced)
        if lines:
            await self.lines.append_log_lines(lines)

    async def _attempts(self, run_id: str, keys: list[tuple[str, int]]
                        ) -> tuple[str, list[AttemptRecord]] | None:
        """The workflow of run `run_id` and its attempts `keys` as stored (None: no such
        run). A large fan-out's attempts end in batches of `BATCH`: reading the whole run
        for each batch made the work grow with the square of the run's size."""
        store = self.store
        if not isinstance(store, AttemptReads):
            snapshot = await store.load_run(run_id)
            return None if snapshot is None else (snapshot.run.workflow, snapshot.attempts)
        workflow = self._workflows.get(run_id)
        if workflow is None:  # a run started before this process saw it: read it once
            snapshot = await store.load_run(run_id, attempts=False)
            if snapshot is None:
                return None
            workflow = self._remember(run_id, snapshot.run.workflow)
        return workflow, await store.load_attempts(run_id, keys)

    def _remember(self, run_id: str, workflow: str) -> str:
        self._workflows[run_id] = workflow
        if len(self._workflows) > WORKFLOWS_KEPT:
            self._workflows.popitem(last=False)
        return workflow
