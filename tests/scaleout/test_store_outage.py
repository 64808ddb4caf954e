"""A scheduling round that cannot be stored (the database session died) does not stop the
engine: the runs of that round are let go and resume from their stored state."""
from __future__ import annotations

import asyncio
from pathlib import Path

import psycopg
import pytest

from baseshift.core.app.application import BaseShift
from baseshift.core.errors import StoreError
from baseshift.core.states import JobState, RunState
from tests.conftest import PG_SERVER
from tests.scaleout.conftest import on_postgres

FLOW = """
workflow outage {
  version "1.0.0"
  job first uses shell { with { command: "sleep 1" } }
  job second uses shell { needs first  with { command: "echo [2]" } }
}
"""


@pytest.mark.slow
async def test_a_failed_write_lets_the_run_go_and_the_engine_goes_on(pg_url: str,
                                                                     tmp_path: Path) -> None:
    flow = tmp_path / "outage.bsw"
    flow.write_text(FLOW)
    settings = on_postgres(pg_url, tmp_path / "data")
    async with BaseShift(settings) as bs:
        plan = bs.load_workflow(flow)
        run_id = await bs.engine.submit(plan, {})
        waiting = asyncio.ensure_future(bs.engine.wait(run_id))
        for _ in range(100):
            snapshot = await bs.store.load_run(run_id, attempts=False)
            if snapshot is not None and snapshot.jobs["first"].state is JobState.RUNNING:
                break
            await asyncio.sleep(0.02)
        writer = bs.store._write  # type: ignore[attr-defined]
        with psycopg.connect(PG_SERVER, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s, 5000)", (writer.info.backend_pid,))
        with pytest.raises(StoreError, match=f"run '{run_id}' was interrupted"):
            await asyncio.wait_for(waiting, 30)
        assert run_id not in bs.engine.runs

        assert await bs.runs.resume_interrupted(quiet=True) == [run_id]
        record = await asyncio.wait_for(bs.engine.wait(run_id), 30)
        assert record.state is RunState.COMPLETED
        again = await bs.engine.submit(plan, {})
        assert (await asyncio.wait_for(bs.engine.wait(again), 30)).state is RunState.COMPLETED
