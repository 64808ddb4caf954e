"""The figures of the Insights page and of `GET /api/v1/analytics/insights`: runs per hour by
state, success rate and p50/p95 run durations per workflow (the store's `RunAnalytics`), and
a time series of the attempt queue's depth and the scheduler's lag.

The store keeps no history of the queue or the lag, so each server records its own: one
`Sample` every `[plugins.insights] sample_interval` seconds (60), in a ring of one day's
samples in the server's memory (`SAMPLES` in its stash). A restart empties it; in a fleet
each server shows its own lag (the jobs its engine made ready) and the queue it sees (every
server's, as the queue's `depth` counts them). Without a queue that reports its depth (the
PostgreSQL queue), a sample's depth is None: the page says "no queue" rather than drawing 0.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from baseshift.core.config import option
from baseshift.core.protocols import RunAnalytics
from baseshift.core.readyjobs import ready_jobs_of
from baseshift.core.stash import StashKey
from baseshift.core.states import RunState
from baseshift.core.tasks import cancel_and_wait

if TYPE_CHECKING:
    from baseshift.core.appface import App

log = logging.getLogger("baseshift.insights")

OPTIONS = "insights"
"""`[plugins.insights]`: `sample_interval` (seconds between samples, default 60)."""
HOUR = 3600
DAY = 24 * HOUR
INTERVAL = 60.0
STATES = (RunState.COMPLETED, RunState.FAILED, RunState.CANCELLED, RunState.RUNNING,
          RunState.INITIALIZED)
"""The stacking order of the runs-per-hour chart (bottom first)."""


@runtime_checkable
class ReportsDepth(Protocol):
    """An attempt queue that can count its rows by state (the PostgreSQL queue)."""

    async def depth(self) -> dict[str, int]: ...


@dataclass(frozen=True, slots=True)
class Sample:
    """One reading: when, attempts waiting in the queue (None: no queue that reports it),
    and how long the oldest job made ready by this server has waited to start (seconds)."""

    at: float
    queued: int | None
    lag: float


class Samples:
    """The ring of samples; the lag is read from the application's `ReadyJobs` (jobs ready
    but not started, core/readyjobs.py), the one the metrics read too."""

    def __init__(self, bs: App, interval: float = INTERVAL) -> None:
        self.bs = bs
        self.interval = interval
        self.ring: deque[Sample] = deque(maxlen=max(1, int(DAY // interval)))
        self.ready = ready_jobs_of(bs.stash)
        self._task: asyncio.Task[None] | None = None

    async def take(self, now: float | None = None) -> Sample:
        """Read the queue and the lag now and keep the sample."""
        now = time.time() if now is None else now
        queue = self.bs.queue
        queued = (await queue.depth()).get("queued", 0) if isinstance(queue, ReportsDepth) \
            else None
        sample = Sample(now, queued, self.ready.lag(now))
        self.ring.append(sample)
        return sample

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="baseshift-insights")

    async def stop(self) -> None:
        await cancel_and_wait(self._task)
        self._task = None

    async def _run(self) -> None:
        while True:
            try:
                await self.take()
            except Exception:  # a failed reading must not end the series
                log.exception("sampling the queue depth and scheduler lag failed")
            await asyncio.sleep(self.interval)


SAMPLES: StashKey[Samples] = StashKey("insights_samples")


def samples_of(bs: App) -> Samples:
    """The application's samples (made on first use)."""
    found = bs.stash.get(SAMPLES)
    if found is None:
        found = bs.stash[SAMPLES] = Samples(
            bs, float(option(bs.settings, OPTIONS, "sample_interval", INTERVAL)))
    return found


def iso(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).isoformat(timespec="milliseconds") \
        .replace("+00:00", "Z")


async def insights(stats: RunAnalytics, samples: Samples, hours: int,
                   workflows: Sequence[str] | None, now: float | None = None
                   ) -> dict[str, Any]:
    """The page's figures as JSON: the last `hours` hours (the current one included), of
    the `workflows` named (None: all). `runs_per_hour` lists every hour, zeros too, with a
    count for every state; durations are seconds, success rates 0..1 (null: no run
    completed or failed)."""
    now = time.time() if now is None else now
    first = (int(now // HOUR) - hours + 1) * HOUR
    until = first + hours * HOUR  # the end of the current hour
    by_hour: dict[float, dict[str, int]] = {
        float(first + i * HOUR): {} for i in range(hours)}
    states = [*STATES, *(s for s in RunState if s not in STATES)]
    for c in await stats.runs_per_hour(first, until, workflows):
        if c.hour in by_hour:
            by_hour[c.hour][c.state.value] = c.count
    per_workflow = await stats.workflow_runs(first, until, workflows)
    points = [s for s in samples.ring if s.at >= now - hours * HOUR]
    return {
        "hours": hours, "since": iso(first), "until": iso(until), "now": iso(now),
        "states": [s.value for s in states],
        "runs_per_hour": [
            {"hour": iso(hour), "total": sum(counts.values()),
             "counts": {s.value: counts.get(s.value, 0) for s in states}}
            for hour, counts in by_hour.items()],
        "workflows": [
            {"workflow": w.workflow, "runs": w.runs, "completed": w.completed,
             "failed": w.failed, "cancelled": w.cancelled, "success_rate": w.success_rate,
             "p50_duration": w.p50, "p95_duration": w.p95} for w in per_workflow],
        "samples": {
            "interval": samples.interval, "queue": isinstance(samples.bs.queue, ReportsDepth),
            "points": [{"at": iso(s.at), "queue_depth": s.queued, "scheduler_lag": s.lag}
                       for s in points]},
    }
