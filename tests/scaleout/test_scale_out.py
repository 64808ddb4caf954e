"""1 server and 3 worker processes on PostgreSQL run 2,000 jobs; one worker is SIGKILLed in
the middle. Every job ends SUCCEEDED exactly once, and the killed worker's attempts ran
again, elsewhere, as new attempts."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from tests.auth_support import AUTH_OFF
from tests.conftest import free_port

pytestmark = pytest.mark.slow

JOBS = 2000
FLOW = """
workflow wide {
  version "1.0.0"
  input { n: integer }
  job work uses python {
    for i in range(input.n)
    with { function: "items:handle", i: i }
  }
}
"""
ITEMS = """
import asyncio, os

async def handle(i):
    await asyncio.sleep(0.1)  # long enough that the victim is mid-job when killed
    return {"i": i, "pid": os.getpid()}
"""


def _wait(predicate: Callable[[], Any], what: str, timeout: float = 180) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


class Processes:
    """Child processes sharing one configuration file; all stopped at the end."""

    def __init__(self, folder: Path) -> None:
        self.env = {**os.environ, **AUTH_OFF, "BASESHIFT_CONFIG": str(folder / "baseshift.toml"),
                    "PYTHONUNBUFFERED": "1"}
        self.folder = folder
        self.procs: list[subprocess.Popen[str]] = []

    def start(self, *args: str) -> subprocess.Popen[str]:
        with open(self.folder / f"proc{len(self.procs)}.log", "w") as log:
            proc = subprocess.Popen([sys.executable, "-m", "baseshift", *args],
                                    cwd=self.folder, env=self.env, stdout=log,
                                    stderr=subprocess.STDOUT, text=True)
        self.procs.append(proc)
        return proc

    def output(self, proc: subprocess.Popen[str]) -> str:
        return (self.folder / f"proc{self.procs.index(proc)}.log").read_text()

    def stop_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()


@pytest.fixture
def processes(tmp_path: Path, pg_url: str) -> Iterator[Processes]:
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "wide.bsw").write_text(FLOW)
    (flows / "items.py").write_text(ITEMS)
    (tmp_path / "baseshift.toml").write_text(f"""
[baseshift]
store = "postgres"
queue = "postgres"
database_url = "{pg_url}"
data_dir = "data"
workflows_dir = "flows"
max_parallel = 256

[plugins.queue_postgres]
lease = 2
""")
    procs = Processes(tmp_path)
    try:
        yield procs
    finally:
        procs.stop_all()


def _query(url: str, sql: str) -> list[tuple[Any, ...]]:
    server, schema = url.split("?schema=")
    with psycopg.connect(server, options=f"-c search_path={schema}") as conn:
        return conn.execute(sql.encode()).fetchall()


def test_a_killed_worker_loses_no_job(processes: Processes, pg_url: str) -> None:
    port = free_port()
    server = processes.start("serve", "--port", str(port))
    base = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        assert server.poll() is None, processes.output(server)
        try:
            return httpx.get(f"{base}/api/v1/definitions", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False
    _wait(ready, "the server")
    workers = [processes.start("worker", "--concurrency", "16") for _ in range(3)]
    for w in workers:
        _wait(lambda w=w: "ready" in processes.output(w), "a worker")

    answer = httpx.post(f"{base}/api/v1/workflows", timeout=10,
                        json={"workflow": "wide", "inputs": {"n": JOBS}})
    assert answer.status_code == 201, answer.text
    run_id = answer.json()["workflow_id"]

    victim = workers[0]
    _wait(lambda: _query(pg_url, "SELECT count(*) FROM jobs WHERE state = 'SUCCEEDED'")[0][0]
          >= JOBS // 4, "a quarter of the jobs")
    _wait(lambda: _query(pg_url, f"SELECT count(*) FROM job_queue WHERE state = 'leased' "
                         f"AND worker LIKE '%-{victim.pid}-%'")[0][0] > 0,
          "the victim to hold attempts")
    victim.send_signal(signal.SIGKILL)
    victim.wait(10)

    def finished() -> str | None:
        state = httpx.get(f"{base}/api/v1/workflows/{run_id}", timeout=5).json()["status"]
        return state if state in ("COMPLETED", "FAILED", "CANCELLED") else None
    assert _wait(finished, "the run to finish", timeout=300) == "COMPLETED"

    items = _query(pg_url, "SELECT key, state FROM jobs WHERE index IS NOT NULL")
    assert len(items) == JOBS
    assert {state for _, state in items} == {"SUCCEEDED"}
    successes = _query(pg_url, "SELECT run_id, job_key, count(*) FROM attempts "
                       "WHERE state = 'SUCCEEDED' GROUP BY 1, 2 HAVING count(*) <> 1")
    assert successes == [], "a job succeeded more than once"
    lost = _query(pg_url, "SELECT job_key, number, error FROM attempts WHERE state = "
                  "'CANCELLED' AND error LIKE 'lost:%'")
    assert lost, "no attempt of the killed worker was retried"
    assert all(f"-{victim.pid}-" in error for _, _, error in lost)
    rerun = _query(pg_url, "SELECT a.job_key, j.output FROM attempts a JOIN jobs j ON "
                   "j.run_id = a.run_id AND j.key = a.job_key WHERE a.state = 'CANCELLED' "
                   "AND a.error LIKE 'lost:%'")
    assert all(output["pid"] != victim.pid for _, output in rerun)
    assert _query(pg_url, "SELECT count(*) FROM job_queue")[0][0] == 0
