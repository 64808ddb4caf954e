"""The server resumes interrupted runs when it starts: a run whose job was running when the
previous server stopped continues (on the same SQLite data dir) and completes."""
from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from api_support import (
    API,
    attempts,
    finished,
    install,
    job,
    job_in,
    poll,
    processes_of,
    run,
    run_ids,
    start,
)

APPROVED = {"approved": True, "by": "ada"}

pytestmark = pytest.mark.slow


def processes_mentioning(text: str) -> list[int]:
    """Live processes whose command line contains `text` (the job's shell)."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            cmdline = (proc / "cmdline").read_bytes()
            stat = (proc / "stat").read_text()
        except OSError:
            continue
        if text.encode() in cmdline and stat.split(") ")[-1][:1] != "Z":
            found.append(int(proc.name))
    return found


@pytest.fixture
def folder(workflows_dir: Path) -> Path:
    install(workflows_dir, "waitfile", "approval")
    return workflows_dir


async def test_a_run_stopped_mid_job_completes_on_the_next_server(
        make_client: Callable[..., Any], folder: Path, tmp_path: Path) -> None:
    flag = tmp_path / "flag"
    async with make_client(store="sqlite") as (_, client):
        run_id = await start(client, "waitfile", {"flag": str(flag)})
        done_earlier = await start(client, "hello")
        finished_before = await finished(client, done_earlier)
        await job_in(client, run_id, "wait", "RUNNING")
        async with asyncio.timeout(30):  # the attempt is stored just before it spawns
            while not processes_mentioning(str(flag)):
                await asyncio.sleep(0.02)
    assert not processes_mentioning(str(flag)), "the stopped server left its job running"
    flag.touch()
    async with make_client(store="sqlite") as (_, client):
        body = await finished(client, run_id)
        assert body["status"] == "COMPLETED", body["error"]
        assert attempts(body) == {"first": 1, "wait": 2, "report": 1}
        assert [a["state"] for a in job(body, "wait")["attempts"]] == ["CANCELLED", "SUCCEEDED"]
        assert job(body, "wait")["output"]["stdout"] == "found\n"
        assert await run(client, done_earlier) == finished_before
        assert set(await run_ids(client)) == {run_id, done_earlier}


async def test_a_waiting_manual_job_waits_again_after_a_restart(
        make_client: Callable[..., Any], folder: Path) -> None:
    async with make_client(store="sqlite") as (_, client):
        run_id = await start(client, "approval_gate")
        await job_in(client, run_id, "review", "RUNNING")
    async with make_client(store="sqlite") as (_, client):
        waiting = await poll(client, run_id,
                             lambda r: len(job(r, "review")["attempts"]) == 2
                             and job(r, "review")["state"] == "RUNNING",
                             "review waiting in a second attempt")
        assert waiting["status"] == "RUNNING"
        assert attempts(waiting)["prepare"] == 1
        path = f"{API}/workflows/{run_id}/jobs/review/complete"
        response = await client.post(path, json={"output": APPROVED})
        while response.status_code == 409 and "yet" in response.json()["detail"]:
            response = await client.post(path, json={"output": APPROVED})
        assert response.status_code == 202, response.text
        body = await finished(client, run_id)
        assert (body["status"], body["outputs"]) == ("COMPLETED", APPROVED)


async def test_stopping_the_server_waits_for_jobs_a_cancel_is_still_stopping(
        make_client: Callable[..., Any], workflows_dir: Path) -> None:
    install(workflows_dir, "stubborn")
    try:
        async with make_client(store="sqlite") as (_, client):
            run_id = await start(client, "stubborn")
            async with asyncio.timeout(30):
                while not processes_of(run_id):
                    await asyncio.sleep(0.02)
            response = await client.post(f"{API}/workflows/{run_id}/cancel")
            assert response.status_code == 200, response.text
        assert not processes_of(run_id), "the server stopped before the job's process ended"
    finally:
        async with asyncio.timeout(30):  # the orphaned stop still SIGKILLs it after grace
            while processes_of(run_id):
                await asyncio.sleep(0.02)
