"""The Grafana dashboard (deploy/grafana/baseshift.json) and the Alertmanager wiring: every
panel's PromQL names metrics that exist and returns series from a real Prometheus scraping a
real `baseshift serve` and a real `baseshift worker --metrics-port` on the PostgreSQL store
and queue (the real PostgreSQL, a fresh schema); a rule of deploy/prometheus/alerts.yml
fires through a real Alertmanager (Debian's `prometheus-alertmanager`, which tests/run
installs) to a webhook."""
from __future__ import annotations

import json
import queue
import re
import sys
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from ruamel.yaml import YAML

from tests.auth_support import AUTH_OFF
from tests.conftest import free_port
from tests.web.api_support import finished, start
from tests.web.prometheus_support import (
    DEPLOY,
    RULES,
    WAIT,
    daemon,
    query,
    running_prometheus,
    serving,
    until,
)

DASHBOARD = DEPLOY / "grafana" / "baseshift.json"
KEYWORDS = {"by", "without", "and", "or", "unless", "on", "ignoring", "group_left",
            "group_right", "bool", "offset"}


def panels() -> list[dict[str, Any]]:
    board = json.loads(DASHBOARD.read_text())
    result: list[dict[str, Any]] = board["panels"]
    return result


def expressions(panel: dict[str, Any], workflow: str = ".*") -> list[str]:
    """The panel's queries as Grafana would send them."""
    return [t["expr"].replace("$workflow", workflow).replace("$__rate_interval", "1m")
            for t in panel["targets"]]


def metric_names(promql: str) -> set[str]:
    """The metric names a PromQL expression reads (not functions, labels or keywords)."""
    bare = re.sub(r'"[^"]*"', "", promql)
    bare = re.sub(r"\{[^}]*\}|\[[^\]]*\]|\b(?:by|without)\s*\([^)]*\)", " ", bare)
    names = re.findall(r"\b([a-zA-Z_:][\w:]*)\b(?!\s*\()", bare)
    return {n for n in names if n not in KEYWORDS}


def test_the_dashboard_parses_and_its_variables_are_the_documented_ones() -> None:
    board = json.loads(DASHBOARD.read_text())
    assert board["schemaVersion"] == 39
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["DS_PROMETHEUS"]["type"] == "datasource"
    assert variables["workflow"]["definition"] == "label_values(baseshift_runs_total, workflow)"
    titles = [p["title"] for p in board["panels"]]
    assert len(titles) == len(set(titles)) == 10
    for panel in board["panels"]:
        assert panel["datasource"]["uid"] == "${DS_PROMETHEUS}", panel["title"]
        assert panel["targets"] and all(t["expr"].strip() for t in panel["targets"]), panel


async def test_every_metric_the_dashboard_reads_is_exposed(
        make_client: Callable[..., Any]) -> None:
    async with make_client() as (bs, client):
        await finished(client, await start(client, "hello"))
        text = (await client.get("/metrics")).text
    exposed = {line.split()[2] for line in text.splitlines() if line.startswith("# TYPE ")}
    exposed.add("baseshift_queue_depth")  # only with the PostgreSQL queue (the test below)
    documented = (DEPLOY.parent / "docs" / "operations.md").read_text()
    used = {name for p in panels() for e in expressions(p) for name in metric_names(e)}
    assert "baseshift_runs_total" in used and "request_duration_seconds_bucket" in used
    for name in used:
        family = re.sub(r"_(bucket|count|sum)$", "", name)
        assert family in exposed or name in exposed, name
        assert f"`{family}`" in documented, name


HELLO = """workflow hello_metrics {
  version "1.0.0"
  job greet uses shell { with { command: "echo hello" } }
}
"""
BROKEN = """workflow broken_metrics {
  version "1.0.0"
  job fail uses shell { with { command: "exit 3" } }
}
"""


@pytest.mark.slow
def test_every_dashboard_panel_returns_series_from_a_real_prometheus(tmp_path: Path,
                                                                     pg_url: str) -> None:
    """The server schedules on the PostgreSQL queue and a worker executes: the queue-depth
    panel has series too, and the attempt panels read the worker's `--metrics-port`."""
    shared = {"BASESHIFT_STORE": "postgres", "BASESHIFT_DATABASE_URL": pg_url,
              "BASESHIFT_QUEUE": "postgres", "BASESHIFT_TEMPLATES": "memory"}
    metrics_port = free_port()
    with serving(tmp_path, {"hello_metrics": HELLO, "broken_metrics": BROKEN},
                 shared) as server, \
            daemon([sys.executable, "-m", "baseshift", "worker", "--metrics-port",
                    str(metrics_port), "--workflows", str(tmp_path / "flows")],
                   f"http://127.0.0.1:{metrics_port}/metrics", tmp_path,
                   tmp_path / "worker.log", {**shared, **AUTH_OFF,
                                             "BASESHIFT_DATA_DIR": str(tmp_path / "w")}), \
            running_prometheus(tmp_path, f"""
global:
  scrape_interval: 1s
scrape_configs:
  - job_name: baseshift
    static_configs:
      - targets: ["{server.removeprefix('http://')}"]
  - job_name: baseshift-worker
    static_configs:
      - targets: ["127.0.0.1:{metrics_port}"]
""") as prometheus:
        for workflow, status in (("hello_metrics", "COMPLETED"), ("hello_metrics", "COMPLETED"),
                                 ("broken_metrics", "FAILED")):
            started = httpx.post(f"{server}/api/v1/workflows", timeout=10,
                                 json={"workflow": workflow, "inputs": {}})
            assert started.status_code == 201, started.text
            run = f"{server}/api/v1/workflows/{started.json()['workflow_id']}"
            until(lambda: httpx.get(run, timeout=10).json()["status"] == status)  # noqa: B023
        # a few scrapes after the last run ended: rates need two samples of it
        until(lambda: bool(query(prometheus, 'count_over_time(baseshift_runs_total'
                                 '{workflow="broken_metrics",status="FAILED"}[1m]) >= 3')))
        empty: dict[str, str] = {}
        for panel in panels():
            for promql in expressions(panel, workflow="hello_metrics|broken_metrics"):
                if not query(prometheus, promql):
                    empty[panel["title"]] = promql
        assert empty == {}, empty
        workers = query(prometheus, 'baseshift_attempts_total{job="baseshift-worker"}')
        assert workers, "the worker executed the attempts and its port was scraped"
        [failure] = query(prometheus, expressions(
            next(p for p in panels() if p["title"] == "Run failure ratio per workflow"),
            workflow="broken_metrics")[0])
        assert failure["metric"] == {"workflow": "broken_metrics"}


class _Webhook(BaseHTTPRequestHandler):
    received: queue.Queue[dict[str, Any]]

    def do_POST(self) -> None:  # noqa: N802 (http.server's name)
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.received.put(json.loads(body))
        self.send_response(200)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass


@pytest.fixture
def webhook() -> Iterator[tuple[str, queue.Queue[dict[str, Any]]]]:
    received: queue.Queue[dict[str, Any]] = queue.Queue()
    handler = type("Webhook", (_Webhook,), {"received": received})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/alerts", received
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def target_down_rule() -> dict[str, Any]:
    """BaseShiftTargetDown from deploy/prometheus/alerts.yml, firing at once (`for: 0s`)."""
    groups = YAML(typ="safe").load((RULES / "alerts.yml").read_text())["groups"]
    [rule] = [r for g in groups for r in g["rules"] if r.get("alert") == "BaseShiftTargetDown"]
    return {**rule, "for": "0s"}


@pytest.mark.slow
def test_a_firing_alert_reaches_the_alertmanager_webhook(
        tmp_path: Path, webhook: tuple[str, queue.Queue[dict[str, Any]]]) -> None:
    hook_url, received = webhook
    am_port = free_port()
    am_dir = tmp_path / "alertmanager"
    am_dir.mkdir()
    (am_dir / "alertmanager.yml").write_text(json.dumps({  # JSON is YAML
        "route": {"receiver": "hook", "group_wait": "0s", "group_interval": "1s",
                  "repeat_interval": "1h"},
        "receivers": [{"name": "hook", "webhook_configs": [
            {"url": hook_url, "send_resolved": False}]}],
    }))
    rules = tmp_path / "rules.yml"
    rules.write_text(json.dumps({"groups": [{"name": "baseshift", "interval": "1s",
                                             "rules": [target_down_rule()]}]}))
    nowhere = free_port()  # a baseshift target nothing listens on: up == 0
    with daemon(["prometheus-alertmanager", f"--config.file={am_dir / 'alertmanager.yml'}",
                 f"--storage.path={am_dir / 'data'}",
                 f"--web.listen-address=127.0.0.1:{am_port}", "--cluster.listen-address="],
                f"http://127.0.0.1:{am_port}/-/ready", am_dir, am_dir / "alertmanager.log"), \
            running_prometheus(tmp_path, f"""
global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files:
  - {rules}
alerting:
  alertmanagers:
    - static_configs:
        - targets: ["127.0.0.1:{am_port}"]
scrape_configs:
  - job_name: baseshift
    static_configs:
      - targets: ["127.0.0.1:{nowhere}"]
"""):
        notification = received.get(timeout=WAIT)
    assert notification["status"] == "firing"
    [alert] = notification["alerts"]
    assert alert["labels"]["alertname"] == "BaseShiftTargetDown"
    assert alert["labels"]["job"] == "baseshift"
    assert alert["labels"]["severity"] == "critical"
    assert alert["annotations"]["summary"] == (
        f"Base Shift target 127.0.0.1:{nowhere} (baseshift) is down")
