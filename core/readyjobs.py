"""Jobs ready to start but not started, and how long the oldest has waited (the scheduler's
lag): one tracker per application, fed by `track_event`, read by the metrics (`/metrics`),
the Insights samples and the alerts' `queue_lag` alike, so they can never count differently.

Feeding it is idempotent (an event seen twice changes nothing, and the same `track_events`
batch given twice is skipped), so every plugin that reads it may feed it from its own
`track_events` and it stays right whichever of them is enabled.
"""
from __future__ import annotations

import time
from collections.abc import Sequence
from operator import attrgetter

from .events import Event, JobStateChanged, RunStateChanged
from .stash import Stash, StashKey
from .states import RUN_FINISHED, JobState

TRACKED = 100_000
"""At most this many ready jobs are followed at once (the oldest forgotten first): a lost
event never makes the process grow for ever."""


class ReadyJobs:
    """(run id, job) -> when it became READY, until it starts, ends or its run ends."""

    def __init__(self, limit: int = TRACKED) -> None:
        self.limit = limit
        self.since: dict[tuple[str, str], float] = {}
        self._last: Sequence[Event] | None = None

    def observe(self, event: Event) -> None:
        """Follow one event (`observe_all`)."""
        self.observe_all((event,))

    def observe_all(self, events: Sequence[Event]) -> None:
        """Follow a batch of events in order (a `track_events` batch: several readers are
        given the same sequence, counted once)."""
        if events is self._last:  # the same batch from a second reader: already counted
            return
        self._last = events
        since = self.since
        jobs = [e for e in events if type(e) is JobStateChanged]
        if jobs:
            # a job is ready when its last event of the batch says so: the batch is
            # followed job by job (its last event each), not event by event
            ready = JobState.READY
            for key, last in dict(zip(map(_JOB_KEY, jobs), jobs, strict=True)).items():
                if last.new is ready:
                    since[key] = last.at
                else:
                    since.pop(key, None)
        for event in events:
            if type(event) is RunStateChanged and since and event.new in RUN_FINISHED:
                for key in [k for k in since if k[0] == event.run_id]:
                    del since[key]
        while len(since) > self.limit:
            since.pop(next(iter(since)))

    def __len__(self) -> int:
        return len(self.since)

    def oldest(self) -> float | None:
        """When the longest-waiting ready job became ready (None: no job waits)."""
        return min(self.since.values()) if self.since else None

    def waiting(self, now: float) -> tuple[int, float | None]:
        """How many jobs wait, and how long the oldest has waited (None: none waits)."""
        oldest = self.oldest()
        return len(self.since), None if oldest is None else max(0.0, now - oldest)

    def lag(self, now: float | None = None) -> float:
        """Seconds the oldest ready job has waited (0 when none waits)."""
        oldest = self.oldest()
        if oldest is None:
            return 0.0
        return max(0.0, (time.time() if now is None else now) - oldest)


_JOB_KEY = attrgetter("run_id", "job")

READY_JOBS: StashKey[ReadyJobs] = StashKey("ready_jobs")


def ready_jobs_of(stash: Stash) -> ReadyJobs:
    """The application's tracker (made on first use)."""
    found = stash.get(READY_JOBS)
    if found is None:
        found = stash[READY_JOBS] = ReadyJobs()
    return found
