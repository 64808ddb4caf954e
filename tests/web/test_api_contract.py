"""Promises the server makes on every route at once: a 405 names exactly the methods the
path is served with, and every run or job status any endpoint reports is a word of the one
documented vocabulary."""
from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from api_support import PROBLEM_JSON
from starlette.routing import Route

_PARAM = re.compile(r"{[^}]+}")


def _concrete(path: str) -> str:
    """A request path for a route path: each parameter gets its own value, so `/{name}/diff`
    and `/{name}/{version}` stay two paths."""
    counter = iter(range(100))
    return _PARAM.sub(lambda _: f"p{next(counter)}", path)


async def test_a_405_allows_every_method_the_path_is_served_with(
        make_client: Callable[..., Any]) -> None:
    async with make_client() as (_, client):
        served: dict[str, set[str]] = {}
        for route in client._transport.app.routes:  # type: ignore[attr-defined]
            if isinstance(route, Route) and route.methods:
                served.setdefault(route.path, set()).update(route.methods)
        assert sum(len(m - {"HEAD"}) > 1 for m in served.values()) >= 3  # several per path
        answers = {path: await client.request("PATCH", _concrete(path)) for path in served}
        assert {p: r.status_code for p, r in answers.items() if r.status_code != 405} == {}
        assert {p: r.headers["allow"] for p, r in answers.items()
                if set(r.headers["allow"].split(", ")) != served[p]} == {}
        for path, response in answers.items():
            assert response.headers["content-type"] == PROBLEM_JSON
            body = response.json()
            assert set(body["allowed"]) == served[path]
            assert body["detail"].startswith("PATCH is not allowed"), body
