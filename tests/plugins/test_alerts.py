"""Alert rules evaluated over real runs (memory and SQLite stores): each kind fires and
resolves, one notice per transition (never one per evaluation), reminders, pending with
`for`, a failing notifier retried, the state kept across a restart, the audit entries, and
the notifiers against real servers on loopback (a webhook recorder, aiosmtpd)."""
from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from email import message_from_bytes
from email.policy import default
from pathlib import Path
from typing import Any

import pytest

from baseshift.core.app.application import BaseShift
from baseshift.core.audit import AuditLog, AuditQuery
from baseshift.core.events import JobStateChanged
from baseshift.core.notifications import Notice
from baseshift.core.settings import Settings
from baseshift.core.states import JobState
from baseshift.plugins.alerts.rules import Rule, parse_rule
from baseshift.plugins.alerts.service import Alerting, alerting_of
from baseshift.plugins.alerts.smtp import EmailNotifier, SmtpSettings
from tests.plugins.alerts_support import (
    Recorder,
    SetClock,
    smtp_server,
    webhook_recorder,
    write_workflows,
)

App = Callable[..., Any]


@pytest.fixture
def recorder() -> Any:
    with webhook_recorder() as found:
        yield found


@pytest.fixture
def clock() -> SetClock:
    return SetClock()


@pytest.fixture(params=["memory", "sqlite"])
def make_app(request: pytest.FixtureRequest, tmp_path: Path, clock: SetClock) -> App:
    """`async with make_app() as bs:` the application on the store of the parameter, with
    the test's workflows and clock; a second one on the same data folder is a restart."""
    folder = write_workflows(tmp_path / "workflows")

    @asynccontextmanager
    async def factory(**options: Any) -> AsyncIterator[BaseShift]:
        extra = {"alerts": {"clock": clock, "webhook_retry_delay": 0.001, **options}}
        settings = Settings(store=request.param, templates="memory",
                            data_dir=tmp_path / "data", workflows_dir=folder,
                            load_entrypoints=False, extra=extra)
        async with BaseShift(settings) as bs:
            await bs.catalog.refresh(force=True)
            yield bs

    return factory


async def add_rule(bs: BaseShift, **body: Any) -> Rule:
    alerting = alerting_of(bs)
    rule = parse_rule(body, alerting.notifiers, alerting.refuse_kind, time.time())
    await alerting.create(rule)
    return rule


async def finished(bs: BaseShift, workflow: str) -> str:
    run_id = await bs.runs.start(workflow, {})
    await bs.engine.wait(run_id)
    return run_id


async def tick(bs: BaseShift) -> Alerting:
    alerting = alerting_of(bs)
    assert await alerting.evaluator.tick() is not None
    return alerting


async def statuses(bs: BaseShift, rule: str) -> dict[str, str]:
    alerts = (await alerting_of(bs).alerts_by_rule()).get(rule, [])
    return {a.subject: a.status.value for a in alerts}


def sent(recorder: Recorder) -> list[tuple[str, str]]:
    return [(b["status"], b["subject"]) for b in recorder.bodies()]


async def audited(bs: BaseShift, rule: str) -> list[tuple[str, str, str]]:
    assert isinstance(bs.store, AuditLog)
    page = await bs.store.audit_page(AuditQuery(resource=f"alert:{rule}", limit=100))
    return [(r.entry.action, r.entry.actor, r.entry.detail.get("subject", ""))
            for r in reversed(page)]


def hook(recorder: Recorder, **more: Any) -> list[dict[str, Any]]:
    return [{"type": "webhook", "url": recorder.url, **more}]


async def test_failure_rate_fires_once_and_resolves_when_the_window_clears(
        make_app: App, recorder: Recorder, clock: SetClock) -> None:
    async with make_app() as bs:
        await add_rule(bs, name="breaks-fail", kind="failure_rate", notify=hook(recorder),
                       params={"workflow": "breaks", "threshold": 0.5, "min_runs": 2,
                               "window": 600})
        await finished(bs, "breaks")
        await tick(bs)
        assert await statuses(bs, "breaks-fail") == {}  # one run: fewer than min_runs
        await finished(bs, "breaks")
        await finished(bs, "works")
        await tick(bs)
        assert await statuses(bs, "breaks-fail") == {"breaks": "firing"}
        await tick(bs)
        await tick(bs)
        assert sent(recorder) == [("firing", "breaks")]  # deduplicated
        [body] = recorder.bodies()
        assert body["value"] == 1.0 and body["rule"] == "breaks-fail"
        assert "secret" not in body and "url" not in body
        clock.advance(601)
        await tick(bs)
        assert await statuses(bs, "breaks-fail") == {"breaks": "resolved"}
        await tick(bs)
        assert sent(recorder) == [("firing", "breaks"), ("resolved", "breaks")]
        trail = await audited(bs, "breaks-fail")
    assert trail[0][0] == "alert.create"
    assert trail[1:] == [("alert.fire", "system", "breaks"), ("alert.resolve", "system", "breaks")]


async def test_failure_rate_without_a_workflow_watches_each(make_app: App,
                                                            recorder: Recorder) -> None:
    async with make_app() as bs:
        await add_rule(bs, name="any-fail", kind="failure_rate", notify=hook(recorder),
                       params={"threshold": 0.5})
        await finished(bs, "breaks")
        await finished(bs, "works")
        await tick(bs)
        assert await statuses(bs, "any-fail") == {"breaks": "firing"}


async def test_run_duration_fires_per_run_and_resolves_when_it_finishes(
        make_app: App, recorder: Recorder, clock: SetClock) -> None:
    async with make_app() as bs:
        await add_rule(bs, name="slow", kind="run_duration", notify=hook(recorder),
                       params={"workflow": "waits", "expected": 60})
        first = await bs.runs.start("waits", {})
        second = await bs.runs.start("waits", {})
        await finished(bs, "works")
        await tick(bs)
        assert await statuses(bs, "slow") == {}  # not over 60 s yet
        clock.advance(120)
        await tick(bs)
        assert await statuses(bs, "slow") == {first: "firing", second: "firing"}
        await bs.runs.cancel(first)
        await bs.engine.wait(first)
        await tick(bs)
        await tick(bs)
        assert await statuses(bs, "slow") == {first: "resolved", second: "firing"}
        assert sorted(sent(recorder)) == sorted([("firing", first), ("firing", second),
                                                 ("resolved", first)])
        await bs.runs.cancel(second)


async def test_queue_lag_reads_this_servers_scheduler_without_a_queue(
        make_app: App, recorder: Recorder, clock: SetClock) -> None:
    """Without a queue, the wait of the jobs this server made ready counts (events through
    the real `track_event` hook)."""
    async with make_app() as bs:
        await add_rule(bs, name="lag", kind="queue_lag", notify=hook(recorder),
                       params={"max_wait": 60, "max_depth": 1})
        became_ready = clock.at
        for job in ("a", "b"):
            await bs.hooks.track_event(JobStateChanged("r1", became_ready, job,
                                                       JobState.PENDING, JobState.READY))
        await tick(bs)
        assert await statuses(bs, "lag") == {"depth": "firing"}
        clock.advance(61)
        await tick(bs)
        assert await statuses(bs, "lag") == {"depth": "firing", "wait": "firing"}
        for job in ("a", "b"):
            await bs.hooks.track_event(JobStateChanged("r1", clock.at, job, JobState.READY,
                                                       JobState.RUNNING))
        await tick(bs)
        assert await statuses(bs, "lag") == {"depth": "resolved", "wait": "resolved"}
        assert [s for s, _ in sent(recorder)].count("resolved") == 2


async def test_for_keeps_an_alert_pending_and_repeat_reminds(
        make_app: App, recorder: Recorder, clock: SetClock) -> None:
    async with make_app() as bs:
        await add_rule(bs, name="slow", kind="run_duration", notify=hook(recorder),
                       params={"expected": 10}, repeat=300, **{"for": 100})
        run_id = await bs.runs.start("waits", {})
        clock.advance(20)
        await tick(bs)
        assert await statuses(bs, "slow") == {run_id: "pending"}
        assert recorder.calls == []
        clock.advance(100)
        await tick(bs)
        assert await statuses(bs, "slow") == {run_id: "firing"}
        clock.advance(299)
        await tick(bs)
        clock.advance(1)
        await tick(bs)
        await tick(bs)
        bodies = recorder.bodies()
        assert [(b["status"], b["reminder"]) for b in bodies] == [("firing", False),
                                                                  ("reminder", True)]
        await bs.runs.cancel(run_id)


async def test_a_failing_webhook_is_retried_at_the_next_evaluation_only(
        make_app: App, recorder: Recorder) -> None:
    async with make_app(webhook_attempts=2) as bs:
        await add_rule(bs, name="any-fail", kind="failure_rate", notify=hook(recorder),
                       params={"threshold": 1})
        await finished(bs, "breaks")
        recorder.answers = [500, 503]
        done = await (await tick(bs)).evaluator.tick()
        assert done is not None
        first = await statuses(bs, "any-fail")
        assert first == {"breaks": "firing"}
        assert [s for s, _ in sent(recorder)] == ["firing", "firing", "firing"]
        await tick(bs)
        assert len(recorder.calls) == 3  # delivered at the second evaluation, then no more


async def test_the_state_survives_a_restart(make_app: App, recorder: Recorder,
                                            clock: SetClock) -> None:
    """After a restart the alert is still known: no second `firing`; on SQLite the failed
    run is still there, so it fires on until the window clears; in memory the runs went
    with the process, so it resolves at once (and says so: the state was kept)."""
    async with make_app() as bs:
        await add_rule(bs, name="any-fail", kind="failure_rate", notify=hook(recorder),
                       params={"threshold": 0.5, "window": 600})
        await finished(bs, "breaks")
        await tick(bs)
    async with make_app() as again:
        await tick(again)
        if again.settings.store == "sqlite":
            assert await statuses(again, "any-fail") == {"breaks": "firing"}
            assert sent(recorder) == [("firing", "breaks")]
            clock.advance(601)
            await tick(again)
        assert await statuses(again, "any-fail") == {"breaks": "resolved"}
    assert sent(recorder) == [("firing", "breaks"), ("resolved", "breaks")]


async def test_rules_survive_a_restart_on_every_store(make_app: App) -> None:
    async with make_app() as bs:
        await add_rule(bs, name="slow", kind="run_duration", params={"expected": 5})
    async with make_app() as again:
        assert [r.name for r in await alerting_of(again).storage.rules()] == ["slow"]


async def test_a_disabled_rule_resolves_its_alerts(make_app: App, recorder: Recorder) -> None:
    async with make_app() as bs:
        rule = await add_rule(bs, name="any-fail", kind="failure_rate", notify=hook(recorder),
                              params={"threshold": 0.5})
        await finished(bs, "breaks")
        await tick(bs)
        alerting = alerting_of(bs)
        body = {k: v for k, v in rule.to_json().items() if k not in ("created_at",
                                                                       "updated_at")}
        await alerting.replace(parse_rule({**body, "enabled": False}, alerting.notifiers,
                                          alerting.refuse_kind, 0.0))
        await tick(bs)
        assert await statuses(bs, "any-fail") == {"breaks": "resolved"}


async def fired_then_deleted(bs: BaseShift, recorder: Recorder) -> None:
    """Rule `any-fail` fires for workflow `breaks`, then is deleted."""
    await add_rule(bs, name="any-fail", kind="failure_rate", notify=hook(recorder),
                   params={"threshold": 0.5})
    await finished(bs, "breaks")
    await tick(bs)
    await alerting_of(bs).delete("any-fail")


async def test_a_deleted_rule_resolves_its_firing_alerts_and_tells_its_targets(
        make_app: App, recorder: Recorder) -> None:
    """A receiver must not keep an alert open for ever because its rule was deleted: the
    rule leaves the list at once, and retires through a restart until its alert has
    resolved and the notice of it has gone out (audited, as any resolution)."""
    async with make_app() as bs:
        await fired_then_deleted(bs, recorder)
        assert await alerting_of(bs).storage.rules() == []
        before = [a for a, _, _ in await audited(bs, "any-fail")]
    async with make_app() as bs:  # a restart between the deletion and the evaluation
        await tick(bs)
        assert sent(recorder) == [("firing", "breaks"), ("resolved", "breaks")]
        after = [a for a, _, _ in await audited(bs, "any-fail")]
        assert before == ["alert.create", "alert.fire", "alert.delete"]
        assert after[-1] == "alert.resolve"  # (the memory store's audit starts again)
        await tick(bs)
        await tick(bs)
        assert len(recorder.bodies()) == 2
        assert await alerting_of(bs).storage.rule_sets() == ([], [])
        assert await statuses(bs, "any-fail") == {}


async def test_a_rule_made_again_under_a_retiring_name_carries_its_alerts_on(
        make_app: App, recorder: Recorder) -> None:
    async with make_app() as bs:
        await fired_then_deleted(bs, recorder)
        await add_rule(bs, name="any-fail", kind="failure_rate", notify=hook(recorder),
                       params={"threshold": 0.5})
        await tick(bs)
        assert sent(recorder) == [("firing", "breaks")]  # still firing: nothing new to say
        assert await statuses(bs, "any-fail") == {"breaks": "firing"}
        assert [r.name for r in (await alerting_of(bs).storage.rule_sets())[1]] == []


async def test_webhook_calls_are_signed_with_the_named_secret(
        make_app: App, recorder: Recorder, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BASESHIFT_SECRET_ALERT_KEY", "s3cret")
    async with make_app() as bs:
        await add_rule(bs, name="any-fail", kind="failure_rate", params={"threshold": 1},
                       notify=hook(recorder, secret="ALERT_KEY"))
        await finished(bs, "breaks")
        await tick(bs)
    [(headers, body)] = recorder.calls
    expected = hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
    assert headers["x-baseshift-signature"] == f"sha256={expected}"
    assert b"s3cret" not in body


async def test_firing_alerts_are_a_prometheus_gauge(make_app: App) -> None:
    from prometheus_client import generate_latest

    from baseshift.plugins.metrics.collector import metrics_of

    async with make_app() as bs:
        await add_rule(bs, name="any-fail", kind="failure_rate", params={"threshold": 1})
        await finished(bs, "breaks")
        await tick(bs)
        text = generate_latest(metrics_of(bs).registry).decode()
    assert 'baseshift_alerts_firing{rule="any-fail"} 1.0' in text


# ------------------------------------------------------------------ e-mail


async def test_email_goes_through_a_real_smtp_server(make_app: App) -> None:
    with smtp_server() as (port, mailbox):
        smtp = {"host": "127.0.0.1", "port": port, "from": "alerts@example.com"}
        async with make_app(smtp=smtp) as bs:
            await add_rule(bs, name="any-fail", kind="failure_rate", params={"threshold": 1},
                           notify=[{"type": "email", "to": ["ops@example.com"]}])
            await finished(bs, "breaks")
            await tick(bs)
            await tick(bs)
    [(sender, rcpt, content)] = mailbox.messages
    assert (sender, rcpt) == ("alerts@example.com", ["ops@example.com"])
    mail = message_from_bytes(content, policy=default)
    assert mail["Subject"] == "[firing] alert any-fail: breaks"
    assert "of its runs failed" in mail.get_content()


async def test_email_signs_in_with_the_password_secret(
        make_app: App, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BASESHIFT_SECRET_SMTP_PASSWORD", "smtp-pass")
    with smtp_server(auth=True) as (port, mailbox):
        smtp = {"host": "127.0.0.1", "port": port, "from": "alerts@example.com",
                "username": "baseshift", "password": "SMTP_PASSWORD"}
        async with make_app(smtp=smtp) as bs:
            await add_rule(bs, name="any-fail", kind="failure_rate", params={"threshold": 1},
                           notify=[{"type": "email", "to": ["ops@example.com"]}])
            await finished(bs, "breaks")
            await tick(bs)
    assert mailbox.logins == [(b"baseshift", b"smtp-pass")]
    assert len(mailbox.messages) == 1


async def test_line_breaks_in_names_cannot_forge_email_headers() -> None:
    """A subject (a workflow name, a run id) holding CR/LF stays inside the Subject."""
    with smtp_server() as (port, mailbox):
        notifier = EmailNotifier(SmtpSettings("127.0.0.1", "alerts@example.com", port),
                                 resolve_secret=_no_secret)
        notice = Notice("r", "failure_rate", "firing", "wf\r\nBcc: evil@example.net\r\n\r\nX",
                        "0" * 16, "line\r\nBcc: evil@example.net", 1.0, 0.0, 0.0)
        await notifier.send(notice, {"to": ["ops@example.com"]})
    [(_, rcpt, content)] = mailbox.messages
    assert rcpt == ["ops@example.com"]
    mail = message_from_bytes(content, policy=default)
    assert mail["Bcc"] is None
    assert "\n" not in str(mail["Subject"]) and "Bcc" in str(mail["Subject"])


async def _no_secret(name: str) -> str | None:
    return None
