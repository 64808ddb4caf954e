"""Worker threads for sync job functions, with one event-loop wake-up per batch of results.

`asyncio.to_thread` wakes the event loop once per call and builds a concurrent.futures
Future for each; with thousands of short sync jobs that handoff, not the jobs, was the cost.
Here finished calls queue up and a single `call_soon_threadsafe` delivers all that finished
since the loop last looked. The threads are daemons: a call still running when the process
exits is abandoned, which the engine's durability already allows for (the attempt is retried
when the run resumes).
"""
from __future__ import annotations

import asyncio
import contextvars
import os
import queue
import threading
from collections.abc import Callable
from typing import Any

_Done = tuple["asyncio.Future[Any]", Any, BaseException | None]


class _Mailbox:
    """Results waiting for one event loop, and whether a wake-up is already on its way."""

    def __init__(self) -> None:
        self.items: list[_Done] = []
        self.wake_pending = False


class ThreadRunner:
    """A fixed pool of daemon threads running sync callables for coroutines."""

    def __init__(self, workers: int | None = None) -> None:
        self.workers = workers or min(32, (os.cpu_count() or 1) + 4)
        self._queue: queue.SimpleQueue[tuple[Any, ...] | None] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._mailboxes: dict[asyncio.AbstractEventLoop, _Mailbox] = {}

    async def run(self, fn: Callable[..., Any], args: Any, kwargs: dict[str, Any]) -> Any:
        """Call `fn(*args, **kwargs)` on a worker thread, in a copy of the current context."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        if not self._threads:
            self._start()
        self._queue.put((contextvars.copy_context(), fn, args, kwargs, future, loop))
        return await future

    def close(self) -> None:
        """Let idle workers exit; calls in progress finish in the background."""
        for _ in self._threads:
            self._queue.put(None)
        self._threads.clear()

    def _start(self) -> None:
        with self._lock:
            while len(self._threads) < self.workers:
                t = threading.Thread(target=self._work, name="baseshift-python", daemon=True)
                t.start()
                self._threads.append(t)

    def _work(self) -> None:
        while (item := self._queue.get()) is not None:
            context, fn, args, kwargs, future, loop = item
            try:
                done: _Done = (future, context.run(fn, *args, **kwargs), None)
            except BaseException as exc:  # handed to the awaiting coroutine, as to_thread does
                done = (future, None, exc)
            self._post(loop, done)

    def _post(self, loop: asyncio.AbstractEventLoop, done: _Done) -> None:
        with self._lock:
            box = self._mailboxes.setdefault(loop, _Mailbox())
            box.items.append(done)
            if box.wake_pending:
                return
            box.wake_pending = True
        try:
            loop.call_soon_threadsafe(self._deliver, loop)
        except RuntimeError:  # the loop is closed: nobody is waiting any more
            with self._lock:
                self._mailboxes.pop(loop, None)

    def _deliver(self, loop: asyncio.AbstractEventLoop) -> None:
        with self._lock:
            box = self._mailboxes.pop(loop, None)
        for future, result, error in box.items if box else ():
            if future.cancelled():
                continue
            if error is not None:
                future.set_exception(error)
            else:
                future.set_result(result)
