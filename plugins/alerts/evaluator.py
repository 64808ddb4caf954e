"""The periodic evaluation of the alert rules, by one process of a fleet: the one that
leads "alerts" (`Leadership`), every `interval` seconds of its clock. Each round measures
every rule, moves its alerts (`state.step`), audits what fired and resolved (as the
system), delivers the notices owed and saves the state, so a restart or a new leader
carries on without notifying twice."""
from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from baseshift.core import audit
from baseshift.core.capabilities import Leadership
from baseshift.core.clock import Clock
from baseshift.core.notifications import Notice, Notifier
from baseshift.core.periodic import Periodic

from .conditions import MEASURE, Sources, summary
from .rules import Rule
from .state import Alert, Change, Status, forget_old, step
from .storage import AlertStorage

log = logging.getLogger("baseshift.alerts")

ROLE = "alerts"
"""The leadership role: one process of a fleet evaluates the rules."""
INTERVAL = 30.0
"""Seconds between evaluations (`[plugins.alerts] interval`)."""


@dataclass(slots=True)
class Round:
    """What one evaluation did: the transitions and the notices sent and failed."""

    changes: list[Change] = field(default_factory=list)
    sent: list[tuple[str, str]] = field(default_factory=list)
    """(fingerprint, notice) of each notice delivered to a target."""
    failed: list[tuple[str, str]] = field(default_factory=list)


def notice_of(rule: Rule, alert: Alert, status: str, now: float) -> Notice:
    return Notice(rule.name, rule.kind, status, alert.subject, alert.fingerprint,
                  summary(rule, alert.subject, alert.value), alert.value, alert.since, now,
                  reminder=status == "reminder")


async def deliver(notice: Notice, target: Mapping[str, object],
                  notifiers: Mapping[str, Notifier]) -> str | None:
    """Send one notice to one target: None when delivered, else why not (logged: a failing
    notifier never stops an evaluation)."""
    notifier = notifiers.get(str(target.get("type")))
    if notifier is None:
        return f"no notifier {target.get('type')!r} is installed"
    try:
        await notifier.send(notice, target)
    except Exception as exc:
        log.warning("the %s notice of alert %s (%s) did not go out by %s: %s", notice.status,
                    notice.rule, notice.subject, notifier.name, exc)
        return str(exc) or type(exc).__name__
    return None


class Evaluator(Periodic):
    """Evaluates the rules while this process leads `alerts`."""

    task_name = "baseshift-alerts"
    failure = "evaluating the alert rules failed"

    def __init__(self, storage: AlertStorage, sources: Sources,
                 notifiers: Mapping[str, Notifier], clock: Clock | None = None,
                 interval: float = INTERVAL) -> None:
        super().__init__(clock, interval, log)
        self.storage = storage
        self.sources = sources
        self.notifiers = notifiers
        self.firing: dict[str, int] = {}
        """Alerts firing per rule after the last evaluation here (the metric)."""

    async def tick(self) -> Round | None:
        """One evaluation, if this process leads; None when another one does."""
        store = self.storage.store
        if isinstance(store, Leadership) and not await store.lead(ROLE):
            self.firing = {}
            return None
        now = self.clock.now().timestamp()
        rules, retired = await self.storage.rule_sets()
        alerts = await self.storage.alerts()
        before = {k: a.to_json() for k, a in alerts.items()}
        forget_old(alerts, {r.name for r in (*rules, *retired)}, now)
        done = Round()
        for rule in (*rules, *retired):  # a retired rule is disabled: its alerts resolve
            found = await self._measure(rule, now)
            if found is not None:
                mine = {k: a for k, a in alerts.items() if a.rule == rule.name}
                done.changes.extend(step(rule, mine, found, now))
                alerts = {k: a for k, a in alerts.items() if a.rule != rule.name} | mine
        await audit.record(store, [_audited(c) for c in done.changes])
        by_name = {r.name: r for r in (*retired, *rules)}
        for alert in alerts.values():
            if alert.owed is not None:
                await self._deliver(by_name[alert.rule], alert, now, done)
        if {k: a.to_json() for k, a in alerts.items()} != before:  # most rounds: no change
            await self.storage.save_alerts(alerts)
        await self._forget_retired({r.name for r in retired} - {
            a.rule for a in alerts.values()
            if a.status is not Status.RESOLVED or a.owed is not None})
        self.firing = {r.name: sum(1 for a in alerts.values() if a.rule == r.name
                                   and a.status is Status.FIRING) for r in rules}
        return done

    async def _forget_retired(self, names: set[str]) -> None:
        """Forget the retired rules `names`, whose alerts have all resolved and told so
        (their alerts are forgotten at the next evaluation, as a deleted rule's)."""
        if not names:
            return
        async with self.storage.changing():
            rules, retired = await self.storage.rule_sets()
            await self.storage.save_rules(rules, [r for r in retired if r.name not in names])

    async def _measure(self, rule: Rule, now: float) -> dict[str, float | None] | None:
        """What the rule finds now (nothing for a disabled rule, so its alerts resolve);
        None when it could not be measured (its alerts stay as they are)."""
        if not rule.enabled:
            return {}
        try:
            return await MEASURE[rule.kind](rule, self.sources, now)
        except Exception:
            log.exception("alert rule %s could not be evaluated", rule.name)
            return None

    async def _deliver(self, rule: Rule, alert: Alert, now: float, done: Round) -> None:
        assert alert.owed is not None
        notice = notice_of(rule, alert, alert.owed, now)
        left = []
        for index in alert.owed_to:
            if index >= len(rule.notify):
                continue  # the rule lost that target since
            if await deliver(notice, rule.notify[index], self.notifiers) is None:
                done.sent.append((alert.fingerprint, alert.owed))
            else:
                left.append(index)
                done.failed.append((alert.fingerprint, alert.owed))
        if left:
            alert.owed_to = left
        else:
            alert.owed, alert.owed_to, alert.last_sent = None, [], now


def _audited(change: Change) -> audit.AuditEntry:
    alert = change.alert
    action = "alert.fire" if change.became is Status.FIRING else "alert.resolve"
    value = "" if alert.value is None else f"{alert.value:g}"
    return audit.entry(action, f"alert:{alert.rule}", who=audit.SYSTEM_ACTING,
                       subject=alert.subject[:200], fingerprint=alert.fingerprint,
                       value=value)


async def send_test(rule: Rule, notifiers: Mapping[str, Notifier], now: float
                       ) -> Sequence[str | None]:
    """Send a `test` notice to each target of `rule`: per target, None or why it failed."""
    notice = Notice(rule.name, rule.kind, "test", "test", "0" * 16,
                    f"a test notification of alert rule {rule.name}", None, now, now)
    return [await deliver(notice, target, notifiers) for target in rule.notify]
