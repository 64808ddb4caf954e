"""The log lines of workers: one when a worker joins and leaves, each carrying its id, the
context of lines its attempts log, and the server's line when a worker is lost."""
from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

from baseshift.core.app.application import BaseShift
from baseshift.core.settings import Settings
from baseshift.core.states import RunState
from baseshift.plugins.storage.pg_connect import PgTarget
from tests.log_support import json_log, line_where
from tests.scaleout.conftest import load

LOGGING = """
workflow chatty {
  version "1.0.0"
  job talk uses python { with { function: "chatty_steps:talk" } }
}
"""

STEPS = '''
import logging

def talk():
    logging.getLogger("baseshift.steps.chatty").warning("hello from the worker")
    return 1
'''


async def test_a_worker_logs_joining_and_leaving_and_its_attempts_carry_it(
        settings: Settings, workflows: Path, start_worker: Callable[..., Any]) -> None:
    (workflows / "chatty_steps.py").write_text(STEPS)
    with json_log() as (lines, _):
        async with BaseShift(settings) as bs, start_worker(labels=("gpu",)) as worker:
            run_id = await bs.engine.submit(load(bs, workflows, "chatty", LOGGING), {})
            record = await asyncio.wait_for(bs.engine.wait(run_id), 60)
    assert record.state is RunState.COMPLETED
    joined = await line_where(lines, event="worker.joined")
    left = await line_where(lines, event="worker.left")
    assert joined["worker_id"] == left["worker_id"] == worker.id
    assert (joined["labels"], left["executed"]) == (["gpu"], 1)
    said = await line_where(lines, message="hello from the worker")
    assert (said["worker_id"], said["run_id"], said["job"], said["attempt"]) == (
        worker.id, run_id, "talk", 1)


async def test_the_server_logs_a_worker_whose_lease_ran_out(settings: Settings) -> None:
    with json_log() as (lines, _):
        async with BaseShift(settings) as bs:
            owner = bs.queue.owner  # type: ignore[union-attr]
            with PgTarget.required(settings).connect(autocommit=True) as conn:
                conn.execute(b"INSERT INTO job_queue (owner, run_id, job_key, number, state, "
                             b"worker, leased_until) SELECT %s, 'r', k, 1, 'leased', "
                             b"'worker-gone', '2000-01-01'::timestamptz "
                             b"FROM unnest(ARRAY['a', 'b']) AS k", (owner,))
            lost = await line_where(lines, event="worker.lost")
    assert (lost["worker_id"], lost["attempts"], lost["level"]) == ("worker-gone", 2, "warning")
    assert "worker worker-gone lost" in lost["message"]
