"""The retention API as a data protection officer uses it: legal hold on a run, erasure of a
run (410 Gone with its tombstone afterwards, in the API and the UI), applying the policies
now (dry run or not), each audited; bad bodies are problem+json 400/422."""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from baseshift.core.audit import AuditQuery, verify
from baseshift.core.states import JobState, RunState
from tests.plugins.store_records import a_job, a_run, an_attempt, changes
from tests.web.api_support import API, finished, install, problem, start

SECRET = "subject-0815@example.org"
OLD = 1_000_000.0
"""An end time long before any policy's cutoff (January 1970)."""


def traces(folder: Path) -> list[str]:
    """The database files in `folder` holding SECRET."""
    return [f.name for f in folder.glob("baseshift.db*")
            if f.is_file() and SECRET.encode() in f.read_bytes()]


async def _actions(bs: Any, action: str) -> list[Any]:
    return [r.entry for r in await bs.store.audit_page(AuditQuery(action=action))]


async def seed_old(store: Any, run_id: str) -> None:
    """A run that finished long ago, written straight into the store."""
    run = a_run(run_id, created_at=OLD, inputs={"email": SECRET}, state=RunState.RUNNING)
    await store.create_run(run, [a_job("a", run_id, state=JobState.RUNNING)])
    await store.apply(changes(
        a_run(run_id, created_at=OLD, ended_at=OLD + 1, inputs={"email": SECRET},
              state=RunState.COMPLETED),
        a_job("a", run_id, state=JobState.SUCCEEDED, output={"to": SECRET}, ended_at=OLD + 1),
        an_attempt("a", 1, run_id, state=JobState.SUCCEEDED, started_at=OLD,
                   ended_at=OLD + 1, log=SECRET)))


async def test_erasure_leaves_a_tombstone_answered_with_410_and_no_trace_in_the_file(
        make_client: Callable[..., Any], tmp_path: Path) -> None:
    async with make_client(store="sqlite", data_dir=tmp_path / "data") as (bs, client):
        run_id = await start(client, "hello", {"name": SECRET})
        await finished(client, run_id)
        assert traces(tmp_path / "data")
        erased = await client.delete(f"{API}/workflows/{run_id}/data")
        assert erased.status_code == 200, erased.text
        stone = erased.json()
        assert (stone["run_id"], stone["workflow"], stone["erased_by"]) == \
            (run_id, "hello", "admin-tester")
        gone = problem(await client.get(f"{API}/workflows/{run_id}"), 410)
        assert gone["code"] == "gone" and gone["tombstone"] == stone
        problem(await client.get(f"{API}/workflows/{run_id}/status"), 410)
        page = await client.get(f"/ui/runs/{run_id}")
        assert page.status_code == 410 and "erased" in page.text
        assert "text/html" in page.headers["content-type"]
        again = problem(await client.delete(f"{API}/workflows/{run_id}/data"), 409)
        assert "already erased" in again["detail"]
        (entry,) = await _actions(bs, "run.erase")
        assert (entry.resource, entry.actor) == (f"run:{run_id}", "admin-tester")
        assert (await verify(bs.store))[1] is None
        assert traces(tmp_path / "data") == []


async def test_erasure_refuses_unfinished_held_and_unknown_runs(
        make_client: Callable[..., Any], workflows_dir: Path) -> None:
    install(workflows_dir, "approval")
    async with make_client() as (bs, client):
        waiting = await start(client, "approval_gate")
        refused = problem(await client.delete(f"{API}/workflows/{waiting}/data"), 409)
        assert "finished" in refused["detail"]
        await seed_old(bs.store, "held-run")
        held = await client.post(f"{API}/workflows/held-run/legal-hold", json={"hold": True})
        assert held.status_code == 200 and held.json() == {"run_id": "held-run", "hold": True}
        refused = problem(await client.delete(f"{API}/workflows/held-run/data"), 409)
        assert "legal hold" in refused["detail"]
        problem(await client.delete(f"{API}/workflows/nope/data"), 404)
        assert await bs.store.load_run("held-run") is not None


async def test_legal_hold_keeps_a_run_from_retention_and_is_audited(
        make_client: Callable[..., Any]) -> None:
    extra = {"retention": {"runs": 30}}
    async with make_client(extra=extra) as (bs, client):
        await seed_old(bs.store, "kept")
        await seed_old(bs.store, "expired")
        hold = await client.post(f"{API}/workflows/kept/legal-hold", json={"hold": True})
        assert hold.status_code == 200, hold.text
        looked = await client.post(f"{API}/data-retention/apply-policy",
                                   json={"dry_run": True})
        assert looked.status_code == 200, looked.text
        body = looked.json()
        assert set(body) == {"dry_run", "applied_at", "removed", "held", "policies"}
        assert (body["dry_run"], body["removed"], body["held"], body["policies"]) == \
            (True, {"runs": 1}, 1, {"runs": 30})
        assert await bs.store.load_run("expired") is not None
        done = (await client.post(f"{API}/data-retention/apply-policy",
                                  json={"dry_run": False})).json()
        assert (done["dry_run"], done["removed"], done["held"]) == (False, {"runs": 1}, 1)
        assert await bs.store.load_run("expired") is None
        assert await bs.store.load_run("kept") is not None
        release = await client.post(f"{API}/workflows/kept/legal-hold", json={"hold": False})
        assert release.json() == {"run_id": "kept", "hold": False}
        done = (await client.post(f"{API}/data-retention/apply-policy",
                                  json={"dry_run": False})).json()
        assert done["removed"] == {"runs": 1}
        assert [e.resource for e in await _actions(bs, "run.hold")] == ["run:kept"]
        assert [e.resource for e in await _actions(bs, "run.release")] == ["run:kept"]
        applied = await _actions(bs, "retention.apply")
        assert [(e.detail["dry_run"], e.detail["removed_runs"], e.detail["held"])
                for e in reversed(applied)] == [("true", "1", "1"), ("false", "1", "1"),
                                                ("false", "1", "0")]


@pytest.mark.parametrize(("path", "body", "status"), [
    ("/workflows/RUN/legal-hold", {"hold": "yes"}, 422),
    ("/workflows/RUN/legal-hold", {}, 422),
    ("/workflows/RUN/legal-hold", {"hold": True, "why": "court"}, 422),
    ("/workflows/RUN/legal-hold", [True], 422),
    ("/workflows/RUN/legal-hold", b"{hold", 400),
    ("/data-retention/apply-policy", {}, 422),
    ("/data-retention/apply-policy", {"dry_run": 1}, 422),
    ("/data-retention/apply-policy", {"dry_run": None}, 422),
    ("/data-retention/apply-policy", b"not json", 400),
])
async def test_bad_bodies_are_problems(make_client: Callable[..., Any], path: str,
                                       body: Any, status: int) -> None:
    async with make_client() as (bs, client):
        await seed_old(bs.store, "RUN")
        if isinstance(body, bytes):
            response = await client.post(API + path, content=body,
                                          headers={"content-type": "application/json"})
        else:
            response = await client.post(API + path, json=body)
        problem(response, status)
        assert await bs.store.legal_holds() == []
        assert await _actions(bs, "retention.apply") == []


async def test_unknown_run_cannot_be_held(make_client: Callable[..., Any]) -> None:
    async with make_client() as (bs, client):
        problem(await client.post(f"{API}/workflows/nope/legal-hold", json={"hold": True}),
                404)


@pytest.mark.parametrize("role", ["operator", "author", "viewer"])
async def test_only_admins_hold_erase_and_apply(make_client: Callable[..., Any],
                                                role: str) -> None:
    async with make_client(role=role) as (bs, client):
        await seed_old(bs.store, "r1")
        problem(await client.post(f"{API}/workflows/r1/legal-hold", json={"hold": True}), 403)
        problem(await client.delete(f"{API}/workflows/r1/data"), 403)
        problem(await client.post(f"{API}/data-retention/apply-policy",
                                  json={"dry_run": True}), 403)
        assert await bs.store.load_run("r1") is not None
