"""The log store's capture of ended attempts (plugins/logs/capture.py `AttemptLines`): the
lines of exactly the attempts that ended, read by key from a store that can
(`AttemptReads`), never by reading their run whole for every batch: a large fan-out's
attempts end in batches, and reading the run each time grew with the square of its size."""
from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from baseshift.core.backends import STATE
from baseshift.core.events import JobStateChanged, RunStateChanged
from baseshift.core.loglines import LogLine, LogPage, LogSearch
from baseshift.core.protocols import StateStore
from baseshift.core.records import RunSnapshot
from baseshift.core.settings import Settings
from baseshift.core.states import JobState, RunState
from baseshift.plugins.logs.capture import BATCH, AttemptLines
from tests.plugins.backends import build
from tests.plugins.store_records import a_job, a_run, an_attempt, changes

JOBS = 3 * BATCH + 7
"""More attempts than fit in one batch: several batches of one run."""


@pytest.fixture(params=["memory", "sqlite"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[StateStore]:
    opened = build(STATE, Settings(data_dir=tmp_path, store=request.param))
    await opened.open()
    keys = [f"work[{i}]" for i in range(JOBS)]
    await opened.create_run(a_run("r1", workflow="fan"), [a_job(k) for k in keys])
    await opened.apply(changes(*(an_attempt(k, 1, state=JobState.SUCCEEDED, started_at=1.0,
                                            ended_at=2.0, log=f"hello from {k}")
                                 for k in keys)))
    try:
        yield opened
    finally:
        await opened.close()


class Reads:
    """Counts the store's reads of whole runs, by whether they held the attempts."""

    def __init__(self, store: Any, monkeypatch: pytest.MonkeyPatch) -> None:
        self.whole: list[bool] = []
        original = store.load_run

        async def load_run(run_id: str, *, attempts: bool = True) -> RunSnapshot | None:
            self.whole.append(attempts)
            return await original(run_id, attempts=attempts)

        monkeypatch.setattr(store, "load_run", load_run)


def _ended(run_id: str, keys: Sequence[str]) -> list[JobStateChanged]:
    return [JobStateChanged(run_id, 2.0, k, JobState.RUNNING, JobState.SUCCEEDED, 1)
            for k in keys]


async def _capture(store: StateStore, events: Sequence[Any]) -> list[LogLine]:
    attempts = AttemptLines(store, store)  # type: ignore[arg-type]
    attempts.start()
    try:
        attempts.follow(events)
        await attempts.flush()
    finally:
        await attempts.stop()
    page: LogPage = await store.search_log_lines(  # type: ignore[attr-defined]
        LogSearch(limit=10 * JOBS))
    return list(page.lines)


async def test_a_fan_out_s_attempts_are_read_by_key_never_with_the_whole_run(
        store: StateStore, monkeypatch: pytest.MonkeyPatch) -> None:
    reads = Reads(store, monkeypatch)
    keys = [f"work[{i}]" for i in range(JOBS)]
    started = RunStateChanged("r1", 1.0, "fan", RunState.INITIALIZED, RunState.RUNNING)
    lines = await _capture(store, [started, *_ended("r1", keys)])
    assert reads.whole == []  # the run's start told its workflow; attempts read by key
    assert sorted(x.fields["message"] for x in lines) == sorted(f"hello from {k}" for k in keys)
    assert {(x.fields["workflow_id"], x.fields["run_id"]) for x in lines} == {("fan", "r1")}


async def test_a_run_started_before_is_read_once_without_its_attempts(
        store: StateStore, monkeypatch: pytest.MonkeyPatch) -> None:
    reads = Reads(store, monkeypatch)
    keys = [f"work[{i}]" for i in range(0, JOBS, 2)]
    lines = await _capture(store, _ended("r1", keys))
    assert reads.whole == [False]  # to learn its workflow, once
    assert sorted(x.fields["message"] for x in lines) == sorted(f"hello from {k}" for k in keys)
    assert {x.fields["workflow_id"] for x in lines} == {"fan"}


async def test_an_unknown_run_writes_nothing(store: StateStore) -> None:
    assert await _capture(store, _ended("nope", ["work[0]"])) == []


class Plain:
    """A store with a log but without `load_attempts`: a third party's, say."""

    def __init__(self, store: Any) -> None:
        self.store = store

    async def load_run(self, run_id: str, *, attempts: bool = True) -> RunSnapshot | None:
        result: RunSnapshot | None = await self.store.load_run(run_id, attempts=attempts)
        return result

    async def append_log_lines(self, lines: Sequence[LogLine]) -> None:
        await self.store.append_log_lines(lines)

    async def search_log_lines(self, search: LogSearch) -> LogPage:
        page: LogPage = await self.store.search_log_lines(search)
        return page


async def test_a_store_without_attempt_reads_still_gets_every_line(
        store: StateStore, monkeypatch: pytest.MonkeyPatch) -> None:
    plain = Plain(store)
    reads = Reads(plain, monkeypatch)
    keys = [f"work[{i}]" for i in range(JOBS)]
    lines = await _capture(plain, _ended("r1", keys))  # type: ignore[arg-type]
    assert reads.whole and all(reads.whole)
    assert sorted(x.fields["message"] for x in lines) == sorted(f"hello from {k}" for k in keys)
