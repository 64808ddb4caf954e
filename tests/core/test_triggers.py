"""Cron schedules: fire times in time zones, missed runs, the durable state and the scheduler
task, with a manual clock (nothing here sleeps for real)."""
from __future__ import annotations

import asyncio
import json
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from baseshift.core.app.application import BaseShift
from baseshift.core.plan import MissedRuns, Schedule
from baseshift.core.settings import Settings
from baseshift.core.stash import SERVING
from baseshift.core.states import RunState
from baseshift.plugins.triggers.cron import STASH_KEY
from baseshift.plugins.triggers.scheduler import (
    LEAD_RETRY,
    Mark,
    Scheduler,
    ScheduleState,
    due,
    fire_times,
    next_fire,
)
from tests.core.manual_clock import T0, ManualClock

DEADLINE = 30.0


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


# ---------------------------------------------------------------- fire times


def test_next_fire_follows_the_time_zone() -> None:
    paris = Schedule("0 3 * * *", "Europe/Paris")
    assert next_fire(paris, utc(2025, 1, 10, 12)) == utc(2025, 1, 11, 2)  # CET, UTC+1
    assert next_fire(paris, utc(2025, 7, 10, 12)) == utc(2025, 7, 11, 1)  # CEST, UTC+2
    assert next_fire(Schedule("0 3 * * *"), utc(2025, 7, 10, 12)) == utc(2025, 7, 11, 3)


def test_a_time_skipped_by_daylight_saving_still_fires_once() -> None:
    """2:30 does not exist in Paris on 2025-03-30 (clocks jump from 2:00 to 3:00)."""
    s = Schedule("30 2 * * *", "Europe/Paris")
    times = fire_times(s, utc(2025, 3, 29, 12), utc(2025, 4, 1, 12), 10)
    assert len(times) == 3 and len({t.date() for t in times}) == 3


def test_fire_times_are_after_exclusive_until_inclusive() -> None:
    s = Schedule("*/10 * * * *")
    times = fire_times(s, utc(2025, 1, 1, 0, 0), utc(2025, 1, 1, 0, 30), 100)
    assert times == [utc(2025, 1, 1, 0, 10), utc(2025, 1, 1, 0, 20), utc(2025, 1, 1, 0, 30)]
    assert fire_times(s, utc(2025, 1, 1, 0, 0), utc(2025, 1, 1, 0, 30), 2) == times[1:]


def test_skip_fires_only_a_time_within_the_grace() -> None:
    s = Schedule("0 * * * *", missed=MissedRuns.SKIP)
    assert due(s, utc(2025, 1, 1, 0, 30), utc(2025, 1, 1, 3, 0, 20)) == (
        [utc(2025, 1, 1, 3)], 2)
    assert due(s, utc(2025, 1, 1, 0, 30), utc(2025, 1, 1, 3, 5)) == ([], 3)


def test_catch_up_fires_every_missed_time_up_to_the_bound() -> None:
    s = Schedule("0 * * * *", missed=MissedRuns.CATCH_UP)
    times, dropped = due(s, utc(2025, 1, 1, 0, 30), utc(2025, 1, 1, 3, 5))
    assert (times, dropped) == ([utc(2025, 1, 1, 1), utc(2025, 1, 1, 2), utc(2025, 1, 1, 3)], 0)
    times, dropped = due(s, utc(2025, 1, 1), utc(2025, 2, 1), max_catch_up=100)
    assert len(times) == 100 and times[-1] == utc(2025, 2, 1) and dropped == 1
    assert times == sorted(times)


# ---------------------------------------------------------------- durable state


async def test_state_round_trips_through_its_file(tmp_path: Path) -> None:
    path = tmp_path / "d" / "schedules.json"
    state = ScheduleState(path)
    state.put("wf", "k", Mark(utc(2025, 1, 1), utc(2024, 12, 31)))
    state.put("wf", "gone", Mark(utc(2025, 1, 1)))
    state.keep_only("wf", {"k"})
    await state.save()
    assert [p.name for p in path.parent.iterdir()] == ["schedules.json"]  # no temp file left
    again = ScheduleState(path)
    assert again.marks == {"wf": {"k": Mark(utc(2025, 1, 1), utc(2024, 12, 31))}}
    assert json.loads(path.read_text())["version"] == 1


def test_an_unreadable_state_file_is_ignored(tmp_path: Path,
                                             caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "schedules.json"
    path.write_text("{not json", encoding="utf-8")
    with caplog.at_level(logging.WARNING, "baseshift.triggers"):
        assert ScheduleState(path).marks == {}
    assert "schedules start afresh" in caplog.text


# ---------------------------------------------------------------- the scheduler


def write_workflow(folder: Path, schedule: str, name: str = "nightly") -> None:
    folder.mkdir(exist_ok=True)
    (folder / f"{name}.bsw").write_text(
        f"workflow {name} {{\n"
        '  version "1.0.0"\n'
        '  input { who: string = "nobody" }\n'
        f"  {schedule}\n"
        '  job hello uses shell { with { command: "echo ${input.who}" } }\n'
        "}\n", encoding="utf-8")


async def started(bs: BaseShift) -> list[dict[str, Any]]:
    return [r.inputs for r in reversed(await bs.store.list_runs(limit=1000))]


async def test_fires_at_the_next_time_and_only_then(make_baseshift: Any, tmp_path: Path) -> None:
    folder = tmp_path / "flows"
    write_workflow(folder, 'schedule "*/5 * * * *" with { who: "cron" }')
    async with make_baseshift(workflows_dir=folder) as bs:
        await bs.catalog.refresh(force=True)
        clock = ManualClock(T0)
        scheduler = Scheduler(bs, clock=clock, recheck=3600)
        wake = await scheduler.tick()
        assert wake == utc(2025, 3, 29, 12, 5)
        assert await started(bs) == []
        clock.move_to(utc(2025, 3, 29, 12, 4, 59))
        assert await scheduler.tick() == utc(2025, 3, 29, 12, 5)
        assert await started(bs) == []
        clock.move_to(wake)
        assert await scheduler.tick() == utc(2025, 3, 29, 12, 10)
        assert await started(bs) == [{"who": "cron"}]
        state = ScheduleState(tmp_path / "data" / "schedules.json")
        [mark] = state.marks["nightly"].values()
        assert mark == Mark(wake, wake)


async def test_the_sleep_is_capped_so_reloaded_schedules_are_seen(make_baseshift: Any,
                                                                  tmp_path: Path) -> None:
    folder = tmp_path / "flows"
    write_workflow(folder, 'schedule "0 3 1 1 *"')
    async with make_baseshift(workflows_dir=folder) as bs:
        scheduler = Scheduler(bs, clock=ManualClock(T0), recheck=30)
        assert await scheduler.tick() == T0 + timedelta(seconds=1)  # catalog not loaded yet
        await bs.catalog.refresh(force=True)
        assert await scheduler.tick() == T0 + timedelta(seconds=30)


async def test_a_schedule_added_between_ticks_fires_for_times_since_the_last_tick(
        make_baseshift: Any, tmp_path: Path) -> None:
    folder = tmp_path / "flows"
    write_workflow(folder, "")
    async with make_baseshift(workflows_dir=folder) as bs:
        await bs.catalog.refresh(force=True)
        clock = ManualClock(utc(2025, 1, 1, 11, 59, 50))
        scheduler = Scheduler(bs, clock=clock)
        await scheduler.tick()
        write_workflow(folder, 'schedule "0 12 * * *"')
        await bs.catalog.refresh(force=True)
        clock.move_to(utc(2025, 1, 1, 12, 0, 20))
        await scheduler.tick()
        assert len(await started(bs)) == 1


@pytest.mark.parametrize(("missed", "runs"), [("catch-up", 4), ("skip", 0)])
async def test_after_downtime(make_baseshift: Any, tmp_path: Path, missed: str,
                              runs: int) -> None:
    """The server stopped after the 12:00 fire; it starts again at 16:30."""
    folder = tmp_path / "flows"
    write_workflow(folder, f'schedule "0 * * * *" missed {missed}')
    async with make_baseshift(workflows_dir=folder) as bs:
        await bs.catalog.refresh(force=True)
        clock = ManualClock(utc(2025, 1, 1, 11, 59))
        await Scheduler(bs, clock=clock).tick()
        clock.move_to(utc(2025, 1, 1, 12, 0, 1))
        await Scheduler(bs, clock=clock).tick()
        assert len(await started(bs)) == 1
        clock.move_to(utc(2025, 1, 1, 16, 30))
        await Scheduler(bs, clock=clock).tick()
        assert len(await started(bs)) == 1 + runs


async def test_catch_up_is_bounded_and_logged(make_baseshift: Any, tmp_path: Path,
                                              caplog: pytest.LogCaptureFixture) -> None:
    folder = tmp_path / "flows"
    write_workflow(folder, 'schedule "*/10 * * * *" missed catch-up')
    async with make_baseshift(workflows_dir=folder) as bs:
        await bs.catalog.refresh(force=True)
        clock = ManualClock(utc(2025, 1, 1))
        await Scheduler(bs, clock=clock).tick()
        clock.move_to(utc(2025, 1, 2))
        with caplog.at_level(logging.WARNING, "baseshift.triggers"):
            await Scheduler(bs, clock=clock, max_catch_up=5).tick()
        assert len(await started(bs)) == 5
        assert "1+ missed fire time(s) of schedule '*/10 * * * *' dropped" in caplog.text


async def test_the_loop_sleeps_until_the_next_fire_time(make_baseshift: Any,
                                                        tmp_path: Path) -> None:
    folder = tmp_path / "flows"
    write_workflow(folder, 'schedule "1 12 * * *"')
    async with make_baseshift(workflows_dir=folder) as bs:
        await bs.catalog.refresh(force=True)
        clock = ManualClock(utc(2025, 1, 1, 12, 0, 45))
        scheduler = Scheduler(bs, clock=clock, recheck=3600)
        scheduler.start()
        await asyncio.wait_for(clock.sleeping.wait(), DEADLINE)
        assert clock.sleeps == [15.0]
        async with bs.live.subscribe(None) as events:
            clock.move_to(utc(2025, 1, 1, 12, 1))
            await asyncio.wait_for(events.__anext__(), DEADLINE)  # the scheduled run began
        await scheduler.stop()
        [run] = await bs.store.list_runs()
        assert run.workflow == "nightly"
        assert (await bs.engine.wait(run.id)).state is RunState.COMPLETED


async def test_the_plugin_runs_the_scheduler_only_in_a_server(tmp_path: Path) -> None:
    settings = Settings(load_entrypoints=False, store="memory", data_dir=tmp_path / "data",
                        workflows_dir=tmp_path, extra={"trigger_cron": {
                            "clock": ManualClock(T0)}})
    async with BaseShift(settings) as bs:
        assert STASH_KEY not in bs.stash
    bs = BaseShift(settings)
    bs.stash[SERVING] = True
    async with bs:
        scheduler = bs.stash[STASH_KEY]
        assert isinstance(scheduler, Scheduler)
        assert isinstance(scheduler.clock, ManualClock)
    assert STASH_KEY not in bs.stash


async def test_only_the_leading_server_fires_and_a_follower_takes_over(
        make_baseshift: Any, tmp_path: Path) -> None:
    """Two servers on one store (here one SQLite file): the first to ask leads the cron
    scheduler; the other waits, and leads once the first has stopped."""
    folder = tmp_path / "flows"
    write_workflow(folder, 'schedule "*/5 * * * *" with { who: "cron" }')
    async with make_baseshift(workflows_dir=folder, store="sqlite") as first, \
            make_baseshift(workflows_dir=folder, store="sqlite") as second:
        for bs in (first, second):
            await bs.catalog.refresh(force=True)
        clock = ManualClock(T0)
        leader = Scheduler(first, clock=clock, recheck=3600)
        follower = Scheduler(second, clock=clock, recheck=3600)
        assert await leader._leads() and not await follower._leads()
        follower.start()
        await clock.sleeping.wait()
        assert clock.sleeps == [LEAD_RETRY]  # waiting to lead, not ticking
        await first.store.close()  # the leader stops
        clock.move_to(T0 + timedelta(seconds=LEAD_RETRY))
        await asyncio.sleep(0.05)
        assert await follower._leads()
        await follower.stop()


async def test_a_new_cron_leader_continues_from_the_marks_the_last_one_left(
        make_baseshift: Any, tmp_path: Path, pg_url: str) -> None:
    """Servers on PostgreSQL share the schedule marks: a leader taking over (with its own
    data folder) catches up the fire time missed while no server led."""
    folder = tmp_path / "flows"
    write_workflow(folder, 'schedule "*/5 * * * *" missed catch-up with { who: "cron" }')
    shared = {"workflows_dir": folder, "store": "postgres", "database_url": pg_url}
    async with make_baseshift(data_dir=tmp_path / "a", **shared) as first:
        await first.catalog.refresh(force=True)
        clock = ManualClock(T0)
        leader = Scheduler(first, clock=clock, recheck=3600)
        leader.start()
        await clock.sleeping.wait()
        clock.move_to(utc(2025, 3, 29, 12, 5))
        await asyncio.sleep(0.2)
        assert await started(first) == [{"who": "cron"}]
        await leader.stop()
    async with make_baseshift(data_dir=tmp_path / "b", **shared) as second:
        await second.catalog.refresh(force=True)
        clock = ManualClock(utc(2025, 3, 29, 12, 12))  # 12:10 passed while nobody led
        follower = Scheduler(second, clock=clock, recheck=3600)
        follower.start()
        await clock.sleeping.wait()
        for _ in range(50):
            if len(await started(second)) == 2:
                break
            await asyncio.sleep(0.05)
        await follower.stop()
        assert await started(second) == [{"who": "cron"}, {"who": "cron"}]
    assert not (tmp_path / "b" / "schedules.json").exists()  # the marks live in the store
