"""The shared cache (`cache = "redis"`): values in Redis, a near-cache in each process.

Values live under `{prefix}cache:{key}` with their TTL; hit/miss/set/delete counters in the
hash `{prefix}cache-stats`, so every process reports the same numbers. Each process keeps
recently read values in a small LRU near-cache; a process that sets, deletes or clears
publishes the keys on `{prefix}cache:invalidate` and every other process drops its copies,
so a read never returns a value another process has replaced. Copies also expire with the
value's Redis TTL, after `near_ttl` seconds at most, and all of them when the invalidation
channel reconnects (messages may have been missed meanwhile).

Options (`[plugins.cache_redis]`): `prefix` (default none), `ttl` (default lifetime of a
value, seconds; default none), `near_entries` (default 1000), `near_ttl` (default 30).
"""
from __future__ import annotations

import asyncio
import json
import logging
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, ClassVar

from baseshift.core.cache import CacheStats, JSONValue, check_key, check_ttl, decode, encode
from baseshift.core.config import option
from baseshift.core.errors import StoreError
from baseshift.core.hookspecs import hookimpl
from baseshift.core.registry import Backend
from baseshift.core.settings import Settings
from baseshift.plugins.cache.lru import LRUStore
from baseshift.plugins.extras import REDIS
from baseshift.plugins.redis.connect import ChannelListener, open_redis, redis_errors, redis_url

if TYPE_CHECKING:
    import redis.asyncio as aioredis

log = logging.getLogger("baseshift.cache_redis")

NEAR_ENTRIES = 1000
NEAR_TTL = 30.0
FLUSH_SECONDS = 1.0
"""How often near-cache hits are added to the shared counters."""

_LOOKUP = """
local value = redis.call('GET', KEYS[1])
if not value then
  redis.call('HINCRBY', KEYS[2], 'misses', 1)
  return false
end
redis.call('HINCRBY', KEYS[2], 'hits', 1)
return {value, redis.call('PTTL', KEYS[1])}
"""
"""Read a value and count the hit or miss in one round trip."""

_GLOB = re.compile(r"([*?\[\]\\])")


class RedisCache:
    """A `Cache` shared by every process using the same Redis and prefix."""

    kind: ClassVar[str] = "cache"
    name: ClassVar[str] = "redis"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        redis_url(settings, "cache")
        prefix = option(settings, "cache_redis", "prefix", "")
        self.default_ttl = option(settings, "cache_redis", "ttl", 0.0) or None
        self.near_ttl = option(settings, "cache_redis", "near_ttl", NEAR_TTL)
        self._near = LRUStore(option(settings, "cache_redis", "near_entries", NEAR_ENTRIES))
        self._values = f"{prefix}cache:"
        self._stats = f"{prefix}cache-stats"
        self._channel = f"{prefix}cache:invalidate"
        self.origin = uuid.uuid4().hex
        self._epoch = 0
        """Bumped whenever near copies are dropped: a read that started before does not
        keep what it read, since it may be the value just replaced."""
        self._near_hits = 0
        self._client: aioredis.Redis | None = None
        self._listener: ChannelListener | None = None
        self._flusher: asyncio.Task[None] | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> RedisCache:
        return cls(settings)

    @property
    def client(self) -> aioredis.Redis:
        if self._client is None:
            raise RuntimeError("the Redis cache is not open")
        return self._client

    async def open(self) -> None:
        self._client = await open_redis(self.settings, "cache",
                                        f"baseshift-cache-{self.origin}")
        self._lookup = self._client.register_script(_LOOKUP)
        self._listener = ChannelListener(self._client, self._channel, self._invalidated,
                                         log, on_reconnect=self._forget_all)
        try:
            with _failures("subscribe to invalidations"):
                await self._listener.start()
        except StoreError:
            await self.close()
            raise
        self._flusher = asyncio.create_task(self._flush_forever(), name="cache-redis-hits")

    async def close(self) -> None:
        if self._flusher is not None:
            self._flusher.cancel()
            await asyncio.gather(self._flusher, return_exceptions=True)
        if self._listener is not None:
            await self._listener.stop()
        if self._client is not None:
            try:
                await self._flush_hits()
            except redis_errors() as exc:
                log.warning("%d near-cache hit(s) not counted: %s", self._near_hits, exc)
            await self._client.aclose()
            self._client = None

    # -------------------------------------------------------------- the Cache protocol

    async def get(self, key: str) -> JSONValue | None:
        text = self._near.get(check_key(key))
        if text is not None:
            self._near_hits += 1
            return decode(text)
        epoch = self._epoch
        with _failures("read"):
            found = await self._lookup(keys=[self._values + key, self._stats])
        if not found:
            return None
        stored, ms_left = found
        if epoch == self._epoch:
            self._near.put(key, stored.decode(), self._near_lifetime(ms_left))
        return decode(stored)

    async def set(self, key: str, value: JSONValue, ttl: float | None = None) -> None:
        text = encode(value)
        lifetime = check_ttl(ttl) or self.default_ttl
        ms = None if lifetime is None else max(1, round(lifetime * 1000))
        with _failures("write"):
            async with self.client.pipeline(transaction=True) as pipe:
                pipe.set(self._values + check_key(key), text, px=ms)
                pipe.hincrby(self._stats, "sets", 1)
                pipe.publish(self._channel, self._message([key]))
                await pipe.execute()
        self._forget([key])

    async def delete(self, key: str) -> bool:
        with _failures("delete"):
            async with self.client.pipeline(transaction=True) as pipe:
                pipe.delete(self._values + check_key(key))
                pipe.hincrby(self._stats, "deletes", 1)
                pipe.publish(self._channel, self._message([key]))
                removed, *_ = await pipe.execute()
        self._forget([key])
        return bool(removed)

    async def clear(self) -> int:
        removed = 0
        with _failures("clear"):
            batch: list[bytes] = []
            async for name in self.client.scan_iter(match=_GLOB.sub(r"\\\1", self._values) + "*",
                                                    count=500):
                batch.append(name)
                if len(batch) == 500:
                    removed += await self.client.unlink(*batch)
                    batch = []
            if batch:
                removed += await self.client.unlink(*batch)
            await self.client.publish(self._channel, self._message(None))
        self._forget_all()
        return removed

    async def keys(self, prefix: str = "", limit: int | None = None) -> list[str]:
        """A SCAN of the prefix (never KEYS, which blocks the server), sorted."""
        found: list[str] = []
        pattern = _GLOB.sub(r"\\\1", self._values + prefix) + "*"
        with _failures("list keys"):
            async for name in self.client.scan_iter(match=pattern, count=500):
                found.append(_text(name)[len(self._values):])
        return sorted(found)[:limit]

    async def stats(self) -> CacheStats:
        with _failures("read counters"):
            await self._flush_hits()
            counts = await self.client.hgetall(self._stats)
        numbers = {_text(k): int(v) for k, v in counts.items()}
        return CacheStats(self.name, hits=numbers.get("hits", 0),
                          misses=numbers.get("misses", 0), sets=numbers.get("sets", 0),
                          deletes=numbers.get("deletes", 0))

    # -------------------------------------------------------------- near-cache

    def _near_lifetime(self, ms_left: int) -> float:
        return self.near_ttl if ms_left < 0 else min(self.near_ttl, ms_left / 1000)

    def _message(self, keys: list[str] | None) -> str:
        return json.dumps({"origin": self.origin, "keys": keys})

    def _invalidated(self, data: bytes) -> None:
        message = json.loads(data)
        if message["origin"] == self.origin:
            return
        if message["keys"] is None:
            self._forget_all()
        else:
            self._forget(message["keys"])

    def _forget(self, keys: list[str]) -> None:
        self._epoch += 1
        for key in keys:
            self._near.pop(key)

    def _forget_all(self) -> None:
        self._epoch += 1
        self._near.clear()

    async def _flush_hits(self) -> None:
        hits, self._near_hits = self._near_hits, 0
        if hits:
            try:
                await self.client.hincrby(self._stats, "hits", hits)
            except BaseException:
                self._near_hits += hits
                raise

    async def _flush_forever(self) -> None:
        while True:
            await asyncio.sleep(FLUSH_SECONDS)
            try:
                await self._flush_hits()
            except redis_errors() as exc:
                log.warning("cannot count near-cache hits in Redis yet: %s", exc)


@contextmanager
def _failures(action: str) -> Iterator[None]:
    """Redis failing mid-operation is a StoreError (HTTP 503), not a driver traceback."""
    try:
        yield
    except redis_errors() as exc:
        raise StoreError(f"the Redis cache could not {action}: {exc}") from exc


def _text(name: bytes | str) -> str:
    return name.decode() if isinstance(name, bytes) else name


@hookimpl
def register_backends() -> list[Backend]:
    return [Backend("cache", "redis", "baseshift.plugins.redis.cache:RedisCache",
                    requires=REDIS)]
