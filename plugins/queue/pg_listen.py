"""A `LISTEN` connection of the PostgreSQL queue that survives database outages.

The server (outcomes, `pg_queue`) and every worker (work, cancels, `worker_loop`) wait on
notifications instead of polling; a listener that died with its connection would leave them
on their slow safety timers for good. So a `PgListener` reconnects with backoff, listens
again and then calls `caught_up`, because whatever was notified while it was away is lost.
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import psycopg
from psycopg import sql

from baseshift.core.config import masked
from baseshift.core.errors import BaseShiftError
from baseshift.core.tasks import Backoff, cancel_and_wait

from ..storage.pg_connect import PgTarget

Handler = Callable[[psycopg.Notify], Awaitable[None]]
CatchUp = Callable[[], Awaitable[None]]


class PgListener:
    """Hands each notification on `channels` to `handle` until stopped, from a connection of
    its own. When the connection is lost it logs one warning, reconnects with backoff, listens
    again, logs that once (with the outage's length and last failure), and awaits `caught_up`.
    A failed try logs a warning when its reason is new, at debug level when it repeats.
    A failing `handle` or `caught_up` is logged, never fatal."""

    def __init__(self, target: PgTarget, channels: Sequence[str], handle: Handler, *,
                 what: str, log: logging.Logger, caught_up: CatchUp) -> None:
        self.target = target
        self.channels = tuple(channels)
        self.handle = handle
        self.what = what
        self.log = log
        self.caught_up = caught_up
        self.outages = 0
        """Connections lost so far (tests wait on it)."""
        self.retries = 0
        """Failed reconnection attempts in the current outage."""
        self._conn: psycopg.AsyncConnection[Any] | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def listening(self) -> bool:
        return self._conn is not None and not self._conn.closed

    async def start(self) -> None:
        """Listen (an unreachable database is the ConfigError of starting), then follow the
        notifications in a task."""
        self._conn = await self._listen()
        self._task = asyncio.create_task(self._follow(), name=f"pg-listen:{self.what}")

    async def stop(self) -> None:
        await cancel_and_wait(self._task)
        self._task = None
        await self._close()

    async def _listen(self) -> psycopg.AsyncConnection[Any]:
        conn = await self.target.connect_async(autocommit=True)
        try:
            for channel in self.channels:
                await conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))
        except BaseException:
            await conn.close()
            raise
        return conn

    async def _close(self) -> None:
        if self._conn is not None:
            await self._conn.close()
            self._conn = None

    async def _follow(self) -> None:
        backoff = Backoff()
        while True:
            since = time.monotonic()
            lost = await self._receive()
            backoff.connected_for(time.monotonic() - since)
            await self._close()
            self.outages += 1
            self.log.warning("%s: lost the database connection that listens for %s (%s); "
                             "reconnecting", self.what, ", ".join(self.channels), lost)
            await self._reconnect(backoff)
            await self._catch_up()

    async def _receive(self) -> str:
        """Deliver notifications until the connection fails; returns why it did."""
        assert self._conn is not None
        try:
            async for note in self._conn.notifies():
                await self._deliver(note)
        except psycopg.Error as exc:
            return _reason(exc)
        return "the connection ended"

    async def _reconnect(self, backoff: Backoff) -> None:
        self.retries = 0
        lost_at = time.monotonic()
        last = ""
        while True:
            await asyncio.sleep(backoff.next())
            try:
                self._conn = await self._listen()
            except (BaseShiftError, psycopg.Error) as exc:
                self.retries += 1
                reason = _reason(exc)
                # Why it fails is news once: a warning, then debug while the reason stays.
                self.log.log(logging.DEBUG if reason == last else logging.WARNING,
                             "%s: still cannot listen (attempt %d): %s", self.what,
                             self.retries, reason)
                last = reason
                continue
            self.log.info("%s: listening for %s again after %.1fs (%d failed attempt(s)%s)",
                          self.what, ", ".join(self.channels), time.monotonic() - lost_at,
                          self.retries, f", the last: {last}" if last else "")
            return

    async def _deliver(self, note: psycopg.Notify) -> None:
        try:
            await self.handle(note)
        except BaseShiftError as exc:  # the database, most likely: no traceback needed
            self.log.warning("%s: cannot handle notification %s %.200r: %s", self.what,
                             note.channel, note.payload, exc)
        except Exception:
            self.log.exception("%s: cannot handle notification %s %.200r", self.what,
                               note.channel, note.payload)

    async def _catch_up(self) -> None:
        try:
            await self.caught_up()
        except BaseShiftError as exc:
            self.log.warning("%s: cannot catch up on missed notifications: %s", self.what, exc)
        except Exception:
            self.log.exception("%s: cannot catch up on missed notifications", self.what)


def _reason(exc: Exception) -> str:
    """`exc` on one line, for a log, with any password in a connection URL masked."""
    return str(masked(" ".join(str(exc).split()))) or type(exc).__name__
