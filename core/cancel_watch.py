"""The cancel watch: notices runs cancelled by another process.

`baseshift cancel` (or another server) writes CANCELLED to the shared store; the process
executing the run polls the stored states of its runs and cancels those it finds cancelled.
Only a run whose RUNNING state is stored is watched: before that, the store still shows its
previous state (CANCELLED, for a run being retried), which is no cancel.
"""
from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import Protocol

from .inbox import Cancel, Message
from .protocols import StateStore
from .records import Changes
from .runstate import ActiveRun
from .states import RunState

WATCH_INTERVAL = 0.5
"""Seconds between checks for runs cancelled by another process."""


class StoreHost(Protocol):
    """Where the store is (the application builds it on first use)."""

    @property
    def store(self) -> StateStore: ...


class CancelWatch:
    """Polls the stored states of `runs` and posts a `Cancel` for each one cancelled there."""

    def __init__(self, host: StoreHost, runs: Mapping[str, ActiveRun],
                 post: Callable[[Message], None]) -> None:
        self._host = host
        self._runs = runs
        self._post = post
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._watch(), name="baseshift-watch")

    def cancel(self) -> list[asyncio.Task[None]]:
        """Stop watching; returns the task to await."""
        if self._task is None:
            return []
        self._task.cancel()
        return [self._task]

    def stored(self, changes: Changes) -> None:
        """Runs whose RUNNING state `changes` stored are watched from now on."""
        for run_id, record in changes.runs.items():
            run = self._runs.get(run_id)
            if run is not None and run.record is record and record.state is RunState.RUNNING:
                run.running_stored = True

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(WATCH_INTERVAL)
            watched = {i: r for i, r in self._runs.items() if r.running_stored}
            if not watched:
                continue
            states = await self._host.store.run_states(list(watched))
            for run_id, state in states.items():
                if state is RunState.CANCELLED and self._runs.get(run_id) is watched[run_id]:
                    self._post(Cancel(run_id, "cancelled from another process",
                                      watched[run_id]))
