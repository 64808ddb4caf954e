"""The alert API: its contract (create, list with alerts, read, replace, delete, test),
RFC 7807 422s naming the field, who may read and change rules, the audit of every change,
and hostile input (line breaks and markup in names, URL schemes other than http(s))."""
from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from baseshift.core.audit import AuditLog, AuditQuery
from baseshift.plugins.alerts.service import alerting_of
from tests.auth_support import bearer, token_for
from tests.plugins.alerts_support import webhook_recorder

ALERTS = "/api/v1/alerts"
SLOW = {"name": "slow-runs", "kind": "run_duration", "params": {"expected": 600},
        "repeat": 3600}


def hook(url: str) -> list[dict[str, Any]]:
    return [{"type": "webhook", "url": url}]


async def trail(bs: Any, resource: str) -> list[tuple[str, str, str]]:
    assert isinstance(bs.store, AuditLog)
    page = await bs.store.audit_page(AuditQuery(resource=resource, limit=100))
    return [(r.entry.action, r.entry.actor, r.entry.outcome) for r in reversed(page)]


async def test_a_rule_is_created_listed_read_replaced_and_deleted(
        make_client: Callable[..., Any]) -> None:
    async with make_client() as (bs, client):
        body = {**SLOW, "notify": hook("https://hooks.example.com/T0/secret-path?token=x")}
        created = await client.post(ALERTS, json=body)
        assert created.status_code == 201, created.text
        rule = created.json()
        assert rule["name"] == "slow-runs" and rule["enabled"] is True and rule["for"] == 0
        assert rule["params"] == {"expected": 600.0} and rule["alerts"] == []
        assert rule["notify"] == [{"type": "webhook",
                                   "url": "https://hooks.example.com/T0/secret-path?token=x"}]
        again = await client.post(ALERTS, json=body)
        assert again.status_code == 409
        assert again.headers["content-type"] == "application/problem+json"
        listed = (await client.get(ALERTS)).json()
        assert [r["name"] for r in listed["rules"]] == ["slow-runs"]
        read = await client.get(f"{ALERTS}/slow-runs")
        assert read.status_code == 200 and read.json()["kind"] == "run_duration"
        replaced = await client.put(f"{ALERTS}/slow-runs",
                                    json={"kind": "failure_rate", "enabled": False,
                                          "params": {"threshold": 0.25}})
        assert replaced.status_code == 200, replaced.text
        assert replaced.json()["params"] == {"threshold": 0.25, "window": 3600.0,
                                             "min_runs": 1}
        assert replaced.json()["created_at"] == rule["created_at"]
        gone = await client.delete(f"{ALERTS}/slow-runs")
        assert gone.status_code == 204
        assert (await client.get(f"{ALERTS}/slow-runs")).status_code == 404
        assert (await client.delete(f"{ALERTS}/slow-runs")).status_code == 404
        assert (await client.put(f"{ALERTS}/slow-runs", json=SLOW)).status_code == 404
        assert (await client.get(ALERTS)).json() == {"rules": []}
        actions = await trail(bs, "alert:slow-runs")
    assert actions == [("alert.create", "admin-tester", "success"),
                       ("alert.update", "admin-tester", "success"),
                       ("alert.delete", "admin-tester", "success")]


async def test_the_list_shows_each_rules_alerts(make_client: Callable[..., Any]) -> None:
    async with make_client() as (bs, client):
        body = {"name": "any-fail", "kind": "failure_rate", "params": {"threshold": 1}}
        assert (await client.post(ALERTS, json=body)).status_code == 201
        started = await client.post("/api/v1/workflows", json={"workflow": "nightly_export"})
        run_id = started.json()["workflow_id"]
        await bs.engine.wait(run_id)
        await alerting_of(bs).evaluator.tick()
        [rule] = (await client.get(ALERTS)).json()["rules"]
    [alert] = rule["alerts"]
    assert (alert["subject"], alert["status"], alert["value"]) == ("nightly_export", "firing",
                                                                   1.0)
    assert len(alert["fingerprint"]) == 16 and alert["since"] <= time.time()


@pytest.mark.parametrize(("body", "field"), [
    ({"name": "x"}, "kind"),
    ({"name": "x", "kind": "sometimes"}, "kind"),
    ({"kind": "run_duration", "params": {"expected": 5}}, "name"),
    ({"name": "a\r\nX-Injected: 1", "kind": "run_duration", "params": {"expected": 5}}, "name"),
    ({"name": "<script>alert(1)</script>", "kind": "run_duration", "params": {"expected": 5}},
     "name"),
    ({"name": "x", "kind": "run_duration"}, "params.expected"),
    ({"name": "x", "kind": "run_duration", "params": {"expected": -1}}, "params.expected"),
    ({"name": "x", "kind": "run_duration", "params": {"expected": "soon"}}, "params.expected"),
    ({"name": "x", "kind": "run_duration", "params": {"expected": 5, "workflow": "a\nb"}},
     "params.workflow"),
    ({"name": "x", "kind": "failure_rate", "params": {"threshold": 2}}, "params.threshold"),
    ({"name": "x", "kind": "failure_rate", "params": {"threshold": 0.5, "min_runs": 1.5}},
     "params.min_runs"),
    ({"name": "x", "kind": "failure_rate", "params": {"threshold": 0.5, "cpu": 1}},
     "params.cpu"),
    ({"name": "x", "kind": "queue_lag", "params": {}}, "params"),
    ({"name": "x", "kind": "no_worker", "params": {"seconds": 60}}, "kind"),
    ({"name": "x", "kind": "queue_lag", "params": {"max_depth": 5}, "repeat": 0}, "repeat"),
    ({"name": "x", "kind": "queue_lag", "params": {"max_depth": 5}, "enabled": "yes"},
     "enabled"),
    ({"name": "x", "kind": "queue_lag", "params": {"max_depth": 5}, "owner": "me"}, "owner"),
    ({"name": "x", "kind": "queue_lag", "params": {"max_depth": 5}, "notify": {}}, "notify"),
    ({"name": "x", "kind": "queue_lag", "params": {"max_depth": 5},
      "notify": [{"type": "pigeon"}]}, "notify[0].type"),
    ({"name": "x", "kind": "queue_lag", "params": {"max_depth": 5},
      "notify": hook("file:///etc/passwd")}, "notify[0].url"),
    ({"name": "x", "kind": "queue_lag", "params": {"max_depth": 5},
      "notify": hook("gopher://127.0.0.1:6379/_FLUSHALL")}, "notify[0].url"),
    ({"name": "x", "kind": "queue_lag", "params": {"max_depth": 5},
      "notify": hook("javascript:alert(1)")}, "notify[0].url"),
    ({"name": "x", "kind": "queue_lag", "params": {"max_depth": 5},
      "notify": hook("http://user:pw@hooks.example.com/")}, "notify[0].url"),
    ({"name": "x", "kind": "queue_lag", "params": {"max_depth": 5},
      "notify": hook("http://hooks.example.com/\r\nHost: evil")}, "notify[0].url"),
    ({"name": "x", "kind": "queue_lag", "params": {"max_depth": 5},
      "notify": [{"type": "webhook", "url": "https://h.example.com/", "secret": "a value!"}]},
     "notify[0].secret"),
    ({"name": "x", "kind": "queue_lag", "params": {"max_depth": 5},
      "notify": [{"type": "webhook", "url": "https://h.example.com/", "headers": {}}]},
     "notify[0].headers"),
    ({"name": "x", "kind": "queue_lag", "params": {"max_depth": 5},
      "notify": [{"type": "email", "to": ["ops@example.com"]}]}, "notify[0].type"),
])
async def test_bad_rules_are_refused_naming_the_field(make_client: Callable[..., Any],
                                                      body: dict[str, Any], field: str) -> None:
    async with make_client() as (bs, client):
        response = await client.post(ALERTS, json=body)
        assert (await client.get(ALERTS)).json() == {"rules": []}
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["field"] == field, problem
    assert "<script>" not in problem["detail"]


async def test_no_worker_is_refused_without_a_distributed_queue(
        make_client: Callable[..., Any]) -> None:
    async with make_client() as (bs, client):
        response = await client.post(ALERTS, json={"name": "w", "kind": "no_worker",
                                                   "params": {"seconds": 60}})
    assert response.status_code == 422
    assert 'queue = \\"postgres\\"' in response.text or 'queue = "postgres"' in \
        response.json()["detail"]


async def test_email_targets_are_checked_when_smtp_is_configured(
        make_client: Callable[..., Any]) -> None:
    smtp = {"alerts": {"smtp": {"host": "127.0.0.1", "port": 2525, "from": "a@example.com"}}}
    async with make_client(extra=smtp) as (bs, client):
        bad = await client.post(ALERTS, json={
            "name": "x", "kind": "queue_lag", "params": {"max_depth": 5},
            "notify": [{"type": "email", "to": ["ops@example.com\r\nBcc: evil@example.net"]}]})
        good = await client.post(ALERTS, json={
            "name": "x", "kind": "queue_lag", "params": {"max_depth": 5},
            "notify": [{"type": "email", "to": "ops@example.com"}]})
    assert bad.status_code == 422 and bad.json()["field"] == "notify[0].to[0]"
    assert good.status_code == 201 and good.json()["notify"] == [
        {"type": "email", "to": ["ops@example.com"]}]


async def test_the_test_call_notifies_every_target_and_is_audited(
        make_client: Callable[..., Any]) -> None:
    with webhook_recorder() as recorder:
        async with make_client(extra={"alerts": {"webhook_retry_delay": 0.001,
                                                 "webhook_attempts": 1}}) as (bs, client):
            body = {**SLOW, "notify": hook(recorder.url) + hook("http://127.0.0.1:9/none")}
            assert (await client.post(ALERTS, json=body)).status_code == 201
            tested = await client.post(f"{ALERTS}/slow-runs/test")
            actions = await trail(bs, "alert:slow-runs")
    assert tested.status_code == 200
    results = tested.json()["results"]
    assert [r["ok"] for r in results] == [True, False]
    assert "127.0.0.1" in results[1]["error"] and "/none" not in results[1]["error"]
    [notice] = recorder.bodies()
    assert (notice["status"], notice["rule"]) == ("test", "slow-runs")
    assert actions[-1] == ("alert.test", "admin-tester", "failure")


async def test_readers_see_webhook_hosts_only_and_cannot_change_rules(
        make_client: Callable[..., Any]) -> None:
    async with make_client() as (bs, admin):
        body = {**SLOW, "notify": hook("https://hooks.example.com/T0/secret-path")}
        assert (await admin.post(ALERTS, json=body)).status_code == 201
        app = admin._transport.app  # type: ignore[attr-defined]
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="http://localhost") as client:
            operator = bearer(await token_for(bs, "operator"))
            viewer = bearer(await token_for(bs, "viewer"))
            seen = await client.get(ALERTS, headers=operator)
            changed = await client.delete(f"{ALERTS}/slow-runs", headers=operator)
            hidden = await client.get(ALERTS, headers=viewer)
    assert seen.status_code == 200
    assert seen.json()["rules"][0]["notify"] == [{"type": "webhook",
                                                  "url": "https://hooks.example.com/…"}]
    assert "secret-path" not in seen.text
    assert changed.status_code == 403 and hidden.status_code == 403


async def test_a_server_evaluates_the_rules_by_itself(make_client: Callable[..., Any]) -> None:
    """In a server, the leader of "alerts" evaluates every `interval` seconds."""
    async with make_client(extra={"alerts": {"interval": 0.05}}) as (bs, client):
        body = {"name": "any-fail", "kind": "failure_rate", "params": {"threshold": 1}}
        assert (await client.post(ALERTS, json=body)).status_code == 201
        started = await client.post("/api/v1/workflows", json={"workflow": "nightly_export"})
        await bs.engine.wait(started.json()["workflow_id"])
        for _ in range(400):
            alerts = (await client.get(f"{ALERTS}/any-fail")).json()["alerts"]
            if alerts:
                break
            await asyncio.sleep(0.05)
    assert [(a["subject"], a["status"]) for a in alerts] == [("nightly_export", "firing")]


async def test_an_unreadable_rules_file_is_an_error_and_stays_as_it_was(
        make_client: Callable[..., Any]) -> None:
    """A damaged rules file is never taken as "no rules": saving the next rule over it would
    drop every rule it held."""
    async with make_client(store="sqlite") as (bs, client):
        assert (await client.post(ALERTS, json=SLOW)).status_code == 201
        rules = bs.settings.data_dir / "alert_rules.json"
        damaged = rules.read_text()[:-7]
        rules.write_text(damaged)
        listed = await client.get(ALERTS)
        added = await client.post(ALERTS, json={**SLOW, "name": "another"})
    assert listed.status_code == added.status_code == 503
    assert added.json()["code"] == "store.failed" and "alert_rules.json" in added.json()["detail"]
    assert rules.read_text() == damaged
