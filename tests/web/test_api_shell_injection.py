"""Issue 13 §1 through the server: inputs from the API and from a signed webhook reach a
shell step as text; nothing in them runs."""
from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from baseshift.core.app.application import BaseShift
from baseshift.core.states import RunState

SECRET = "hook-secret-for-quoting"
LIMIT = 60.0  # seconds; only to keep a broken test from hanging the suite


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("QUOTING_HOOK_SECRET", SECRET)
    target = tmp_path / "flows"
    target.mkdir()
    (target / "echo.bsw").write_text(
        'workflow echo {\n  version "1.0.0"\n  input { v: string }\n'
        "  webhook secret QUOTING_HOOK_SECRET\n"
        '  job say uses shell { with { command: "printf \'v=%s\' ${input.v}" } }\n'
        '  job quoted uses shell { with { command: "printf \'v=%s\' \\"${input.v}\\"" } }\n'
        "}\n", encoding="utf-8")
    return target


def injections(folder: Path) -> list[str]:
    target = folder / "pwned"
    return [f"x'; id > {folder / 'stolen.txt'}; echo '", f"$(touch {target})",
            f"`touch {target}`", f"; touch {target}", "O'Brien"]


def _commands(body: Any) -> list[str]:
    """Every `command` string in an API answer (the recorded inputs of its jobs)."""
    if isinstance(body, dict):
        found = [body["command"]] if isinstance(body.get("command"), str) else []
        return found + [c for v in body.values() for c in _commands(v)]
    if isinstance(body, list):
        return [c for v in body for c in _commands(v)]
    return []


async def outputs(bs: BaseShift, run_id: str) -> dict[str, Any]:
    record = await asyncio.wait_for(bs.engine.wait(run_id), LIMIT)
    assert record.state is RunState.COMPLETED
    snapshot = await bs.store.load_run(run_id)
    assert snapshot is not None
    return {key: job.output for key, job in snapshot.jobs.items()}


async def test_api_inputs_are_text_in_a_shell_command(make_client: Callable[..., Any],
                                                      folder: Path, tmp_path: Path) -> None:
    async with make_client(workflows=folder) as (bs, client):
        for value in injections(tmp_path):
            response = await client.post("/api/v1/workflows",
                                         json={"workflow": "echo", "inputs": {"v": value}})
            assert response.status_code == 201, response.text
            run_id = response.json()["workflow_id"]
            jobs = await outputs(bs, run_id)
            assert jobs["say"]["stdout"] == jobs["quoted"]["stdout"] == f"v={value}"
            shown = await client.get(f"/api/v1/workflows/{run_id}")  # the recorded inputs
            assert shown.status_code == 200, shown.text
            quoted = "'" + value.replace("'", "'\\''") + "'"
            assert f"printf 'v=%s' {quoted}" in _commands(shown.json())
    assert not (tmp_path / "pwned").exists() and not (tmp_path / "stolen.txt").exists()


async def test_a_signed_webhook_payload_is_text_in_a_shell_command(
        make_client: Callable[..., Any], folder: Path, tmp_path: Path) -> None:
    async with make_client(workflows=folder) as (bs, client):
        for value in injections(tmp_path):
            body = json.dumps({"v": value}).encode()
            mac = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
            response = await client.post("/api/v1/hooks/echo", content=body, headers={
                "X-Hub-Signature-256": f"sha256={mac}", "Content-Type": "application/json"})
            assert response.status_code == 202, response.text
            jobs = await outputs(bs, response.json()["workflow_id"])
            assert jobs["say"]["stdout"] == f"v={value}"
    assert not (tmp_path / "pwned").exists() and not (tmp_path / "stolen.txt").exists()
