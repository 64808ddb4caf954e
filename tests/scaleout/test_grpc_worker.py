"""`baseshift worker --grpc HOST:PORT` as a real process, driven by the `grpc` executor of a
workflow run here: a job's output comes back, and a cancel stops the remote command."""
from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from baseshift.core.app.application import BaseShift
from baseshift.core.settings import Settings
from baseshift.core.states import RunState
from tests.conftest import free_port

pytestmark = pytest.mark.slow

FLOW = """
workflow remote {
  version "1.0.0"
  input { seconds: integer }
  job hello uses grpc {
    with { target: "TARGET", executor: "shell",
           with: { command: "echo $$ > PIDFILE; sleep ${input.seconds}; echo [42]" } }
  }
}
"""


@pytest.fixture
def grpc_worker(tmp_path: Path) -> Iterator[str]:
    address = f"127.0.0.1:{free_port()}"
    log = tmp_path / "worker.log"
    with log.open("w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "baseshift", "worker", "--grpc", address],
                                cwd=tmp_path, stdout=out, stderr=subprocess.STDOUT,
                                env={**os.environ, "BASESHIFT_DATA_DIR": str(tmp_path / "w")})
    try:
        deadline = time.monotonic() + 60
        while "gRPC JobExecutor serving" not in log.read_text():
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        yield address
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0, log.read_text()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def test_a_job_runs_on_a_grpc_worker_process_and_cancel_stops_it(
        grpc_worker: str, tmp_path: Path) -> None:
    pidfile = tmp_path / "remote.pid"
    flow = tmp_path / "remote.bsw"
    flow.write_text(FLOW.replace("TARGET", grpc_worker).replace("PIDFILE", str(pidfile)))
    settings = Settings(store="memory", data_dir=tmp_path / "data", load_entrypoints=False)
    async with BaseShift(settings) as bs:
        plan = bs.load_workflow(flow)
        quick = await bs.engine.submit(plan, {"seconds": 0})
        record = await asyncio.wait_for(bs.engine.wait(quick), 60)
        assert record.state is RunState.COMPLETED, record.error
        snapshot = await bs.store.load_run(quick)
        assert snapshot is not None and snapshot.jobs["hello"].output == [42]

        pidfile.unlink()
        slow = await bs.engine.submit(plan, {"seconds": 60})
        for _ in range(300):
            if pidfile.exists() and pidfile.read_text().strip():
                break
            await asyncio.sleep(0.05)
        remote = int(pidfile.read_text())
        assert _alive(remote)
        await bs.runs.cancel(slow)
        for _ in range(200):
            if not _alive(remote):
                break
            await asyncio.sleep(0.05)
        assert not _alive(remote), "the remote shell kept running after the cancel"
        final = await bs.store.load_run(slow)
    assert final is not None and final.run.state is RunState.CANCELLED
