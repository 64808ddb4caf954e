"""The in-process cache (`cache = "memory"`, the default): TTL per value, bounded by LRU.

Options (`[plugins.cache_memory]`): `max_entries` (default 10000) and `ttl`, the default
lifetime in seconds of a value set without one (default: none, kept until evicted).
"""
from __future__ import annotations

from typing import ClassVar

from baseshift.core.cache import CacheStats, JSONValue, check_key, check_ttl, decode, encode
from baseshift.core.config import option
from baseshift.core.hookspecs import hookimpl
from baseshift.core.registry import Backend
from baseshift.core.settings import Settings

from .lru import LRUStore

MAX_ENTRIES = 10_000


class MemoryCache:
    """A `Cache` in this process's memory: fast, private to the process, gone at exit."""

    kind: ClassVar[str] = "cache"
    name: ClassVar[str] = "memory"

    def __init__(self, max_entries: int = MAX_ENTRIES, default_ttl: float | None = None) -> None:
        self.default_ttl = check_ttl(default_ttl)
        self._values = LRUStore(max_entries)
        self._counts = {"hits": 0, "misses": 0, "sets": 0, "deletes": 0}

    @classmethod
    def from_settings(cls, settings: Settings) -> MemoryCache:
        ttl = option(settings, "cache_memory", "ttl", 0.0) or None
        return cls(option(settings, "cache_memory", "max_entries", MAX_ENTRIES), ttl)

    async def open(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def get(self, key: str) -> JSONValue | None:
        text = self._values.get(check_key(key))
        self._counts["misses" if text is None else "hits"] += 1
        return None if text is None else decode(text)

    async def set(self, key: str, value: JSONValue, ttl: float | None = None) -> None:
        text = encode(value)
        self._values.put(check_key(key), text, check_ttl(ttl) or self.default_ttl)
        self._counts["sets"] += 1

    async def delete(self, key: str) -> bool:
        self._counts["deletes"] += 1
        return self._values.pop(check_key(key))

    async def clear(self) -> int:
        return self._values.clear()

    async def keys(self, prefix: str = "", limit: int | None = None) -> list[str]:
        return self._values.keys(prefix)[:limit]

    async def stats(self) -> CacheStats:
        return CacheStats(self.name, evictions=self._values.evictions,
                          entries=self._values.live(), **self._counts)


@hookimpl
def register_backends() -> list[Backend]:
    return [Backend("cache", "memory", "baseshift.plugins.cache.memory:MemoryCache")]
