"""Jobs finished by an outside call (`uses manual`): complete with an output, fail, the
seed's PUT path, output_schema checks, and requests on jobs that do not wait."""
from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from api_support import (
    API,
    JSON,
    attempts,
    cancelled,
    finished,
    install,
    job,
    job_in,
    problem,
    run,
    start,
)

from baseshift.core.app.application import BaseShift

Served = tuple[BaseShift, httpx.AsyncClient]
APPROVED = {"approved": True, "by": "ada"}
RECORDED = {**APPROVED, "approver": "admin-tester"}
"""What is stored: the output, with the approver set to whoever completed the job."""


@pytest.fixture(params=["memory", "sqlite"])
async def served(request: pytest.FixtureRequest, make_client: Callable[..., Any],
                 workflows_dir: Path) -> AsyncIterator[Served]:
    install(workflows_dir, "approval", "slow")
    async with make_client(store=request.param) as (bs, client):
        yield bs, client


async def waiting(client: httpx.AsyncClient) -> str:
    """A run of approval_gate whose `review` job waits for an outside call."""
    run_id = await start(client, "approval_gate")
    await job_in(client, run_id, "review", "RUNNING")
    return run_id


async def deliver(client: httpx.AsyncClient, method: str, path: str,
                  body: JSON | None) -> httpx.Response:
    """Send a complete/fail call. The job's attempt is stored RUNNING a moment before the
    executor listens; the API answers 409 "not waiting ... yet" then, and says to retry."""
    async with asyncio.timeout(30):
        while True:
            response = await client.request(method, path, json=body)
            if response.status_code != 409 or "yet" not in response.json()["detail"]:
                return response
            await asyncio.sleep(0.01)


def job_path(run_id: str, key: str = "review", *, seed: bool = False) -> str:
    return f"{'' if seed else API}/workflows/{run_id}/jobs/{key}"


async def test_complete_with_an_output_feeds_downstream_jobs(served: Served) -> None:
    _, client = served
    run_id = await waiting(client)
    response = await deliver(client, "POST", job_path(run_id) + "/complete",
                             {"output": APPROVED})
    assert response.status_code == 202, response.text
    assert response.json() == {"workflow_id": run_id, "job": "review", "accepted": "SUCCEEDED"}
    body = await finished(client, run_id)
    assert body["status"] == "COMPLETED"
    assert job(body, "review")["output"] == RECORDED
    assert job(body, "publish")["output"]["stdout"] == "published by ada\n"
    assert body["outputs"] == {"approved": True, "by": "ada"}  # the workflow's own output
    one = (await client.get(job_path(run_id))).json()
    assert one["state"] == "SUCCEEDED" and one["output"] == RECORDED
    assert "approve the release" in one["attempts"][0]["log"]


@pytest.mark.parametrize(("seed", "word"), [(False, "SUCCEEDED"), (True, "completed")])
async def test_put_completes_a_waiting_job(served: Served, seed: bool, word: str) -> None:
    """The job vocabulary's SUCCEEDED, or the seed plan's `completed`; the answer says the
    state in the one vocabulary either way."""
    _, client = served
    run_id = await waiting(client)
    response = await deliver(client, "PUT", job_path(run_id, seed=seed),
                             {"status": word, "output": APPROVED})
    assert response.status_code == 202, response.text
    assert response.json()["accepted"] == "SUCCEEDED"
    body = await finished(client, run_id)
    assert body["status"] == "COMPLETED" and body["outputs"] == APPROVED


async def test_fail_fails_the_job_and_the_run(served: Served) -> None:
    _, client = served
    run_id = await waiting(client)
    response = await deliver(client, "POST", job_path(run_id) + "/fail",
                             {"error": "rejected by bob"})
    assert response.status_code == 202, response.text
    assert response.json()["accepted"] == "FAILED"
    body = await finished(client, run_id)
    assert body["status"] == "FAILED"
    review = job(body, "review")
    assert review["state"] == "FAILED" and "rejected by bob" in review["error"]
    assert job(body, "publish")["state"] == "CANCELLED"
    assert attempts(body) == {"prepare": 1, "review": 1, "publish": 0}


@pytest.mark.parametrize(("seed", "word"), [(False, "FAILED"), (True, "failed")])
async def test_put_fails_a_waiting_job(served: Served, seed: bool, word: str) -> None:
    _, client = served
    run_id = await waiting(client)
    response = await deliver(client, "PUT", job_path(run_id, seed=seed),
                             {"status": word, "error": "no"})
    assert response.status_code == 202, response.text
    assert response.json()["accepted"] == "FAILED"
    body = await finished(client, run_id)
    assert body["status"] == "FAILED" and job(body, "review")["error"].endswith("no")


async def test_fail_without_a_body_uses_a_default_error(served: Served) -> None:
    _, client = served
    run_id = await waiting(client)
    response = await deliver(client, "POST", job_path(run_id) + "/fail", None)
    assert response.status_code == 202, response.text
    body = await finished(client, run_id)
    assert "outside call" in job(body, "review")["error"]


@pytest.mark.parametrize(("method", "suffix", "body", "field"), [
    ("POST", "/complete", {"output": {"approved": "yes"}}, "output"),
    ("POST", "/complete", {"output": {"by": "ada"}}, "output"),
    ("POST", "/complete", {"output": APPROVED, "note": "x"}, "note"),
    ("POST", "/complete", [APPROVED], "body"),
    ("POST", "/fail", {"error": 5}, "error"),
    ("POST", "/fail", {"error": ""}, "error"),
    ("POST", "/fail", {"reason": "x"}, "reason"),
    ("PUT", "", {"status": "done"}, "status"),
    ("PUT", "", {"output": APPROVED}, "status"),
    ("PUT", "", {"status": "failed", "error": 1}, "error"),
    ("PUT", "", {"status": "completed", "output": {"approved": 1}}, "output"),
    ("PUT", "", {"status": "completed", "extra": 1}, "extra"),
])
async def test_a_bad_call_is_422_and_the_job_still_waits(
        served: Served, method: str, suffix: str, body: Any, field: str) -> None:
    _, client = served
    run_id = await waiting(client)
    response = await deliver(client, method, job_path(run_id) + suffix, body)
    assert problem(response, 422)["field"] == field
    still = await run(client, run_id)
    assert still["status"] == "RUNNING"
    assert job(still, "review")["state"] == "RUNNING"
    assert attempts(still)["review"] == 1
    ok = await deliver(client, "POST", job_path(run_id) + "/complete", {"output": APPROVED})
    assert ok.status_code == 202, ok.text
    assert (await finished(client, run_id))["status"] == "COMPLETED"


@pytest.mark.parametrize(("method", "suffix", "content"), [
    ("POST", "/complete", b'{"output": '),
    ("POST", "/fail", b"{error}"),
    ("PUT", "", b'{"status": "completed"'),
])
async def test_malformed_json_is_400_and_the_job_still_waits(
        served: Served, method: str, suffix: str, content: bytes) -> None:
    _, client = served
    run_id = await waiting(client)
    response = await client.request(method, job_path(run_id) + suffix, content=content,
                                    headers={"content-type": "application/json"})
    problem(response, 400)
    assert job(await run(client, run_id), "review")["state"] == "RUNNING"
    await deliver(client, "POST", job_path(run_id) + "/fail", {"error": "end"})


async def test_a_job_that_does_not_wait_cannot_be_completed(served: Served) -> None:
    _, client = served
    run_id = await waiting(client)
    before = await run(client, run_id)
    for key in ("prepare", "publish"):  # SUCCEEDED, and PENDING behind review
        for path, body in ((job_path(run_id, key) + "/complete", {"output": APPROVED}),
                           (job_path(run_id, key) + "/fail", {"error": "x"})):
            assert job(before, key)["state"] in problem(
                await client.post(path, json=body), 409)["detail"]
        problem(await client.put(job_path(run_id, key, seed=True),
                                 json={"status": "completed"}), 409)
    assert await run(client, run_id) == before
    await deliver(client, "POST", job_path(run_id) + "/complete", {"output": APPROVED})
    done = await finished(client, run_id)
    problem(await client.post(job_path(run_id) + "/complete", json={"output": APPROVED}), 409)
    assert await run(client, run_id) == done


async def test_a_running_shell_job_cannot_be_completed(served: Served) -> None:
    _, client = served
    run_id = await start(client, "slow")
    await job_in(client, run_id, "nap", "RUNNING")
    body = problem(await client.post(job_path(run_id, "nap") + "/complete",
                                     json={"output": 1}), 409)
    assert "manual" in body["hint"]
    assert job(await run(client, run_id), "nap")["state"] == "RUNNING"
    await cancelled(client, run_id)


@pytest.mark.parametrize("suffix", ["/complete", "/fail"])
async def test_unknown_runs_and_jobs_are_404(served: Served, suffix: str) -> None:
    _, client = served
    run_id = await waiting(client)
    problem(await client.post(job_path("no-such-run") + suffix, json={}), 404)
    body = problem(await client.post(job_path(run_id, "zz") + suffix, json={}), 404)
    assert "zz" in body["detail"] and "review" in body["hint"]
    problem(await client.put(job_path(run_id, "zz"), json={"status": "completed"}), 404)
    problem(await client.put(job_path("no-such-run", seed=True),
                             json={"status": "completed"}), 404)
    problem(await client.get(job_path(run_id, "zz")), 404)
    assert job(await run(client, run_id), "review")["state"] == "RUNNING"
    await deliver(client, "POST", job_path(run_id) + "/fail", {"error": "end"})


async def test_a_manual_job_with_an_invalid_output_schema_fails_clearly(
        make_client: Callable[..., Any], workflows_dir: Path) -> None:
    (workflows_dir / "badschema.bsw").write_text(
        'workflow badschema {\n  version "1.0.0"\n'
        '  job ask uses manual { with { output_schema: { type: "strnig" } } }\n}\n')
    async with make_client() as (_, client):
        response = await client.post("/api/v1/workflows", json={"workflow": "badschema"})
        run_id = response.json()["workflow_id"]
        for _ in range(500):
            status = (await client.get(f"/api/v1/workflows/{run_id}")).json()
            if status["status"] == "FAILED":
                break
            await asyncio.sleep(0.01)
        assert status["status"] == "FAILED"
        assert "output_schema is not a valid JSON Schema" in status["jobs"][0]["error"]
