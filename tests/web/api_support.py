"""Helpers of the API contract tests: test workflows, starting runs, polling their state,
reading problem+json answers and server-sent event streams."""
from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from baseshift.core.app.application import BaseShift

HERE = Path(__file__).resolve().parent
TEST_WORKFLOWS = HERE / "workflows"
API = "/api/v1"
PROBLEM_JSON = "application/problem+json"
POLL_SECONDS = 60.0

JSON = dict[str, Any]
Message = tuple[str, Any]


def install(folder: Path, *names: str) -> None:
    """Copy test workflows (`tests/web/workflows/<name>.bsw`) into a server's folder."""
    for name in names:
        shutil.copy(TEST_WORKFLOWS / f"{name}.bsw", folder / f"{name}.bsw")


async def start(client: httpx.AsyncClient, workflow: str, inputs: JSON | None = None,
                *, path: str = f"{API}/workflows") -> str:
    """Start a run through the API (201 with a Location); returns its id."""
    response = await client.post(path, json={"workflow": workflow, "inputs": inputs or {}})
    assert response.status_code == 201, response.text
    body = response.json()
    run_id: str = body["workflow_id"]
    assert response.headers["location"] == body["url"] == f"{API}/workflows/{run_id}"
    assert body["status_url"] == f"{API}/workflows/{run_id}/status"
    return run_id


async def get_json(client: httpx.AsyncClient, path: str, status: int = 200,
                   **params: Any) -> Any:
    response = await client.get(path, params=params)
    assert response.status_code == status, response.text
    return response.json()


async def run(client: httpx.AsyncClient, run_id: str) -> JSON:
    body: JSON = await get_json(client, f"{API}/workflows/{run_id}")
    return body


async def status(client: httpx.AsyncClient, run_id: str) -> JSON:
    body: JSON = await get_json(client, f"{API}/workflows/{run_id}/status")
    return body


async def poll(client: httpx.AsyncClient, run_id: str, done: Callable[[JSON], bool],
               what: str) -> JSON:
    """Read the run (GET /workflows/{id}) until `done(run)`; fails after POLL_SECONDS."""
    body: JSON = {}
    try:
        async with asyncio.timeout(POLL_SECONDS):
            while True:
                body = await run(client, run_id)
                if done(body):
                    return body
                await asyncio.sleep(0.02)
    except TimeoutError:
        raise AssertionError(f"run {run_id} never reached {what}: {body}") from None


async def finished(client: httpx.AsyncClient, run_id: str) -> JSON:
    """The run once it has finished (COMPLETED, FAILED or CANCELLED)."""
    return await poll(client, run_id,
                      lambda r: r["status"] in ("COMPLETED", "FAILED", "CANCELLED"),
                      "a finished state")


async def job_in(client: httpx.AsyncClient, run_id: str, key: str, state: str) -> JSON:
    """The run once its job `key` is in `state` (e.g. RUNNING: a manual job waits)."""
    return await poll(client, run_id, lambda r: job(r, key)["state"] == state,
                      f"job {key} {state}")


async def poll_attempts(client: httpx.AsyncClient, run_id: str, key: str, count: int) -> JSON:
    """The run once job `key` has `count` attempts and the run has finished (again): retry
    and re-run answer 202 before the engine has reopened the run."""
    return await poll(client, run_id,
                      lambda r: len(job(r, key)["attempts"]) == count
                      and r["status"] in ("COMPLETED", "FAILED", "CANCELLED"),
                      f"{key} with {count} attempts")


def job(run_body: JSON, key: str) -> JSON:
    found: JSON = next(j for j in run_body["jobs"] if j["key"] == key)
    return found


def attempts(run_body: JSON) -> dict[str, int]:
    """Attempts per job key."""
    return {j["key"]: len(j["attempts"]) for j in run_body["jobs"]}


async def run_ids(client: httpx.AsyncClient) -> list[str]:
    """Every run id the server lists (all pages)."""
    ids: list[str] = []
    cursor: str | None = None
    while True:
        params: JSON = {"limit": 500, **({"cursor": cursor} if cursor else {})}
        page = await get_json(client, f"{API}/workflows", **params)
        ids.extend(r["id"] for r in page["runs"])
        cursor = page["next_cursor"]
        if cursor is None:
            return ids


def processes_of(run_id: str) -> list[int]:
    """Processes (zombies too: not yet reaped) started by a job of the run, found by the
    BASESHIFT_RUN_ID the shell executor puts in their environment."""
    marker = f"BASESHIFT_RUN_ID={run_id}\0".encode()
    found = []
    for proc in Path("/proc").iterdir():
        try:
            if marker in (proc / "environ").read_bytes():
                found.append(int(proc.name))
        except (OSError, ValueError):
            continue
    return found


async def cancelled(client: httpx.AsyncClient, run_id: str) -> JSON:
    """Cancel the run; return it once it is CANCELLED and its job processes are gone.
    Waiting for them matters: the engine's stop does not wait for attempts a cancel is
    still stopping (see test_server_resume), and the loop must not close under them."""
    response = await client.post(f"{API}/workflows/{run_id}/cancel")
    assert response.status_code == 200, response.text
    body = await finished(client, run_id)
    async with asyncio.timeout(POLL_SECONDS):
        while processes_of(run_id):
            await asyncio.sleep(0.02)
    return body


def problem(response: httpx.Response, status: int) -> JSON:
    """The problem+json body of an error answer with `status`."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].split(";")[0] == PROBLEM_JSON, response.headers
    body: JSON = response.json()
    assert body["status"] == status and body["detail"] and body["title"], body
    return body


def parse(text: str) -> list[Message]:
    """SSE text as (event, data) pairs; data is JSON; comments (keep-alives) are dropped."""
    messages = []
    for block in text.split("\n\n"):
        lines = [line for line in block.splitlines() if line and not line.startswith(":")]
        if not lines:
            continue
        event = next(line[7:] for line in lines if line.startswith("event: "))
        data = "\n".join(line[6:] for line in lines if line.startswith("data: "))
        messages.append((event, json.loads(data)))
    return messages


async def read_stream(client: httpx.AsyncClient, run_id: str) -> list[Message]:
    async with client.stream("GET", f"{API}/workflows/{run_id}/events") as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["cache-control"] == "no-cache"
        text = "".join([chunk async for chunk in response.aiter_text()])
    return parse(text)


async def subscribed(bs: BaseShift, baseline: int) -> None:
    """Wait until one more subscriber than `baseline` listens: the stream subscribes before
    it reads the snapshot (the server itself also listens to every run)."""
    async with asyncio.timeout(30):
        while bs.live.subscribers <= baseline:
            await asyncio.sleep(0.01)


async def stream_while(bs: BaseShift, client: httpx.AsyncClient, run_id: str,
                       method: str, path: str, body: JSON | None) -> list[Message]:
    """Read the run's stream while `method path` is sent once the stream listens. (httpx's
    in-process transport hands the body over when the response ends, i.e. with the run.)"""
    baseline = bs.live.subscribers
    reader = asyncio.create_task(read_stream(client, run_id))
    await subscribed(bs, baseline)
    response = await client.request(method, path, json=body)
    assert response.status_code in (200, 202), response.text
    async with asyncio.timeout(60):
        return await reader


def schema_errors(document: JSON, schema: JSON, value: Any) -> list[str]:
    """Where `value` breaks `schema`, a schema of the OpenAPI `document` (its `$ref`s into the
    document's components resolve)."""
    from jsonschema import Draft202012Validator

    validator = Draft202012Validator({**schema, "components": document.get("components", {})})
    return [f"{'/'.join(map(str, e.absolute_path)) or '$'}: {e.message}"
            for e in validator.iter_errors(value)]


def message_errors(document: JSON, event: str, data: Any) -> list[str]:
    """Where one server-sent message breaks the documented event schema: the message as a
    client parses it (`event`, and `data` as text), then its data against the event's
    `contentSchema` (JSON Schema keeps that one an annotation)."""
    events = document["paths"][f"{API}/workflows/{{run_id}}/events"]["get"]
    schema = events["responses"]["200"]["content"]["text/event-stream"]["schema"]
    errors = schema_errors(document, schema, {"event": event, "data": json.dumps(data)})
    for branch in schema["oneOf"]:
        if branch["properties"]["event"]["const"] == event:
            content = branch["properties"]["data"]["contentSchema"]
            errors += schema_errors(document, content, data)
    return errors
