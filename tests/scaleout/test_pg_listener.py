"""PgListener on its own: a failing handler does not end it, an outage is logged with its
reasons and length (never a password), and the queue's channels of one schema are not those
of another."""
from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable
from dataclasses import astuple
from urllib.parse import urlsplit

import psycopg
import pytest

from baseshift.core.errors import StoreError
from baseshift.plugins.queue.pg_listen import PgListener
from baseshift.plugins.queue.pg_queue import CHANNEL_MAX, Channels, channel_name
from baseshift.plugins.storage.pg_connect import PgTarget
from tests.conftest import PG_SERVER
from tests.scaleout.tcp_proxy import TcpProxy


async def test_a_failing_handler_is_logged_and_the_next_notification_delivered(
        pg_url: str, caplog: pytest.LogCaptureFixture) -> None:
    seen: list[str] = []
    delivered = asyncio.Event()

    async def handle(note: psycopg.Notify) -> None:
        if note.payload == "bad":
            raise StoreError("the database went away while handling it")
        seen.append(note.payload)
        delivered.set()

    target = PgTarget.parse(pg_url)
    listener = PgListener(target, ["bs_listener_test"], handle, what="the test",
                          log=logging.getLogger("baseshift.test"), caught_up=nothing)
    await listener.start()
    try:
        async with await psycopg.AsyncConnection.connect(PG_SERVER, autocommit=True) as conn:
            for payload in ("bad", "good"):
                await conn.execute("SELECT pg_notify('bs_listener_test', %s)", (payload,))
        await asyncio.wait_for(delivered.wait(), 30)
    finally:
        await listener.stop()
    assert seen == ["good"]
    assert listener.outages == 0
    assert "cannot handle notification bs_listener_test 'bad'" in caplog.text


async def test_an_outage_warns_why_once_and_says_how_long_it_lasted(
        pg_url: str, caplog: pytest.LogCaptureFixture) -> None:
    """The first failed try warns with its reason, repeats of that reason are debug, and the
    line saying the listener is back gives the outage's length and its last reason."""
    server = urlsplit(PG_SERVER)
    proxy = TcpProxy((server.hostname or "127.0.0.1", server.port or 5432))
    await proxy.start()
    url = proxy.url(pg_url).replace("postgres@", "postgres:sekrit@")
    listener = PgListener(PgTarget.parse(url), ["bs_listener_test"], ignore, what="the test",
                          log=logging.getLogger("baseshift.test"), caught_up=nothing)
    await listener.start()
    try:
        with caplog.at_level(logging.DEBUG, logger="baseshift.test"):
            await proxy.stop()
            await until(lambda: listener.retries >= 3)
            await proxy.start()
            await until(lambda: listener.listening)
    finally:
        await listener.stop()
        await proxy.stop()
    failed = [r for r in caplog.records if "still cannot listen" in r.message]
    assert [r.levelno for r in failed[:3]] == [logging.WARNING, logging.DEBUG, logging.DEBUG]
    reason = failed[-1].message.partition("): ")[2]
    assert reason
    back = [r.message for r in caplog.records if "listening for" in r.message]
    assert len(back) == 1
    assert re.fullmatch(r"the test: listening for bs_listener_test again after \d+\.\ds "
                        rf"\({len(failed)} failed attempt\(s\), the last: {re.escape(reason)}\)",
                        back[0])
    assert "sekrit" not in caplog.text


def test_each_schema_has_its_own_channels() -> None:
    public = Channels.of(PgTarget.parse("postgresql://db/x"))
    assert public == Channels("bs_work", "bs_done", "bs_cancel")  # as earlier versions
    mine = Channels.of(PgTarget.parse("postgresql://db/x?schema=tenant_a"))
    theirs = Channels.of(PgTarget.parse("postgresql://db/x?schema=tenant_b"))
    assert mine.work == "bs_work_tenant_a"
    assert len({*astuple(public), *astuple(mine), *astuple(theirs)}) == 9


def test_a_long_schema_name_still_makes_a_valid_distinct_channel() -> None:
    long_a, long_b = "s" * 60 + "_a", "s" * 60 + "_b"
    names = {channel_name("bs_cancel", long_a), channel_name("bs_cancel", long_b)}
    assert len(names) == 2
    assert all(len(n.encode()) <= CHANNEL_MAX for n in names)


async def test_a_notification_of_one_schema_does_not_reach_the_listeners_of_another(
        pg_url: str) -> None:
    """Two stores in one database (schemas): the work queued in one wakes only its own
    workers. The other schema's notification, sent first, would arrive first."""
    received: list[str] = []
    arrived = asyncio.Event()

    async def handle(note: psycopg.Notify) -> None:
        received.append(note.payload)
        arrived.set()

    mine = PgTarget.parse(pg_url)
    other = PgTarget.parse(f"{pg_url}_other")
    listener = PgListener(mine, [Channels.of(mine).work], handle, what="the test",
                          log=logging.getLogger("baseshift.test"), caught_up=nothing)
    await listener.start()
    try:
        async with await psycopg.AsyncConnection.connect(PG_SERVER, autocommit=True) as conn:
            for target in (other, mine):
                await conn.execute("SELECT pg_notify(%s, %s)",
                                   (Channels.of(target).work, target.schema))
        await asyncio.wait_for(arrived.wait(), 30)
    finally:
        await listener.stop()
    assert received == [mine.schema]


async def until(condition: Callable[[], bool]) -> None:
    async with asyncio.timeout(30):
        while not condition():
            await asyncio.sleep(0.02)


async def ignore(_note: psycopg.Notify) -> None:
    """A handler for a test that sends no notifications."""


async def nothing() -> None:
    """A catch-up with nothing to catch up."""
