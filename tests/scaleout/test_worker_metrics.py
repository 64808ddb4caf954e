"""`baseshift worker --metrics-port N` serves the worker's own metrics (the attempts it
executed) on http://127.0.0.1:N/metrics."""
from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from baseshift.core.app.application import BaseShift
from baseshift.core.settings import Settings
from baseshift.core.states import RunState
from tests.conftest import free_port
from tests.scaleout.conftest import FANOUT, load


def _attempts(text: str) -> dict[tuple[str, str], float]:
    return {(s.labels["workflow"], s.labels["outcome"]): s.value
            for family in text_string_to_metric_families(text)
            for s in family.samples if s.name == "baseshift_attempts_total"}


async def test_a_worker_serves_its_attempt_metrics_on_its_metrics_port(
        settings: Settings, workflows: Path, tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "worker.log"
    env = {**os.environ, "BASESHIFT_STORE": "postgres",
           "BASESHIFT_DATABASE_URL": str(settings.database_url),
           "BASESHIFT_DATA_DIR": str(tmp_path / "w"), "BASESHIFT_TEMPLATES": "memory"}
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "baseshift", "worker", "--metrics-port", str(port),
             "--workflows", str(workflows)],
            cwd=tmp_path, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while "ready" not in log.read_text():
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        async with BaseShift(settings) as bs:
            plan = load(bs, workflows, "doubling", FANOUT)
            run_id = await bs.engine.submit(plan, {"n": 3})
            record = await asyncio.wait_for(bs.engine.wait(run_id), 60)
        assert record.state is RunState.COMPLETED
        async with httpx.AsyncClient() as client:
            response = await client.get(f"http://127.0.0.1:{port}/metrics")
        assert response.status_code == 200
        # items and 3 work jobs; the other outcomes exist at 0 from the workflow's first
        # attempt, so a rate of errors is 0 rather than absent
        assert _attempts(response.text) == {("doubling", "ok"): 4, ("doubling", "error"): 0,
                                            ("doubling", "cancelled"): 0}
        assert run_id not in response.text
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0, log.read_text()


def test_the_metrics_port_must_be_a_port(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "baseshift", "worker", "--metrics-port", "0",
                           "--grpc", "127.0.0.1:1"], cwd=tmp_path, capture_output=True,
                          text=True, env={**os.environ, "BASESHIFT_DATA_DIR": str(tmp_path)})
    assert done.returncode == 2, done.stderr
    assert "--metrics-port must be a port number" in done.stderr


def test_the_metrics_port_needs_the_metrics_plugin(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "baseshift", "worker", "--metrics-port",
                           "9464", "--grpc", "127.0.0.1:1"], cwd=tmp_path, capture_output=True,
                          text=True, env={**os.environ, "BASESHIFT_DATA_DIR": str(tmp_path),
                                          "BASESHIFT_DISABLE_PLUGINS": "metrics"})
    assert done.returncode == 2, done.stderr
    assert "needs the metrics plugin" in done.stderr
