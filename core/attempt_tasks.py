"""The tasks of the attempts an engine started, here or on a queue's workers.

Each task runs one attempt (with the `AttemptRunner`, or through the attempt queue) and
posts how it ended to the engine's inbox. Stopping takes two steps, for durability: a cancel
is decided in a round, but the attempts it stops are cancelled only once that round is
stored (`stop_later`, then `stop_decided`), so a crash in between cannot lose the cancel.
Cancelled attempts still cleaning up (a shell job's grace period) are kept until they end,
so that stopping the engine waits for them.
"""
from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from typing import Protocol

from .attempts import Launch, Outcome
from .errors import BaseShiftError
from .inbox import AttemptDone, AttemptLost, Message
from .protocols import AttemptQueue, LostAttempt, QueuedAttempt


class Runner(Protocol):
    """What executes an attempt in this process (`attempts.AttemptRunner`)."""

    async def run(self, launch: Launch) -> Outcome: ...


class QueueHost(Protocol):
    """Where the attempt queue is (the application builds it on first use)."""

    @property
    def queue(self) -> AttemptQueue | None: ...


class AttemptTasks:
    """Running attempts by (run id, job key), and the cancelled ones not yet ended."""

    def __init__(self, runner: Runner, host: QueueHost,
                 post: Callable[[Message], None]) -> None:
        self._runner = runner
        self._host = host
        self._post = post
        self._running: dict[tuple[str, str], asyncio.Task[None]] = {}
        self._to_stop: list[asyncio.Task[None]] = []
        self._stopping: set[asyncio.Task[None]] = set()

    def start(self, launch: Launch, *, here: bool) -> None:
        """Run the attempt: in this process when `here` or when there is no attempt queue,
        else on a worker."""
        remote = None if here else self._host.queue
        task = asyncio.create_task(self._attempt(launch, remote))
        self._running[(launch.run.id, launch.key)] = task

    def running(self, run_id: str, key: str) -> bool:
        return (run_id, key) in self._running

    def stop_later(self, run_id: str, keys: Iterable[str] | None = None) -> None:
        """Mark the attempts of jobs `keys` of a run (all of its attempts, without `keys`) to
        be cancelled by the next `stop_decided`."""
        if keys is None:
            keys = [k for rid, k in self._running if rid == run_id]
        for key in keys:
            task = self._running.pop((run_id, key), None)
            if task is not None:
                self._to_stop.append(task)

    def stop_decided(self) -> None:
        """Cancel the attempts marked to stop (their cancel is stored now)."""
        for task in self._to_stop:
            task.cancel()
            self._stopping.add(task)
            task.add_done_callback(self._stopping.discard)
        self._to_stop.clear()

    def cancel_all(self) -> list[asyncio.Task[None]]:
        """Cancel every attempt running, marked to stop or cleaning up; returns their tasks
        to await (an attempt marked in a round that was never stored must not outlive the
        engine either)."""
        tasks = [*self._running.values(), *self._to_stop, *self._stopping]
        for task in tasks:
            task.cancel()
        self._running.clear()
        self._to_stop.clear()
        return tasks

    async def _attempt(self, launch: Launch, remote: AttemptQueue | None) -> None:
        key = (launch.run.id, launch.key)
        try:
            if remote is None:
                message: Message = AttemptDone(*key, launch.number,
                                               await self._runner.run(launch))
            else:
                message = await _remote_attempt(remote, launch)
        finally:
            if self._running.get(key) is asyncio.current_task():
                del self._running[key]
        self._post(message)


async def _remote_attempt(remote: AttemptQueue, launch: Launch) -> Message:
    ids = (launch.run.id, launch.key, launch.number)
    try:
        return AttemptDone(*ids, Outcome(*await remote.run(QueuedAttempt(*ids,
                                                                         launch.spec.runs_on))))
    except LostAttempt as exc:
        return AttemptLost(*ids, str(exc))
    except BaseShiftError as exc:  # the queue's database failed: try another attempt
        return AttemptDone(*ids, Outcome(None, f"the attempt could not be queued: {exc}", True,
                                         ""))
