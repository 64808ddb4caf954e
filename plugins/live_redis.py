"""Live job status in Redis (`live = "redis"`), so that every API server streams every run.

Each stored engine event is written to the seed's keys and published twice: the job's
status on `job_status_channel:{id}` (for any Redis client) and the whole event, tagged with
this process's origin id, on `baseshift:events`. Every process listens to that channel and
feeds the events of OTHER processes into its own `baseshift.live` hub, so an SSE stream
served by server B follows a run that server A executes.

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
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff
from redis.connection import parse_url
from redis.exceptions import RedisError

from baseshift.core.cache import option
from baseshift.core.config import masked
from baseshift.core.errors import BaseShiftError, ConfigError
from baseshift.core.events import Event, JobsAdded, JobStateChanged, RunStateChanged
from baseshift.core.hookspecs import hookimpl
from baseshift.core.hub import QUEUE_SIZE
from baseshift.core.report import ordered_jobs
from baseshift.core.states import JobState, RunState

if TYPE_CHECKING:
    from redis.asyncio.client import Pipeline, PubSub

    from baseshift.core.app import BaseShift
    from baseshift.core.settings import Settings

log = logging.getLogger("baseshift.live_redis")

TTL = 86_400
BATCH = 500
"""Events written in one Redis round trip at most (the writer catches up in batches)."""
BACKOFF = (0.1, 5.0)
"""First and longest wait before reconnecting to Redis."""
RETRY_BACKOFF = ExponentialWithJitterBackoff(cap=0.5, base=0.01)
"""Between the retries of one command whose connection failed."""
REDIS_ERRORS = (RedisError, OSError)

# ------------------------------------------------------------------ connecting


def redis_url(settings: Settings, chosen_by: str) -> str:
    """The checked `redis_url`, or one ConfigError saying which setting needs it."""
    url = settings.redis_url
    if not url:
        raise ConfigError(f"Config '{chosen_by}' is 'redis' but 'redis_url' is not set.",
                          hint="set redis_url in baseshift.toml or BASESHIFT_REDIS_URL, "
                               "e.g. redis://127.0.0.1:6379/0")
    try:
        parse_url(url)  # type: ignore[no-untyped-call]
    except ValueError as exc:
        raise ConfigError(f"Config 'redis_url' has value {masked(url)!r}. {exc}.") from None
    return url


async def open_redis(settings: Settings, chosen_by: str, client_name: str) -> aioredis.Redis:
    """A client for `redis_url`, checked with a PING: an unreachable server is one
    ConfigError at start, not a traceback at the first event. Its connections carry
    `client_name` (CLIENT LIST shows which process and feature each one serves)."""
    url = redis_url(settings, chosen_by)
    # from_url clients do not retry by default: without this, the first command after a
    # Redis restart fails on the dropped pooled connection instead of reconnecting
    client = aioredis.from_url(url, socket_connect_timeout=5, socket_keepalive=True,
                               client_name=client_name, retry=Retry(RETRY_BACKOFF, 3))
    try:
        await client.ping()
    except REDIS_ERRORS as exc:
        await client.aclose()
        raise ConfigError(f"Config 'redis_url': cannot reach Redis at {masked(url)}: {exc}",
                          hint=f"start Redis or fix redis_url ('{chosen_by}' is 'redis')") \
            from None
    return client


class ChannelListener:
    """Hands each message of one pub/sub channel to `handle` until stopped. Survives Redis
    restarts: it logs, waits (backoff), subscribes again and calls `on_reconnect`, since
    messages sent meanwhile are lost. A failing `handle` is logged, never fatal."""

    def __init__(self, client: aioredis.Redis, channel: str, handle: Callable[[bytes], None],
                 on_reconnect: Callable[[], None] = lambda: None) -> None:
        self.client = client
        self.channel = channel
        self.handle = handle
        self.on_reconnect = on_reconnect
        self._pubsub: PubSub | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Subscribe (confirmed by the server: a message published after this returns is
        received), then listen in a task."""
        self._pubsub = await self._subscribe()
        self._task = asyncio.create_task(self._run(), name=f"redis-listen:{self.channel}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        await self._close()

    async def _subscribe(self) -> PubSub:
        pubsub = self.client.pubsub()
        try:
            await pubsub.subscribe(self.channel)
            async with asyncio.timeout(10):
                while (await pubsub.get_message(timeout=1.0) or {}).get("type") != "subscribe":
                    pass
        except BaseException:
            await pubsub.aclose()  # type: ignore[no-untyped-call]
            raise
        return pubsub

    async def _close(self) -> None:
        if self._pubsub is not None:
            await self._pubsub.aclose()  # type: ignore[no-untyped-call]
            self._pubsub = None

    async def _run(self) -> None:
        delay = BACKOFF[0]
        while True:
            try:
                if self._pubsub is None:
                    self._pubsub = await self._subscribe()
                    log.info("listening to Redis channel %s again", self.channel)
                    delay = BACKOFF[0]
                    self.on_reconnect()
                async for message in self._pubsub.listen():
                    if message.get("type") == "message":
                        self._deliver(message["data"])
                raise ConnectionError("the subscription ended")
            except (*REDIS_ERRORS, TimeoutError) as exc:
                log.warning("Redis channel %s: %s; reconnecting in %.1fs", self.channel, exc, delay)
                await self._close()
                await asyncio.sleep(delay)
                delay = min(delay * 2, BACKOFF[1])

    def _deliver(self, data: bytes) -> None:
        try:
            self.handle(data)
        except Exception:
            log.exception("Redis channel %s: cannot handle message %.200r", self.channel, data)


# ------------------------------------------------------------------ events on the wire

_EVENT_TYPES: dict[str, type[Event]] = {
    cls.__name__: cls for cls in (RunStateChanged, JobStateChanged, JobsAdded)}
_STATE_TYPES: dict[type[Event], type[RunState] | type[JobState]] = {
    RunStateChanged: RunState, JobStateChanged: JobState}


def encode_event(event: Event, origin: str) -> str:
    fields = {f.name: getattr(event, f.name) for f in dataclasses.fields(event)}
    return json.dumps({"origin": origin, "type": type(event).__name__, "event": fields})


def decode_event(data: str | bytes) -> tuple[str, Event]:
    """(origin, event) of a message; ValueError for a type this version does not know."""
    message = json.loads(data)
    cls = _EVENT_TYPES.get(message.get("type"))
    if cls is None:
        raise ValueError(f"unknown event type {message.get('type')!r}")
    fields: dict[str, Any] = dict(message["event"])
    states = _STATE_TYPES.get(cls)
    for name in ("old", "new") if states else ():
        if fields.get(name) is not None:
            fields[name] = states(fields[name])  # type: ignore[misc]
    return str(message["origin"]), cls(**fields)


# ------------------------------------------------------------------ keys


def job_id(run_id: str, job_key: str) -> str:
    return f"{run_id}/{job_key}"


@dataclasses.dataclass(frozen=True, slots=True)
class Keys:
    """Key and channel names, all behind one prefix (one Redis for several installations)."""

    prefix: str = ""

    def job(self, run_id: str, job_key: str) -> str:
        return f"{self.prefix}job:{job_id(run_id, job_key)}"

    def job_channel(self, run_id: str, job_key: str) -> str:
        return f"{self.prefix}job_status_channel:{job_id(run_id, job_key)}"

    def run(self, run_id: str, part: str) -> str:
        return f"{self.prefix}workflow:{run_id}:{part}"

    @property
    def events(self) -> str:
        return f"{self.prefix}baseshift:events"


# ------------------------------------------------------------------ the plugin object


class RedisLive:
    """Writes events to Redis from a queue (the engine never waits on Redis) and bridges
    other processes' events into this process's hub."""

    def __init__(self, bs: BaseShift) -> None:
        self.bs = bs
        redis_url(bs.settings, "live")
        self.keys = Keys(option(bs.settings, "live_redis", "prefix", ""))
        self.ttl = option(bs.settings, "live_redis", "ttl", TTL)
        self.origin = uuid.uuid4().hex
        self.client: aioredis.Redis | None = None
        self.listener: ChannelListener | None = None
        self._queue: asyncio.Queue[Event] = asyncio.Queue(QUEUE_SIZE)
        self._writer: asyncio.Task[None] | None = None
        self._dropped = 0

    @hookimpl
    async def startup(self) -> None:
        self.client = await open_redis(self.bs.settings, "live", f"baseshift-live-{self.origin}")
        self.listener = ChannelListener(self.client, self.keys.events, self._receive)
        try:
            await self.listener.start()
        except REDIS_ERRORS as exc:
            await self.client.aclose()
            raise ConfigError(f"Config 'live' is 'redis': cannot subscribe to "
                              f"{self.keys.events}: {exc}") from None
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
        origin, event = decode_event(data)
        if origin != self.origin and self.bs.live.subscribers:
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
        backoff while Redis is away; events arriving meanwhile wait in the queue."""
        assert self.client is not None
        delay = BACKOFF[0]
        while True:
            try:
                async with self.client.pipeline(transaction=True) as pipe:
                    for event in batch:
                        await self._commands(pipe, event)
                    await pipe.execute()
            except REDIS_ERRORS as exc:
                log.warning("cannot write live status to Redis: %s; retrying in %.1fs", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, BACKOFF[1])
                continue
            if self._dropped:
                log.warning("Redis caught up; %d live event(s) were dropped", self._dropped)
                self._dropped = 0
            return

    async def _commands(self, pipe: Pipeline, event: Event) -> None:
        if isinstance(event, JobStateChanged):
            self._job_commands(pipe, event)
        elif isinstance(event, RunStateChanged):
            await self._run_commands(pipe, event)
        elif isinstance(event, JobsAdded):
            await self._jobs_list(pipe, event.run_id, refresh=True)
        pipe.publish(self.keys.events, encode_event(event, self.origin))

    def _job_commands(self, pipe: Pipeline, event: JobStateChanged) -> None:
        pipe.hset(self.keys.job(event.run_id, event.job), mapping={
            "status": event.new.value, "run": event.run_id, "job": event.job,
            "attempt": event.attempt, "error": event.error or "", "updated": repr(event.at)})
        pipe.publish(self.keys.job_channel(event.run_id, event.job), event.new.value)
        if event.new is JobState.RUNNING:
            pipe.set(self.keys.run(event.run_id, "currentJob"), event.job)

    async def _run_commands(self, pipe: Pipeline, event: RunStateChanged) -> None:
        run_id = event.run_id
        pipe.set(self.keys.run(run_id, "state"), event.new.value)
        if event.new.finished:
            pipe.delete(self.keys.run(run_id, "currentJob"))
            jobs = await self._jobs_list(pipe, run_id, refresh=False)
            for key in (self.keys.run(run_id, "state"), self.keys.run(run_id, "jobs"),
                        *(self.keys.job(run_id, j) for j in jobs)):
                pipe.expire(key, self.ttl)
        elif event.old in (None, RunState.INITIALIZED) or event.old.finished:
            await self._jobs_list(pipe, run_id, refresh=True)

    async def _jobs_list(self, pipe: Pipeline, run_id: str, *, refresh: bool) -> list[str]:
        """The run's job keys from the store; with `refresh`, written as the jobs list, and
        jobs without a status yet get their stored one (a reopened run's keys persist)."""
        try:
            snapshot = await self.bs.store.load_run(run_id, attempts=False)
        except BaseShiftError as exc:
            log.warning("live status of run %s: cannot read its jobs: %s", run_id, exc)
            return []
        if snapshot is None:
            return []
        jobs = ordered_jobs(snapshot)
        if refresh:
            listed = self.keys.run(run_id, "jobs")
            pipe.delete(listed)
            if jobs:
                pipe.rpush(listed, *(key for key, _ in jobs))
            for key, record in jobs:
                hashed = self.keys.job(run_id, key)
                for name, value in (("status", record.state.value), ("run", run_id), ("job", key)):
                    pipe.hsetnx(hashed, name, value)
                pipe.persist(hashed)
        return [key for key, _ in jobs]


@hookimpl
def configure(baseshift: BaseShift) -> None:
    if baseshift.settings.live == "redis":
        baseshift.stash["live_redis"] = live = RedisLive(baseshift)
        baseshift.pm.register(live, name=f"{__name__}.writer")
