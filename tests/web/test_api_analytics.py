"""The analytics API over real runs executed by the engine, on SQLite and in memory."""
from __future__ import annotations

import asyncio
import textwrap
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from baseshift.core.app.application import BaseShift
from baseshift.plugins.api.analytics_routes import iso

A = "/api/v1/analytics"

STEPS = '''
def ok(n: int = 0) -> dict:
    return {"n": n}


def boom() -> None:
    raise RuntimeError("boom")
'''

STEADY = """
workflow steady {
  version "1.0.0"
  input { items: list<number> = [1, 2, 3] }
  job first uses python { with { function: "steps:ok" } }
  job each uses python {
    needs first
    for x in input.items
    with { function: "steps:ok", n: x }
  }
}
"""

BROKEN = """
workflow broken {
  version "1.0.0"
  job first uses python { with { function: "steps:ok" } }
  job second uses python {
    needs first
    with { function: "steps:boom" }
  }
}
"""


@pytest.fixture
def analytics_workflows(tmp_path: Path) -> Path:
    folder = tmp_path / "analytics-workflows"
    folder.mkdir()
    (folder / "steps.py").write_text(STEPS)
    (folder / "steady.bsw").write_text(textwrap.dedent(STEADY))
    (folder / "broken.bsw").write_text(textwrap.dedent(BROKEN))
    return folder


Started = tuple[BaseShift, httpx.AsyncClient, dict[str, str]]


@pytest.fixture(params=["sqlite", "memory"])
async def served(request: pytest.FixtureRequest, make_client: Callable[..., Any],
                 analytics_workflows: Path) -> AsyncIterator[Started]:
    """The server with three finished runs: steady twice (one with 2 items), broken once."""
    async with make_client(workflows=analytics_workflows, store=request.param) as (bs, client):
        runs = {"steady": await start(client, "steady"),
                "steady2": await start(client, "steady", {"items": [5, 6]}),
                "broken": await start(client, "broken")}
        for run_id in runs.values():
            await finished(bs, run_id)
        yield bs, client, runs


async def start(client: httpx.AsyncClient, workflow: str,
                inputs: dict[str, Any] | None = None) -> str:
    response = await client.post("/api/v1/workflows",
                                 json={"workflow": workflow, "inputs": inputs or {}})
    assert response.status_code == 201, response.text
    run_id: str = response.json()["workflow_id"]
    return run_id


async def finished(bs: BaseShift, run_id: str) -> None:
    async with asyncio.timeout(60):
        while True:
            snap = await bs.store.load_run(run_id)
            if snap is not None and snap.run.state.finished:
                return
            await asyncio.sleep(0.01)


async def get(client: httpx.AsyncClient, path: str, status: int = 200,
              **params: Any) -> dict[str, Any]:
    response = await client.get(f"{A}/{path}", params=params)
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    return body


def _parse(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


# ------------------------------------------------------------------ one run


async def test_performance_of_a_finished_run_in_the_seed_shape(served: Started) -> None:
    bs, client, runs = served
    body = await get(client, "workflow-performance", workflow_id=runs["steady"])
    snap = await bs.store.load_run(runs["steady"])
    assert snap is not None

    assert {k: body[k] for k in ("workflow_id", "workflow", "status", "state", "total_jobs",
                                 "completed_jobs", "failed_jobs", "in_progress_jobs")} == {
        "workflow_id": runs["steady"], "workflow": "steady", "status": "COMPLETED",
        "state": "COMPLETED", "total_jobs": 2, "completed_jobs": 2, "failed_jobs": 0,
        "in_progress_jobs": 0}
    assert body["start_time"].endswith("Z") and body["end_time"].endswith("Z")
    assert _parse(body["start_time"]) == pytest.approx(snap.run.started_at, abs=1e-3)
    assert body["total_workflow_duration"] == pytest.approx(
        snap.run.ended_at - snap.run.started_at)  # type: ignore[operator]
    assert body["average_job_duration"] >= 0


async def test_performance_of_a_failed_run(served: Started) -> None:
    _, client, runs = served
    body = await get(client, "workflow-performance", workflow_id=runs["broken"])
    assert (body["status"], body["total_jobs"], body["completed_jobs"],
            body["failed_jobs"]) == ("FAILED", 2, 1, 1)


async def test_performance_of_an_unknown_run_is_404(served: Started) -> None:
    _, client, _ = served
    response = await client.get(f"{A}/workflow-performance", params={"workflow_id": "nope"})
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert "nope" in response.json()["detail"]


async def test_filters_narrow_a_run_asked_for_by_id(served: Started) -> None:
    """Every combination of parameters the document allows is answered: with workflow_id,
    the filters decide whether that run is selected (404 when they leave it out)."""
    _, client, runs = served
    steady = runs["steady"]
    kept = await get(client, "workflow-performance", workflow_id=steady, workflow="steady",
                     since="0", until="4102444800")
    assert kept["workflow_id"] == steady
    for filters in ({"workflow": "broken"}, {"since": "4102444800"}, {"until": "0"}):
        body = await get(client, "workflow-performance", 404, workflow_id=steady, **filters)
        assert steady in body["detail"] and "filters" in body["detail"]


async def test_a_run_asked_for_by_id_loads_its_job_rows_only_for_a_filter(
        served: Started, monkeypatch: pytest.MonkeyPatch) -> None:
    bs, client, runs = served
    loads: list[str] = []
    load_run = bs.store.load_run

    async def counted(run_id: str, **options: Any) -> Any:
        loads.append(run_id)
        return await load_run(run_id, **options)

    monkeypatch.setattr(bs.store, "load_run", counted)
    plain = await get(client, "workflow-performance", workflow_id=runs["steady"])
    assert plain["workflow_id"] == runs["steady"] and loads == []
    await get(client, "workflow-performance", workflow_id=runs["steady"], since="0")
    assert loads == [runs["steady"]]


async def test_a_range_that_ends_before_it_starts_selects_nothing(served: Started) -> None:
    _, client, _ = served
    body = await get(client, "workflow-performance", since="100", until="50")
    assert (body["runs"], body["since"], body["until"]) == (
        0, "1970-01-01T00:01:40.000Z", "1970-01-01T00:00:50.000Z")
    assert (await get(client, "job-success-rate", since="100", until="50"))["jobs"] == []


# ------------------------------------------------------------------ aggregates


async def test_performance_of_a_workflow_over_its_runs(served: Started) -> None:
    _, client, _ = served
    body = await get(client, "workflow-performance", workflow="steady")
    assert {k: body[k] for k in ("workflow", "since", "until", "runs", "completed_runs",
                                 "failed_runs", "unfinished_runs", "total_jobs",
                                 "completed_jobs")} == {
        "workflow": "steady", "since": None, "until": None, "runs": 2, "completed_runs": 2,
        "failed_runs": 0, "unfinished_runs": 0, "total_jobs": 4, "completed_jobs": 4}
    everything = await get(client, "workflow-performance")
    assert (everything["workflow"], everything["runs"], everything["failed_runs"]) == (
        None, 3, 1)


async def test_job_success_rate(served: Started) -> None:
    _, client, _ = served
    body = await get(client, "job-success-rate")
    assert body["jobs"] == [
        {"name": "each", "total": 2, "succeeded": 2, "failed": 0, "success_rate": 1.0},
        {"name": "first", "total": 3, "succeeded": 3, "failed": 0, "success_rate": 1.0},
        {"name": "second", "total": 1, "succeeded": 0, "failed": 1, "success_rate": 0.0}]
    assert body["overall"] == {"total": 6, "succeeded": 5, "failed": 1,
                               "success_rate": pytest.approx(5 / 6)}
    broken = await get(client, "job-success-rate", workflow="broken")
    assert [j["name"] for j in broken["jobs"]] == ["first", "second"]


async def test_average_job_duration(served: Started) -> None:
    _, client, _ = served
    body = await get(client, "average-job-duration", workflow="steady")
    assert [(j["name"], j["count"]) for j in body["jobs"]] == [("each", 2), ("first", 2)]
    for j in body["jobs"]:
        assert 0 <= j["min_duration"] <= j["average_duration"] <= j["max_duration"]
        assert j["min_duration"] <= j["p95_duration"] <= j["max_duration"]


async def test_time_filters_take_iso_or_epoch_and_echo_iso(served: Started) -> None:
    bs, client, runs = served
    snap = await bs.store.load_run(runs["broken"])
    assert snap is not None
    created = snap.run.created_at
    after = await get(client, "job-success-rate", since=iso(created + 0.001))
    assert after["jobs"] == [] and after["since"] == iso(created + 0.001)
    upto = await get(client, "job-success-rate", since=str(created))
    assert [j["name"] for j in upto["jobs"]] == ["first", "second"]
    before = await get(client, "average-job-duration", until="1970-01-02T00:00:00Z")
    assert before["jobs"] == [] and before["until"] == "1970-01-02T00:00:00.000Z"


@pytest.mark.parametrize("path", ["workflow-performance", "job-success-rate",
                                  "average-job-duration"])
@pytest.mark.parametrize("params, parameter", [
    ({"since": "yesterday"}, "since"),
    ({"until": "2026-01-01T00:00:00"}, "until"),
    ({"since": "2026-02-30T00:00:00Z"}, "since"),
    ({"until": "1e5"}, "until"),
])
async def test_bad_time_filters_are_400_naming_the_parameter(
        served: Started, path: str, params: dict[str, str], parameter: str) -> None:
    _, client, _ = served
    response = await client.get(f"{A}/{path}", params=params)
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["parameter"] == parameter
    assert f"'{parameter}'" in response.json()["detail"]


def test_iso_formats_epoch_seconds_in_utc() -> None:
    assert iso(None) is None
    assert iso(0) == "1970-01-01T00:00:00.000Z"
    assert iso(1694167200.5) == "2023-09-08T10:00:00.500Z"
