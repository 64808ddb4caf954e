"""The alert rules and the exposition with the real Prometheus tools: `promtool check rules`,
`promtool test rules` (deploy/prometheus/alerts_test.yml), `promtool check metrics` on the
`/metrics` of a server that ran workflows, and a real `prometheus` scraping a real
`baseshift serve` (Debian's `prometheus` package, which tests/run installs)."""
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
import pytest

from tests.auth_support import AUTH_OFF
from tests.conftest import free_port, stop_process
from tests.web.api_support import finished, start

RULES = Path(__file__).resolve().parents[2] / "deploy" / "prometheus"
WAIT = 120.0
"""Upper bound for a process to start or a scrape to arrive; no test depends on speed."""


def promtool(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["promtool", *args], input=stdin, capture_output=True, text=True,
                          cwd=RULES, timeout=WAIT)


def test_the_alert_rules_are_valid_and_pass_their_unit_tests() -> None:
    checked = promtool("check", "rules", "alerts.yml")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    tested = promtool("test", "rules", "alerts_test.yml")
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "SUCCESS" in tested.stdout


async def test_promtool_accepts_the_metrics_of_a_server_that_ran_workflows(
        make_client: Callable[..., Any]) -> None:
    async with make_client() as (bs, client):
        for workflow in ("hello", "nightly_export", "sum_of_squares"):  # fan-out too
            await finished(client, await start(client, workflow))
        assert (await client.get("/nowhere")).status_code == 404
        text = (await client.get("/metrics")).text
    assert "baseshift_runs_total{" in text
    linted = promtool("check", "metrics", stdin=text)
    assert linted.returncode == 0, linted.stdout + linted.stderr


HELLO = """workflow hello_metrics {
  version "1.0.0"
  job greet uses shell { with { command: "echo hello" } }
}
"""


@pytest.fixture
def baseshift_serve(tmp_path: Path) -> Iterator[str]:
    """A `baseshift serve` process (authentication off, loopback) with one workflow."""
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "hello_metrics.bsw").write_text(HELLO)
    port = free_port()
    env = {**os.environ, "BASESHIFT_DATA_DIR": str(tmp_path / "data"),
           "BASESHIFT_WORKFLOWS": str(tmp_path / "flows"), **AUTH_OFF}
    log = tmp_path / "serve.log"
    with log.open("w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "baseshift", "serve", "--port",
                                 str(port)], cwd=tmp_path, env=env, stdout=out,
                                stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        _until(lambda: _answers(f"{url}/api/v1/definitions"), proc, log)
        yield url
    finally:
        stop_process(proc)


@pytest.fixture
def prometheus(tmp_path: Path, baseshift_serve: str) -> Iterator[str]:
    """A real Prometheus on loopback scraping `baseshift_serve` every second."""
    port = free_port()
    target = baseshift_serve.removeprefix("http://")
    config = tmp_path / "prometheus.yml"
    config.write_text(f"""
global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files:
  - {RULES / "alerts.yml"}
scrape_configs:
  - job_name: baseshift
    static_configs:
      - targets: ["{target}"]
""")
    log = tmp_path / "prometheus.log"
    with log.open("w") as out:
        proc = subprocess.Popen(["prometheus", f"--config.file={config}",
                                 f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                                 f"--web.listen-address=127.0.0.1:{port}"],
                                cwd=tmp_path, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        _until(lambda: _answers(f"{url}/-/ready"), proc, log)
        yield url
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.mark.slow
def test_prometheus_scrapes_the_runs_of_a_real_server(
        baseshift_serve: str, prometheus: str, tmp_path: Path) -> None:
    started = httpx.post(f"{baseshift_serve}/api/v1/workflows", timeout=10,
                         json={"workflow": "hello_metrics", "inputs": {}})
    assert started.status_code == 201, started.text
    run_id = started.json()["workflow_id"]

    def completed() -> bool:
        body = httpx.get(f"{baseshift_serve}/api/v1/workflows/{run_id}", timeout=10).json()
        return bool(body["status"] == "COMPLETED")

    _until(completed)

    def scraped() -> list[Any]:
        answer = httpx.get(f"{prometheus}/api/v1/query", timeout=10, params={
            "query": 'baseshift_runs_total{workflow="hello_metrics",status="COMPLETED"}'})
        assert answer.status_code == 200, answer.text
        result: list[Any] = answer.json()["data"]["result"]
        return result

    _until(lambda: bool(scraped()))
    [series] = scraped()
    assert series["metric"]["job"] == "baseshift"
    assert float(series["value"][1]) == 1.0
    up = httpx.get(f"{prometheus}/api/v1/query", params={"query": "up"}, timeout=10).json()
    assert [r["value"][1] for r in up["data"]["result"]] == ["1"]
    rules = httpx.get(f"{prometheus}/api/v1/rules", timeout=10).json()
    names = {r["name"] for g in rules["data"]["groups"] for r in g["rules"]}
    assert "BaseShiftTargetDown" in names


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _until(predicate: Callable[[], bool], proc: subprocess.Popen[Any] | None = None,
           log: Path | None = None) -> None:
    deadline = time.monotonic() + WAIT
    while not predicate():
        if proc is not None and proc.poll() is not None:
            raise AssertionError(log.read_text() if log else "the process ended")
        if time.monotonic() > deadline:
            raise AssertionError(f"not reached in {WAIT:g}s" +
                                 (f": {log.read_text()[-2000:]}" if log else ""))
        time.sleep(0.2)
