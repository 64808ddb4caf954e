"""`POST /api/v1/hooks/{workflow}`: the secret or the HMAC signature, problem+json answers,
inputs from the body, and run limits applied to webhook runs."""
from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from baseshift.core.app.application import BaseShift
from baseshift.core.states import RunState

SECRET = "s3cret-value"
HOOK = "/api/v1/hooks/orders"
PROBLEM = "application/problem+json"
DEADLINE = 60.0


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("ORDERS_HOOK_SECRET", SECRET)
    monkeypatch.delenv("UNSET_HOOK_SECRET", raising=False)
    target = tmp_path / "hooked"
    target.mkdir()
    (target / "orders.bsw").write_text(
        "workflow orders {\n"
        '  version "1.0.0"\n'
        '  input { order_id: string, priority: integer = 1 }\n'
        "  webhook secret ORDERS_HOOK_SECRET\n"
        '  job note uses shell { with { command: "echo ${input.order_id}" } }\n'
        "}\n", encoding="utf-8")
    (target / "approvals.bsw").write_text(
        'workflow approvals {\n  version "1.0.0"\n  input { order_id: string }\n'
        "  webhook secret ORDERS_HOOK_SECRET\n"
        "  runs 1 per input.order_id on conflict cancel-new\n"
        "  job approve uses manual { }\n}\n", encoding="utf-8")
    (target / "unset.bsw").write_text(
        'workflow unset {\n  version "1.0.0"\n  webhook secret UNSET_HOOK_SECRET\n'
        '  job a uses shell { with { command: "true" } }\n}\n', encoding="utf-8")
    (target / "plain.bsw").write_text(
        'workflow plain {\n  version "1.0.0"\n'
        '  job a uses shell { with { command: "true" } }\n}\n', encoding="utf-8")
    (target / "broken.bsw").write_text(
        'workflow broken {\n  version "1.0.0"\n  webhook secret ORDERS_HOOK_SECRET\n'
        "  job a uses nothing { }\n}\n", encoding="utf-8")
    return target


def signature(body: bytes, secret: str = SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


async def finished(bs: BaseShift, run_id: str) -> RunState:
    async def wait() -> RunState:
        async with bs.live.subscribe(run_id) as events:
            while True:
                snapshot = await bs.store.load_run(run_id)
                assert snapshot is not None
                if snapshot.run.state.finished:
                    return snapshot.run.state
                await events.__anext__()
    return await asyncio.wait_for(wait(), DEADLINE)


async def test_the_secret_header_starts_a_run(make_client: Callable[..., Any],
                                              folder: Path) -> None:
    async with make_client(workflows=folder) as (bs, client):
        client: httpx.AsyncClient
        response = await client.post(HOOK, json={"order_id": "A-1"},
                                     headers={"X-BaseShift-Secret": SECRET})
        assert response.status_code == 202, response.text
        body = response.json()
        run_id = body["workflow_id"]
        assert body["status_url"] == f"/api/v1/workflows/{run_id}/status"
        assert response.headers["location"] == f"/api/v1/workflows/{run_id}"
        snapshot = await bs.store.load_run(run_id)
        assert snapshot is not None
        assert snapshot.run.inputs == {"order_id": "A-1", "priority": 1}
        assert await finished(bs, run_id) is RunState.COMPLETED
        status = await client.get(body["status_url"])
        assert status.status_code == 200


@pytest.mark.parametrize("header", ["X-BaseShift-Signature", "X-Hub-Signature-256"])
async def test_an_hmac_signature_of_the_body_starts_a_run(
        make_client: Callable[..., Any], folder: Path, header: str) -> None:
    raw = json.dumps({"order_id": "B-2", "priority": 3}).encode()
    async with make_client(workflows=folder) as (bs, client):
        response = await client.post(HOOK, content=raw, headers={
            header: signature(raw).upper().replace("SHA256=", "sha256="),
            "Content-Type": "application/json"})
        assert response.status_code == 202, response.text
        run = await bs.store.load_run(response.json()["workflow_id"])
        assert run is not None and run.run.inputs == {"order_id": "B-2", "priority": 3}


@pytest.mark.parametrize("headers", [
    {},
    {"X-BaseShift-Secret": "wrong"},
    {"X-BaseShift-Secret": SECRET + " "},
    {"X-BaseShift-Secret": ""},
    {"X-BaseShift-Signature": signature(b'{"order_id": "other"}')},
    {"X-BaseShift-Signature": signature(b'{"order_id": "C-3"}', "wrong")},
    {"X-BaseShift-Signature": signature(b'{"order_id": "C-3"}')[len("sha256="):]},
])
async def test_without_the_secret_the_answer_is_401(make_client: Callable[..., Any],
                                                    folder: Path,
                                                    headers: dict[str, str]) -> None:
    async with make_client(workflows=folder) as (bs, client):
        response = await client.post(HOOK, content=b'{"order_id": "C-3"}',
                                     headers={"Content-Type": "application/json", **headers})
        assert response.status_code == 401
        assert response.headers["content-type"].startswith(PROBLEM)
        problem = response.json()
        assert problem["status"] == 401 and problem["code"] == "auth.unauthorized"
        assert SECRET not in response.text
        assert await bs.store.list_runs() == []


async def test_an_unset_secret_refuses_every_call(make_client: Callable[..., Any],
                                                  folder: Path) -> None:
    async with make_client(workflows=folder) as (bs, client):
        for headers in ({}, {"X-BaseShift-Secret": ""},
                        {"X-BaseShift-Signature": signature(b"", "")}):
            response = await client.post("/api/v1/hooks/unset", headers=headers)
            assert response.status_code == 401, response.text
            assert "UNSET_HOOK_SECRET" in response.json()["hint"]
        assert await bs.store.list_runs() == []


@pytest.mark.parametrize(("path", "status"), [
    ("/api/v1/hooks/nope", 404),
    ("/api/v1/hooks/plain", 404),
    ("/api/v1/hooks/broken", 409),
])
async def test_only_loaded_workflows_with_a_webhook_can_be_called(
        make_client: Callable[..., Any], folder: Path, path: str, status: int) -> None:
    async with make_client(workflows=folder) as (bs, client):
        response = await client.post(path, headers={"X-BaseShift-Secret": SECRET})
        assert response.status_code == status
        assert response.headers["content-type"].startswith(PROBLEM)
        assert "job a uses nothing" not in response.text
        assert await bs.store.list_runs() == []


@pytest.mark.parametrize(("body", "status", "field"), [
    (b'{"priority": 2}', 422, "order_id"),
    (b'{"order_id": "D", "priority": "high"}', 422, "priority"),
    (b'{"order_id": "D", "extra": 1}', 422, "extra"),
    (b'["order_id"]', 422, "body"),
    (b'{"order_id": ', 400, None),
])
async def test_bad_inputs_are_problems_and_start_nothing(
        make_client: Callable[..., Any], folder: Path, body: bytes, status: int,
        field: str | None) -> None:
    async with make_client(workflows=folder) as (bs, client):
        response = await client.post(HOOK, content=body, headers={
            "X-BaseShift-Secret": SECRET, "Content-Type": "application/json"})
        assert response.status_code == status, response.text
        assert response.headers["content-type"].startswith(PROBLEM)
        if field is not None:
            assert response.json()["field"] == field
        assert await bs.store.list_runs() == []


async def test_the_secret_is_checked_before_the_body(make_client: Callable[..., Any],
                                                     folder: Path) -> None:
    async with make_client(workflows=folder) as (_, client):
        response = await client.post(HOOK, content=b"{not json",
                                     headers={"Content-Type": "application/json"})
        assert response.status_code == 401


async def test_the_run_limit_applies_to_webhook_runs(make_client: Callable[..., Any],
                                                     folder: Path) -> None:
    """`runs 1 per input.order_id on conflict cancel-new`: a second call for an order whose
    run is unfinished gets 202 and a run stored CANCELLED with the reason."""
    async with make_client(workflows=folder) as (bs, client):
        headers = {"X-BaseShift-Secret": SECRET}
        path = "/api/v1/hooks/approvals"
        first = await client.post(path, json={"order_id": "E"}, headers=headers)
        second = await client.post(path, json={"order_id": "E"}, headers=headers)
        other = await client.post(path, json={"order_id": "F"}, headers=headers)
        assert first.status_code == second.status_code == other.status_code == 202
        refused = await bs.store.load_run(second.json()["workflow_id"])
        assert refused is not None and refused.run.state is RunState.CANCELLED
        assert "another run with key 'E' is unfinished" in (refused.run.error or "")
        for response in (first, other):
            run = await bs.store.load_run(response.json()["workflow_id"])
            assert run is not None and not run.run.state.finished


async def test_the_route_is_in_the_openapi_document(make_client: Callable[..., Any],
                                                    folder: Path) -> None:
    async with make_client(workflows=folder) as (_, client):
        document = (await client.get("/api/v1/openapi.json")).json()
        post = document["paths"]["/api/v1/hooks/{workflow}"]["post"]
        assert {"202", "401", "404", "422"} <= set(post["responses"])
