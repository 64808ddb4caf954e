"""Server-sent events of a run: a `snapshot` first, then the stored state changes in order,
then `end` once the run has finished; in-process and over a real HTTP server."""
from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from api_support import (
    API,
    Message,
    finished,
    install,
    job_in,
    message_errors,
    parse,
    problem,
    processes_of,
    read_stream,
    start,
    stream_while,
)
from hypercorn.asyncio import serve
from hypercorn.config import Config

from baseshift.core.app.application import BaseShift
from baseshift.core.events import Event
from baseshift.core.hookspecs import hookimpl
from baseshift.core.settings import Settings
from baseshift.web.app import create_app
from baseshift.web.sse import event_json, sse
from tests.auth_support import NO_FIRST_ADMIN, bearer, token_for
from tests.conftest import free_port

Served = tuple[BaseShift, httpx.AsyncClient]
APPROVED = {"approved": True, "by": "ada"}


@pytest.fixture(params=["memory", "sqlite"])
async def served(request: pytest.FixtureRequest, make_client: Callable[..., Any],
                 workflows_dir: Path) -> AsyncIterator[Served]:
    install(workflows_dir, "approval", "slow")
    async with make_client(store=request.param) as (bs, client):
        yield bs, client


def changes(messages: list[Message]) -> list[tuple[str, str | None, str]]:
    """(type, job or None, new state) of the change events."""
    return [(data["type"], data.get("job"), data["new"]) for event, data in messages
            if event in ("JobStateChanged", "RunStateChanged")]


async def test_stream_of_a_run_from_waiting_to_completed(served: Served) -> None:
    bs, client = served
    run_id = await start(client, "approval_gate")
    await job_in(client, run_id, "review", "RUNNING")
    messages = await stream_while(bs, client, run_id, "POST",
                                  f"{API}/workflows/{run_id}/jobs/review/complete",
                                  {"output": APPROVED})
    first_event, snapshot = messages[0]
    assert first_event == "snapshot"
    assert (snapshot["workflow_id"], snapshot["state"]) == (run_id, "RUNNING")
    assert snapshot["current_job"]["id"] == "review"
    assert [j["id"] for j in snapshot["completed_jobs"]] == ["prepare"]
    assert [j["id"] for j in snapshot["pending_jobs"]] == ["publish"]

    seen = changes(messages)
    assert seen.index(("JobStateChanged", "review", "SUCCEEDED")) \
        < seen.index(("JobStateChanged", "publish", "RUNNING")) \
        < seen.index(("JobStateChanged", "publish", "SUCCEEDED")) \
        < seen.index(("RunStateChanged", None, "COMPLETED"))
    assert seen[-1] == ("RunStateChanged", None, "COMPLETED")
    assert all(data["run_id"] == run_id for event, data in messages[1:-1])
    assert messages[-2][1]["workflow"] == "approval_gate"
    assert messages[-1] == ("end", {"workflow_id": run_id})
    assert (await finished(client, run_id))["status"] == "COMPLETED"


async def test_stream_of_a_run_that_fails(served: Served) -> None:
    bs, client = served
    run_id = await start(client, "approval_gate")
    await job_in(client, run_id, "review", "RUNNING")
    messages = await stream_while(bs, client, run_id, "POST",
                                  f"{API}/workflows/{run_id}/jobs/review/fail",
                                  {"error": "rejected"})
    assert messages[0][0] == "snapshot"
    seen = changes(messages)
    assert ("JobStateChanged", "review", "FAILED") in seen
    assert seen[-1] == ("RunStateChanged", None, "FAILED")
    failed = next(d for e, d in messages if e == "JobStateChanged" and d["new"] == "FAILED")
    assert "rejected" in failed["error"] and failed["attempt"] == 1
    assert messages[-1][0] == "end"


async def test_stream_of_a_cancelled_run(served: Served) -> None:
    bs, client = served
    run_id = await start(client, "slow")
    await job_in(client, run_id, "nap", "RUNNING")
    messages = await stream_while(bs, client, run_id, "POST",
                                  f"{API}/workflows/{run_id}/cancel", None)
    assert messages[0][0] == "snapshot"
    assert messages[0][1]["current_job"]["id"] == "nap"
    assert ("JobStateChanged", "nap", "CANCELLED") in changes(messages)
    assert changes(messages)[-1] == ("RunStateChanged", None, "CANCELLED")
    assert messages[-1][0] == "end"
    async with asyncio.timeout(60):
        while processes_of(run_id):  # let the job's process go before the server stops
            await asyncio.sleep(0.02)


async def test_stream_of_a_finished_run_is_its_snapshot_then_end(served: Served) -> None:
    _, client = served
    run_id = await start(client, "hello")
    await finished(client, run_id)
    messages = await read_stream(client, run_id)
    assert [event for event, _ in messages] == ["snapshot", "end"]
    assert messages[0][1]["state"] == "COMPLETED"
    assert [j["id"] for j in messages[0][1]["completed_jobs"]] == ["greet", "shout"]


async def test_stream_of_an_unknown_run_is_404(served: Served) -> None:
    bs, client = served
    listening = bs.live.subscribers
    body = problem(await client.get(f"{API}/workflows/no-such-run/events"), 404)
    assert "no-such-run" in body["detail"]
    assert bs.live.subscribers == listening


# ------------------------------------------------------------------ over real HTTP


async def test_events_arrive_while_the_run_is_still_going(tmp_path: Path,
                                                          workflows_dir: Path) -> None:
    """Over hypercorn, the snapshot is read before the job is completed: the stream is not
    buffered until the run ends."""
    install(workflows_dir, "approval")
    bs = BaseShift(Settings(load_entrypoints=False, store="memory", templates="memory",
                            data_dir=tmp_path / "data", workflows_dir=workflows_dir,
                            extra=NO_FIRST_ADMIN))
    config = Config()
    config.bind = [f"127.0.0.1:{free_port()}"]
    config.accesslog = config.errorlog = None
    stop = asyncio.Event()
    server = asyncio.create_task(serve(create_app(baseshift=bs), config,  # type: ignore[arg-type]
                                       shutdown_trigger=stop.wait))
    base = f"http://{config.bind[0]}"
    try:
        async with httpx.AsyncClient(base_url=base, timeout=30) as client:
            await _until_up(client)
            client.headers.update(bearer(await token_for(bs, "operator")))
            run_id = await start(client, "approval_gate")
            await job_in(client, run_id, "review", "RUNNING")
            async with client.stream("GET", f"{API}/workflows/{run_id}/events") as response:
                lines = response.aiter_lines()
                assert await anext(lines) == "event: snapshot"
                snapshot = json.loads((await anext(lines))[6:])
                assert snapshot["current_job"]["id"] == "review"
                done = await client.post(f"{API}/workflows/{run_id}/jobs/review/complete",
                                         json={"output": APPROVED})
                assert done.status_code == 202, done.text
                rest = "\n".join([line async for line in lines])
            events = [e for e, _ in parse(rest)]
            assert events[-2:] == ["RunStateChanged", "end"]
    finally:
        stop.set()
        async with asyncio.timeout(30):
            await server


async def _until_up(client: httpx.AsyncClient) -> None:
    async with asyncio.timeout(30):
        while True:
            try:
                if (await client.get(f"{API}/definitions")).status_code == 401:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.05)


# ------------------------------------------------------------------ the documented schema


async def test_every_message_of_a_stream_matches_the_documented_schema(served: Served) -> None:
    bs, client = served
    document = (await client.get(f"{API}/openapi.json")).json()
    run_id = await start(client, "approval_gate")
    await job_in(client, run_id, "review", "RUNNING")
    messages = await stream_while(bs, client, run_id, "POST",
                                  f"{API}/workflows/{run_id}/jobs/review/complete",
                                  {"output": APPROVED})
    assert {event for event, _ in messages} == {"snapshot", "JobStateChanged",
                                                "RunStateChanged", "end"}
    assert [(event, error) for event, data in messages
            for error in message_errors(document, event, data)] == []


async def test_every_event_the_engine_emits_is_documented(make_client: Callable[..., Any]) -> None:
    """Every event class (a fan-out's JobsAdded too), as the stream would carry it."""
    emitted: list[Event] = []

    class Recorder:
        @hookimpl
        def track_event(self, event: Event) -> None:
            emitted.append(event)

    async with make_client(plugins=(Recorder(),)) as (_, client):
        document = (await client.get(f"{API}/openapi.json")).json()
        await finished(client, await start(client, "sum_of_squares"))
    messages = [parse(sse(type(e).__name__, event_json(e)))[0] for e in emitted]
    assert {event for event, _ in messages} == {"RunStateChanged", "JobStateChanged",
                                                "JobsAdded"}
    assert [(event, error) for event, data in messages
            for error in message_errors(document, event, data)] == []
