"""The cache contract: what a `kind = "cache"` backend implements, and the JSON values it holds.

A cache is never the system of record: a value may vanish at any time (expiry, eviction,
another process clearing it), so a caller always knows how to rebuild it. Values are JSON
values (not null) stored as text: every backend returns an equal, fresh copy and refuses
the same values, which is what lets a deployment switch `cache = "memory"` to
`cache = "redis"` without code changes.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import ClassVar, Protocol, runtime_checkable

JSONValue = bool | int | float | str | list["JSONValue | None"] | dict[str, "JSONValue | None"]
"""What a cache holds: any JSON value except null at the top (null means "not cached")."""


def encode(value: JSONValue) -> str:
    """The stored text of `value`; TypeError for None or anything JSON cannot represent
    (sets, bytes, NaN...), so no backend silently stores something another would refuse."""
    if value is None:
        raise TypeError("a cache value cannot be None: None is how get() reports a miss")
    try:
        return json.dumps(value, separators=(",", ":"), allow_nan=False)
    except ValueError as exc:
        raise TypeError(f"not a JSON value: {exc}") from None


def decode(text: str | bytes) -> JSONValue:
    """A fresh value from stored text (changing it never changes the cached copy)."""
    value: JSONValue = json.loads(text)
    return value


@dataclass(frozen=True, slots=True)
class CacheStats:
    """Counters of one cache: shared by every process for a shared backend (Redis).

    `entries` is the number of values held, or None when counting them would cost a scan
    (Redis); `evictions` counts values dropped to respect a size bound.
    """

    backend: str
    hits: int = 0
    misses: int = 0
    sets: int = 0
    deletes: int = 0
    evictions: int = 0
    entries: int | None = None

    @property
    def hit_ratio(self) -> float | None:
        """Hits over lookups, None before the first lookup."""
        lookups = self.hits + self.misses
        return self.hits / lookups if lookups else None


@runtime_checkable
class Cache(Protocol):
    """A key-value cache with per-value time to live, built with `from_settings(settings)`.

    `get` returns None for a missing or expired key and counts a hit or a miss; `set` with
    `ttl=None` uses the backend's configured default (which may be "no expiry"); `delete`
    says whether the key held a value; `clear` empties the cache (counters keep counting)
    and returns how many values it dropped; `keys` lists the keys that hold a value and
    start with `prefix`, sorted, at most `limit` of them (never the values: the admin API
    shows them). Keys are non-empty strings.
    """

    kind: ClassVar[str]
    name: ClassVar[str]

    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def get(self, key: str) -> JSONValue | None: ...

    async def set(self, key: str, value: JSONValue, ttl: float | None = None) -> None: ...

    async def delete(self, key: str) -> bool: ...

    async def clear(self) -> int: ...

    async def keys(self, prefix: str = "", limit: int | None = None) -> list[str]: ...

    async def stats(self) -> CacheStats: ...


def check_key(key: str) -> str:
    """`key`, or ValueError for a key no backend can hold."""
    if not isinstance(key, str) or not key:
        raise ValueError(f"a cache key is a non-empty string, not {key!r}")
    return key


def check_ttl(ttl: float | None) -> float | None:
    """`ttl` in seconds, or ValueError: a zero or negative lifetime is a caller's mistake."""
    if ttl is not None and not ttl > 0:
        raise ValueError(f"a cache ttl is a positive number of seconds, not {ttl!r}")
    return ttl


