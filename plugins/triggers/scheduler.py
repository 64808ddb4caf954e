"""Cron schedules: when each workflow's schedules fire, and the task that starts those runs.

The scheduler sleeps until the earliest next fire time of all loaded schedules (re-reading
the catalog at least every `RECHECK` seconds, since files may be edited meanwhile), then
starts the due runs through `bs.runs.start`, so run limits apply to them too.

For each (workflow, schedule) it keeps, in `DATA_DIR/schedules.json` (replaced atomically),
the time up to which fire times were handled and the last one fired. After a restart the
fire times missed meanwhile are caught up (one run each, at most `MAX_CATCH_UP`) or skipped
(`missed skip`, the default; a time missed by less than `GRACE` seconds still fires). The
state is written before the runs start: a crash in between loses those runs rather than
starting them twice.
"""
from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from croniter import croniter

from baseshift.core.capabilities import Leadership, SharedDocuments
from baseshift.core.clock import Clock, SystemClock
from baseshift.core.json_text import write_json_file
from baseshift.core.plan import MissedRuns, Schedule
from baseshift.core.tasks import cancel_and_wait

if TYPE_CHECKING:
    from baseshift.core.appface import App
    from baseshift.core.protocols import StateStore

log = logging.getLogger("baseshift.triggers")

STATE_FILE = "schedules.json"
MAX_CATCH_UP = 100
"""At most this many missed fire times of one schedule are caught up (the latest ones)."""
GRACE = 60.0
"""Seconds a fire time may be late and still fire under `missed skip`."""
RECHECK = 30.0
"""Longest sleep: how soon schedules added or changed by a catalog reload are seen."""
FIRST_LOAD_RECHECK = 1.0
"""The sleep while the catalog has not loaded its first workflows yet."""


# ---------------------------------------------------------------- fire times


def next_fire(schedule: Schedule, after: datetime) -> datetime:
    """The first fire time of `schedule` strictly after `after` (in UTC)."""
    local = after.astimezone(ZoneInfo(schedule.timezone))
    fire: datetime = croniter(schedule.cron, local).get_next(datetime)
    return fire.astimezone(UTC)


def fire_times(schedule: Schedule, after: datetime, until: datetime,
               limit: int) -> list[datetime]:
    """Fire times t with after < t <= until, oldest first: the latest `limit` of them."""
    local = (until + timedelta(seconds=1)).astimezone(ZoneInfo(schedule.timezone))
    it = croniter(schedule.cron, local)
    found: list[datetime] = []
    while len(found) < limit:
        fire: datetime = it.get_prev(datetime)
        if fire <= after:
            break
        if fire <= until:
            found.append(fire.astimezone(UTC))
    return found[::-1]


def due(schedule: Schedule, after: datetime, now: datetime, *, grace: float = GRACE,
        max_catch_up: int = MAX_CATCH_UP) -> tuple[list[datetime], int]:
    """The fire times to start runs for now, and how many missed ones are dropped: a count
    that stops at `max_catch_up + 1` (looking further back would cost time for nothing)."""
    times = fire_times(schedule, after, now, max_catch_up + 1)
    if schedule.missed is MissedRuns.SKIP:
        on_time = [t for t in times if (now - t).total_seconds() <= grace][-1:]
        return on_time, len(times) - len(on_time)
    return times[-max_catch_up:], max(len(times) - max_catch_up, 0)


# ---------------------------------------------------------------- durable state


@dataclass(slots=True)
class Mark:
    """What is remembered of one schedule: handled up to `checked`, last fired `fired`."""

    checked: datetime
    fired: datetime | None = None


class ScheduleState:
    """The marks of every schedule. Kept in a small JSON file written atomically
    (`data_dir/schedules.json`), or, when the store keeps documents (PostgreSQL, shared by
    several servers), as the store's "schedules" document, so that a server taking over as
    cron leader continues from the marks the previous leader left."""

    DOCUMENT = "schedules"

    def __init__(self, path: Path | None, marks: dict[str, dict[str, Mark]] | None = None
                 ) -> None:
        self.path = path
        self.marks: dict[str, dict[str, Mark]] = (
            marks if marks is not None else self._read() if path is not None else {})

    @classmethod
    def from_data(cls, data: Any, path: Path | None = None) -> ScheduleState:
        """The marks of a saved `data()`; empty (with a warning) if it cannot be read."""
        try:
            marks = {wf: {key: _mark(m) for key, m in marks.items()}
                     for wf, marks in data["schedules"].items()}
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            log.warning("ignoring unreadable schedule marks (%s): schedules start afresh", exc)
            marks = {}
        return cls(path, marks)

    def get(self, workflow: str, key: str) -> Mark | None:
        return self.marks.get(workflow, {}).get(key)

    def put(self, workflow: str, key: str, mark: Mark) -> None:
        self.marks.setdefault(workflow, {})[key] = mark

    def keep_only(self, workflow: str, keys: set[str]) -> None:
        """Forget schedules a workflow no longer declares."""
        kept = {k: m for k, m in self.marks.get(workflow, {}).items() if k in keys}
        if kept:
            self.marks[workflow] = kept
        else:
            self.marks.pop(workflow, None)

    def data(self) -> dict[str, Any]:
        return {"version": 1, "schedules": {
            wf: {key: {"checked": m.checked.isoformat(),
                       "fired": m.fired.isoformat() if m.fired else None}
                 for key, m in sorted(marks.items())}
            for wf, marks in sorted(self.marks.items())}}

    async def save(self, store: StateStore | None = None) -> None:
        """Into the store's document when it keeps documents, else into the file."""
        if isinstance(store, SharedDocuments):
            await store.save_document(self.DOCUMENT, self.data())
            return
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_json_file(self.path, self.data())

    @classmethod
    async def load(cls, store: StateStore, path: Path) -> ScheduleState:
        """The marks as the last leader saved them (store document, else the file)."""
        if isinstance(store, SharedDocuments):
            data = await store.load_document(cls.DOCUMENT)
            return cls.from_data(data) if data is not None else cls(None, {})
        return cls(path)

    def _read(self) -> dict[str, dict[str, Mark]]:
        assert self.path is not None
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            log.warning("ignoring unreadable %s (%s): schedules start afresh", self.path, exc)
            return {}
        return ScheduleState.from_data(data).marks


def _mark(raw: dict[str, Any]) -> Mark:
    fired = raw.get("fired")
    return Mark(datetime.fromisoformat(raw["checked"]),
                datetime.fromisoformat(fired) if fired else None)


# ---------------------------------------------------------------- the scheduler


LEAD_RETRY = 5.0
"""Seconds between a follower's attempts to become the cron leader (failover time)."""


class Scheduler:
    """Starts the runs of every loaded workflow's schedules at their fire times."""

    def __init__(self, baseshift: App, *, clock: Clock | None = None,
                 state_path: Path | None = None, grace: float = GRACE,
                 max_catch_up: int = MAX_CATCH_UP, recheck: float = RECHECK) -> None:
        self.bs = baseshift
        self.clock: Clock = clock or SystemClock()
        self.state_path = state_path or baseshift.settings.data_dir / STATE_FILE
        self.state = ScheduleState(self.state_path)
        self._leading = False
        self.grace, self.max_catch_up, self.recheck = grace, max_catch_up, recheck
        self._previous: datetime | None = None
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self.run(), name="baseshift-scheduler")

    async def stop(self) -> None:
        await cancel_and_wait(self._task)
        self._task = None

    async def run(self) -> None:
        """Tick, sleep until the next fire time (or a recheck), forever. With several
        servers on one store only the leader ticks; the others wait to take over."""
        while True:
            try:
                if not await self._leads():
                    self._leading = False  # leading again later: reload the marks first
                    await self.clock.sleep(min(self.recheck, LEAD_RETRY))
                    continue
                if not self._leading:  # just became the leader: continue from its marks
                    self.state = await ScheduleState.load(self.bs.store, self.state_path)
                    self._leading = True
                wake = await self.tick()
            except Exception:  # a bad tick must not end scheduling for good
                log.exception("scheduler tick failed")
                wake = self.clock.now() + timedelta(seconds=self.recheck)
            await self.clock.sleep((wake - self.clock.now()).total_seconds())

    async def _leads(self) -> bool:
        store = self.bs.store
        return await store.lead("cron") if isinstance(store, Leadership) else True

    async def tick(self) -> datetime:
        """Start the runs due now; return when the next tick should happen."""
        now = self.clock.now()
        fires: list[tuple[str, Schedule, datetime]] = []
        wake = now + timedelta(seconds=self.recheck if self.bs.catalog.generation
                               else min(self.recheck, FIRST_LOAD_RECHECK))
        for workflow, schedules in self._schedules().items():
            self.state.keep_only(workflow, {s.key for s in schedules})
            for schedule in schedules:
                try:
                    fires += [(workflow, schedule, t)
                              for t in self._due(workflow, schedule, now)]
                    wake = min(wake, next_fire(schedule, now))
                except Exception:  # one unusable schedule must not stop the others
                    log.exception("schedule %r of workflow %s failed", schedule.cron, workflow)
        await self.state.save(self.bs.store)
        self._previous = now
        for workflow, schedule, at in fires:
            await self._start(workflow, schedule, at)
        return wake

    def _schedules(self) -> dict[str, list[Schedule]]:
        return {e.name: list(e.plan.schedules) for e in self.bs.catalog.entries()
                if e.plan is not None}

    def _due(self, workflow: str, schedule: Schedule, now: datetime) -> list[datetime]:
        mark = self.state.get(workflow, schedule.key)
        # A schedule first seen now may have been added to the catalog since the last tick.
        after = mark.checked if mark else (self._previous or now)
        times, dropped = due(schedule, after, now, grace=self.grace,
                             max_catch_up=self.max_catch_up)
        if dropped:
            full = len(times) + dropped > self.max_catch_up  # there may be more before
            many = f"{dropped}+" if full else str(dropped)
            what = "skipped (missed skip)" if schedule.missed is MissedRuns.SKIP else \
                f"dropped: at most {self.max_catch_up} are caught up"
            log.warning("%s: %s missed fire time(s) of schedule '%s' %s", workflow, many,
                        schedule.cron, what)
        fired = times[-1] if times else (mark.fired if mark else None)
        self.state.put(workflow, schedule.key, Mark(now, fired))
        return times

    async def _start(self, workflow: str, schedule: Schedule, at: datetime) -> None:
        try:
            run_id = await self.bs.runs.start(workflow, dict(schedule.inputs))
        except Exception as exc:  # one failing schedule must not stop the others
            log.error("%s: scheduled run for %s (schedule '%s') not started: %s", workflow,
                      at.isoformat(), schedule.cron, exc)
            return
        log.info("%s: started run %s for %s (schedule '%s')", workflow, run_id,
                 at.isoformat(), schedule.cron)
