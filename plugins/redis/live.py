"""Live job status in Redis (`live = "redis"`), so that every API server streams every run.

Each stored engine event is written to the seed's keys and published twice: the job's
status on `job_status_channel:{id}` (for any Redis client) and the whole event, tagged with
this process's origin id, on `baseshift:events` (events written together share a
message). Every process listens to that channel and feeds the events of OTHER processes
into its own `baseshift.live` hub, so an SSE stream served by server B follows a run that
server A executes.

Keys (all behind `[plugins.live_redis] prefix`, default none); a job's `{id}` is
`<run_id>/<job_key>`, e.g. `3f2a.../build[2]` for a fan-out instance:

    job:{id}                     hash: status, run, job, attempt, error, updated
    workflow:{run_id}:state      the run state (RUNNING, COMPLETED...)
    workflow:{run_id}:currentJob the job that most recently started running (while running)
    workflow:{run_id}:jobs       list of job keys in plan order

They expire `[plugins.live_redis] ttl` seconds (default one day) after the run finishes.
The store stays the system of record: Redis holds a copy for readers and other servers.
"""
from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import uuid
from typing import TYPE_CHECKING, Any, ClassVar

from baseshift.core.config import option
from baseshift.core.errors import BaseShiftError, ConfigError
from baseshift.core.events import Event, JobsAdded, JobStateChanged, RunStateChanged
from baseshift.core.hookspecs import hookimpl
from baseshift.core.hub import QUEUE_SIZE
from baseshift.core.registry import Backend
from baseshift.core.report import ordered_jobs
from baseshift.core.stash import StashKey
from baseshift.core.states import JobState, RunState
from baseshift.core.tasks import Backoff

from .connect import ChannelListener, open_redis, outages, redis_errors, redis_url

if TYPE_CHECKING:
    import redis.asyncio as aioredis
    from redis.asyncio.client import Pipeline

    from baseshift.core.appface import App
    from baseshift.core.settings import Settings

log = logging.getLogger("baseshift.live_redis")

TTL = 86_400
BATCH = 500
"""Events written in one Redis round trip at most (the writer catches up in batches)."""

# ------------------------------------------------------------------ events on the wire

_EVENT_TYPES: dict[str, type[Event]] = {
    cls.__name__: cls for cls in (RunStateChanged, JobStateChanged, JobsAdded)}
_STATE_TYPES: dict[type[Event], type[RunState] | type[JobState]] = {
    RunStateChanged: RunState, JobStateChanged: JobState}


def encode_events(events: list[Event], origin: str) -> str:
    """One bridge message for a batch of events, in order."""
    return json.dumps({"origin": origin, "events": [
        {"type": type(e).__name__, **{f.name: getattr(e, f.name) for f in dataclasses.fields(e)}}
        for e in events]})


def decode_events(data: str | bytes) -> tuple[str, list[Event]]:
    """(origin, events) of a bridge message; ValueError for an event type this version
    does not know (a newer server's), so the message is logged rather than half-applied."""
    message = json.loads(data)
    return str(message["origin"]), [_decode(dict(item)) for item in message["events"]]


def _decode(fields: dict[str, Any]) -> Event:
    name = fields.pop("type", None)
    cls = _EVENT_TYPES.get(name)
    if cls is None:
        raise ValueError(f"unknown event type {name!r}")
    states = _STATE_TYPES.get(cls)
    for key in ("old", "new") if states else ():
        if fields.get(key) is not None:
            fields[key] = states(fields[key])  # type: ignore[misc]
    return cls(**fields)


# ------------------------------------------------------------------ keys, written by scripts
# Scripts build the key names themselves, so that one call writes a whole batch of events:
# one command per job event costs more Python time than the engine spends on the job.
# (Keys not passed as KEYS: fine on one Redis server, not on Redis Cluster.)

_JOB_EVENTS = """
local p = ARGV[1]
for i = 2, #ARGV, 6 do
  local run, job, status = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  local id = run .. '/' .. job
  redis.call('HSET', p .. 'job:' .. id, 'status', status, 'run', run, 'job', job,
             'attempt', ARGV[i + 3], 'error', ARGV[i + 4], 'updated', ARGV[i + 5])
  redis.call('PUBLISH', p .. 'job_status_channel:' .. id, status)
  if status == 'RUNNING' then
    redis.call('SET', p .. 'workflow:' .. run .. ':currentJob', job)
  end
end
"""
"""ARGV: prefix, then per job event: run id, job key, status, attempt, error, time."""

_JOB_LIST = """
local p, run = ARGV[1], ARGV[2]
local list = p .. 'workflow:' .. run .. ':jobs'
redis.call('DEL', list)
for i = 3, #ARGV, 2 do
  local job = p .. 'job:' .. run .. '/' .. ARGV[i]
  redis.call('RPUSH', list, ARGV[i])
  if redis.call('HSETNX', job, 'status', ARGV[i + 1]) == 1 then
    redis.call('HSET', job, 'run', run, 'job', ARGV[i])
  end
  redis.call('PERSIST', job)
end
"""
"""ARGV: prefix, run id, then per job in plan order: key, stored state. Jobs that have
no status yet (PENDING ones) get their stored one; a reopened run's job keys persist."""

_RUN_FINISHED = """
local p, run, ttl = ARGV[1], ARGV[2], ARGV[3]
local base = p .. 'workflow:' .. run
redis.call('DEL', base .. ':currentJob')
for _, job in ipairs(redis.call('LRANGE', base .. ':jobs', 0, -1)) do
  redis.call('EXPIRE', p .. 'job:' .. run .. '/' .. job, ttl)
end
redis.call('EXPIRE', base .. ':state', ttl)
redis.call('EXPIRE', base .. ':jobs', ttl)
"""
"""ARGV: prefix, run id, ttl: the run's keys expire, there is no current job any more."""


# ------------------------------------------------------------------ the plugin object


class RedisLive:
    """The `live = "redis"` backend: writes events to Redis from a queue (the engine never
    waits on Redis) and bridges other processes' events into this process's hub. Built when
    the application is and registered as a plugin: it works through its hooks."""

    kind: ClassVar[str] = "live"
    name: ClassVar[str] = "redis"

    def __init__(self, settings: Settings) -> None:
        redis_url(settings, "live")
        self.settings = settings
        self.prefix = option(settings, "live_redis", "prefix", "")
        self.channel = f"{self.prefix}baseshift:events"
        self.ttl = option(settings, "live_redis", "ttl", TTL)
        self._app: App | None = None
        self.origin = uuid.uuid4().hex
        self.client: aioredis.Redis | None = None
        self.listener: ChannelListener | None = None
        self._queue: asyncio.Queue[Event] = asyncio.Queue(QUEUE_SIZE)
        self._writer: asyncio.Task[None] | None = None
        self._dropped = 0

    @classmethod
    def from_settings(cls, settings: Settings) -> RedisLive:
        return cls(settings)

    @property
    def bs(self) -> App:
        """The application this backend serves (known from `startup` on)."""
        assert self._app is not None, "RedisLive is used before startup"
        return self._app

    @hookimpl
    async def startup(self, baseshift: App) -> None:
        self._app = baseshift
        baseshift.stash[STASH_KEY] = self
        self.client = client = await open_redis(self.settings, "live",
                                                f"baseshift-live-{self.origin}")
        self._job_events = client.register_script(_JOB_EVENTS)
        self._job_list_of = client.register_script(_JOB_LIST)
        self._run_finished = client.register_script(_RUN_FINISHED)
        self.listener = ChannelListener(client, self.channel, self._receive, log)
        try:
            await self.listener.start()
        except redis_errors() as exc:
            await client.aclose()
            raise ConfigError(f"Config 'live' is 'redis': cannot subscribe to "
                              f"{self.channel}: {exc}") from None
        self._writer = asyncio.create_task(self._write_forever(), name="live-redis-writer")

    @hookimpl
    async def shutdown(self) -> None:
        if self._writer is not None:
            try:
                await asyncio.wait_for(self.flush(), 5)
            except TimeoutError:
                log.warning("stopping with %d live event(s) not written to Redis",
                            self._queue.qsize())
            self._writer.cancel()
            await asyncio.gather(self._writer, return_exceptions=True)
        if self.listener is not None:
            await self.listener.stop()
        if self.client is not None:
            await self.client.aclose()

    @hookimpl
    def track_event(self, event: Event) -> None:
        try:
            self._queue.put_nowait(event)
        except asyncio.QueueFull:
            self._dropped += 1
            if self._dropped == 1:
                log.warning("Redis is behind: dropping live events (the store keeps them)")

    async def flush(self) -> None:
        """Return once every event tracked so far is in Redis (tests, shutdown)."""
        await self._queue.join()

    # -------------------------------------------------------------- receiving

    def _receive(self, data: bytes) -> None:
        if not self.bs.live.subscribers:
            return  # nobody here listens: not worth decoding every other server's events
        origin, events = decode_events(data)
        if origin != self.origin:
            for event in events:
                self.bs.live.publish(event)

    # -------------------------------------------------------------- writing

    async def _write_forever(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < BATCH and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                await self._write(batch)
            except Exception:  # the writer must outlive any one bad batch
                log.exception("cannot write %d live event(s) to Redis; dropped", len(batch))
            for _ in batch:
                self._queue.task_done()

    async def _write(self, batch: list[Event]) -> None:
        """One MULTI/EXEC for the batch (each event's keys change together), retried with
        backoff while Redis is away; events arriving meanwhile wait in the queue. A batch
        Redis refuses is not retried (it would be refused for ever): the caller drops it."""
        assert self.client is not None
        backoff = Backoff()
        while True:
            try:
                async with self.client.pipeline(transaction=True) as pipe:
                    await self._commands(pipe, batch)
                    await pipe.execute()
            except outages() as exc:
                delay = backoff.next()
                log.warning("cannot write live status to Redis: %s; retrying in %.1fs", exc, delay)
                await asyncio.sleep(delay)
                continue
            if self._dropped:
                log.warning("Redis caught up; %d live event(s) were dropped", self._dropped)
                self._dropped = 0
            return

    async def _commands(self, pipe: Pipeline, batch: list[Event]) -> None:
        """Queue the batch's writes in event order: runs of job events as one script call."""
        args: list[str] = [self.prefix]
        for event in batch:
            if isinstance(event, JobStateChanged):
                args += [event.run_id, event.job, event.new.value, str(event.attempt),
                         event.error or "", repr(event.at)]
                continue
            if len(args) > 1:
                await self._job_events(args=args, client=pipe)
                args = [self.prefix]
            if isinstance(event, RunStateChanged):
                await self._run_commands(pipe, event)
            elif isinstance(event, JobsAdded):
                await self._job_list(pipe, event.run_id)
        if len(args) > 1:
            await self._job_events(args=args, client=pipe)
        pipe.publish(self.channel, encode_events(batch, self.origin))

    async def _run_commands(self, pipe: Pipeline, event: RunStateChanged) -> None:
        pipe.set(f"{self.prefix}workflow:{event.run_id}:state", event.new.value)
        if event.new.finished:
            await self._run_finished(args=[self.prefix, event.run_id, self.ttl], client=pipe)
        elif event.old in (None, RunState.INITIALIZED) or event.old.finished:
            await self._job_list(pipe, event.run_id)

    async def _job_list(self, pipe: Pipeline, run_id: str) -> None:
        """Write the run's job keys in plan order (from the store, which has every job,
        pending ones included)."""
        try:
            snapshot = await self.bs.store.load_run(run_id, attempts=False)
        except BaseShiftError as exc:
            log.warning("live status of run %s: cannot read its jobs: %s", run_id, exc)
            return
        if snapshot is not None:
            jobs = [text for key, job in ordered_jobs(snapshot) for text in (key, job.state.value)]
            await self._job_list_of(args=[self.prefix, run_id, *jobs], client=pipe)


STASH_KEY: StashKey[RedisLive] = StashKey("live_redis")
"""`baseshift.stash[STASH_KEY]`: the started `RedisLive`, when `live = "redis"`."""


@hookimpl
def register_backends() -> list[Backend]:
    """Offer `live = "redis"` (the class is in this module: the driver is imported only when
    it opens)."""
    return [Backend("live", "redis", f"{__name__}:RedisLive")]
