"""The log store (core/capabilities.py `LogLines`) on every builtin state store: each answers
exactly the lines `LogQuery.matches` accepts, in the same order, for random lines and random
query trees, and keeps the same paging, following, scoping and retention rules."""
from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from baseshift.core.capabilities import LogLines
from baseshift.core.loglines import LogLine, LogSearch, line_of, select_lines
from baseshift.core.logquery import And, LogQuery, Node, Not, Or, Term
from baseshift.core.retention import Tombstone
from tests.plugins.backends import opened_state_store
from tests.plugins.store_records import a_job, a_run, an_attempt, changes

STORES = ["memory", "sqlite", "postgres"]
# ASCII letters only where case matters: case folding beyond ASCII is the database's
# (plugins/storage/sql_logquery.py). The rest are what LIKE, GLOB and regexes treat specially.
ALPHABET = "aA_%\\[?.\n€"
TEXT = st.text(ALPHABET, max_size=3)
PATTERN = st.text(ALPHABET + "*", max_size=3)
FIELDS = ("level", "message", "source", "job", "error", "attempt")
"""Fewer fields than a line may hold, so that terms often meet values (the SQL for a field
depends only on its kind: text, caseless or exact)."""
WINDOW = 1000.0


def _line(values: dict[str, str | None], at: float, n: int) -> LogLine:
    raw: dict[str, Any] = {k: v for k, v in values.items() if v is not None}
    raw["timestamp"] = at
    raw["n"] = n
    return line_of(raw, "server")


LINE_VALUES = st.fixed_dictionaries(
    {}, optional={name: st.one_of(st.none(), TEXT) for name in FIELDS})
TERMS = st.builds(Term, st.sampled_from((None, *FIELDS)), PATTERN)
TREES: st.SearchStrategy[Node] = st.recursive(
    TERMS, lambda inner: st.one_of(
        st.builds(Not, inner),
        st.builds(And, st.lists(inner, max_size=3).map(tuple)),
        st.builds(Or, st.lists(inner, max_size=3).map(tuple))), max_leaves=6)


@pytest.fixture(params=STORES)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Any, Any]]:
    """(runner, open store): a sync fixture, so hypothesis can drive the store's loop."""
    with asyncio.Runner() as runner:
        opened = opened_state_store(request.param, tmp_path)
        found = runner.run(opened.__aenter__())
        assert isinstance(found, LogLines)
        try:
            yield runner, found
        finally:
            runner.run(opened.__aexit__(None, None, None))


def test_every_store_answers_exactly_the_lines_the_query_matches(
        store: tuple[Any, Any]) -> None:
    runner, lines_store = store
    windows = itertools.count(1)

    @settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
    @given(st.lists(st.tuples(LINE_VALUES, st.integers(0, 3)), max_size=10),
           st.lists(TREES, min_size=1, max_size=4), st.booleans())
    def check(values: list[tuple[dict[str, str | None], int]], trees: list[Node],
              descending: bool) -> None:
        start = next(windows) * WINDOW
        lines = [_line(v, start + at, n) for n, (v, at) in enumerate(values)]
        runner.run(lines_store.append_log_lines(lines))
        for tree in trees:
            query = LogQuery(tree)
            search = LogSearch(query, since=start, until=start + WINDOW - 1, limit=100,
                               descending=descending)
            page = runner.run(lines_store.search_log_lines(search))
            wanted = [x.extra["n"] for x in sorted(
                (x for x in lines if query.matches(x.fields)),
                key=lambda x: (x.timestamp, x.extra["n"]), reverse=descending)]
            assert [x.extra["n"] for x in page.lines] == wanted, tree
            assert page.total == len(wanted)

    check()


TRICKY = ["[a", "a[", "[", "?", "a?", "%", "a%b", "_", "ab", "a_b", "\\", "a\\b", "A", "a",
          "a\n", "\na", "*", "€"]
"""Values that LIKE, GLOB, regexes and escaping treat specially."""
TRICKY_TERMS = [v for v in TRICKY] + ["[*", "*[", "?*", "a*", "*a", "%*", "_*", "\\*", "a*b",
                                      "A*", "*\n*", ""]


def test_special_characters_match_the_same_everywhere(store: tuple[Any, Any]) -> None:
    """Every tricky value against every tricky term, on a field of each kind: exact
    (`job`), caseless (`level`) and searched inside (`message`)."""
    runner, lines_store = store
    lines = [_line({"job": v, "level": v, "message": v}, 1.0 + i / 100, i)
             for i, v in enumerate(TRICKY)]
    runner.run(lines_store.append_log_lines(lines))
    for field in ("job", "level", "message"):
        for value in TRICKY_TERMS:
            query = LogQuery(Term(field, value))
            page = runner.run(lines_store.search_log_lines(LogSearch(query, limit=100)))
            wanted = sorted(x.extra["n"] for x in lines if query.matches(x.fields))
            assert sorted(x.extra["n"] for x in page.lines) == wanted, (field, value)


@pytest.fixture(params=STORES)
async def opened(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Any]:
    async with opened_state_store(request.param, tmp_path) as found:
        yield found


def _many(count: int, **fields: str) -> list[LogLine]:
    return [line_of({"timestamp": 100.0 + i // 2, "message": f"line {i}", **fields},
                    "server") for i in range(count)]


async def test_pages_follow_one_another_without_gaps_or_repeats(opened: Any) -> None:
    await opened.append_log_lines(_many(7))
    for descending in (True, False):
        seen: list[str] = []
        search = LogSearch(limit=3, descending=descending)
        while True:
            page = await opened.search_log_lines(search)
            assert page.total == 7
            seen += [x.fields["message"] for x in page.lines]
            if len(page.lines) < search.limit:
                break
            last = page.lines[-1]
            search = replace(search, after=(last.timestamp, last.id))
        expected = [f"line {i}" for i in range(7)]
        assert seen == (expected[::-1] if descending else expected)


async def test_following_answers_the_lines_stored_since_in_stored_order(opened: Any) -> None:
    await opened.append_log_lines(_many(3))
    newest = (await opened.search_log_lines(LogSearch(limit=1))).lines[0].id
    counted = await opened.search_log_lines(LogSearch(limit=1, count=False))
    assert counted.total == 0 and counted.lines[0].id == newest
    later = [line_of({"timestamp": 50.0 - i, "message": f"late {i}"}, "worker")
             for i in range(2)]  # older times, stored later: following still sees them
    await opened.append_log_lines(later)
    page = await opened.search_log_lines(LogSearch(newer_than=newest, limit=10,
                                                   descending=False))
    assert [x.fields["message"] for x in page.lines] == ["late 0", "late 1"]
    newest_first = await opened.search_log_lines(LogSearch(newer_than=0, limit=1))
    assert newest_first.lines == page.lines[-1:]
    assert page.lines[0].id > newest and page.lines[1].id > page.lines[0].id


async def test_a_workflow_scope_leaves_out_other_workflows_and_the_server(opened: Any) -> None:
    await opened.append_log_lines([
        line_of({"message": "a", "workflow": "orders"}, "attempt", at=1.0),
        line_of({"message": "b", "workflow_id": "billing"}, "attempt", at=2.0),
        line_of({"message": "c"}, "server", at=3.0)])
    for scope, wanted in (((), []), (("orders",), ["a"]), (None, ["c", "b", "a"])):
        page = await opened.search_log_lines(LogSearch(workflows=scope))
        assert [x.fields["message"] for x in page.lines] == wanted, scope


async def test_a_line_round_trips_its_fields_and_its_extra_json(opened: Any) -> None:
    raw = {"timestamp": "2026-12-06T04:00:00.250000Z", "level": "ERROR", "message": "boom\x00",
           "run_id": "r1", "workflow": "orders", "attempt": 2, "status": 500,
           "detail": {"path": ["a", 1]}}
    await opened.append_log_lines([line_of(raw, "attempt", traced=True)])
    (line,) = (await opened.search_log_lines(LogSearch())).lines
    assert line.to_json()["timestamp"] == "2026-12-06T04:00:00.250000Z"
    assert line.fields["level"] == "error" and line.fields["message"] == "boom\ufffd"
    assert line.fields["attempt"] == "2" and line.fields["workflow_id"] == "orders"
    assert line.fields["trace_id"] == select_lines([line], LogSearch()).lines[0].fields[
        "trace_id"] and len(line.fields["trace_id"]) == 32
    assert dict(line.extra) == {"status": 500, "detail": {"path": ["a", 1]}}


async def _finished_run(store: Any, run_id: str) -> None:
    from baseshift.core.states import JobState, RunState

    run = a_run(run_id, created_at=10.0, state=RunState.RUNNING)
    await store.create_run(run, [a_job("a", run_id, state=JobState.RUNNING)])
    await store.apply(changes(replace(run, state=RunState.COMPLETED, ended_at=20.0),
                              a_job("a", run_id, state=JobState.SUCCEEDED, ended_at=20.0),
                              an_attempt("a", 1, run_id, state=JobState.SUCCEEDED,
                                         started_at=10.0, ended_at=20.0, log="x\n")))


async def _messages(store: Any) -> list[str]:
    page = await store.search_log_lines(LogSearch(descending=False))
    return [x.fields["message"] for x in page.lines]


async def test_retention_prunes_old_lines_but_a_held_runs_stay(opened: Any) -> None:
    for run_id in ("held", "free"):
        await _finished_run(opened, run_id)
    await opened.set_legal_hold("held", True)
    await opened.append_log_lines([
        line_of({"message": "old server"}, "server", at=100.0),
        line_of({"message": "old held", "run_id": "held"}, "attempt", at=100.0),
        line_of({"message": "old free", "run_id": "free"}, "attempt", at=100.0),
        line_of({"message": "new"}, "server", at=900.0)])
    looked = await opened.apply_retention({"log_lines": 500.0}, dry_run=True)
    assert dict(looked.removed) == {"log_lines": 2}
    assert len(await _messages(opened)) == 4
    done = await opened.apply_retention({"log_lines": 500.0})
    assert dict(done.removed) == {"log_lines": 2}
    assert await _messages(opened) == ["old held", "new"]


async def test_erasing_or_retiring_a_run_removes_its_lines(opened: Any) -> None:
    for run_id in ("gone", "kept"):
        await _finished_run(opened, run_id)
        await opened.append_log_lines([line_of({"message": run_id, "run_id": run_id},
                                               "attempt", at=30.0)])
    await opened.erase_run(Tombstone("gone", "orders", 50.0, "alice"))
    assert await _messages(opened) == ["kept"]
    await opened.apply_retention({"runs": 1000.0})
    assert await _messages(opened) == []


async def test_the_memory_store_keeps_only_its_newest_lines(tmp_path: Path) -> None:
    async with opened_state_store("memory", tmp_path) as store:
        store.max_log_lines = 5
        await store.append_log_lines(_many(4))
        await store.append_log_lines(_many(4))
        page = await store.search_log_lines(LogSearch(limit=100, descending=False))
    assert sorted(x.id for x in page.lines) == [4, 5, 6, 7, 8]  # the first three went


async def test_postgres_appends_wait_for_one_another_so_ids_commit_in_order(
        tmp_path: Path) -> None:
    """A follower reads the lines after the last id it saw: an append committing after a
    newer one would be missed, so appends on PostgreSQL take turns (one advisory lock)."""
    import psycopg

    from baseshift.plugins.storage.pg_store import PostgresStateStore
    from tests.conftest import PG_SERVER

    async with opened_state_store("postgres", tmp_path) as store:
        with psycopg.connect(PG_SERVER) as rival:  # another process's append, not committed
            rival.execute(PostgresStateStore._APPEND_LOCK)
            appending = asyncio.create_task(store.append_log_lines(_many(1)))
            await asyncio.sleep(0.5)
            assert not appending.done()  # waits its turn
            rival.rollback()
            await asyncio.wait_for(appending, 60)
        page = await store.search_log_lines(LogSearch())
    assert [x.fields["message"] for x in page.lines] == ["line 0"]
