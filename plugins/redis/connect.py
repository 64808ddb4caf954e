"""Where the Redis plugins (live status, the cache) connect: `redis_url` checked once, a client
checked with a PING at start, and a pub/sub listener that survives Redis restarts.

The driver is imported only when a Redis backend is opened: every start loads the Redis
plugins, and importing redis costs more than all the other plugins of a start together.
"""
from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from baseshift.core.config import masked
from baseshift.core.errors import ConfigError
from baseshift.core.tasks import Backoff, cancel_and_wait

from ..extras import REDIS

if TYPE_CHECKING:
    import redis.asyncio as aioredis
    from redis.asyncio.client import PubSub

    from baseshift.core.settings import Settings

@functools.cache
def redis_errors() -> tuple[type[Exception], ...]:
    """What a failing Redis call raises: the driver's errors and the socket's."""
    from redis.exceptions import RedisError

    return (RedisError, OSError)


@functools.cache
def outages() -> tuple[type[Exception], ...]:
    """Redis away (worth waiting for), unlike a command it refuses (a key of the wrong
    type), which would be refused again."""
    from redis.exceptions import ConnectionError, TimeoutError

    return (ConnectionError, TimeoutError, OSError)


def redis_url(settings: Settings, chosen_by: str) -> str:
    """The checked `redis_url`, or one ConfigError saying which setting needs it (or that
    the `redis` package is not installed, and how to install it)."""
    REDIS.check(f"{chosen_by} = \"redis\"")
    from redis.connection import parse_url

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
    import redis.asyncio as aioredis
    from redis.asyncio.retry import Retry
    from redis.backoff import ExponentialWithJitterBackoff

    url = redis_url(settings, chosen_by)
    # from_url clients do not retry by default: without this, the first command after a
    # Redis restart fails on the dropped pooled connection instead of reconnecting
    retry = Retry(ExponentialWithJitterBackoff(cap=0.5, base=0.01), 3)
    client = aioredis.from_url(url, socket_connect_timeout=5, socket_keepalive=True,
                               client_name=client_name, retry=retry)
    try:
        await client.ping()
    except redis_errors() as exc:
        await client.aclose()
        raise ConfigError(f"Config 'redis_url': cannot reach Redis at {masked(url)}: {exc}",
                          hint=f"start Redis or fix redis_url ('{chosen_by}' is 'redis')") \
            from None
    return client


class ChannelListener:
    """Hands each message of one pub/sub channel to `handle` until stopped. Survives Redis
    restarts: it logs (to `log`, the feature's logger), waits (backoff), subscribes again
    and calls `on_reconnect`, since messages sent meanwhile are lost. A failing `handle`
    is logged, never fatal."""

    def __init__(self, client: aioredis.Redis, channel: str, handle: Callable[[bytes], None],
                 log: logging.Logger, on_reconnect: Callable[[], None] = lambda: None) -> None:
        self.client = client
        self.channel = channel
        self.handle = handle
        self.log = log
        self.on_reconnect = on_reconnect
        self._pubsub: PubSub | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Subscribe (confirmed by the server: a message published after this returns is
        received), then listen in a task."""
        self._pubsub = await self._subscribe()
        self._task = asyncio.create_task(self._run(), name=f"redis-listen:{self.channel}")

    async def stop(self) -> None:
        await cancel_and_wait(self._task)
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
            await pubsub.aclose()  # type: ignore[no-untyped-call, unused-ignore]  # typed from redis 8
            raise
        return pubsub

    async def _close(self) -> None:
        if self._pubsub is not None:
            await self._pubsub.aclose()  # type: ignore[no-untyped-call, unused-ignore]  # typed from redis 8
            self._pubsub = None

    async def _run(self) -> None:
        backoff = Backoff()
        while True:
            since: float | None = None
            try:
                if self._pubsub is None:
                    self._pubsub = await self._subscribe()
                    self.log.info("listening to Redis channel %s again", self.channel)
                    self.on_reconnect()
                since = time.monotonic()
                async for message in self._pubsub.listen():
                    if message.get("type") == "message":
                        self._deliver(message["data"])
                raise ConnectionError("the subscription ended")
            except redis_errors() as exc:  # TimeoutError (of _subscribe) is an OSError
                if since is not None:  # subscribed: was it for long enough to start over?
                    backoff.connected_for(time.monotonic() - since)
                delay = backoff.next()
                self.log.warning("Redis channel %s: %s; reconnecting in %.1fs", self.channel,
                                 exc, delay)
                await self._close()
                await asyncio.sleep(delay)

    def _deliver(self, data: bytes) -> None:
        try:
            self.handle(data)
        except (ValueError, KeyError, TypeError) as exc:  # malformed, or from a newer version
            self.log.warning("Redis channel %s: cannot handle message %.200r: %s",
                             self.channel, data, exc)
        except Exception:
            self.log.exception("Redis channel %s: cannot handle message %.200r", self.channel,
                               data)
