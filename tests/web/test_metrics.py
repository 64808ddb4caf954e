"""Prometheus metrics (`GET /metrics`) and their JSON summary (`GET /api/v1/metrics`):
labels bounded (route templates, catalog workflow names, never a run id), who may read
them, and the counts after real runs."""
from __future__ import annotations

import os
import re
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from baseshift.core.events import JobStateChanged, RunStateChanged
from baseshift.core.instance import instance_id
from baseshift.core.states import JobState, RunState
from baseshift.plugins.metrics.collector import OTHER, Metrics
from baseshift.plugins.metrics.http import SUMMARY
from tests.attempt_support import tried_plan
from tests.auth_support import api_token_for, bearer, token_for
from tests.web.api_support import finished, start

RUN_ID = re.compile(r"[0-9a-f]{10,}-[0-9a-f]{8}")
"""What a run id looks like (`core.engine.new_run_id`)."""


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of an exposition: (name, labels) -> value."""
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(found: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str,
          **labels: str) -> float:
    return found.get((name, frozenset(labels.items())), 0.0)


async def ran(client: httpx.AsyncClient) -> list[str]:
    """Run `hello` (completes) and `nightly_export` (fails) to their ends; their ids."""
    ids = [await start(client, "hello"), await start(client, "nightly_export")]
    for run_id in ids:
        await finished(client, run_id)
    return ids


async def test_metrics_after_runs_label_routes_by_template_and_never_by_run_id(
        make_client: Callable[..., Any]) -> None:
    async with make_client() as (bs, client):
        ids = await ran(client)
        assert (await client.get(f"/api/v1/workflows/{ids[0]}")).status_code == 200
        assert (await client.get(f"/api/v1/no/such/{ids[1]}")).status_code == 404
        refused = await client.post("/api/v1/auth/login",
                                    json={"username": "nobody", "password": "wrong!wrong!"})
        assert refused.status_code == 401
        scraper = bearer(await api_token_for(bs, "admin", user="prometheus"))
        response = await client.get("/metrics", headers=scraper)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    text = response.text
    assert RUN_ID.search(text) is None, RUN_ID.search(text)
    assert not any(run_id in text for run_id in ids)
    found = samples(text)
    assert value(found, "http_requests_total", method="GET",
                 endpoint="/api/v1/workflows/{run_id}", status="200") >= 1
    assert value(found, "http_requests_total", method="GET", endpoint="unmatched",
                 status="404") == 1
    assert value(found, "http_requests_total", method="POST", endpoint="/api/v1/workflows",
                 status="201") == 2
    assert value(found, "request_duration_seconds_count",
                 endpoint="/api/v1/workflows/{run_id}") >= 1
    assert value(found, "baseshift_login_failures_total") == 1
    assert value(found, "baseshift_runs_total", workflow="hello", status="COMPLETED") == 1
    assert value(found, "baseshift_runs_total", workflow="nightly_export",
                 status="FAILED") == 1
    assert value(found, "baseshift_jobs_total", workflow="nightly_export",
                 state="FAILED") >= 1
    assert value(found, "baseshift_jobs_total", workflow="hello", state="SUCCEEDED") >= 1
    assert value(found, "baseshift_run_duration_seconds_count", workflow="hello") == 1
    assert value(found, "baseshift_job_duration_seconds_count", workflow="hello") >= 1
    assert value(found, "baseshift_attempts_total", workflow="nightly_export",
                 outcome="ok") >= 1  # its export job
    assert value(found, "baseshift_attempts_in_flight") == 0
    assert value(found, "baseshift_store_transaction_seconds_count", store="memory",
                 operation="create_run") == 2
    assert value(found, "baseshift_store_transaction_seconds_count", store="memory",
                 operation="apply") >= 2
    assert value(found, "baseshift_store_transaction_seconds_bucket", store="memory",
                 operation="load_run", le="+Inf") >= 1
    assert value(found, "baseshift_jobs_ready") == 0
    assert value(found, "baseshift_scheduler_lag_seconds") == 0
    assert value(found, "baseshift_workflow_errors") == 0
    assert value(found, "baseshift_workflows_loaded") == len(bs.catalog.entries())
    assert value(found, "process_resident_memory_bytes") > 0


async def test_the_summary_counts_requests_runs_and_resources(
        make_client: Callable[..., Any]) -> None:
    from tests.web.api_support import schema_errors

    async with make_client() as (bs, client):
        await ran(client)
        response = await client.get("/api/v1/metrics")
        document = (await client.get("/api/v1/openapi.json")).json()
    assert response.status_code == 200, response.text
    body = response.json()
    assert schema_errors(document, SUMMARY, body) == []
    assert body["runs"]["COMPLETED"] == 1 and body["runs"]["FAILED"] == 1
    assert body["jobs"]["SUCCEEDED"] >= 1
    started = body["endpoints"]["/api/v1/workflows"]
    assert started["statuses"] == {"201": 2} and started["requests"] == 2
    assert started["seconds_average"] is not None
    assert body["process"]["memory_rss_bytes"] > 0
    assert body["process"]["pid"] == os.getpid()
    assert body["process"]["instance"] == instance_id()
    assert body["host"]["memory_total_bytes"] > 0
    assert body["host"]["disk"]["total_bytes"] > 0
    assert body["workflows_loaded"] == len(bs.catalog.entries())
    assert RUN_ID.search(response.text) is None


@pytest.mark.parametrize("path", ["/metrics", "/api/v1/metrics"])
async def test_metrics_need_metrics_read_which_only_admin_holds(
        make_client: Callable[..., Any], path: str) -> None:
    async with make_client() as (bs, client):
        anonymous = await client.get(path, headers={"Authorization": ""})
        assert anonymous.status_code == 401
        assert anonymous.headers["content-type"] == "application/problem+json"
        for role in ("viewer", "operator", "author"):
            refused = await client.get(path, headers=bearer(await token_for(bs, role)))
            assert refused.status_code == 403, role
        assert (await client.get(path)).status_code == 200


async def test_public_metrics_are_scraped_without_a_token_but_not_the_summary(
        make_client: Callable[..., Any]) -> None:
    async with make_client(role=None, extra={"metrics": {"public": True}}) as (bs, client):
        assert (await client.get("/metrics")).status_code == 200
        assert (await client.get("/api/v1/metrics")).status_code == 401


async def test_a_wrong_public_option_stops_the_start(
        make_client: Callable[..., Any]) -> None:
    from baseshift.core.errors import ConfigError

    with pytest.raises(ConfigError, match="plugins.metrics.public"):
        async with make_client(extra={"metrics": {"public": "yes"}}):
            pass


def test_workflow_labels_are_capped_and_jobs_of_unseen_runs_are_unknown() -> None:
    m = Metrics(max_workflows=2)
    for n, name in enumerate(["a", "b", "c", "d", "a"]):
        m.observe(RunStateChanged(f"run{n}", 1.0, name, None, RunState.RUNNING))
        m.observe(RunStateChanged(f"run{n}", 3.5, name, RunState.RUNNING,
                                  RunState.COMPLETED))
    m.observe(JobStateChanged("elsewhere", 1.0, "j", JobState.PENDING, JobState.READY))
    m.observe(JobStateChanged("elsewhere", 2.0, "j", JobState.READY, JobState.RUNNING))
    from prometheus_client import generate_latest

    found = samples(generate_latest(m.registry).decode())
    workflows = {dict(labels)["workflow"] for name, labels in found
                 if name == "baseshift_runs_total"}
    assert workflows == {"a", "b", OTHER}
    assert value(found, "baseshift_runs_total", workflow=OTHER, status="COMPLETED") == 2
    assert value(found, "baseshift_run_duration_seconds_sum", workflow="a") == 5.0
    assert value(found, "baseshift_jobs_total", workflow="unknown", state="RUNNING") == 1
    assert len(m.ready) == 0


@pytest.mark.parametrize("mixed", [False, True])
def test_a_batch_counts_and_times_each_run_s_jobs_under_its_own_workflow(mixed: bool) -> None:
    """A batch of one run's job events is counted by state alone (collector.py `_counts`);
    a batch of several runs' by run: either way each job is counted and timed under its
    run's workflow, from its last RUNNING; a clock set back times a job at 0."""
    from prometheus_client import generate_latest

    m = Metrics()
    m.observe_all([RunStateChanged("r1", 0.0, "one", None, RunState.RUNNING),
                   RunStateChanged("r2", 0.0, "two", None, RunState.RUNNING)])
    first = [JobStateChanged("r1", 1.0, f"a{i}", JobState.READY, JobState.RUNNING, 1)
             for i in range(3)]
    second = [JobStateChanged("r2", 1.0, "b", JobState.READY, JobState.RUNNING, 1)]
    ended = [JobStateChanged("r1", 1.0 + i, f"a{i}", JobState.RUNNING, JobState.SUCCEEDED, 1)
             for i in range(3)]
    late = [JobStateChanged("r2", 0.5, "b", JobState.RUNNING, JobState.FAILED, 1, "x")]
    batches = [first + second, ended + late] if mixed else [first, second, ended, late]
    for batch in batches:
        m.observe_all(batch)
    found = samples(generate_latest(m.registry).decode())
    assert value(found, "baseshift_jobs_total", workflow="one", state="RUNNING") == 3
    assert value(found, "baseshift_jobs_total", workflow="one", state="SUCCEEDED") == 3
    assert value(found, "baseshift_jobs_total", workflow="two", state="RUNNING") == 1
    assert value(found, "baseshift_jobs_total", workflow="two", state="FAILED") == 1
    assert value(found, "baseshift_job_duration_seconds_count", workflow="one") == 3
    assert value(found, "baseshift_job_duration_seconds_sum", workflow="one") == 3.0
    assert value(found, "baseshift_job_duration_seconds_count", workflow="two") == 1
    assert value(found, "baseshift_job_duration_seconds_sum", workflow="two") == 0.0


def test_a_retried_job_is_timed_from_its_last_start_and_ended_runs_are_not_followed(
) -> None:
    """Runs come and go by the thousand: once none of a run's jobs runs, nothing of it is
    kept for timing its jobs (the memory stays flat), and a job started again is timed from
    its last start."""
    from prometheus_client import generate_latest

    m = Metrics()
    for r in range(3000):
        run = f"r{r}"
        m.observe_all([RunStateChanged(run, 0.0, "w", None, RunState.RUNNING),
                       JobStateChanged(run, 1.0, "j", JobState.READY, JobState.RUNNING, 1)])
        m.observe_all([JobStateChanged(run, 2.0, "j", JobState.RUNNING, JobState.RETRYING, 1),
                       JobStateChanged(run, 5.0, "j", JobState.READY, JobState.RUNNING, 2)])
        m.observe_all([JobStateChanged(run, 7.0, "j", JobState.RUNNING, JobState.SUCCEEDED, 2),
                       RunStateChanged(run, 7.0, "w", RunState.RUNNING, RunState.COMPLETED)])
    found = samples(generate_latest(m.registry).decode())
    assert value(found, "baseshift_job_duration_seconds_count", workflow="w") == 3000
    assert value(found, "baseshift_job_duration_seconds_sum", workflow="w") == 6000.0
    assert not m._job_started  # nothing left of 3,000 ended runs


@pytest.mark.parametrize("mixed", [False, True])
@pytest.mark.parametrize("here", [True, False])
def test_where_the_engine_runs_the_attempts_its_events_count_and_time_them(
        here: bool, mixed: bool) -> None:
    """With no attempt queue (`attempts_here`: the engine runs the attempts in this
    process), each attempt is counted by outcome and timed from its job's RUNNING to its
    end, even a retry that ends and starts again in one batch, and is in flight in between.
    A server whose workers run the attempts (they count them) counts none from its events;
    both time the jobs. `mixed`: each batch holds another run's events too."""
    from prometheus_client import generate_latest

    running, ready = JobState.RUNNING, JobState.READY
    m = Metrics()
    m.attempts_here = here

    def scraped() -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
        return samples(generate_latest(m.registry).decode())

    other = [[RunStateChanged("o", 0.0, "v", None, RunState.RUNNING),
               JobStateChanged("o", 1.0, "a", ready, running, 1)],
             [JobStateChanged("o", 3.0, "a", running, JobState.SUCCEEDED, 1)],
             [RunStateChanged("o", 3.0, "v", RunState.RUNNING, RunState.COMPLETED)]] \
        if mixed else [[], [], []]
    m.observe_all([RunStateChanged("r", 0.0, "w", None, RunState.RUNNING), *other[0]]
                  + [JobStateChanged("r", 1.0, job, ready, running, 1) for job in "abcd"])
    assert value(scraped(), "baseshift_attempts_in_flight") == \
        ((5 if mixed else 4) if here else 0)
    m.observe_all([JobStateChanged("r", 2.0, "a", running, JobState.RETRYING, 1),
                   JobStateChanged("r", 4.0, "a", ready, running, 2),
                   JobStateChanged("r", 1.5, "b", running, JobState.SUCCEEDED, 1),
                   *other[1],
                   JobStateChanged("r", 11.0, "c", running, JobState.FAILED, 1)])
    assert value(scraped(), "baseshift_attempts_in_flight") == (2 if here else 0)
    m.observe_all([JobStateChanged("r", 10.0, "a", running, JobState.SUCCEEDED, 2),
                   *other[2],
                   JobStateChanged("r", 2.0, "d", running, JobState.CANCELLED, 1),
                   RunStateChanged("r", 10.0, "w", RunState.RUNNING, RunState.CANCELLED)])
    found = scraped()
    assert value(found, "baseshift_attempts_total", workflow="v",
                 outcome="ok") == (1 if here and mixed else 0)
    for outcome, count in (("ok", 2), ("error", 2), ("cancelled", 1)):
        assert value(found, "baseshift_attempts_total", workflow="w",
                     outcome=outcome) == (count if here else 0), outcome
    assert value(found, "baseshift_attempt_duration_seconds_count",
                 workflow="w") == (5 if here else 0)
    assert value(found, "baseshift_attempt_duration_seconds_sum",
                 workflow="w") == (18.5 if here else 0)  # 1 + 6, 0.5, 10, 1
    assert value(found, "baseshift_attempts_in_flight") == 0
    assert value(found, "baseshift_job_duration_seconds_count", workflow="w") == 4
    assert value(found, "baseshift_job_duration_seconds_sum", workflow="w") == 17.5
    assert not m._job_started


def test_each_application_has_its_own_registry() -> None:
    from prometheus_client import generate_latest

    first, second = Metrics(), Metrics()  # the global registry would refuse the second
    first.runs.labels("a", "COMPLETED").inc()
    assert value(samples(generate_latest(first.registry).decode()), "baseshift_runs_total",
                 workflow="a", status="COMPLETED") == 1
    assert "baseshift_runs_total{" not in generate_latest(second.registry).decode()


def test_ready_jobs_and_the_oldest_wait_are_read_at_scrape_time(tmp_path: Any) -> None:
    import time

    from prometheus_client import generate_latest

    m = Metrics()
    m.observe(RunStateChanged("r1", 1.0, "w", None, RunState.RUNNING))
    long_ago = time.time() - 3600
    m.observe(JobStateChanged("r1", long_ago, "a", JobState.PENDING, JobState.READY))
    m.observe(JobStateChanged("r1", time.time(), "b", JobState.PENDING, JobState.READY))

    class Catalog:
        problems = ()

        def entries(self) -> list[Any]:
            return []

    class App:
        catalog = Catalog()

    from baseshift.plugins.metrics.collector import _Live

    m.registry.register(_Live(App(), m))  # type: ignore[arg-type]
    found = samples(generate_latest(m.registry).decode())
    assert value(found, "baseshift_jobs_ready") == 2
    assert value(found, "baseshift_scheduler_lag_seconds") >= 3600
    m.observe(JobStateChanged("r1", time.time(), "a", JobState.READY, JobState.RUNNING))
    m.observe(RunStateChanged("r1", time.time(), "w", RunState.RUNNING, RunState.CANCELLED))
    found = samples(generate_latest(m.registry).decode())
    assert value(found, "baseshift_jobs_ready") == 0


async def test_the_metrics_and_the_insights_read_one_ready_jobs_tracker(
        make_client: Callable[..., Any]) -> None:
    from baseshift.core.readyjobs import ready_jobs_of
    from baseshift.plugins.api.insights import samples_of
    from baseshift.plugins.metrics.collector import metrics_of

    async with make_client() as (bs, client):
        shared = ready_jobs_of(bs.stash)
        assert metrics_of(bs).ready is shared and samples_of(bs).ready is shared
        ready = JobStateChanged("r1", 100.0, "a", JobState.PENDING, JobState.READY)
        await bs.hooks.track_event(ready)  # both plugins feed it: counted once
        assert shared.since == {("r1", "a"): 100.0} and shared.lag(now=130.0) == 30.0
        assert (await samples_of(bs).take(now=130.0)).lag == 30.0
        found = samples((await client.get("/metrics")).text)
        assert value(found, "baseshift_jobs_ready") == 1
        await bs.hooks.track_event(RunStateChanged("r1", 131.0, "w", RunState.RUNNING,
                                                   RunState.CANCELLED))
        assert len(shared) == 0 and shared.lag() == 0.0


async def test_an_attempt_is_counted_once_whatever_its_steps_and_a_timeout_is_an_error(
        make_baseshift: Callable[..., Any], tmp_path: Any) -> None:
    """A template's two steps are one attempt; an attempt that timed out, or whose config
    could not be rendered (a secret not set), failed: `error`, not `cancelled` or
    uncounted, so an error rate sees them."""
    from prometheus_client import generate_latest

    from baseshift.plugins.metrics.collector import metrics_of

    async with make_baseshift() as bs:
        await bs.engine.wait(await bs.engine.submit(tried_plan(bs, tmp_path), {}))
        found = samples(generate_latest(metrics_of(bs).exposition()).decode())
    for outcome, count in (("ok", 1), ("error", 2), ("cancelled", 0)):
        assert value(found, "baseshift_attempts_total", workflow="tried",
                     outcome=outcome) == count, outcome
    assert value(found, "baseshift_attempt_duration_seconds_count", workflow="tried") == 3
    assert value(found, "baseshift_attempts_in_flight") == 0


async def test_reload_errors_count_failed_and_broken_reloads(
        make_client: Callable[..., Any], tmp_path: Any) -> None:
    folder = tmp_path / "flows"
    folder.mkdir()
    (folder / "ok.bsw").write_text(
        'workflow ok {\n  version "1.0.0"\n  job a uses shell { with { command: "true" } }\n}\n')
    async with make_client(workflows=folder) as (bs, client):
        found = samples((await client.get("/metrics")).text)
        assert value(found, "baseshift_reload_errors_total", reason="broken") == 0
        assert value(found, "baseshift_reload_errors_total", reason="failed") == 0
        (folder / "bad.bsw").write_text(
            'workflow bad {\n  version "1.0.0"\n  job a uses shell { needs nothing }\n}\n')
        assert await bs.catalog.refresh()
        assert await bs.catalog.refresh(force=True)  # still broken: counted again

        async def no_templates() -> list[Any]:
            raise OSError("the template store is gone")

        bs.catalog._stored_templates = no_templates  # type: ignore[method-assign]
        with pytest.raises(OSError):
            await bs.catalog.refresh(force=True)
        found = samples((await client.get("/metrics")).text)
    assert value(found, "baseshift_reload_errors_total", reason="broken") == 2
    assert value(found, "baseshift_reload_errors_total", reason="failed") == 1
    assert value(found, "baseshift_workflow_errors") >= 1


async def test_the_postgres_queue_reports_its_depth_and_lease_expiries(
        make_client: Callable[..., Any], pg_url: str) -> None:
    async with make_client(store="postgres", queue="postgres", database_url=pg_url) as (
            bs, client):
        found = samples((await client.get("/metrics")).text)
    depth = {dict(labels)["state"]: v for (name, labels), v in found.items()
             if name == "baseshift_queue_depth"}
    assert depth == {"queued": 0, "leased": 0, "done": 0}
    assert value(found, "baseshift_queue_lease_expiries_total") == 0


async def test_without_the_postgres_queue_there_is_no_queue_depth(
        make_client: Callable[..., Any]) -> None:
    async with make_client() as (bs, client):
        text = (await client.get("/metrics")).text
    assert "baseshift_queue_depth" not in text


async def test_a_request_that_raises_counts_as_a_500_of_its_route() -> None:
    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from starlette.routing import Route

    from baseshift.plugins.metrics.http import RequestMetrics

    async def broken(request: Any) -> Any:
        raise RuntimeError("boom")

    m = Metrics()
    app = Starlette(routes=[Route("/items/{item_id}", broken)],
                    middleware=[Middleware(RequestMetrics, metrics=m)])
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as client:
        assert (await client.get("/items/42")).status_code == 500
        assert (await client.request("BREW", "/items/42")).status_code == 405
    from prometheus_client import generate_latest

    found = samples(generate_latest(m.registry).decode())
    assert value(found, "http_requests_total", method="GET", endpoint="/items/{item_id}",
                 status="500") == 1
    # an unknown method is one label value, not the client's word
    assert value(found, "http_requests_total", method="other", endpoint="/items/{item_id}",
                 status="405") == 1


FLEET_CHILD = """
import sys
from baseshift.core.events import JobStateChanged
from baseshift.core.states import JobState
from baseshift.plugins.metrics.collector import Metrics
from baseshift.plugins.metrics.fleet import fleet_dir


class Queue:
    lease_expiries = 0

    async def depth(self):
        return {}


m = Metrics(fleet=fleet_dir())
queue = Queue()
m.watch_queue(queue)
queue.lease_expiries = int(sys.argv[2])
m.observe(JobStateChanged("r", float(sys.argv[1]), "a", JobState.PENDING, JobState.READY))
m.requests.labels("GET", "/x", "200").inc()
print(__import__("os").getpid())
"""


def test_fleet_processes_are_summed_and_a_dead_one_s_gauges_dropped(tmp_path: Any) -> None:
    """Two processes in multiprocess mode (as `serve --processes 2` starts them): the ready
    jobs and lease expiries add up, the lag is the oldest wait of any; once one is marked
    dead its gauges go, its counters stay."""
    import subprocess
    import sys
    import time

    from prometheus_client import generate_latest
    from prometheus_client.multiprocess import mark_process_dead

    from baseshift.plugins.metrics.fleet import fleet_registry

    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    pids = []
    for ready_at, expiries in ((1000.0, 2), (time.time(), 1)):
        child = subprocess.run([sys.executable, "-c", FLEET_CHILD, str(ready_at), str(expiries)],
                               env=env, capture_output=True, text=True, timeout=120)
        assert child.returncode == 0, child.stderr
        pids.append(int(child.stdout))
    found = samples(generate_latest(fleet_registry(str(tmp_path))).decode())
    assert value(found, "baseshift_jobs_ready") == 2
    assert value(found, "baseshift_scheduler_lag_seconds") > time.time() - 1001
    assert value(found, "baseshift_queue_lease_expiries_total") == 3
    assert value(found, "http_requests_total", method="GET", endpoint="/x", status="200") == 2
    assert not any("ready_since" in name for name, _ in found)
    mark_process_dead(pids[0], str(tmp_path))  # type: ignore[no-untyped-call]
    found = samples(generate_latest(fleet_registry(str(tmp_path))).decode())
    assert value(found, "baseshift_jobs_ready") == 1
    assert value(found, "baseshift_scheduler_lag_seconds") < time.time() - 1001
    assert value(found, "baseshift_queue_lease_expiries_total") == 3


FLEET_PLUGIN_CHILD = """
import asyncio, sys
from prometheus_client import generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from baseshift.plugins.metrics.collector import Metrics
from baseshift.plugins.metrics.fleet import fleet_dir


class Shipper:  # what a plugin registers (plugins/logship/metrics.py, plugins/alerts)
    shipped = 0
    firing = {}

    def describe(self):
        return []

    def collect(self):
        lines = CounterMetricFamily("t_lines_shipped", "Lines shipped", labels=["service"])
        lines.add_metric(["es"], self.shipped)
        yield lines
        yield CounterMetricFamily("t_resends", "Unlabelled", value=self.shipped * 10)
        firing = GaugeMetricFamily("t_firing", "Alerts firing", labels=["rule"])
        for rule, count in self.firing.items():
            firing.add_metric([rule], count)
        yield firing


async def copied() -> None:
    if sys.argv[1] == "refresh":
        await m.refresh()  # as before a scrape
        return
    m.mirror.start()  # as every process of a fleet does (the first copy at once)
    await asyncio.sleep(0.1)
    await m.mirror.stop()


m = Metrics(fleet=fleet_dir())
shipper = Shipper()
m.registry.register(shipper)
for shipped, firing in zip(sys.argv[2::2], sys.argv[3::2]):
    shipper.shipped = int(shipped)
    shipper.firing = dict(pair.split("=") for pair in firing.split(",") if pair)
    shipper.firing = {rule: int(count) for rule, count in shipper.firing.items()}
    asyncio.run(copied())
print(generate_latest(m.exposition()).decode())
"""


def test_plugins_metrics_of_a_fleet_are_every_process_s(tmp_path: Any) -> None:
    """What other plugins' collectors report (the log shippers' counters, the alerts
    firing) is summed over a fleet's processes, as the metrics plugin's own are: a counter
    adds each process's growth, not its count again; a gauge series no longer reported is
    0; and the process that answers does not add its own figures a second time. Each
    process copies them every few seconds, and before it answers a scrape."""
    import subprocess
    import sys

    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    answers = []
    for rounds in (["periodic", "3", "a=1,b=2", "5", "a=1"], ["refresh", "4", "a=1"]):
        child = subprocess.run([sys.executable, "-c", FLEET_PLUGIN_CHILD, *rounds], env=env,
                               capture_output=True, text=True, timeout=120)
        assert child.returncode == 0, child.stderr
        answers.append(samples(child.stdout))
    found = answers[-1]  # the second process answers for both
    assert value(found, "t_lines_shipped_total", service="es") == 9
    assert value(found, "t_resends_total") == 90
    assert value(found, "t_firing", rule="a") == 2
    assert value(found, "t_firing", rule="b") == 0
    assert len([name for name, _ in found if name == "t_lines_shipped_total"]) == 1


def test_one_process_s_plain_metrics_expose_what_prometheus_client_s_would() -> None:
    """local.py's counters, gauges and histograms (one process) write the very exposition
    prometheus_client's objects write for the same updates: names, types, help, labels,
    buckets, sums (the `_created` times aside, which differ by when each was made)."""
    from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

    from baseshift.plugins.metrics.local import LocalCounter, LocalGauge, LocalHistogram

    def exposition(counter: Any, gauge: Any, histogram: Any) -> list[str]:
        registry = CollectorRegistry(auto_describe=True)
        hits = counter("t_hits_total", "Hits", ["kind"], registry=registry)
        plain = counter("t_plain_total", "Never counted", registry=registry)
        level = gauge("t_level", "Level", registry=registry)
        seconds = histogram("t_seconds", "Seconds", ["kind"], registry=registry,
                            buckets=(.5, 1, 2.5))
        hits.labels("a").inc()
        hits.labels("a").inc(2)
        hits.labels("b").inc()
        level.inc()
        level.inc()
        level.dec()
        for amount in (0.1, 0.5, 0.75, 1, 3, 100):
            seconds.labels("a").observe(amount)
        seconds.labels("b")
        assert plain is not None
        return [re.sub(r"_created(\{.*\})? .*", r"_created\1 T", line)
                for line in generate_latest(registry).decode().splitlines()]

    theirs = exposition(Counter, Gauge, Histogram)
    assert exposition(LocalCounter, LocalGauge, LocalHistogram) == theirs
    assert 't_seconds_bucket{kind="a",le="1.0"} 4.0' in theirs


ATTEMPTS = """
import asyncio, sys
from baseshift.core.events import JobStateChanged, RunStateChanged
from baseshift.core.records import RunRecord
from baseshift.core.states import JobState, RunState
from baseshift.plugins.metrics.collector import Metrics
from baseshift.plugins.metrics.plugin import _Timing

fleet = sys.argv[1] == "fleet"
if fleet:
    from baseshift.plugins.metrics.fleet import fleet_dir
    m = Metrics(fleet=fleet_dir())
else:
    m = Metrics()
counting = _Timing(m)
run = RunRecord("r", "w", "1.0.0", "", "", {})
inside = []
for failure in (None, None, ValueError, asyncio.CancelledError):
    try:
        with counting.job_wrapper(run, None):
            inside.append(m.running.value if not fleet else None)
            if failure is not None:
                raise failure()
    except BaseException:
        pass
m.observe_all([RunStateChanged("r", 0.0, "w", RunState.INITIALIZED, RunState.RUNNING)]
              + [JobStateChanged("r", 1.0, f"j{i}", JobState.READY, JobState.RUNNING)
                 for i in range(3)]
              + [JobStateChanged("r", 1.0 + t, f"j{i}", JobState.RUNNING, JobState.SUCCEEDED)
                 for i, t in enumerate((0.5, 2.0, 700.0))])
print(inside)
"""


@pytest.mark.parametrize("fleet", [False, True])
def test_an_attempt_is_counted_alike_by_one_process_and_by_a_fleet(
        tmp_path: Any, fleet: bool) -> None:
    """One process changes its own numbers in place around an attempt (plugin.py
    `_TimedHere`), a process of a fleet calls prometheus_client's objects (`_Timed`): the
    same attempts and job durations give the same exposition, and nothing is left in
    flight."""
    import ast
    import subprocess
    import sys

    from prometheus_client import generate_latest

    from baseshift.plugins.metrics.fleet import fleet_registry

    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)} if fleet else \
        {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    script = ATTEMPTS + ("" if fleet else "\nfrom prometheus_client import generate_latest\n"
                         "print(generate_latest(m.exposition()).decode())\n")
    child = subprocess.run([sys.executable, "-c", script, "fleet" if fleet else "one"],
                           env=env, capture_output=True, text=True, timeout=120)
    assert child.returncode == 0, child.stderr
    first, _, rest = child.stdout.partition("\n")
    if not fleet:
        assert ast.literal_eval(first) == [1.0, 1.0, 1.0, 1.0]
    found = samples(generate_latest(fleet_registry(str(tmp_path))).decode() if fleet else rest)
    for outcome, count in (("ok", 2), ("error", 1), ("cancelled", 1)):
        assert value(found, "baseshift_attempts_total", workflow="w", outcome=outcome) == count
    assert value(found, "baseshift_attempt_duration_seconds_count", workflow="w") == 4
    assert value(found, "baseshift_attempts_in_flight") == 0
    assert value(found, "baseshift_job_duration_seconds_count", workflow="w") == 3
    assert value(found, "baseshift_job_duration_seconds_sum", workflow="w") == 702.5
    assert value(found, "baseshift_job_duration_seconds_bucket", workflow="w", le="1.0") == 1
    assert value(found, "baseshift_job_duration_seconds_bucket", workflow="w",
                 le="+Inf") == 3
