"""The Insights page and `GET /api/v1/analytics/insights`: the same figures, the charts'
geometry proportional to them, escaped workflow names, sensible empty charts, the queue
and lag samples ("no queue" without the PostgreSQL queue), and who may see them."""
from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from baseshift.core.events import JobStateChanged, RunStateChanged
from baseshift.core.states import JobState, RunState
from baseshift.plugins.api.insights import samples_of
from baseshift.plugins.ui.insights import PLOT_H
from tests.auth_support import bearer, token_for
from tests.web.insight_support import elements, seed_runs

API = "/api/v1/analytics/insights"


@pytest.mark.parametrize("store", ["memory", "sqlite"])
async def test_the_api_counts_runs_per_hour_and_per_workflow(
        make_client: Callable[..., Any], store: str) -> None:
    async with make_client(store=store) as (bs, client):
        await seed_runs(bs.store)
        body = (await client.get(API, params={"hours": 3})).json()
    assert body["hours"] == 3 and len(body["runs_per_hour"]) == 3
    totals = [h["total"] for h in body["runs_per_hour"]]
    assert totals == [3, 0, 3]
    assert body["runs_per_hour"][0]["counts"] | {} == {
        "COMPLETED": 1, "FAILED": 2, "CANCELLED": 0, "RUNNING": 0, "INITIALIZED": 0}
    assert body["runs_per_hour"][2]["counts"]["RUNNING"] == 1
    alpha, beta = body["workflows"]
    assert (alpha["workflow"], alpha["runs"], alpha["completed"], alpha["failed"]) == (
        "alpha", 4, 3, 1)
    assert alpha["success_rate"] == 0.75
    assert (alpha["p50_duration"], alpha["p95_duration"]) == (2.0, 8.0)  # of 1 2 4 8
    assert (beta["success_rate"], beta["p50_duration"], beta["p95_duration"]) == (
        0.0, 10.0, 10.0)
    assert body["samples"]["queue"] is False


async def test_hours_out_of_range_are_a_400(make_client: Callable[..., Any]) -> None:
    async with make_client() as (bs, client):
        response = await client.get(API, params={"hours": 0})
        assert response.status_code == 400
        assert (await client.get(API, params={"hours": 169})).status_code == 400


async def test_the_charts_are_drawn_to_the_api_numbers(make_client: Callable[..., Any]) -> None:
    async with make_client() as (bs, client):
        await seed_runs(bs.store)
        await samples_of(bs).take()
        body = (await client.get(API, params={"hours": 3})).json()
        page = await client.get("/ui/insights", params={"hours": 3})
    assert page.status_code == 200
    found = elements(page.text)
    bars = [a for t, a in found if t == "rect" and "data-state" in a]
    # stacked bars: one rect per non-zero (hour, state); height = count * PLOT_H / max total
    expected = sorted((s, n) for h in body["runs_per_hour"] for s, n in h["counts"].items() if n)
    assert sorted((a["data-state"], int(float(a["data-value"] or 0))) for a in bars) == expected
    top = max(h["total"] for h in body["runs_per_hour"])
    for a in bars:
        assert float(a["height"] or 0) == pytest.approx(
            float(a["data-value"] or 0) * PLOT_H / top, abs=0.01)
    # success rates: widths proportional to the rates
    rates = [a for t, a in found if t == "rect" and "rate" in (a.get("class") or "")]
    assert [float(a["data-value"] or 0) for a in rates] == [
        w["success_rate"] for w in body["workflows"]]
    alpha_w, beta_w = (float(a["width"] or 0) for a in rates)
    assert beta_w == 0 and alpha_w > 0
    # durations: p50/p95 bars share one scale, the longest p95 the widest
    durations = [a for t, a in found if t == "rect" and "data-kind" in a]
    values = [(a["data-kind"], float(a["data-value"] or 0)) for a in durations]
    assert values == [("p50", 2.0), ("p95", 8.0), ("p50", 10.0), ("p95", 10.0)]
    widths = [float(a["width"] or 0) for a in durations]
    assert widths[1] / widths[3] == pytest.approx(8.0 / 10.0, rel=1e-3)
    # the sample: a lag point, and "no queue" rather than a line at 0
    assert any(t == "circle" and a.get("data-value") == "0.0" for t, a in found)
    assert 'id="chart-queue-none"' in page.text and 'id="chart-queue"' not in page.text
    # every chart has an accessible name
    svgs = [a for t, a in found if t == "svg" and "insight" in (a.get("class") or "")]
    assert len(svgs) == 4 and all(a.get("role") == "img" and a.get("aria-labelledby")
                                  for a in svgs)


HOSTILE = ('<script>alert(1)</script>', '"><svg onload=alert(2)><title>x')


async def test_hostile_workflow_names_are_text(make_client: Callable[..., Any]) -> None:
    async with make_client() as (bs, client):
        await seed_runs(bs.store, names=HOSTILE)
        page = await client.get("/ui/insights", params={"hours": 3})
    assert page.status_code == 200
    found = elements(page.text)
    scripts = [a for t, a in found if t == "script"]
    assert scripts and all((a.get("src") or "").startswith("/static/") for a in scripts)
    handlers = [(t, k) for t, a in found for k in a if k.startswith("on")]
    assert handlers == []
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text


async def test_with_no_runs_the_charts_say_so(make_client: Callable[..., Any]) -> None:
    async with make_client() as (bs, client):
        page = await client.get("/ui/insights")
        body = (await client.get(API)).json()
    assert page.status_code == 200
    assert len(body["runs_per_hour"]) == 24 and body["workflows"] == []
    assert "No runs in this period." in page.text
    assert "No finished runs in this period." in page.text
    assert not [a for t, a in elements(page.text) if t == "rect"]


async def test_the_postgres_queue_depth_is_sampled(make_client: Callable[..., Any],
                                                   pg_url: str) -> None:
    async with make_client(store="postgres", queue="postgres", database_url=pg_url) as (
            bs, client):
        sample = await samples_of(bs).take()
        body = (await client.get(API)).json()
        page = await client.get("/ui/insights")
    assert sample.queued == 0
    assert body["samples"]["queue"] is True
    assert body["samples"]["points"][-1]["queue_depth"] == 0
    assert 'id="chart-queue"' in page.text and "chart-queue-none" not in page.text


async def test_the_samples_ring_keeps_one_day(make_client: Callable[..., Any]) -> None:
    async with make_client(extra={"insights": {"sample_interval": 3600}}) as (bs, client):
        samples = samples_of(bs)
        await samples.stop()  # the server's own sampling, started with it
        samples.ring.clear()
        for i in range(30):
            await samples.take(now=1000.0 + i)
    assert samples.ring.maxlen == 24 and len(samples.ring) == 24
    assert samples.ring[0].at == 1006.0


async def test_only_analytics_readers_see_insights_and_its_menu_link(
        make_client: Callable[..., Any]) -> None:
    async with make_client(role="viewer") as (bs, client):
        home = await client.get("/")
        assert home.status_code == 200 and 'href="/ui/insights"' in home.text
        # a grant limited to some workflows gives no analytics:read (an unscoped permission)
        scoped = bearer(await token_for(bs, "viewer", scope="hel*", user="scoped"))
        home = await client.get("/", headers=scoped)
        assert home.status_code == 200 and 'href="/ui/insights"' not in home.text
        assert (await client.get("/ui/insights", headers=scoped)).status_code == 403
        assert (await client.get(API, headers=scoped)).status_code == 403


async def test_the_lag_is_the_oldest_ready_job_s_wait(make_client: Callable[..., Any]) -> None:
    async with make_client() as (bs, client):
        samples = samples_of(bs)
        await samples.stop()
        for run_id, at in (("r1", 100.0), ("r2", 110.0)):
            await bs.hooks.track_event(JobStateChanged(run_id, at, "a", JobState.PENDING,
                                                       JobState.READY))
        assert (await samples.take(now=130.0)).lag == 30.0
        await bs.hooks.track_event(JobStateChanged("r1", 131.0, "a", JobState.READY,
                                                   JobState.RUNNING))
        assert (await samples.take(now=140.0)).lag == 30.0  # r2's, ready since 110
        await bs.hooks.track_event(RunStateChanged("r2", 141.0, "w", RunState.RUNNING,
                                                   RunState.CANCELLED))
        assert (await samples.take(now=150.0)).lag == 0.0
        body = (await client.get(API)).json()
    assert body["samples"]["points"] == []  # samples at 1970 are outside the last 24 hours


async def test_a_series_point_sits_at_its_value_on_the_chart_s_scale(
        make_client: Callable[..., Any]) -> None:
    async with make_client() as (bs, client):
        samples = samples_of(bs)
        await samples.stop()
        samples.ring.clear()
        now = time.time()
        await bs.hooks.track_event(JobStateChanged("r1", now - 40, "a", JobState.PENDING,
                                                   JobState.READY))
        await samples.take(now=now - 30)  # 10 s
        await samples.take(now=now - 0)   # 40 s
        page = await client.get("/ui/insights")
    points = [a for t, a in elements(page.text) if t == "circle"]
    values = [float(a["data-value"] or 0) for a in points]
    assert values == [10.0, 40.0]
    bottom = PLOT_H + 10  # the axis; the top value (40 s) is PLOT_H above it
    heights = [bottom - float(a["cy"] or 0) for a in points]
    assert heights == pytest.approx([PLOT_H * 10 / 40, PLOT_H], abs=0.01)
