"""Two servers on one PostgreSQL database: when the server executing a run is killed, the
other one adopts the run and finishes it; succeeded jobs never run again."""
from __future__ import annotations

import asyncio
import dataclasses
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from baseshift.core.app.application import BaseShift
from baseshift.core.states import JobState, RunState
from baseshift.plugins.limits.run_limits import STASH_KEY as RUN_LIMITS
from tests.auth_support import AUTH_OFF
from tests.conftest import free_port
from tests.scaleout.conftest import on_postgres

pytestmark = pytest.mark.slow

FLOW = """
workflow two_steps {
  version "1.0.0"
  job first uses shell { with { command: "echo first >> MARKS" } }
  job second uses shell {
    needs first
    with { command: "echo second >> MARKS; sleep 2" }
  }
}
"""


async def test_a_run_of_a_killed_server_is_adopted_by_another(pg_url: str,
                                                               tmp_path: Path) -> None:
    flows = tmp_path / "flows"
    flows.mkdir()
    marks = tmp_path / "marks.txt"
    (flows / "two_steps.bsw").write_text(FLOW.replace("MARKS", str(marks)))
    env = {**os.environ, **AUTH_OFF, "BASESHIFT_STORE": "postgres",
           "BASESHIFT_DATABASE_URL": pg_url,
           "BASESHIFT_TEMPLATES": "memory", "BASESHIFT_WORKFLOWS": str(flows),
           "BASESHIFT_DATA_DIR": str(tmp_path / "a")}
    port = free_port()
    log = tmp_path / "a.log"
    with log.open("w") as out:
        server = subprocess.Popen([sys.executable, "-m", "baseshift", "serve", "--port",
                                   str(port)], env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while "ready" not in log.read_text():
            assert server.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        answer = httpx.post(f"{base}/api/v1/workflows", json={"workflow": "two_steps"},
                            timeout=10)
        assert answer.status_code == 201, answer.text
        run_id = answer.json()["workflow_id"]
        while "second" not in (marks.read_text() if marks.exists() else ""):
            assert time.monotonic() < deadline
            time.sleep(0.05)
    finally:
        server.send_signal(signal.SIGKILL)
        server.wait(10)

    settings = on_postgres(pg_url, tmp_path / "b", workflows_dir=flows)
    async with BaseShift(settings) as other:
        adopter = asyncio.create_task(other.runs.adopt_orphans_forever(interval=0.1))
        for _ in range(100):
            if run_id in other.engine.runs:
                break
            await asyncio.sleep(0.1)
        record = await asyncio.wait_for(other.engine.wait(run_id), 60)
        adopter.cancel()
        snapshot = await other.store.load_run(run_id)
    assert record.state is RunState.COMPLETED
    assert snapshot is not None
    assert snapshot.jobs["second"].state is JobState.SUCCEEDED
    assert [a.state for a in snapshot.attempts_of("second")] == [JobState.CANCELLED,
                                                                  JobState.SUCCEEDED]
    assert marks.read_text().split() == ["first", "second", "second"]


QUEUED = """
workflow one_at_a_time {
  version "1.0.0"
  input { n: integer }
  runs 1 on conflict queue
  job work uses shell { with { command: "sleep 1" } }
}
"""


async def test_runs_a_dead_server_had_queued_are_taken_up_by_another(pg_url: str,
                                                                      tmp_path: Path) -> None:
    flow = tmp_path / "one_at_a_time.bsw"
    flow.write_text(QUEUED)
    settings = on_postgres(pg_url, tmp_path / "a")
    async with BaseShift(settings) as first:
        plan = first.load_workflow(flow)
        running = await first.runs.start_plan(plan, {"n": 1})
        queued = await first.runs.start_plan(plan, {"n": 2})
        assert first.stash[RUN_LIMITS].queued() == [queued]
    # `first` stopped without starting `queued`; another server takes both up
    async with BaseShift(dataclasses.replace(settings, data_dir=tmp_path / "b")) as second:
        assert await second.runs.resume_interrupted(quiet=True) == [running]
        await second.runs.take_up_waiting(older_than=3600)
        assert second.stash[RUN_LIMITS].queued() == []  # too young: its server may start it
        await second.runs.take_up_waiting(older_than=0)
        assert second.stash[RUN_LIMITS].queued() == [queued]
        for run_id in (running, queued):
            for _ in range(100):
                if run_id in second.engine.runs:
                    break
                await asyncio.sleep(0.05)
            record = await asyncio.wait_for(second.engine.wait(run_id), 30)
            assert record.state is RunState.COMPLETED
