"""The alert rules and the exposition with the real Prometheus tools: `promtool check rules`,
`promtool test rules` (deploy/prometheus/alerts_test.yml), `promtool check metrics` on the
`/metrics` of a server that ran workflows, and a real `prometheus` scraping a real
`baseshift serve` (Debian's `prometheus` package, which tests/run installs)."""
from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.web.api_support import finished, start
from tests.web.prometheus_support import RULES, promtool, running_prometheus, serving, until


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
    with serving(tmp_path, {"hello_metrics": HELLO}) as url:
        yield url


@pytest.fixture
def prometheus(tmp_path: Path, baseshift_serve: str) -> Iterator[str]:
    """A real Prometheus on loopback scraping `baseshift_serve` every second."""
    target = baseshift_serve.removeprefix("http://")
    with running_prometheus(tmp_path, f"""
global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files:
  - {RULES / "alerts.yml"}
scrape_configs:
  - job_name: baseshift
    static_configs:
      - targets: ["{target}"]
""") as url:
        yield url


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

    until(completed)

    def scraped() -> list[Any]:
        answer = httpx.get(f"{prometheus}/api/v1/query", timeout=10, params={
            "query": 'baseshift_runs_total{workflow="hello_metrics",status="COMPLETED"}'})
        assert answer.status_code == 200, answer.text
        result: list[Any] = answer.json()["data"]["result"]
        return result

    until(lambda: bool(scraped()))
    [series] = scraped()
    assert series["metric"]["job"] == "baseshift"
    assert float(series["value"][1]) == 1.0
    up = httpx.get(f"{prometheus}/api/v1/query", params={"query": "up"}, timeout=10).json()
    assert [r["value"][1] for r in up["data"]["result"]] == ["1"]
    rules = httpx.get(f"{prometheus}/api/v1/rules", timeout=10).json()
    names = {r["name"] for g in rules["data"]["groups"] for r in g["rules"]}
    assert "BaseShiftTargetDown" in names
