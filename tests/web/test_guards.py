"""Request guards: oversized bodies and cross-site state changes are refused before views."""
from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from baseshift.web.guards import MAX_BODY


async def _count_runs(client: Any) -> int:
    return len((await client.get("/api/v1/workflows")).json()["runs"])


async def test_a_body_over_the_limit_is_refused_from_its_length(make_client: Any) -> None:
    async with make_client() as (_, client):
        response = await client.post("/api/v1/workflows", content=b"x" * (MAX_BODY + 1),
                                     headers={"content-type": "application/json"})
        assert response.status_code == 413
        assert response.json()["code"] == "request.too-large"
        assert await _count_runs(client) == 0


async def test_a_streamed_body_over_the_limit_is_refused_while_it_arrives(
        make_client: Any) -> None:
    chunk = b" " * (1024 * 1024)

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(MAX_BODY // len(chunk) + 2):
            yield chunk

    async with make_client() as (_, client):
        response = await client.post("/api/v1/workflows", content=chunks(),
                                     headers={"content-type": "application/json"})
        assert response.status_code == 413
        assert response.headers["content-type"] == "application/problem+json"


async def test_a_cross_site_form_post_cannot_start_a_run(make_client: Any) -> None:
    async with make_client() as (_, client):
        for headers in ({"origin": "http://evil.example"}, {"sec-fetch-site": "cross-site"},
                        {"origin": "null"}):
            response = await client.post("/ui/workflows/hello/runs", data={"name": "x"},
                                         headers=headers)
            assert response.status_code == 403, headers
            assert response.json()["code"] == "request.cross-site"
        assert await _count_runs(client) == 0


async def test_same_site_and_non_browser_requests_pass(make_client: Any) -> None:
    async with make_client() as (_, client):
        same = await client.post("/api/v1/workflows", json={"workflow": "hello"},
                                 headers={"origin": "http://localhost",
                                          "sec-fetch-site": "same-origin"})
        plain = await client.post("/api/v1/workflows", json={"workflow": "hello"})
        assert (same.status_code, plain.status_code) == (201, 201)
        assert await _count_runs(client) == 2
