"""Base Shift's log lines, collected for a sink that writes them in batches rather than as
text: the log store (plugins/logs/), a log service (plugins/logship/).

A `LogBatcher` is a `logging.Handler` on the `baseshift` logger: each record becomes the
fields of its JSON line (the same processors, bound context and masking as the JSON log
format: `logrender.record_fields`) and waits in a bounded buffer; a task hands the sink at
most `batch` lines every `interval` seconds, and the rest at `stop`. Logging never waits on
the sink: when the buffer is full the oldest lines are dropped, and counted.

The sink's own lines (a failing request, a store warning) are not collected while it writes:
a sink that logs its failure would otherwise feed itself forever. A failing sink is reported
at most once every `warn_every` seconds: a log service that is down for an hour must not
fill the console with one warning per interval.
"""
from __future__ import annotations

import asyncio
import collections
import logging
import threading
import time
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from typing import Any

from baseshift.core.console import LOGGER
from baseshift.core.tasks import cancel_and_wait

log = logging.getLogger("baseshift.logbatch")

Line = dict[str, Any]
Sink = Callable[[list[Line]], Awaitable[None]]

_SENDING: ContextVar[bool] = ContextVar("baseshift_log_sending", default=False)


class LogBatcher(logging.Handler):
    """Collects log lines for `send`; see the module docstring."""

    def __init__(self, send: Sink, *, name: str, max_lines: int = 10_000, batch: int = 500,
                 interval: float = 1.0, level: int = logging.INFO,
                 warn_every: float = 60.0) -> None:
        super().__init__(level)
        self.send = send
        self.sink_name = name
        self.batch = batch
        self.interval = interval
        self.dropped = 0
        """Lines lost: the buffer was full, or the sink failed on them at `stop`."""
        self.sent = 0
        self._lines: collections.deque[Line] = collections.deque(maxlen=max_lines)
        self._guard = threading.Lock()
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        self.warn_every = warn_every
        self._warned_at: float | None = None
        self._unreported = 0

    # ------------------------------------------------------------ logging side

    def emit(self, record: logging.LogRecord) -> None:
        if _SENDING.get():
            return
        try:
            from .logrender import record_fields

            line = record_fields(record)
        except Exception:  # a record that cannot be rendered must not break the caller
            self.handleError(record)
            return
        with self._guard:
            if len(self._lines) == self._lines.maxlen:
                self.dropped += 1
            self._lines.append(line)

    def pending(self) -> int:
        return len(self._lines)

    # ------------------------------------------------------------ sink side

    def start(self) -> None:
        """Collect from now on and hand batches to the sink from a task of this loop."""
        logging.getLogger(LOGGER).addHandler(self)
        self._stopping.clear()
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"baseshift-{self.sink_name}")

    async def stop(self) -> None:
        """Stop collecting, then hand the sink what is left (lines it fails on are dropped)."""
        logging.getLogger(LOGGER).removeHandler(self)
        self._stopping.set()
        try:  # a batch being written is finished, not abandoned (its lines would be lost)
            if self._task is not None:
                await asyncio.shield(self._task)
        except asyncio.CancelledError:  # the caller gave up waiting: so does the task
            await cancel_and_wait(self._task)
            raise
        finally:
            self._task = None
        while self._lines:
            taken = self._take()
            if not await self._send(taken):
                with self._guard:  # the sink is down: the rest would fail too
                    self.dropped += len(taken) + len(self._lines)
                    self._lines.clear()
                break

    async def flush_now(self) -> bool:
        """Hand every waiting line to the sink now (until `stop`, which hands over the
        rest); False if it failed (the lines wait on)."""
        while self._lines and not self._stopping.is_set():
            taken = self._take()
            if not await self._send(taken):
                self._put_back(taken)
                return False
        return True

    async def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                await asyncio.wait_for(self._stopping.wait(), self.interval)
            except TimeoutError:
                await self.flush_now()

    def _take(self) -> list[Line]:
        with self._guard:
            return [self._lines.popleft() for _ in range(min(self.batch, len(self._lines)))]

    def _put_back(self, lines: list[Line]) -> None:
        """Return lines the sink failed on to the front, as far as there is room."""
        with self._guard:
            room = (self._lines.maxlen or 0) - len(self._lines)
            kept = lines[-room:] if room > 0 else []
            self.dropped += len(lines) - len(kept)
            self._lines.extendleft(reversed(kept))

    async def _send(self, lines: list[Line]) -> bool:
        token = _SENDING.set(True)
        try:
            await self.send(lines)
        except Exception as exc:  # the sink retries as it sees fit; here the lines wait on
            self._warn(len(lines), exc)
            return False
        finally:
            _SENDING.reset(token)
        self.sent += len(lines)
        return True

    def _warn(self, count: int, exc: Exception) -> None:
        self.warn("could not write %d log lines to %s: %s", count, self.sink_name, exc)

    def warn(self, message: str, *args: object) -> None:
        """Log a warning about the sink (it failed, it refused lines), unless one was logged
        less than `warn_every` seconds ago; the next one says how many were left out."""
        now = time.monotonic()
        if self._warned_at is not None and now - self._warned_at < self.warn_every:
            self._unreported += 1
            return
        more = (f" ({self._unreported} more like it since the last warning)"
                if self._unreported else "")
        self._warned_at, self._unreported = now, 0
        log.warning(message + "%s", *args, more)
