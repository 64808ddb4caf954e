"""What the engine's loop is told between rounds, and the inbox that holds it until then.

Every message is a frozen value naming the run it is about; the loop handles them with
`match`. A message for someone's action carries its audit entries, stored with the round
that carries the action out. Whoever posts (a user call, an attempt's task, the cancel
watch) only wakes the loop: nothing but the loop changes a run.
"""
from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass

from .attempts import Outcome
from .audit import AuditEntry
from .runstate import ActiveRun


@dataclass(frozen=True, slots=True)
class Activate:
    """Start a run just accepted, or continue one resumed."""

    run: ActiveRun

    @property
    def run_id(self) -> str:
        return self.run.id


@dataclass(frozen=True, slots=True)
class Retry:
    """Reopen a failed or cancelled run: its failed and cancelled jobs run again."""

    run: ActiveRun
    audit: tuple[AuditEntry, ...] = ()

    @property
    def run_id(self) -> str:
        return self.run.id


@dataclass(frozen=True, slots=True)
class Rerun:
    """Reopen a finished run from `job`: it and everything downstream of it run again."""

    run: ActiveRun
    job: str
    audit: tuple[AuditEntry, ...] = ()

    @property
    def run_id(self) -> str:
        return self.run.id


@dataclass(frozen=True, slots=True)
class Cancel:
    """Cancel a run. With `activation`, only while that activation of the run is the one
    executing here (the cancel watch saw it cancelled; a retry since is a new activation)."""

    run_id: str
    reason: str
    activation: ActiveRun | None = None
    audit: tuple[AuditEntry, ...] = ()


@dataclass(frozen=True, slots=True)
class AttemptDone:
    """An attempt ended, here or on a worker (a failure included)."""

    run_id: str
    key: str
    number: int
    outcome: Outcome


@dataclass(frozen=True, slots=True)
class AttemptLost:
    """An attempt vanished with its worker: it runs again, not counted as a failure."""

    run_id: str
    key: str
    number: int
    reason: str


Message = Activate | Retry | Rerun | Cancel | AttemptDone | AttemptLost


class Inbox:
    """Messages in arrival order, and the wake-up that starts the next round."""

    def __init__(self) -> None:
        self._messages: deque[Message] = deque()
        self._wake = asyncio.Event()

    def post(self, message: Message) -> None:
        self._messages.append(message)
        self._wake.set()

    def wake(self) -> None:
        """Start a round with no message (a retry timer is due)."""
        self._wake.set()

    async def wait(self) -> None:
        """Until something was posted or woke the loop since the last wait."""
        await self._wake.wait()
        self._wake.clear()

    def take(self) -> Iterator[Message]:
        """Every message, oldest first, including those posted while they are handled."""
        while self._messages:
            yield self._messages.popleft()
