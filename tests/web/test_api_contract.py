"""Promises the server makes on every route at once: a 405 names exactly the methods the
path is served with, and every run or job status any endpoint reports is a word of the one
documented vocabulary."""
from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from api_support import (
    API,
    JSON,
    PROBLEM_JSON,
    install,
    job_in,
    schema_errors,
    start,
    stream_while,
)
from hypothesis import given, settings
from hypothesis import strategies as st
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.routing import Mount, Route

from baseshift.core.semver import Range, Version
from baseshift.core.states import JobState, RunState
from baseshift.plugins.api.analytics_routes import iso
from baseshift.web.limits import FIRST, VERSION, VERSION_RANGE
from baseshift.web.problems import EXCEPTION_HANDLERS

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
        # a method no route serves (PATCH is, on /api/v1/users/{name})
        answers = {path: await client.request("TRACE", _concrete(path)) for path in served}
        assert {p: r.status_code for p, r in answers.items() if r.status_code != 405} == {}
        assert {p: r.headers["allow"] for p, r in answers.items()
                if set(r.headers["allow"].split(", ")) != served[p]} == {}
        for path, response in answers.items():
            if path == "/" or path.startswith("/ui/"):  # the web UI's pages: an HTML error page
                assert response.headers["content-type"].startswith("text/html"), path
                assert "TRACE is not allowed" in response.text
                continue
            assert response.headers["content-type"] == PROBLEM_JSON
            body = response.json()
            assert set(body["allowed"]) == served[path]
            assert body["detail"].startswith("TRACE is not allowed"), body


async def test_a_405_under_a_mount_keeps_its_own_allow_and_never_an_empty_one(
        make_client: Callable[..., Any]) -> None:
    """A mount (the static files) is no route, so no methods to list: its own `Allow` stays,
    and without one there is no `Allow: ''` and no detail ending in "allowed: "."""
    async with make_client() as (_, client):
        static = await client.post("/static/baseshift.css")

    async def refuses(scope: Any, receive: Any, send: Any) -> None:
        raise HTTPException(405)

    app = Starlette(routes=[Mount("/m", refuses)], exception_handlers=EXCEPTION_HANDLERS)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://localhost") as bare:
        plain = await bare.post("/m/x")
    assert static.status_code == 405 and static.headers["allow"] == "GET, HEAD"
    assert static.json()["detail"] == ("POST is not allowed on /static/baseshift.css; "
                                       "allowed: GET, HEAD")
    assert static.json()["allowed"] == ["GET", "HEAD"]
    assert plain.status_code == 405 and "allow" not in plain.headers
    assert plain.json()["detail"] == "POST is not allowed on /m/x", plain.json()
    assert plain.json()["allowed"] == []


# ------------------------------------------------------------------ status words

_STATUS_KEYS = frozenset({"status", "state", "old", "new", "accepted"})
_FILL = {"run_id": "", "job_id": "review", "name": "approval_gate", "workflow_id": ""}


def _words(value: Any) -> Iterator[str]:
    """Every string under a status-like key, anywhere in a JSON answer."""
    if isinstance(value, dict):
        for key, item in value.items():
            if key in _STATUS_KEYS and isinstance(item, str):
                yield item
            else:
                yield from _words(item)
    elif isinstance(value, list):
        for item in value:
            yield from _words(item)


VOCABULARY = {s.value for s in RunState} | {s.value for s in JobState}

OWN_VOCABULARY = {f"{API}/compliance/report": {"compliant", "partially_compliant",
                                               "non_compliant", "implemented", "pending"}}
"""Answers about something other than runs, whose `status` words are their own (the seed's
compliance report): checked against that vocabulary instead of the run and job states."""


async def _walk(client: httpx.AsyncClient, document: JSON, run_id: str) -> dict[str, set[str]]:
    """GET every documented JSON operation about the run; the status words each reports,
    after checking the answer against its documented schema."""
    fill = {k: v or run_id for k, v in _FILL.items()}
    reported: dict[str, set[str]] = {}
    for path, item in document["paths"].items():
        get = item.get("get")
        if get is None or "application/json" not in get["responses"]["200"].get("content", {}):
            continue
        names = [p["name"] for p in get.get("parameters", ())]
        if any(p["in"] == "path" and p["name"] not in fill for p in get.get("parameters", ())):
            continue
        url = _PARAM.sub(lambda m: fill[m.group(0)[1:-1]], path)
        response = await client.get(url, params={n: fill[n] for n in names
                                                 if n in fill and f"{{{n}}}" not in path})
        if response.status_code != 200:
            continue
        schema = get["responses"]["200"]["content"]["application/json"]["schema"]
        assert schema_errors(document, schema, response.json()) == [], path
        if path in OWN_VOCABULARY:
            assert set(_words(response.json())) <= OWN_VOCABULARY[path], path
            continue
        reported[path] = set(_words(response.json()))
    return reported


async def test_every_status_word_reported_is_in_the_documented_vocabulary(
        make_client: Callable[..., Any], workflows_dir: Path) -> None:
    """A run whose job waits is RUNNING wherever it is reported (REST, the seed's paths,
    analytics, the events); finished, it is reported with the same words again."""
    install(workflows_dir, "approval")
    async with make_client() as (bs, client):
        document = (await client.get(f"{API}/openapi.json")).json()
        run_id = await start(client, "approval_gate")
        await job_in(client, run_id, "review", "RUNNING")

        running = await _walk(client, document, run_id)
        reporting = {path for path, words in running.items() if words}
        assert {f"{API}/workflows", f"{API}/workflows/{{run_id}}/status",
                "/workflows/{run_id}", f"{API}/analytics/workflow-performance"} <= reporting
        assert {path for path in reporting if "RUNNING" not in running[path]} == set()

        messages = await stream_while(bs, client, run_id, "PUT",
                                      f"{API}/workflows/{run_id}/jobs/review",
                                      {"status": "SUCCEEDED", "output": {"approved": True}})
        streamed = {word for _, data in messages for word in _words(data)}
        done = await _walk(client, document, run_id)

        unknown = {(path, word) for path, words in [*running.items(), *done.items(),
                                                   ("events", streamed)]
                   for word in words if word not in VOCABULARY}
        assert unknown == set()
        assert {"RUNNING", "SUCCEEDED", "COMPLETED"} <= streamed
    schemas = document["components"]["schemas"]
    assert schemas["RunStatus"]["enum"] == [s.value for s in RunState]
    assert schemas["JobStatus"]["enum"] == [s.value for s in JobState]


# ------------------------------------------------------------------ request bodies


async def _document_and_urls(client: httpx.AsyncClient) -> tuple[dict[str, Any],
                                                                  Callable[[str], str]]:
    """The OpenAPI document, and a function making a documented path a real URL (of a run of
    `hello` started here)."""
    document = (await client.get(f"{API}/openapi.json")).json()
    run_id = await start(client, "hello")
    fill = {"run_id": run_id, "job_id": "greet", "name": "hello", "workflow": "hello",
            "version": "1.0.0"}
    return document, lambda path: _PARAM.sub(lambda m: fill[m.group(0)[1:-1]], path)


async def test_a_body_the_document_requires_cannot_be_left_out_and_an_optional_one_can(
        make_client: Callable[..., Any]) -> None:
    async with make_client() as (_, client):
        document, concrete = await _document_and_urls(client)
        answers: dict[tuple[str, str], tuple[bool, int]] = {}
        for path, item in document["paths"].items():
            for method, op in item.items():
                if "requestBody" not in op:
                    continue
                url = concrete(path)
                response = await client.request(method.upper(), url)
                answers[(method, path)] = (op["requestBody"]["required"], response.status_code)
        # a webhook without its secret stops at 401, an unknown template at 404: before the body
        reached = {key: answer for key, answer in answers.items() if answer[1] not in (401, 404)}
        assert len(reached) >= 8
        assert {key for key, (required, _) in reached.items() if not required} >= {
            ("post", f"{API}/definitions/{{name}}/runs"),
            ("post", f"{API}/workflows/{{run_id}}/jobs/{{job_id}}/complete")}
        assert {key: answer for key, answer in reached.items()
                if answer[0] != (answer[1] in (400, 415, 422))} == {}


# ------------------------------------------------------------------ query parameters


async def test_every_documented_get_refuses_a_query_parameter_it_does_not_take(
        make_client: Callable[..., Any]) -> None:
    """A misspelt filter (`?stat=RUNNING`) must not answer as if nothing was asked."""
    async with make_client() as (_, client):
        document, concrete = await _document_and_urls(client)
        answers = {path: await client.get(concrete(path), params={"no_such_parameter": "1"})
                   for path, item in document["paths"].items() if "get" in item}
        misspelt = await client.get(f"{API}/workflows", params={"stat": "RUNNING"})
    assert len(answers) >= 10
    assert {p: r.status_code for p, r in answers.items() if r.status_code != 400} == {}
    assert all("unknown query parameter 'no_such_parameter'" in r.json()["detail"]
               for r in answers.values())
    assert misspelt.status_code == 400 and misspelt.json()["hint"] == "did you mean 'state'?"


# ------------------------------------------------------------------ declared limits


@settings(max_examples=200, deadline=None)
@given(st.from_regex(f"^(?:{VERSION_RANGE.pattern})$", fullmatch=True)
       .filter(VERSION_RANGE.accepts))  # the pattern within the declared length
def test_every_version_range_the_document_admits_is_read_by_the_parser(text: str) -> None:
    Range.parse(text)


@settings(max_examples=200, deadline=None)
@given(st.from_regex(f"^(?:{VERSION.pattern})$", fullmatch=True).filter(VERSION.accepts))
def test_every_version_the_document_admits_is_read_by_the_parser(text: str) -> None:
    Version.parse(text)


@pytest.mark.parametrize(("value", "epoch"), [
    ("2026-11-28T10:00:00Z", 1795860000.0),
    ("2026-11-28t11:30:00.25+01:30", 1795860000.25),
    ("2016-12-31T23:59:60Z", 1483228800.0),
    ("0001-01-01T00:00:00+23:59", FIRST),
    ("1795860000", 1795860000.0),
    ("-1.5", -1.5),
])
async def test_times_the_document_admits_are_read(make_client: Callable[..., Any], value: str,
                                                  epoch: float) -> None:
    async with make_client() as (_, client):
        body = (await client.get(f"{API}/analytics/job-success-rate",
                                 params={"since": value})).json()
    assert body["since"] == iso(epoch)


@pytest.mark.parametrize("value", [
    "2026-02-30T00:00:00Z", "2026-11-28T10:00:00", "2026-11-28 10:00:00Z", "2026-11-28",
    "2026-11-28T10:00Z", "2026-11-28T10:00:61Z", "2026-11-28T10:00:00+24:00",
    "2026-11-28T10:00:00+01:60", "1e5", "inf", "0x10", " 1", "1_000", "1234567890123456"])
async def test_times_the_document_refuses_are_400(make_client: Callable[..., Any],
                                                  value: str) -> None:
    """Not RFC 3339 (no offset, no seconds, a space, 30 February, :61), not a plain decimal."""
    async with make_client() as (_, client):
        response = await client.get(f"{API}/workflows", params={"since": value})
    assert response.status_code == 400, response.text
    assert response.json()["parameter"] == "since"
    assert "RFC 3339" in response.json()["detail"]
