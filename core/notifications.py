"""What an alert notifier is (`register_notifiers`): a named way of telling people that an
alert fired or resolved, with the checks a rule's target for it must pass."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol, runtime_checkable


@dataclass(frozen=True, slots=True)
class Notice:
    """One notification: alert `fingerprint` (its rule and subject) changed to `status`
    (`firing`, `resolved`; `test` for a test call), or is still firing (`reminder`).
    `summary` is one line of text; `value` what was measured. Never a secret in it: it
    goes to whoever the rule names."""

    rule: str
    kind: str
    status: str
    subject: str
    fingerprint: str
    summary: str
    value: float | None
    since: float
    at: float
    reminder: bool = False

    def to_json(self) -> dict[str, Any]:
        return {"rule": self.rule, "kind": self.kind, "status": self.status,
                "subject": self.subject, "fingerprint": self.fingerprint,
                "summary": self.summary, "value": self.value, "since": self.since,
                "at": self.at, "reminder": self.reminder}


@runtime_checkable
class Notifier(Protocol):
    """A notification channel, named by `name` in a rule's `notify` entries
    (`{"type": name, ...}`). `check_target` returns the entry as it will be stored, or
    raises InputError naming the bad field (`notify[i].url`); `send` delivers one notice
    to one target and raises on failure (the alert keeps it owed and retries it at the
    next evaluation)."""

    name: ClassVar[str]

    def check_target(self, target: Mapping[str, Any], field: str) -> dict[str, Any]: ...

    async def send(self, notice: Notice, target: Mapping[str, Any]) -> None: ...
