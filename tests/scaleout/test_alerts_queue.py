"""The alert rules that read the PostgreSQL queue, against a real database and a real
worker: `queue_lag` (attempts waiting, the oldest's wait) and `no_worker` (the workers'
heartbeats in `worker_heartbeats`)."""
from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg

from baseshift.core.app.application import BaseShift
from baseshift.core.settings import Settings
from baseshift.core.states import RunState
from baseshift.plugins.alerts.rules import parse_rule
from baseshift.plugins.alerts.service import alerting_of
from tests.plugins.alerts_support import SetClock, webhook_recorder
from tests.scaleout.conftest import load

THREE = """
workflow three {
  version "1.0.0"
  job a uses shell { with { command: "true" } }
  job b uses shell { with { command: "true" } }
  job c uses shell { with { command: "true" } }
}
"""


def sql(settings: Settings, query: str) -> list[tuple[Any, ...]]:
    url, schema = str(settings.database_url).split("?schema=")
    with psycopg.connect(url, options=f"-c search_path={schema}") as conn:
        cur = conn.execute(query.encode())
        return cur.fetchall() if cur.description else []


async def until_queued(settings: Settings, rows: int) -> None:
    for _ in range(400):
        if sql(settings, "SELECT count(*) FROM job_queue WHERE state = 'queued'")[0][0] >= rows:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{rows} attempts were never queued")


async def statuses(bs: BaseShift, rule: str) -> dict[str, str]:
    alerts = (await alerting_of(bs).alerts_by_rule()).get(rule, [])
    return {a.subject: a.status.value for a in alerts}


async def test_queue_lag_and_no_worker_fire_and_resolve_on_the_postgres_queue(
        settings: Settings, workflows: Path, start_worker: Callable[..., Any]) -> None:
    mine = dataclasses.replace(settings, extra={**settings.extra, "alerts": {
        "clock": SetClock(), "webhook_retry_delay": 0.001}})
    with webhook_recorder() as recorder:
        async with BaseShift(mine) as bs:
            alerting = alerting_of(bs)
            notify = [{"type": "webhook", "url": recorder.url}]
            for body in ({"name": "lag", "kind": "queue_lag", "notify": notify,
                          "params": {"max_depth": 2, "max_wait": 600}},
                         {"name": "workers", "kind": "no_worker", "notify": notify,
                          "params": {"seconds": 600}}):
                await alerting.create(parse_rule(body, alerting.notifiers,
                                                 alerting.refuse_kind, time.time()))
            run_id = await bs.engine.submit(load(bs, workflows, "three", THREE), {})
            await until_queued(mine, 3)
            await alerting.evaluator.tick()
            assert await statuses(bs, "lag") == {"depth": "firing"}
            assert await statuses(bs, "workers") == {"workers": "firing"}  # none ever seen
            sql(mine, "UPDATE job_queue SET created_at = now() - interval '1 hour'")
            await alerting.evaluator.tick()
            assert await statuses(bs, "lag") == {"depth": "firing", "wait": "firing"}
            async with start_worker() as worker:
                record = await asyncio.wait_for(bs.engine.wait(run_id), 60)
                assert record.state is RunState.COMPLETED
                assert [r[0] for r in sql(mine, "SELECT worker FROM worker_heartbeats")] \
                    == [worker.id]
                await alerting.evaluator.tick()
                assert await statuses(bs, "lag") == {"depth": "resolved", "wait": "resolved"}
                assert await statuses(bs, "workers") == {"workers": "resolved"}
            assert sql(mine, "SELECT worker FROM worker_heartbeats") == []  # it left
            await alerting.evaluator.tick()
            assert await statuses(bs, "workers") == {"workers": "firing"}
    sent = [(b["rule"], b["status"], b["subject"]) for b in recorder.bodies()]
    assert sorted(sent) == sorted([
        ("lag", "firing", "depth"), ("workers", "firing", "workers"),
        ("lag", "firing", "wait"), ("lag", "resolved", "depth"), ("lag", "resolved", "wait"),
        ("workers", "resolved", "workers"), ("workers", "firing", "workers")])


async def test_a_silent_worker_counts_as_gone(settings: Settings) -> None:
    """A worker whose heartbeat is older than the rule's seconds (killed without leaving)
    no longer counts as alive; a fresh one does."""
    async with BaseShift(settings) as bs:
        alerting = alerting_of(bs)
        await alerting.create(parse_rule(
            {"name": "workers", "kind": "no_worker", "params": {"seconds": 600}},
            alerting.notifiers, alerting.refuse_kind, time.time()))
        sql(settings, "INSERT INTO worker_heartbeats (worker, seen_at) "
                      "VALUES ('worker-killed', now() - interval '11 minutes')")
        await alerting.evaluator.tick()
        [alert] = (await alerting.alerts_by_rule())["workers"]
        assert alert.status.value == "firing" and alert.value is not None and alert.value > 600
        sql(settings, "INSERT INTO worker_heartbeats (worker) VALUES ('worker-alive')")
        await alerting.evaluator.tick()
        assert await statuses(bs, "workers") == {"workers": "resolved"}
