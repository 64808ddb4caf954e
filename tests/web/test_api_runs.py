"""The runs API contract: start, get, status, list with filters and pages, cancel, retry and
re-run, on real runs the engine executes; every bad request is a problem and changes nothing."""
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
    get_json,
    install,
    job,
    job_in,
    poll,
    poll_attempts,
    problem,
    processes_of,
    run,
    run_ids,
    start,
    status,
)

from baseshift.core.app.application import BaseShift

Served = tuple[BaseShift, httpx.AsyncClient]


@pytest.fixture(params=["memory", "sqlite"])
async def served(request: pytest.FixtureRequest, make_client: Callable[..., Any],
                 workflows_dir: Path) -> AsyncIterator[Served]:
    """The server on each store, with the example workflows and the test ones."""
    install(workflows_dir, "slow", "gated", "chain", "broken")
    async with make_client(store=request.param) as (bs, client):
        yield bs, client


# ------------------------------------------------------------------ start and get


async def test_start_on_the_api_path_runs_the_workflow(served: Served) -> None:
    _, client = served
    run_id = await start(client, "hello", {"name": "ada"})
    body = await finished(client, run_id)
    assert (body["id"], body["workflow"], body["version"], body["status"]) == (
        run_id, "hello", "1.0.0", "COMPLETED")
    assert body["inputs"] == {"name": "ada"}
    assert body["outputs"] == {"message": "HELLO ADA!"}
    assert [j["key"] for j in body["jobs"]] == ["greet", "shout"]
    assert job(body, "greet")["output"] == {"greeting": "hello ada"}
    assert run_id in await run_ids(client)


async def test_start_on_the_seed_path_and_get_it_there(served: Served) -> None:
    _, client = served
    run_id = await start(client, "hello", path="/workflows")
    done = await finished(client, run_id)
    seed = await get_json(client, f"/workflows/{run_id}")
    assert seed == done
    assert seed["inputs"] == {"name": "world"}  # the default


async def test_inputs_may_be_left_out(served: Served) -> None:
    _, client = served
    response = await client.post(f"{API}/workflows", json={"workflow": "hello"})
    assert response.status_code == 201, response.text
    body = await finished(client, response.json()["workflow_id"])
    assert body["outputs"] == {"message": "HELLO WORLD!"}


async def test_get_with_logs_shows_each_attempt_log(served: Served) -> None:
    _, client = served
    run_id = await start(client, "chain", {"word": "logged"})
    await finished(client, run_id)
    plain = await run(client, run_id)
    assert "log" not in job(plain, "a")["attempts"][0]
    with_logs = await get_json(client, f"{API}/workflows/{run_id}", logs="true")
    assert "a-logged" in job(with_logs, "a")["attempts"][0]["log"]


async def test_jobs_of_a_run_and_one_job(served: Served) -> None:
    _, client = served
    run_id = await start(client, "chain")
    body = await finished(client, run_id)
    jobs = await get_json(client, f"{API}/workflows/{run_id}/jobs")
    assert [j["key"] for j in jobs] == ["a", "b", "c"]
    assert [j["state"] for j in jobs] == ["SUCCEEDED"] * 3
    one = await get_json(client, f"{API}/workflows/{run_id}/jobs/b")
    assert one["key"] == "b" and one["output"] == job(body, "b")["output"]
    assert [a["number"] for a in one["attempts"]] == [1]
    assert "b" in one["attempts"][0]["log"]


@pytest.mark.parametrize(("content", "headers", "status", "field"), [
    (b'{"workflow": "hello",', {"content-type": "application/json"}, 400, None),
    (b"workflow=hello", {"content-type": "application/x-www-form-urlencoded"}, 400, None),
    (b"\xff\xfe", {"content-type": "application/json"}, 400, None),
    (b'["hello"]', {}, 422, "body"),
    (b'"hello"', {}, 422, "body"),
    (b'{}', {}, 422, "workflow"),
    (b'{"workflow": 5}', {}, 422, "workflow"),
    (b'{"workflow": ""}', {}, 422, "workflow"),
    (b'{"workflow": "hello", "priority": 1}', {}, 422, "priority"),
    (b'{"workflow": "hello", "inputs": [1]}', {}, 422, "inputs"),
    (b'{"workflow": "hello", "inputs": "ada"}', {}, 422, "inputs"),
    (b'{"workflow": "hello", "inputs": {"name": 5}}', {}, 422, "name"),
    (b'{"workflow": "hello", "inputs": {"nmae": "ada"}}', {}, 422, "nmae"),
    (b'{"workflow": "gated"}', {}, 422, "flag"),
    (b'{"workflow": "nope"}', {}, 404, None),
])
@pytest.mark.parametrize("path", [f"{API}/workflows", "/workflows"])
async def test_a_bad_start_is_a_problem_and_creates_no_run(
        served: Served, path: str, content: bytes, headers: dict[str, str], status: int,
        field: str | None) -> None:
    _, client = served
    before = await run_ids(client)
    response = await client.post(path, content=content,
                                 headers={"content-type": "application/json", **headers})
    body = problem(response, status)
    assert body.get("field") == field
    assert body["instance"] == path
    assert await run_ids(client) == before


async def test_starting_a_workflow_with_errors_is_a_400_listing_them(served: Served) -> None:
    _, client = served
    before = await run_ids(client)
    response = await client.post(f"{API}/workflows", json={"workflow": "broken_flow"})
    body = problem(response, 400)
    assert body["code"] == "dsl.invalid"
    assert [(e["line"], e["col"], e["code"]) for e in body["errors"]] == [
        (8, 11, "dsl.unknown-job")]
    assert await run_ids(client) == before


@pytest.mark.parametrize("suffix", ["", "/status", "/jobs", "/jobs/greet", "/events"])
async def test_an_unknown_run_is_404(served: Served, suffix: str) -> None:
    _, client = served
    body = problem(await client.get(f"{API}/workflows/no-such-run{suffix}"), 404)
    assert "no-such-run" in body["detail"]
    problem(await client.get("/workflows/no-such-run"), 404)


@pytest.mark.parametrize("action", ["cancel", "retry"])
async def test_actions_on_an_unknown_run_are_404(served: Served, action: str) -> None:
    _, client = served
    problem(await client.post(f"{API}/workflows/no-such-run/{action}"), 404)
    body = problem(await client.post(f"{API}/workflows/no-such-run/rerun",
                                     json={"from_job": "a"}), 404)
    assert "no-such-run" in body["detail"]


async def test_an_unknown_job_of_a_known_run_is_404(served: Served) -> None:
    _, client = served
    run_id = await start(client, "chain")
    await finished(client, run_id)
    body = problem(await client.get(f"{API}/workflows/{run_id}/jobs/zz"), 404)
    assert "zz" in body["detail"]


async def test_shell_jobs_run_on_the_memory_store_before_the_data_dir_exists(
        make_client: Callable[..., Any]) -> None:
    async with make_client(store="memory") as (_, client):
        run_id = await start(client, "hello")
        body = await finished(client, run_id)
        assert body["status"] == "COMPLETED", body["error"]


# ------------------------------------------------------------------ status


async def test_status_of_a_finished_run(served: Served) -> None:
    _, client = served
    run_id = await start(client, "chain")
    await finished(client, run_id)
    body = await status(client, run_id)
    assert body == {
        "workflow_id": run_id, "workflow": "chain", "status": "COMPLETED",
        "state": "COMPLETED", "current_job": None, "running_jobs": [],
        "completed_jobs": [{"id": k, "name": k, "status": "SUCCEEDED", "state": "SUCCEEDED"}
                           for k in ("a", "b", "c")],
        "pending_jobs": [], "error": None}


async def test_status_of_a_running_run_names_the_current_job(served: Served) -> None:
    _, client = served
    run_id = await start(client, "slow")
    await job_in(client, run_id, "nap", "RUNNING")
    body = await status(client, run_id)
    nap = {"id": "nap", "name": "nap", "status": "RUNNING", "state": "RUNNING"}
    assert (body["status"], body["state"]) == ("RUNNING", "RUNNING")
    assert body["current_job"] == nap and body["running_jobs"] == [nap]
    assert body["completed_jobs"] == []
    assert body["pending_jobs"] == [
        {"id": "after", "name": "after", "status": "PENDING", "state": "PENDING"}]
    await cancelled(client, run_id)


async def test_status_of_a_failed_run_carries_the_error(served: Served, tmp_path: Path) -> None:
    _, client = served
    run_id = await start(client, "gated", {"flag": str(tmp_path / "absent")})
    await finished(client, run_id)
    body = await status(client, run_id)
    assert (body["status"], body["state"]) == ("FAILED", "FAILED")
    assert body["error"]
    states = {j["id"]: j["state"] for j in body["completed_jobs"] + body["pending_jobs"]}
    assert states["prepare"] == "SUCCEEDED" and states["gate"] == "FAILED"


# ------------------------------------------------------------------ list


async def _finished_runs(client: httpx.AsyncClient, *specs: tuple[str, JSON]) -> list[str]:
    ids = []
    for workflow, inputs in specs:
        ids.append(await start(client, workflow, inputs))
        await finished(client, ids[-1])
    return ids


async def test_list_filters_by_workflow_and_state(served: Served, tmp_path: Path) -> None:
    _, client = served
    hello, chain, failed = await _finished_runs(
        client, ("hello", {}), ("chain", {}), ("gated", {"flag": str(tmp_path / "no")}))
    everything = await get_json(client, f"{API}/workflows")
    assert [r["id"] for r in everything["runs"]] == [failed, chain, hello]
    assert everything["next_cursor"] is None
    assert set(everything["runs"][0]) >= {"id", "workflow", "status", "created_at"}
    assert "jobs" not in everything["runs"][0]

    async def ids(**params: Any) -> list[str]:
        page = await get_json(client, f"{API}/workflows", **params)
        return [r["id"] for r in page["runs"]]

    assert await ids(workflow="chain") == [chain]
    assert await ids(workflow="nope") == []
    assert await ids(state="FAILED") == [failed]
    assert await ids(state="COMPLETED") == [chain, hello]
    assert await ids(state=["FAILED", "COMPLETED"]) == [failed, chain, hello]
    assert await ids(state="COMPLETED", workflow="hello") == [hello]
    assert await ids(state="RUNNING") == []


async def test_list_filters_by_creation_time(served: Served) -> None:
    _, client = served
    first, second = await _finished_runs(client, ("hello", {}), ("chain", {}))
    created = {r["id"]: r["created_at"] for r in (await get_json(
        client, f"{API}/workflows"))["runs"]}

    async def ids(**params: Any) -> list[str]:
        page = await get_json(client, f"{API}/workflows", **params)
        return [r["id"] for r in page["runs"]]

    # since is inclusive, until exclusive; epoch seconds or ISO 8601 with a zone
    assert await ids(since=repr(created[second])) == [second]
    assert await ids(until=repr(created[second])) == [first]
    assert await ids(since=repr(created[first]), until=repr(created[second])) == [first]
    assert await ids(since="2000-01-01T00:00:00Z") == [second, first]
    assert await ids(until="2000-01-01T00:00:00+00:00") == []
    assert await ids(since="2999-01-01T00:00:00Z") == []


@pytest.mark.parametrize(("params", "parameter"), [
    ({"state": "DONE"}, "state"),
    ({"state": "completed"}, "state"),
    ({"limit": "0"}, "limit"),
    ({"limit": "501"}, "limit"),
    ({"limit": "ten"}, "limit"),
    ({"since": "yesterday"}, "since"),
    ({"until": "2026-01-01T00:00:00"}, "until"),
    ({"cursor": "not-a-cursor"}, "cursor"),
])
async def test_bad_list_parameters_are_400_naming_them(served: Served, params: dict[str, str],
                                                       parameter: str) -> None:
    _, client = served
    body = problem(await client.get(f"{API}/workflows", params=params), 400)
    assert body["parameter"] == parameter


async def test_pages_follow_the_cursor_newest_first(served: Served) -> None:
    _, client = served
    started = await _finished_runs(client, *[("chain", {"word": str(i)}) for i in range(5)])
    seen: list[list[str]] = []
    cursor: str | None = None
    while True:
        params: JSON = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = await get_json(client, f"{API}/workflows", **params)
        seen.append([r["id"] for r in page["runs"]])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [started[4:2:-1], started[2:0:-1], started[0:1]]
    filtered = await get_json(client, f"{API}/workflows", limit=3, workflow="chain")
    rest = await get_json(client, f"{API}/workflows", limit=3, workflow="chain",
                          cursor=filtered["next_cursor"])
    assert [r["id"] for r in filtered["runs"] + rest["runs"]] == started[::-1]
    assert rest["next_cursor"] is None


# ------------------------------------------------------------------ cancel


async def test_cancel_a_run_with_a_long_running_job(served: Served) -> None:
    _, client = served
    run_id = await start(client, "slow")
    await job_in(client, run_id, "nap", "RUNNING")
    response = await client.post(f"{API}/workflows/{run_id}/cancel")
    assert response.status_code == 200, response.text
    assert response.json()["id"] == run_id
    body = await finished(client, run_id)
    assert body["status"] == "CANCELLED"
    assert job(body, "nap")["state"] == "CANCELLED"
    async with asyncio.timeout(60):
        while processes_of(run_id):  # the job's process is stopped
            await asyncio.sleep(0.02)
    assert job(body, "after")["state"] in ("CANCELLED", "PENDING")
    assert (await status(client, run_id))["status"] == "CANCELLED"
    again = problem(await client.post(f"{API}/workflows/{run_id}/cancel"), 409)
    assert "CANCELLED" in again["detail"]
    assert (await run(client, run_id))["status"] == "CANCELLED"


async def test_cancel_a_finished_run_is_409_and_keeps_it(served: Served) -> None:
    _, client = served
    run_id = await start(client, "chain")
    done = await finished(client, run_id)
    problem(await client.post(f"{API}/workflows/{run_id}/cancel"), 409)
    assert await run(client, run_id) == done


# ------------------------------------------------------------------ retry and re-run


async def test_retry_a_failed_run_reruns_only_what_failed(served: Served,
                                                          tmp_path: Path) -> None:
    _, client = served
    flag = tmp_path / "flag"
    run_id = await start(client, "gated", {"flag": str(flag)})
    failed = await finished(client, run_id)
    assert failed["status"] == "FAILED"
    assert [job(failed, k)["state"] for k in ("prepare", "gate", "finish")] == [
        "SUCCEEDED", "FAILED", "CANCELLED"]
    assert attempts(failed) == {"prepare": 1, "gate": 1, "finish": 0}
    flag.touch()
    response = await client.post(f"{API}/workflows/{run_id}/retry")
    assert response.status_code == 202, response.text
    assert response.json() == {"workflow_id": run_id, "url": f"{API}/workflows/{run_id}",
                               "status_url": f"{API}/workflows/{run_id}/status"}
    done = await poll_attempts(client, run_id, "gate", 2)  # retry is asynchronous (202)
    assert done["status"] == "COMPLETED" and done["error"] is None
    assert attempts(done) == {"prepare": 1, "gate": 2, "finish": 1}
    assert [a["state"] for a in job(done, "gate")["attempts"]] == ["FAILED", "SUCCEEDED"]
    assert job(done, "prepare")["attempts"] == job(failed, "prepare")["attempts"]
    assert await run_ids(client) == [run_id]


async def test_retry_of_a_completed_or_running_run_is_409(served: Served) -> None:
    _, client = served
    run_id = await start(client, "chain")
    done = await finished(client, run_id)
    body = problem(await client.post(f"{API}/workflows/{run_id}/retry"), 409)
    assert "COMPLETED" in body["detail"]
    assert await run(client, run_id) == done
    slow = await start(client, "slow")
    await job_in(client, slow, "nap", "RUNNING")
    problem(await client.post(f"{API}/workflows/{slow}/retry"), 409)
    assert attempts(await run(client, slow))["nap"] == 1
    await cancelled(client, slow)


async def test_rerun_from_a_job_reruns_it_and_downstream(served: Served) -> None:
    _, client = served
    run_id = await start(client, "chain")
    first = await finished(client, run_id)
    response = await client.post(f"{API}/workflows/{run_id}/rerun", json={"from_job": "b"})
    assert response.status_code == 202, response.text
    assert response.json()["workflow_id"] == run_id
    again = await poll_attempts(client, run_id, "c", 2)
    assert again["status"] == "COMPLETED"
    assert attempts(again) == {"a": 1, "b": 2, "c": 2}
    assert job(again, "a")["attempts"] == job(first, "a")["attempts"]
    assert again["outputs"] == first["outputs"]


@pytest.mark.parametrize(("content", "status", "field"), [
    (b'{"from_job": ', 400, None),
    (b"", 422, "from_job"),
    (b"[]", 422, "body"),
    (b"{}", 422, "from_job"),
    (b'{"from_job": 2}', 422, "from_job"),
    (b'{"from_job": ""}', 422, "from_job"),
    (b'{"from_job": "b", "force": true}', 422, "force"),
    (b'{"from_job": "zz"}', 404, None),
])
async def test_a_bad_rerun_is_a_problem_and_reruns_nothing(
        served: Served, content: bytes, status: int, field: str | None) -> None:
    _, client = served
    run_id = await start(client, "chain")
    done = await finished(client, run_id)
    response = await client.post(f"{API}/workflows/{run_id}/rerun", content=content,
                                 headers={"content-type": "application/json"})
    assert problem(response, status).get("field") == field
    assert await run(client, run_id) == done


async def test_rerun_of_an_unfinished_run_is_409(served: Served) -> None:
    _, client = served
    run_id = await start(client, "slow")
    await job_in(client, run_id, "nap", "RUNNING")
    response = await client.post(f"{API}/workflows/{run_id}/rerun", json={"from_job": "nap"})
    assert "running" in problem(response, 409)["detail"]
    assert attempts(await run(client, run_id)) == {"nap": 1, "after": 0}
    await cancelled(client, run_id)


async def test_retry_of_a_cancelled_run_starts_its_unfinished_jobs_again(
        served: Served) -> None:
    _, client = served
    run_id = await start(client, "slow")
    await job_in(client, run_id, "nap", "RUNNING")
    assert (await cancelled(client, run_id))["status"] == "CANCELLED"
    response = await client.post(f"{API}/workflows/{run_id}/retry")
    assert response.status_code == 202, response.text
    again = await poll(client, run_id, lambda r: len(job(r, "nap")["attempts"]) == 2
                       and job(r, "nap")["state"] == "RUNNING", "nap running again")
    assert again["status"] == "RUNNING"
    assert [a["state"] for a in job(again, "nap")["attempts"]] == ["CANCELLED", "RUNNING"]
    assert (await cancelled(client, run_id))["status"] == "CANCELLED"
