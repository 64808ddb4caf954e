"""The jobs this server's scheduler made ready that have not started yet, for `queue_lag`
without a queue. (The metrics and insights plugins follow the same events for their own
gauges; each plugin keeps its own, since any of them may be disabled.)"""
from __future__ import annotations

from baseshift.core.events import Event, JobStateChanged, RunStateChanged
from baseshift.core.states import JobState

TRACKED = 100_000
"""At most this many ready jobs are followed (the oldest forgotten first)."""


class ReadyJobs:
    """(run id, job) -> when it became READY, until it starts or its run ends."""

    def __init__(self) -> None:
        self.ready: dict[tuple[str, str], float] = {}

    def observe(self, event: Event) -> None:
        match event:
            case JobStateChanged(new=JobState.READY):
                self.ready[(event.run_id, event.job)] = event.at
                if len(self.ready) > TRACKED:
                    self.ready.pop(next(iter(self.ready)))
            case JobStateChanged():
                self.ready.pop((event.run_id, event.job), None)
            case RunStateChanged() if event.new.finished and self.ready:
                for key in [k for k in self.ready if k[0] == event.run_id]:
                    del self.ready[key]

    def waiting(self, now: float) -> tuple[int, float | None]:
        """How many jobs wait, and how long the oldest has waited (None: none waits)."""
        if not self.ready:
            return 0, None
        return len(self.ready), max(0.0, now - min(self.ready.values()))
