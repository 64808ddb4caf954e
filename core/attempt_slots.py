"""Attempt slots: ready jobs wait here for a slot under the concurrency limits.

Two limits hold: `max_parallel` attempts at once in the process, and a workflow's own
`concurrency N` (core/scheduler.py's ReadyQueue keeps both). A slot is taken when an attempt
begins and must be freed exactly once, whichever comes first: the attempt ending, its run
being cancelled, or its run being let go. So the slots remember which attempt holds which.
"""
from __future__ import annotations

from collections.abc import Mapping

from .attempts import Launch, prepare_attempt
from .runstate import ActiveRun, Effects
from .scheduler import ReadyQueue
from .states import JobState


class AttemptSlots:
    """The ready queue of every run executed here, and the slots their attempts hold."""

    def __init__(self, max_parallel: int) -> None:
        self._queue: ReadyQueue[tuple[str, str]] = ReadyQueue(max_parallel)
        self._holding: dict[tuple[str, str, int], str] = {}
        """The lane (workflow) whose slot each attempt (run id, job key, number) holds."""

    def limit(self, workflow: str, concurrency: int | None) -> None:
        """At most `concurrency` attempts of `workflow` at once (None: no limit)."""
        self._queue.set_limit(workflow, concurrency)

    def offer(self, run: ActiveRun, key: str, now: float) -> None:
        """Queue a ready job, by its priority and how long it has been ready."""
        rec = run.jobs[key]
        self._queue.push((run.id, key), run.record.workflow, run.plan.job(rec.name).priority,
                         rec.ready_at or now)

    def dispatch(self, runs: Mapping[str, ActiveRun], fx: Effects) -> list[Launch]:
        """Queue the jobs the round made ready and begin attempts while slots are free. A job
        failing before it starts can make others ready (its run's failure handlers, say):
        queue and fill again until the round decides nothing new."""
        launches: list[Launch] = []
        queued = 0
        while True:
            for run, key in fx.ready[queued:]:
                self.offer(run, key, fx.now)
            queued = len(fx.ready)
            launches += self.fill(runs, fx)
            if queued == len(fx.ready):
                return launches

    def fill(self, runs: Mapping[str, ActiveRun], fx: Effects) -> list[Launch]:
        """Begin attempts for the best queued jobs while slots are free. A job no longer
        ready (its run was cancelled while it waited) or failing before it starts gives
        its slot back at once."""
        launches: list[Launch] = []
        while (picked := self._queue.pop()) is not None:
            (run_id, key), lane = picked
            run = runs.get(run_id)
            if run is None or run.jobs[key].state is not JobState.READY:
                self._queue.release(lane)
                continue
            if not run.begin_attempt(key, fx):
                self._queue.release(lane)
                run.drain(fx)
                continue
            launch = prepare_attempt(run, key)
            self._holding[(run_id, key, launch.number)] = lane
            launches.append(launch)
        return launches

    def release(self, run_id: str, key: str, number: int) -> None:
        """Free the slot of an attempt; nothing if it was freed already."""
        lane = self._holding.pop((run_id, key, number), None)
        if lane is not None:
            self._queue.release(lane)

    def drop_queued(self, run_id: str) -> None:
        """Take a run's jobs off the queue (the run is cancelled)."""
        self._queue.remove(lambda item: item[0] == run_id)

    def forget(self, run_id: str) -> None:
        """Take a run's jobs off the queue and free every slot its attempts hold (the run
        is no longer executed here)."""
        self.drop_queued(run_id)
        for rid, key, number in [h for h in self._holding if h[0] == run_id]:
            self.release(rid, key, number)
