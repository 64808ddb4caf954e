"""Fixtures shared by the plugin tests: a private key prefix on the real Redis, and an open
PostgreSQL state store in a fresh schema."""
from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from baseshift.plugins.storage.pg_store import PostgresStateStore

REDIS_URL = "redis://127.0.0.1:6379/0"
"""This machine's Redis (`tests/run` starts it when down); each test keeps to its prefix."""


@pytest.fixture
async def prefix() -> AsyncIterator[str]:
    """A key prefix for this test only; every key under it is deleted afterwards."""
    name = f"bstest-{uuid.uuid4().hex[:12]}:"
    yield name
    client = aioredis.from_url(REDIS_URL)
    try:
        keys = [k async for k in client.scan_iter(match=f"{name}*")]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


@pytest.fixture
async def pg_store(pg_url: str) -> AsyncIterator[PostgresStateStore]:
    """A PostgreSQL state store on a fresh schema of the real server, open."""
    store = PostgresStateStore(pg_url)
    await store.open()
    yield store
    await store.close()
