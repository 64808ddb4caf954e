"""The state of each alert (one per rule and subject, deduplicated by fingerprint) and the
transitions an evaluation makes: pending → firing → resolved, with the notice each one owes.

An alert owes a notice when it fires, when it resolves, and (with the rule's `repeat`)
as a reminder while it fires, never at every evaluation. A notice stays owed to the
targets that could not take it until they do or a newer notice replaces it."""
from __future__ import annotations

import enum
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .rules import Rule

KEEP_RESOLVED = 24 * 3600.0
"""Seconds a resolved alert stays listed before it is forgotten."""


class Status(enum.Enum):
    PENDING = "pending"
    FIRING = "firing"
    RESOLVED = "resolved"


def fingerprint(rule: str, subject: str) -> str:
    """The identity of an alert: its rule and subject (a workflow, a run id, `queue`)."""
    return hashlib.sha256(f"{rule}\x00{subject}".encode()).hexdigest()[:16]


@dataclass(slots=True)
class Alert:
    """One alert. `since`: when it entered its status; `last_sent`: when its last notice
    went out (reminders count from it); `owed`: the notice (`firing`, `resolved`,
    `reminder`) still owed and the indexes of the rule's targets that have not taken it."""

    rule: str
    subject: str
    status: Status
    since: float
    value: float | None
    started_at: float
    last_sent: float | None = None
    owed: str | None = None
    owed_to: list[int] = field(default_factory=list)

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.rule, self.subject)

    def owe(self, notice: str, targets: int) -> None:
        self.owed, self.owed_to = (notice, list(range(targets))) if targets else (None, [])

    def to_json(self) -> dict[str, Any]:
        return {"fingerprint": self.fingerprint, "rule": self.rule, "subject": self.subject,
                "status": self.status.value, "since": self.since, "value": self.value,
                "started_at": self.started_at, "last_sent": self.last_sent,
                "owed": self.owed, "owed_to": list(self.owed_to)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Alert:
        value = data.get("value")
        sent = data.get("last_sent")
        return cls(str(data["rule"]), str(data["subject"]), Status(data["status"]),
                   float(data["since"]), None if value is None else float(value),
                   float(data["started_at"]), None if sent is None else float(sent),
                   data.get("owed"), [int(i) for i in data.get("owed_to") or ()])


@dataclass(frozen=True, slots=True)
class Change:
    """A transition an evaluation made: the alert after it and what it became."""

    alert: Alert
    became: Status


def step(rule: Rule, current: dict[str, Alert], found: Mapping[str, float | None],
         now: float) -> list[Change]:
    """Move the alerts of `rule` (`current`, by fingerprint, changed in place) to what the
    evaluation `found` (subject -> value while the condition holds) says; returns the
    transitions to firing and to resolved."""
    changes: list[Change] = []
    seen = set()
    for subject, value in found.items():
        key = fingerprint(rule.name, subject)
        seen.add(key)
        alert = current.get(key)
        if alert is None or alert.status is Status.RESOLVED:
            alert = current[key] = Alert(rule.name, subject, Status.PENDING, now, value, now)
        alert.value = value
        if alert.status is Status.PENDING and now - alert.started_at >= rule.hold:
            alert.status, alert.since = Status.FIRING, now
            alert.owe("firing", len(rule.notify))
            changes.append(Change(alert, Status.FIRING))
        elif alert.status is Status.FIRING and rule.repeat is not None and \
                alert.owed is None and now - (alert.last_sent or alert.since) >= rule.repeat:
            alert.owe("reminder", len(rule.notify))
    for key, alert in list(current.items()):
        if key in seen or alert.rule != rule.name:
            continue
        if alert.status is Status.PENDING:
            del current[key]
        elif alert.status is Status.FIRING:
            alert.status, alert.since = Status.RESOLVED, now
            alert.owe("resolved", len(rule.notify))
            changes.append(Change(alert, Status.RESOLVED))
    return changes


def forget_old(alerts: dict[str, Alert], rules: set[str], now: float) -> None:
    """Drop the alerts of deleted rules and those resolved long ago (with nothing owed)."""
    for key, alert in list(alerts.items()):
        if alert.rule not in rules or (alert.status is Status.RESOLVED and alert.owed is None
                                       and now - alert.since > KEEP_RESOLVED):
            del alerts[key]
