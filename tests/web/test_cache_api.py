"""The cache's consumers and its admin API: checking the same workflow text again and
resolving the same template range again are cache hits; a changed text, template file or
published version is never answered from the cache; `/api/v1/cache/*` shows counters and
keys (never values) and drops entries, audited. Memory and the real Redis."""
from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis

from tests.plugins.conftest import REDIS_URL
from tests.web.audit_support import trail

VALIDATE = "/api/v1/definitions/validate"
STATS, KEYS, INVALIDATE = "/api/v1/cache/stats", "/api/v1/cache/keys", "/api/v1/cache/invalidate"
TEMPLATED = """workflow cached {
  version "1.0.0"
  job tell uses notify@^1 {
    with { message: "hi" }
  }
}
"""
BROKEN = "workflow cached {\n  version \"1.0.0\"\n  job tell uses nosuch@^1 {}\n}\n"


async def stats(client: httpx.AsyncClient) -> dict[str, Any]:
    response = await client.get(STATS)
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


async def validate(client: httpx.AsyncClient, source: str) -> dict[str, Any]:
    response = await client.post(VALIDATE, json={"source": source, "filename": "cached.bsw"})
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


async def keys(client: httpx.AsyncClient, prefix: str = "") -> list[str]:
    response = await client.get(KEYS, params={"prefix": prefix} if prefix else {})
    assert response.status_code == 200, response.text
    listed: list[str] = response.json()["keys"]
    return listed


async def test_checking_the_same_text_again_is_a_hit(make_client: Callable[..., Any]) -> None:
    async with make_client() as (bs, client):
        first = await validate(client, TEMPLATED)
        after_first = await stats(client)
        second = await validate(client, TEMPLATED)
        after_second = await stats(client)
    assert first == second and first["valid"] is True and first["workflow"] == "cached"
    assert after_second["hits"] == after_first["hits"] + 1
    assert after_second["misses"] == after_first["misses"]
    assert after_second["hit_ratio"] > (after_first["hit_ratio"] or 0)
    assert after_second["backend"] == "memory" and after_second["size"] >= 1


async def test_the_stats_show_the_reloads_kept_compiled_files(
        make_client: Callable[..., Any]) -> None:
    async with make_client() as (bs, client):
        files = len(bs.catalog.entries())
        first = (await stats(client))["plans"]
        await bs.catalog.refresh(force=True)  # nothing changed: every file from the memo
        second = (await stats(client))["plans"]
    assert first["backend"] == "process" and first["size"] >= files
    assert second["hits"] == first["hits"] + first["size"]
    assert second["misses"] == first["misses"] and second["hit_ratio"] > 0


async def test_a_changed_text_is_never_answered_from_the_cache(
        make_client: Callable[..., Any]) -> None:
    async with make_client() as (bs, client):
        good = await validate(client, TEMPLATED)
        bad = await validate(client, BROKEN)
        good_again = await validate(client, TEMPLATED)
        renamed = await client.post(VALIDATE, json={"source": BROKEN, "filename": "other.bsw"})
    assert good["valid"] and not bad["valid"]
    assert bad["diagnostics"][0]["code"] == "dsl.unknown-template"
    assert good_again == good
    # the file name is in the diagnostics, so it is in the key too
    assert renamed.json()["diagnostics"][0]["path"] == "other.bsw"


async def test_a_changed_template_file_is_a_miss(make_client: Callable[..., Any],
                                                 workflows_dir: Path) -> None:
    async with make_client() as (bs, client):
        assert (await validate(client, TEMPLATED))["valid"]
        templates = workflows_dir / "templates.bsw"
        templates.write_text(templates.read_text().replace(
            "input { message: string }", "input { text: string }"))
        reloaded = await client.post("/api/v1/definitions/reload")
        assert reloaded.status_code == 200, reloaded.text
        misses = (await stats(client))["misses"]
        answer = await validate(client, TEMPLATED)
        assert (await stats(client))["misses"] == misses + 1
    assert answer["valid"] is False


async def test_invalidating_makes_the_next_lookup_a_miss(make_client: Callable[..., Any]) -> None:
    async with make_client() as (bs, client):
        await validate(client, TEMPLATED)
        [key] = await keys(client, "compile:")
        dropped = await client.post(INVALIDATE, json={"prefix": "compile:"})
        assert dropped.status_code == 200, dropped.text
        assert dropped.json() == {"removed": 1}
        before = await stats(client)
        await validate(client, TEMPLATED)
        after = await stats(client)
        assert (after["hits"], after["misses"]) == (before["hits"], before["misses"] + 1)
        by_key = await client.post(INVALIDATE, json={"keys": [key, "never-set"]})
        assert by_key.json() == {"removed": 1}
        await bs.cache.set("other", 1)
        everything = await client.post(INVALIDATE, json={"all": True})
        assert everything.json() == {"removed": 1}
        assert await keys(client) == []
        entries = await trail(client, action="cache.invalidate")
    assert [e["detail"]["scope"] for e in entries] == ["all", "2 key(s)", "prefix compile:"]
    assert [e["detail"]["removed"] for e in entries] == ["1", "1", "1"]
    assert {e["resource"] for e in entries} == {"server:cache"}


async def test_keys_are_listed_without_values(make_client: Callable[..., Any]) -> None:
    async with make_client() as (bs, client):
        for i in range(3):
            await bs.cache.set(f"demo:{i}", {"token": f"VALUE-{i}-MARKER"})
        listed = await client.get(KEYS, params={"prefix": "demo:", "limit": 2})
    assert listed.status_code == 200
    assert listed.json() == {"keys": ["demo:0", "demo:1"], "truncated": True}
    assert "MARKER" not in listed.text


@pytest.mark.parametrize("body", [{}, {"prefix": ""}, {"prefix": 3}, {"keys": []},
                                  {"keys": ["a", 1]}, {"keys": "a"}, {"all": False},
                                  {"prefix": "a", "all": True}, {"nope": 1}, [], "all"])
async def test_bad_invalidate_bodies_are_refused(make_client: Callable[..., Any],
                                                 body: Any) -> None:
    async with make_client() as (bs, client):
        await bs.cache.set("kept", 1)
        response = await client.post(INVALIDATE, json=body)
        assert await bs.cache.get("kept") == 1
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"


async def test_a_body_that_is_not_json_is_400(make_client: Callable[..., Any]) -> None:
    async with make_client() as (bs, client):
        response = await client.post(INVALIDATE, content=b"{all",
                                     headers={"content-type": "application/json"})
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"


def document(version: str) -> dict[str, Any]:
    return {"templateId": "hello.say", "version": version, "description": "say hello",
            "steps": [{"name": "say", "type": "shell", "config": {"command": "echo hi"}}]}


async def test_a_resolved_template_is_a_hit_until_a_version_is_published(
        make_client: Callable[..., Any]) -> None:
    async with make_client() as (bs, client):
        assert (await client.post("/api/v1/templates", json=document("1.0.0"))).status_code \
            == 201
        first = await client.get("/api/v1/templates/hello.say/^1")
        before = await stats(client)
        second = await client.get("/api/v1/templates/hello.say/^1")
        after = await stats(client)
        assert second.json() == first.json() and first.json()["version"] == "1.0.0"
        assert after["hits"] == before["hits"] + 1
        assert len(await keys(client, "template:hello.say@")) == 1
        assert (await client.post("/api/v1/templates", json=document("1.1.0"))).status_code \
            == 201
        assert await keys(client, "template:hello.say@") == []
        newer = await client.get("/api/v1/templates/hello.say/^1")
        assert newer.json()["version"] == "1.1.0"
        deleted = await client.delete("/api/v1/templates/hello.say/1.1.0")
        assert deleted.status_code == 204
        back = await client.get("/api/v1/templates/hello.say/^1")
    assert back.json()["version"] == "1.0.0"


async def test_the_redis_cache_serves_the_admin_api(make_client: Callable[..., Any]) -> None:
    prefix = f"bs-test-{uuid.uuid4().hex[:8]}:"
    try:
        async with make_client(cache="redis", redis_url=REDIS_URL,
                               extra={"cache_redis": {"prefix": prefix}}) as (bs, client):
            await validate(client, TEMPLATED)
            before = await stats(client)
            await validate(client, TEMPLATED)
            after = await stats(client)
            assert after["backend"] == "redis"
            assert after["hits"] == before["hits"] + 1 and after["size"] == 1
            [key] = await keys(client, "compile:")
            assert (await client.post(INVALIDATE, json={"all": True})).json() == {"removed": 1}
            assert await keys(client) == []
            assert await bs.cache.get(key) is None
    finally:
        raw = aioredis.from_url(REDIS_URL)
        names = [n async for n in raw.scan_iter(match=prefix + "*")]
        if names:
            await raw.delete(*names)
        await raw.aclose()
