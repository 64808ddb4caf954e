"""The LISTEN connections of the PostgreSQL queue survive database outages: after one, the
server and the workers are woken by notifications again, and what was notified while they
were away is caught up at once.

Leases and the worker's safety poll are an hour long here, so an attempt that completes
was woken by a notification (or a catch-up), never by a timer."""
from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import urlsplit

import psycopg
import pytest

from baseshift.core.app.application import BaseShift
from baseshift.core.hookspecs import hookimpl
from baseshift.core.records import RunRecord
from baseshift.core.settings import Settings
from baseshift.core.states import RunState
from baseshift.plugins.queue import worker_loop
from baseshift.plugins.queue.pg_listen import PgListener
from baseshift.plugins.queue.pg_queue import PostgresAttemptQueue
from baseshift.plugins.queue.worker_loop import Worker
from baseshift.plugins.storage.pg_connect import PgTarget
from tests.conftest import PG_SERVER
from tests.scaleout.tcp_proxy import TcpProxy

HOUR = 3600.0

GATED = """
workflow gated {
  version "1.0.0"
  input { gate: string }
  job wait uses python { with { function: "gate_steps:wait_for", path: input.gate } }
}
"""

GATE_STEPS = '''
import asyncio, os

async def wait_for(path):
    while not os.path.exists(path):
        await asyncio.sleep(0.02)
    return "opened"
'''


@pytest.fixture(autouse=True)
def no_safety_poll(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(worker_loop, "SAFETY_POLL", HOUR)


@pytest.fixture
async def proxies() -> AsyncIterator[Callable[[], Awaitable[TcpProxy]]]:
    """`await proxies()`: a started proxy to the test server, stopped after the test."""
    started: list[TcpProxy] = []
    server = urlsplit(PG_SERVER)

    async def start() -> TcpProxy:
        proxy = TcpProxy((server.hostname or "127.0.0.1", server.port or 5432))
        await proxy.start()
        started.append(proxy)
        return proxy

    yield start
    for proxy in started:
        await proxy.stop()


def through(proxy: TcpProxy, settings: Settings) -> PgTarget:
    return PgTarget.parse(proxy.url(str(settings.database_url)))


def queue_through(target: PgTarget) -> object:
    """A plugin offering `queue = "through-proxy"`: the PostgreSQL queue on `target` (the
    store stays on a direct connection: only the queue is cut off)."""

    class ProxiedQueue(PostgresAttemptQueue):
        name: ClassVar[str] = "through-proxy"

        @classmethod
        def from_settings(cls, settings: Settings) -> PostgresAttemptQueue:
            return cls(target, HOUR)

    class Plugin:
        @hookimpl
        def register_backends(self) -> list[type]:
            return [ProxiedQueue]

    return Plugin()


@asynccontextmanager
async def scheduler(settings: Settings, target: PgTarget) -> AsyncIterator[BaseShift]:
    mine = dataclasses.replace(settings, queue="through-proxy")
    async with BaseShift(mine, plugins=(queue_through(target),)) as bs:
        yield bs


@asynccontextmanager
async def worker_on(settings: Settings, target: PgTarget) -> AsyncIterator[Worker]:
    async with BaseShift(dataclasses.replace(settings, queue="local")) as bs:
        worker = Worker(bs, target, lease=HOUR)
        stop = asyncio.Event()
        task = asyncio.create_task(worker.run(stop))
        try:
            await until(lambda: listener_of(worker).listening or task.done(), "it listens")
            yield worker
        finally:
            stop.set()
            await task


def listener_of(owner: PostgresAttemptQueue | Worker) -> PgListener:
    return owner._listener


def queue_of(bs: BaseShift) -> PostgresAttemptQueue:
    assert isinstance(bs.queue, PostgresAttemptQueue)
    return bs.queue


async def until(condition: Callable[[], bool], what: str) -> None:
    for _ in range(1500):
        if condition():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"gave up waiting until {what}")


def gated(bs: BaseShift, workflows: Path) -> Any:
    (workflows / "gate_steps.py").write_text(GATE_STEPS)
    (workflows / "gated.bsw").write_text(GATED)
    return bs.load_workflow(workflows / "gated.bsw")


async def finished(bs: BaseShift, run_id: str) -> RunRecord:
    """The run's record once it ended (a run left waiting for a timer hangs: give up)."""
    return await asyncio.wait_for(bs.engine.wait(run_id), 60)


def queue_states(settings: Settings) -> list[str]:
    url, schema = str(settings.database_url).split("?schema=")
    with psycopg.connect(url, options=f"-c search_path={schema}") as conn:
        return [str(r[0]) for r in conn.execute("SELECT state FROM job_queue ORDER BY id")]


@pytest.mark.slow
async def test_after_an_outage_attempts_are_woken_by_notifications_again(
        settings: Settings, workflows: Path, proxies: Callable[[], Awaitable[TcpProxy]],
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    proxy = await proxies()
    gate = tmp_path / "gate"
    gate.touch()
    async with scheduler(settings, through(proxy, settings)) as bs, \
            worker_on(settings, through(proxy, settings)) as worker:
        plan = gated(bs, workflows)
        before = await bs.engine.submit(plan, {"gate": str(gate)})
        assert (await finished(bs, before)).state is RunState.COMPLETED
        listeners = [listener_of(queue_of(bs)), listener_of(worker)]

        with caplog.at_level(logging.DEBUG, logger="baseshift"):
            await proxy.stop()
            await until(lambda: all(x.retries >= 3 for x in listeners),
                        "both listeners tried to reconnect a few times")
            await proxy.start()
            await until(lambda: all(x.listening for x in listeners), "both listen again")

        after = await bs.engine.submit(plan, {"gate": str(gate)})
        assert (await finished(bs, after)).state is RunState.COMPLETED
    assert worker.executed == 2
    lost = [r for r in caplog.records if "lost the database connection" in r.message]
    again = [r for r in caplog.records if "listening for" in r.message]
    assert [r.levelno for r in lost] == [logging.WARNING, logging.WARNING]  # one each
    assert len(again) == 2


@pytest.mark.slow
async def test_an_outcome_stored_while_the_server_was_away_is_collected_when_it_listens_again(
        settings: Settings, workflows: Path, proxies: Callable[[], Awaitable[TcpProxy]],
        tmp_path: Path) -> None:
    server_side, worker_side = await proxies(), await proxies()
    gate = tmp_path / "gate"
    async with scheduler(settings, through(server_side, settings)) as bs, \
            worker_on(settings, through(worker_side, settings)) as worker:
        run_id = await bs.engine.submit(gated(bs, workflows), {"gate": str(gate)})
        await until(lambda: bool(worker.active), "the worker runs the attempt")

        await server_side.stop()
        await until(lambda: listener_of(queue_of(bs)).outages == 1, "the server noticed")
        gate.touch()  # the outcome is stored and notified while the server cannot hear it
        await until(lambda: queue_states(settings) == ["done"], "the outcome is stored")
        await server_side.start()

        assert (await finished(bs, run_id)).state is RunState.COMPLETED


@pytest.mark.slow
async def test_work_queued_while_a_worker_was_away_is_claimed_when_it_listens_again(
        settings: Settings, workflows: Path, proxies: Callable[[], Awaitable[TcpProxy]],
        tmp_path: Path) -> None:
    server_side, worker_side = await proxies(), await proxies()
    gate = tmp_path / "gate"
    gate.touch()
    async with scheduler(settings, through(server_side, settings)) as bs, \
            worker_on(settings, through(worker_side, settings)) as worker:
        plan = gated(bs, workflows)
        await worker_side.stop()
        await until(lambda: listener_of(worker).outages == 1, "the worker noticed")
        run_id = await bs.engine.submit(plan, {"gate": str(gate)})
        await until(lambda: queue_states(settings) == ["queued"], "the attempt is queued")
        await worker_side.start()

        assert (await finished(bs, run_id)).state is RunState.COMPLETED
    assert worker.executed == 1


@pytest.mark.slow
async def test_a_cancel_sent_while_a_worker_was_away_stops_its_attempt_when_it_listens_again(
        settings: Settings, workflows: Path, proxies: Callable[[], Awaitable[TcpProxy]],
        tmp_path: Path) -> None:
    server_side, worker_side = await proxies(), await proxies()
    async with scheduler(settings, through(server_side, settings)) as bs, \
            worker_on(settings, through(worker_side, settings)) as worker:
        run_id = await bs.engine.submit(gated(bs, workflows), {"gate": str(tmp_path / "no")})
        await until(lambda: bool(worker.active), "the worker runs the attempt")
        await worker_side.stop()
        await until(lambda: listener_of(worker).outages == 1, "the worker noticed")
        await bs.runs.cancel(run_id)
        await worker_side.start()

        await until(lambda: not worker.active, "the worker stopped the cancelled attempt")
        assert (await finished(bs, run_id)).state is RunState.CANCELLED


async def test_a_listener_stops_cleanly_while_the_database_is_away(
        settings: Settings, workflows: Path, proxies: Callable[[], Awaitable[TcpProxy]]
        ) -> None:
    proxy = await proxies()
    async with scheduler(settings, through(proxy, settings)) as bs, \
            worker_on(settings, through(proxy, settings)) as worker:
        listeners = [listener_of(queue_of(bs)), listener_of(worker)]
        await proxy.stop()
        await until(lambda: all(x.retries >= 1 for x in listeners), "both retry")
    assert not any(x.listening for x in listeners)
    assert all(x._task is None for x in listeners)
