"""The alerting of one application (`alerting_of`): the rule storage, the evaluator, the
notifiers and the ready-job tracker, and the rule changes the API makes (audited)."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from baseshift.core import audit
from baseshift.core.config import option
from baseshift.core.errors import Conflict, NotFound
from baseshift.core.notifications import Notifier
from baseshift.core.readyjobs import ReadyJobs, ready_jobs_of
from baseshift.core.stash import StashKey

from .conditions import ReportsWorkers, Sources
from .evaluator import INTERVAL, Evaluator
from .rules import Rule
from .state import Alert
from .storage import AlertStorage

if TYPE_CHECKING:
    from baseshift.core.appface import App

OPTIONS = "alerts"
"""`[plugins.alerts]`: `interval` (seconds between evaluations, default 30),
`webhook_timeout` (10), `webhook_attempts` (3), `webhook_retry_delay` (1), the `smtp`
table, and `clock` (tests)."""


@dataclass(slots=True)
class Alerting:
    storage: AlertStorage
    evaluator: Evaluator
    ready: ReadyJobs
    notifiers: Mapping[str, Notifier]
    queue: object | None

    def refuse_kind(self, kind: str) -> str | None:
        """Why this server cannot evaluate rules of `kind` (None: it can)."""
        if kind == "no_worker" and not isinstance(self.queue, ReportsWorkers):
            return ("'no_worker' needs a distributed queue whose workers show life: set "
                    "queue = \"postgres\" (no queue is configured, so no worker can be "
                    "missing)")
        return None

    async def rule(self, name: str) -> Rule:
        for rule in await self.storage.rules():
            if rule.name == name:
                return rule
        raise NotFound(f"no alert rule {name!r}", hint="list them with GET /api/v1/alerts")

    async def create(self, rule: Rule) -> None:
        """A new rule; one of the same name deleted but still retiring is replaced by it
        (the alerts of a name are the same alerts: the new rule carries them on)."""
        async with self.storage.changing():
            rules, retired = await self.storage.rule_sets()
            if any(r.name == rule.name for r in rules):
                raise Conflict(f"alert rule {rule.name!r} exists",
                               hint=f"change it with PUT /api/v1/alerts/{rule.name}")
            await self.storage.save_rules([*rules, rule],
                                          [r for r in retired if r.name != rule.name])
        await self._audit("alert.create", rule)

    async def replace(self, rule: Rule) -> Rule:
        async with self.storage.changing():
            rules, retired = await self.storage.rule_sets()
            old = next((r for r in rules if r.name == rule.name), None)
            if old is None:
                raise NotFound(f"no alert rule {rule.name!r}",
                               hint="create it with POST /api/v1/alerts")
            rule = Rule(rule.name, rule.kind, rule.params, rule.notify, rule.enabled,
                        rule.repeat, rule.hold, old.created_at, rule.updated_at)
            await self.storage.save_rules(
                [rule if r.name == rule.name else r for r in rules], retired)
        await self._audit("alert.update", rule)
        return rule

    async def delete(self, name: str) -> None:
        """The rule is gone from the list at once, but retires first: its alerts that
        fire resolve at the next evaluation, and their targets are told so, as when a rule
        is disabled (a receiver is never left with an alert open for ever)."""
        async with self.storage.changing():
            rules, retired = await self.storage.rule_sets()
            gone = next((r for r in rules if r.name == name), None)
            if gone is None:
                raise NotFound(f"no alert rule {name!r}")
            await self.storage.save_rules(
                [r for r in rules if r.name != name],
                [*(r for r in retired if r.name != name), replace(gone, enabled=False)])
        await self._audit("alert.delete", gone)

    async def _audit(self, action: str, rule: Rule) -> None:
        await audit.record(self.storage.store, [audit.entry(
            action, f"alert:{rule.name}", kind=rule.kind, enabled=str(rule.enabled).lower(),
            notify=",".join(str(t.get("type")) for t in rule.notify))])

    async def alerts_by_rule(self) -> dict[str, list[Alert]]:
        found: dict[str, list[Alert]] = {}
        for alert in (await self.storage.alerts()).values():
            found.setdefault(alert.rule, []).append(alert)
        return found


ALERTING: StashKey[Alerting] = StashKey("alerts")


def alerting_of(bs: App) -> Alerting:
    """The application's alerting (made on first use)."""
    found = bs.stash.get(ALERTING)
    if found is None:
        opts: dict[str, Any] = dict(bs.settings.extra.get(OPTIONS) or {})
        storage = AlertStorage(bs.store, bs.settings.data_dir)
        ready = ready_jobs_of(bs.stash)
        notifiers = bs.hooks.notifiers()
        evaluator = Evaluator(storage, Sources(bs.store, bs.queue, ready), notifiers,
                              clock=opts.get("clock"),
                              interval=option(bs.settings, OPTIONS, "interval", INTERVAL))
        found = bs.stash[ALERTING] = Alerting(storage, evaluator, ready, notifiers, bs.queue)
    return found
