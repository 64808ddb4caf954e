"""One contract for every cache backend (memory, Redis), then what only the shared Redis
cache does: counters shared by processes and near-caches invalidated across processes.

The Redis tests use the real server on 127.0.0.1:6379 under a key prefix of their own,
removed afterwards."""
from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis

from baseshift.core.app.application import BaseShift
from baseshift.core.backends import CACHE
from baseshift.core.cache import Cache, CacheStats, JSONValue, decode, encode
from baseshift.core.errors import ConfigError
from baseshift.core.plugins import DEFAULT_PLUGINS
from baseshift.core.registry import Backend
from baseshift.core.settings import Settings
from baseshift.plugins.cache.memory import MemoryCache
from baseshift.plugins.redis.cache import RedisCache
from tests.plugins.backends import build
from tests.plugins.conftest import REDIS_URL

BACKENDS = {"memory": MemoryCache, "redis": RedisCache}
VALUES: list[JSONValue] = [1, 2.5, "text", True, False, [1, "a", None], {"a": {"b": [1, 2]}}, 0, ""]


@pytest.fixture
async def raw() -> AsyncIterator[aioredis.Redis]:
    """A plain Redis client, to look behind a cache's back."""
    client = aioredis.from_url(REDIS_URL)
    yield client
    await client.aclose()


def settings(backend: str, prefix: str, **options: Any) -> Settings:
    return Settings(cache=backend, redis_url=REDIS_URL,
                    extra={f"cache_{backend}": {"prefix": prefix, **options}
                           if backend == "redis" else options})


@pytest.fixture
def make_cache(prefix: str) -> Callable[..., Any]:
    """`async with make_cache("redis", ttl=5) as cache:` — an open cache of one backend;
    every Redis cache of one test shares the test's prefix (like processes sharing Redis)."""
    from contextlib import asynccontextmanager

    @asynccontextmanager
    async def factory(backend: str, **options: Any) -> AsyncIterator[Cache]:
        cache = build(CACHE, settings(backend, prefix, **options))
        await cache.open()
        try:
            yield cache
        finally:
            await cache.close()

    return factory


@pytest.fixture(params=sorted(BACKENDS))
async def cache(request: pytest.FixtureRequest,
                make_cache: Callable[..., Any]) -> AsyncIterator[Cache]:
    async with make_cache(request.param) as opened:
        yield opened


async def gone(cache: Cache, key: str) -> None:
    """Wait until `key` reads as missing (expiry or an invalidation is asynchronous)."""
    async with asyncio.timeout(10):
        while await cache.get(key) is not None:
            await asyncio.sleep(0.02)


# ------------------------------------------------------------------ the contract


def test_backends_are_caches_registered_by_their_plugins(tmp_path: Path) -> None:
    builtins = tuple(dict.fromkeys((*DEFAULT_PLUGINS, "cache_memory", "cache_redis")))
    bs = BaseShift(Settings(load_entrypoints=False, store="memory", templates="memory",
                            data_dir=tmp_path), builtins=builtins)
    offered = bs.hooks.backends("cache")
    assert {name: Backend.of(ref).load() for name, ref in offered.items()} == BACKENDS
    for name, cls in BACKENDS.items():
        assert (cls.kind, cls.name) == ("cache", name)
        assert isinstance(cls.from_settings(settings(name, "x:")), Cache)


async def test_values_round_trip_as_fresh_copies(cache: Cache) -> None:
    for i, value in enumerate(VALUES):
        await cache.set(f"k{i}", value)
    assert [await cache.get(f"k{i}") for i in range(len(VALUES))] == VALUES
    got = await cache.get("k6")
    assert isinstance(got, dict)
    got["a"] = "changed"
    assert await cache.get("k6") == {"a": {"b": [1, 2]}}
    await cache.set("k0", "replaced")
    assert await cache.get("k0") == "replaced"


async def test_refused_values_keys_and_ttls(cache: Cache) -> None:
    for bad in (None, {1, 2}, b"bytes", float("nan"), {"x": object()}):
        with pytest.raises(TypeError):
            await cache.set("k", bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="non-empty string"):
        await cache.set("", 1)
    for ttl in (0, -1.5):
        with pytest.raises(ValueError, match="positive"):
            await cache.set("k", 1, ttl=ttl)
    assert await cache.get("k") is None


async def test_values_expire_after_their_ttl(cache: Cache) -> None:
    await cache.set("short", "soon gone", ttl=0.05)
    await cache.set("long", "kept", ttl=3600)
    await cache.set("forever", "kept")
    await gone(cache, "short")
    assert (await cache.get("long"), await cache.get("forever")) == ("kept", "kept")


async def test_configured_default_ttl(make_cache: Callable[..., Any]) -> None:
    for backend in BACKENDS:
        async with make_cache(backend, ttl=0.05) as cache:
            await cache.set("default", 1)
            await cache.set("explicit", 2, ttl=3600)
            await gone(cache, "default")
            assert await cache.get("explicit") == 2


async def test_delete_says_whether_there_was_a_value(cache: Cache) -> None:
    await cache.set("k", [1])
    assert await cache.delete("k") is True
    assert await cache.get("k") is None
    assert await cache.delete("k") is False


async def test_clear_drops_every_value_and_counts_them(cache: Cache) -> None:
    for i in range(3):
        await cache.set(f"k{i}", i)
    assert await cache.clear() == 3
    assert [await cache.get(f"k{i}") for i in range(3)] == [None, None, None]
    assert await cache.clear() == 0
    await cache.set("after", 1)
    assert await cache.get("after") == 1


async def test_keys_lists_live_keys_by_prefix_without_values(cache: Cache) -> None:
    for key in ("b:2", "a:1", "a:2", "a*[x]", "c"):
        await cache.set(key, {"secret": key})
    await cache.set("a:gone", 1, ttl=0.05)
    await gone(cache, "a:gone")
    assert await cache.keys() == ["a*[x]", "a:1", "a:2", "b:2", "c"]
    assert await cache.keys("a:") == ["a:1", "a:2"]
    assert await cache.keys("a*") == ["a*[x]"]  # a glob character is a plain character
    assert await cache.keys("a", limit=2) == ["a*[x]", "a:1"]
    assert await cache.keys("zzz") == []
    await cache.delete("a:1")
    assert await cache.keys("a:") == ["a:2"]


async def test_counters(cache: Cache) -> None:
    await cache.set("a", 1)
    await cache.set("b", 2)
    for key in ("a", "a", "b", "missing"):
        await cache.get(key)
    await cache.delete("a")
    await cache.get("a")
    await cache.clear()
    stats = await cache.stats()
    assert (stats.backend, stats.hits, stats.misses, stats.sets, stats.deletes) \
        == (cache.name, 3, 2, 2, 1)
    assert stats.hit_ratio == 3 / 5
    assert CacheStats("x").hit_ratio is None


def test_json_contract() -> None:
    assert encode({"b": [1, 2.5, None]}) == '{"b":[1,2.5,null]}'
    assert decode(encode({"b": [1, 2.5, None]})) == {"b": [1, 2.5, None]}
    assert decode(encode((1, 2))) == [1, 2]  # type: ignore[arg-type]


# ------------------------------------------------------------------ memory only


async def test_memory_cache_is_bounded_least_recently_used_first(
        make_cache: Callable[..., Any]) -> None:
    async with make_cache("memory", max_entries=2) as cache:
        await cache.set("a", 1)
        await cache.set("b", 2)
        assert await cache.get("a") == 1  # b is now the least recently used
        await cache.set("c", 3)
        assert [await cache.get(k) for k in ("a", "b", "c")] == [1, None, 3]
        stats = await cache.stats()
        assert (stats.evictions, stats.entries) == (1, 2)


@pytest.mark.parametrize(("options", "message"), [
    ({"max_entries": 0}, "'plugins.cache_memory.max_entries' has value 0. Expected a positive "
                         "integer"),
    ({"max_entries": "10"}, "max_entries' has value '10'"),
    ({"ttl": True}, "'plugins.cache_memory.ttl' has value True. Expected a positive number"),
])
def test_memory_cache_options_are_checked(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        MemoryCache.from_settings(Settings(extra={"cache_memory": options}))


# ------------------------------------------------------------------ Redis only


def test_redis_cache_needs_a_redis_url() -> None:
    with pytest.raises(ConfigError, match="'cache' is 'redis' but 'redis_url' is not set"):
        RedisCache.from_settings(Settings(cache="redis"))
    with pytest.raises(ConfigError, match="'redis_url' has value 'http://u:\\*\\*\\*@h/0'"):
        RedisCache.from_settings(Settings(cache="redis", redis_url="http://u:secret@h/0"))


@pytest.mark.slow
def test_an_app_not_using_redis_does_not_import_it(tmp_path: Path) -> None:
    """Every start loads the Redis plugins; the driver (the costliest import of a start)
    only comes with a Redis backend. MongoDB's driver likewise."""
    script = ("import sys\n"
              "from baseshift.core.app.application import BaseShift\n"
              "from baseshift.core.settings import Settings\n"
              f"BaseShift(Settings(load_entrypoints=False, data_dir={str(tmp_path)!r}))\n"
              "print(sorted({'redis', 'pymongo'} & set(sys.modules)))\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          check=False)
    assert (done.returncode, done.stdout, done.stderr) == (0, "[]\n", "")


async def test_unreachable_redis_is_one_config_error() -> None:
    cache = RedisCache.from_settings(Settings(cache="redis", redis_url="redis://127.0.0.1:1/0"))
    with pytest.raises(ConfigError, match="cannot reach Redis at redis://127.0.0.1:1/0") as err:
        await cache.open()
    assert err.value.hint is not None and "redis_url" in err.value.hint


async def test_values_live_in_redis_under_the_prefix_with_their_ttl(
        make_cache: Callable[..., Any], raw: aioredis.Redis, prefix: str) -> None:
    async with make_cache("redis") as cache:
        await cache.set("user:1", {"name": "ada"}, ttl=600)
        assert await raw.get(f"{prefix}cache:user:1") == b'{"name":"ada"}'
        assert 0 < await raw.pttl(f"{prefix}cache:user:1") <= 600_000
        await cache.set("user:2", "no ttl")
        assert await raw.pttl(f"{prefix}cache:user:2") == -1
        await raw.set(f"{prefix}other", "not the cache's")
        assert await cache.clear() == 2
        assert await raw.get(f"{prefix}other") == b"not the cache's"


async def test_counters_are_shared_by_processes(make_cache: Callable[..., Any]) -> None:
    async with make_cache("redis") as a, make_cache("redis") as b:
        await a.set("k", 1)
        assert await b.get("k") == 1  # a hit in Redis
        assert await b.get("k") == 1  # a hit in b's near-cache
        assert await a.get("missing") is None
        # b's stats() first: it adds b's near-cache hits, which otherwise reach Redis
        # within FLUSH_SECONDS
        for cache in (b, a):
            stats = await cache.stats()
            assert (stats.hits, stats.misses, stats.sets) == (2, 1, 1)


async def test_near_cache_serves_reads_until_another_process_sets(
        make_cache: Callable[..., Any], raw: aioredis.Redis, prefix: str) -> None:
    async with make_cache("redis") as a:
        await a.set("k", "v1")
        # b starts after that set: its invalidation, had b been listening, could reach b
        # only after b has read "v1" below, and drop b's copy of it
        async with make_cache("redis") as b:
            assert await b.get("k") == "v1"
            # changed behind both caches' backs: b keeps answering from its near-cache...
            await raw.set(f"{prefix}cache:k", '"behind"')
            assert await b.get("k") == "v1"
            # ...until a process sets the key through the cache, which invalidates every copy
            await a.set("k", "v2")
            async with asyncio.timeout(10):
                while await b.get("k") != "v2":
                    await asyncio.sleep(0.02)


async def test_delete_and_clear_in_one_process_drop_the_others_copies(
        make_cache: Callable[..., Any]) -> None:
    async with make_cache("redis") as a, make_cache("redis") as b:
        await a.set("x", 1)
        await a.set("y", 2)
        assert (await b.get("x"), await b.get("y")) == (1, 2)
        await a.delete("x")
        await gone(b, "x")
        assert await b.get("y") == 2
        await a.clear()
        await gone(b, "y")


async def test_a_near_copy_does_not_outlive_the_value(make_cache: Callable[..., Any]) -> None:
    async with make_cache("redis") as a, make_cache("redis") as b:
        await a.set("k", "brief", ttl=1)
        if await b.get("k") is not None:  # read before expiry: now also in b's near-cache
            await gone(b, "k")
        assert await b.get("k") is None


async def test_invalidations_resume_after_the_connection_is_killed(
        make_cache: Callable[..., Any], raw: aioredis.Redis, prefix: str) -> None:
    async with make_cache("redis") as a, make_cache("redis") as b:
        await a.set("k", "v1")
        assert await b.get("k") == "v1"
        await kill_connections(raw, f"baseshift-cache-{b.origin}")  # type: ignore[attr-defined]
        await until_subscribed(raw, f"{prefix}cache:invalidate", 2)
        await a.set("k", "v2")
        async with asyncio.timeout(10):
            while await b.get("k") != "v2":
                await asyncio.sleep(0.02)


async def kill_connections(raw: aioredis.Redis, name: str) -> None:
    """Drop every connection of one cache or live plugin, as a Redis restart would."""
    clients = await raw.client_list()
    ids = [c["id"] for c in clients if c.get("name") == name]
    assert ids, f"no connection named {name}"
    for client_id in ids:
        await raw.client_kill_filter(_id=client_id)


async def until_subscribed(raw: aioredis.Redis, channel: str, count: int) -> None:
    async with asyncio.timeout(30):
        while dict(await raw.pubsub_numsub(channel)).get(channel.encode(), 0) != count:
            await asyncio.sleep(0.02)
