"""A run's attempts as timeline (Gantt) bars: offsets and widths in percent of the run."""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from baseshift.core.records import RunSnapshot


@dataclass(frozen=True, slots=True)
class Bar:
    """One attempt: which job, which try, its state, and where its bar sits."""

    job: str
    number: int
    state: str
    started_at: float
    ended_at: float | None
    duration: float
    offset: float
    width: float


@dataclass(frozen=True, slots=True)
class Timeline:
    bars: tuple[Bar, ...]
    start: float
    span: float
    """Seconds from the first attempt's start to the last end (or `now`)."""


MIN_WIDTH = 0.5
"""Percent: an instant attempt still shows as a sliver."""


def timeline(snapshot: RunSnapshot, now: float) -> Timeline:
    """Bars for every attempt, ordered by start; an attempt still running ends at `now`."""
    attempts = sorted(snapshot.attempts, key=lambda a: (a.started_at, a.job_key, a.number))
    if not attempts:
        return Timeline((), snapshot.run.started_at or 0.0, 0.0)
    start = min(a.started_at for a in attempts)
    end = max(max(a.ended_at or now, a.started_at) for a in attempts)
    span = max(end - start, 1e-6)
    bars = []
    for a in attempts:
        stop = max(a.ended_at if a.ended_at is not None else now, a.started_at)
        offset = min((a.started_at - start) / span * 100, 100 - MIN_WIDTH)
        width = min(max((stop - a.started_at) / span * 100, MIN_WIDTH), 100 - offset)
        bars.append(Bar(a.job_key, a.number, a.state.value, a.started_at, a.ended_at,
                        stop - a.started_at, round(offset, 3), round(width, 3)))
    return Timeline(tuple(bars), start, end - start)
