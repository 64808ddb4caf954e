"""Job results as MongoDB documents (`results = "mongo"`): each succeeded job's output is also
written to the `job_results` collection, for consumers that read documents.

Runs stay in the state store, the system of record; this is a copy made by a `track_event`
observer. The observer only notes which jobs succeeded: a background writer loads their
outputs from the state store and upserts them, so the engine never waits for MongoDB and a
MongoDB outage delays the copies (retried with back-off) instead of the runs.
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Sequence
from contextlib import suppress
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ClassVar

from baseshift.core.errors import ConfigError
from baseshift.core.events import Event, JobStateChanged
from baseshift.core.hookspecs import hookimpl
from baseshift.core.protocols import StateStore
from baseshift.core.records import JobRecord, RunRecord
from baseshift.core.registry import Backend
from baseshift.core.retention import RESULT_COPIES
from baseshift.core.secretvalues import hidden
from baseshift.core.stash import StashKey
from baseshift.core.states import JobState
from baseshift.core.tasks import Backoff

from .documents import Document, MongoConnection, SharesMongoConnection, mongo_url

if TYPE_CHECKING:
    from pymongo.collection import Collection

    from baseshift.core.appface import App
    from baseshift.core.settings import Settings

log = logging.getLogger("baseshift.results_mongo")

COLLECTION = "job_results"
INT64 = (-(2**63), 2**63 - 1)
RETRY_FIRST, RETRY_MAX = 0.5, 30.0
"""Back-off (seconds) between tries while MongoDB fails."""


def job_id(run_id: str, key: str) -> str:
    """The document key of one job of one run: `<run_id>/<job_key>`."""
    return f"{run_id}/{key}"


def bson_safe(value: Any) -> Any:
    """`value` as BSON can hold it: integers beyond 64 bits (valid JSON, not valid BSON)
    become their decimal string."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return value if INT64[0] <= value <= INT64[1] else str(value)
    if isinstance(value, dict):
        return {k: bson_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [bson_safe(v) for v in value]
    return value


def result_document(run: RunRecord, job: JobRecord) -> Document:
    """The seed's `job_results` document (`job_id`, `result`, `timestamp`) for a succeeded
    job, with its run, workflow and job key; `timestamp` is when the job ended, to the
    millisecond (what a BSON date holds). Sealed secret output fields are `***`."""
    ended = datetime.fromtimestamp(job.ended_at if job.ended_at is not None
                                   else run.created_at, UTC)
    return {"job_id": job_id(run.id, job.key), "run_id": run.id, "workflow": run.workflow,
            "job": job.key, "result": bson_safe(hidden(job.output)),
            "timestamp": ended.replace(microsecond=ended.microsecond // 1000 * 1000)}


class MongoResults:
    """The `job_results` collection: upserts by `job_id`, and the reads consumers need."""

    def __init__(self, connection: MongoConnection) -> None:
        self.connection = connection

    @property
    def _col(self) -> Collection[Document]:
        return self.connection.collection(COLLECTION)

    async def ensure_indexes(self) -> None:
        def create() -> None:
            self._col.create_index("job_id", unique=True, name="job_id")
            self._col.create_index("run_id", name="run_id")

        await self.connection.run(f"creating the indexes of {COLLECTION}", create)

    async def put(self, docs: Sequence[Document]) -> None:
        """Insert or replace each document by its `job_id` (a re-run job gets its new
        output). A document MongoDB can never hold (a key with a NUL byte, over 16 MB) is
        logged and skipped: retrying it would hold it pending for ever."""
        from bson.errors import InvalidDocument
        from pymongo.errors import WriteError

        def write() -> None:
            for doc in docs:
                try:
                    self._replace(doc)
                except (InvalidDocument, WriteError) as exc:  # this document, not an outage
                    log.error("job result %s cannot be stored in MongoDB: %s; skipped",
                              doc["job_id"], exc)

        await self.connection.run("writing job results", write)

    def _replace(self, doc: Document) -> None:
        from pymongo.errors import DuplicateKeyError

        try:
            self._col.replace_one({"job_id": doc["job_id"]}, doc, upsert=True)
        except DuplicateKeyError:  # another server inserted it first: now replace
            self._col.replace_one({"job_id": doc["job_id"]}, doc, upsert=True)

    async def get_result(self, job_id: str) -> Document | None:
        """The document of one job (`<run_id>/<job_key>`), or None."""
        return await self.connection.run("reading a job result", self._col.find_one,
                                         {"job_id": job_id}, {"_id": 0})

    async def prune(self, before: float, keep: Iterable[str], dry_run: bool = False) -> int:
        """Delete the documents of jobs that ended before `before` (epoch seconds), except
        those of runs in `keep` (on legal hold, unfinished); returns how many (would) go."""
        query: Document = {"timestamp": {"$lt": datetime.fromtimestamp(before, UTC)},
                           "run_id": {"$nin": sorted(keep)}}

        def remove() -> int:
            if dry_run:
                return int(self._col.count_documents(query))
            return int(self._col.delete_many(query).deleted_count)

        return await self.connection.run("pruning job results", remove)

    async def erase_run(self, run_id: str) -> int:
        """Delete every document of run `run_id` (its erasure); returns how many."""
        def remove() -> int:
            return int(self._col.delete_many({"run_id": run_id}).deleted_count)

        return await self.connection.run("erasing job results", remove)

    async def run_results(self, run_id: str) -> list[Document]:
        """The documents of one run's succeeded jobs, by job key."""
        def find() -> list[Document]:
            return list(self._col.find({"run_id": run_id}, {"_id": 0}, sort=[("job", 1)]))

        return await self.connection.run("reading job results", find)


class ResultWriter:
    """Copies succeeded jobs' outputs to `job_results` in the background, run by run."""

    def __init__(self, store: StateStore, results: MongoResults, *, owns_connection: bool
                 ) -> None:
        self.store = store
        self.results = results
        self.owns_connection = owns_connection
        self._pending: dict[str, set[str]] = {}
        self._wake = asyncio.Event()
        self._closing = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="results_mongo writer")

    def add(self, run_id: str, key: str) -> None:
        """Note that job `key` of run `run_id` succeeded; it is written soon."""
        self._pending.setdefault(run_id, set()).add(key)
        self._wake.set()

    @property
    def pending(self) -> int:
        return sum(len(keys) for keys in self._pending.values())

    async def flush(self) -> bool:
        """Write every noted result now. False when MongoDB failed: the rest stay noted
        for the next try."""
        while self._pending:
            run_id = next(iter(self._pending))
            keys = self._pending.pop(run_id)
            try:
                await self._write(run_id, keys)
            except Exception as exc:
                self._pending.setdefault(run_id, set()).update(keys)
                log.warning("job results of run %s are not in MongoDB yet: %s", run_id, exc)
                return False
        return True

    async def _write(self, run_id: str, keys: set[str]) -> None:
        snapshot = await self.store.load_run(run_id, attempts=False)
        if snapshot is None:
            return
        jobs = (snapshot.jobs.get(key) for key in sorted(keys))
        docs = [result_document(snapshot.run, job) for job in jobs
                if job is not None and job.state is JobState.SUCCEEDED]
        if docs:
            await self.results.put(docs)

    async def _run(self) -> None:
        backoff = Backoff(RETRY_FIRST, RETRY_MAX)
        while not self._closing.is_set():
            await self._wake.wait()
            self._wake.clear()
            if await self.flush():
                backoff.reset()
                continue
            with suppress(TimeoutError):
                await asyncio.wait_for(self._closing.wait(), backoff.next())
            self._wake.set()

    async def stop(self) -> None:
        """Write what is left, then close the connection if it is this writer's own."""
        self._closing.set()
        self._wake.set()
        if self._task is not None:
            await self._task
        if not await self.flush():
            log.error("%d job results could not be written to MongoDB", self.pending)
        if self.owns_connection:
            await self.results.connection.close()


STASH_KEY: StashKey[ResultWriter] = StashKey("results_mongo")
"""`baseshift.stash[STASH_KEY]`: the running `ResultWriter`."""


def results_of(baseshift: App) -> MongoResults:
    """The `job_results` collection of a started application with `results = "mongo"`."""
    writer = baseshift.stash.get(STASH_KEY)
    if writer is None:
        raise ConfigError("job results are not kept in MongoDB",
                          hint='set results = "mongo" and mongo_url, and start the app')
    return writer.results


def _connection(baseshift: App, url: str) -> tuple[MongoConnection, bool]:
    """The template store's connection when templates are in MongoDB too (one client per
    application), else a new one; and whether it is new."""
    if isinstance(baseshift.templates, SharesMongoConnection):
        return baseshift.templates.mongo_connection(), False
    return MongoConnection(url), True


class MongoResultsBackend:
    """The `results = "mongo"` backend: built when the application is (a missing `mongo_url`
    is a configuration error before anything opens) and registered as a plugin, whose hooks
    start the writer, note succeeded jobs and stop it."""

    kind: ClassVar[str] = "results"
    name: ClassVar[str] = "mongo"

    def __init__(self, url: str) -> None:
        self.url = url

    @classmethod
    def from_settings(cls, settings: Settings) -> MongoResultsBackend:
        return cls(mongo_url(settings, "results"))

    @hookimpl
    async def startup(self, baseshift: App) -> None:
        """Connect (a bad or unreachable server stops the start) and start the writer."""
        connection, owned = _connection(baseshift, self.url)
        results = MongoResults(connection)
        try:
            await connection.open()
            await results.ensure_indexes()
        except BaseException:
            if owned:
                await connection.close()
            raise
        writer = ResultWriter(baseshift.store, results, owns_connection=owned)
        writer.start()
        baseshift.stash[STASH_KEY] = writer
        baseshift.stash[RESULT_COPIES] = results  # retention and erasure reach the copies

    @hookimpl
    def track_event(self, baseshift: App, event: Event) -> None:
        if isinstance(event, JobStateChanged) and event.new is JobState.SUCCEEDED:
            writer = baseshift.stash.get(STASH_KEY)
            if writer is not None:
                writer.add(event.run_id, event.job)

    @hookimpl
    async def shutdown(self, baseshift: App) -> None:
        baseshift.stash.pop(RESULT_COPIES)
        writer = baseshift.stash.pop(STASH_KEY)
        if writer is not None:
            await writer.stop()


@hookimpl
def register_backends() -> list[Backend]:
    """Offer `results = "mongo"` (pymongo is imported only when the writer connects)."""
    return [Backend("results", "mongo", f"{__name__}:MongoResultsBackend")]
