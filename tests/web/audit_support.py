"""Helpers of the audit trail's web tests: clients of one app from a chosen address, with
or without credentials, and the trail read through the API."""
from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx

AUDIT = "/api/v1/audit-logs"
ADDRESS = "203.0.113.7"
"""The client address of the tests' requests (TEST-NET-3: nobody's real address)."""

Entry = dict[str, Any]


@asynccontextmanager
async def client_of(app: Any, headers: dict[str, str] | None = None,
                    address: str = ADDRESS) -> AsyncIterator[httpx.AsyncClient]:
    """A client of `app` (a `make_client` client's `_transport.app`) calling from
    `address`, with `headers` (credentials) or none."""
    transport = httpx.ASGITransport(app=app, client=(address, 40000))
    async with httpx.AsyncClient(transport=transport, headers=headers,
                                 base_url="http://localhost") as client:
        yield client


async def trail(client: httpx.AsyncClient, **filters: Any) -> list[Entry]:
    """Every entry matching `filters`, newest first (all pages)."""
    entries: list[Entry] = []
    cursor: str | None = None
    while True:
        params = {**filters, "limit": 500, **({"cursor": cursor} if cursor else {})}
        response = await client.get(AUDIT, params=params)
        assert response.status_code == 200, response.text
        page = response.json()
        entries.extend(page["entries"])
        cursor = page["next_cursor"]
        if cursor is None:
            return entries


async def head_seq(client: httpx.AsyncClient) -> int:
    """The newest entry's sequence number (0 for an empty trail)."""
    response = await client.get(AUDIT, params={"limit": 1})
    assert response.status_code == 200, response.text
    entries = response.json()["entries"]
    return int(entries[0]["seq"]) if entries else 0


async def since_seq(client: httpx.AsyncClient, seq: int) -> list[Entry]:
    """The entries appended after entry `seq`, oldest first."""
    return [e for e in reversed(await trail(client)) if e["seq"] > seq]
