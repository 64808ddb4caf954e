"""Typed events the engine emits to `track_event` observers (progress display, metrics, UI)."""
from __future__ import annotations

from dataclasses import dataclass

from .states import JobState, RunState


@dataclass(frozen=True, slots=True)
class Event:
    run_id: str
    at: float


@dataclass(frozen=True, slots=True)
class RunStateChanged(Event):
    workflow: str
    old: RunState | None
    new: RunState
    jobs_total: int = 0
    error: str | None = None


@dataclass(frozen=True, slots=True)
class JobStateChanged(Event):
    job: str
    old: JobState | None
    new: JobState
    attempt: int = 0
    error: str | None = None


@dataclass(frozen=True, slots=True)
class JobsAdded(Event):
    """A fan-out job expanded into instances; observers learn the new total."""

    job: str
    count: int
