"""A real Base Shift server for client tests: the app served by Hypercorn on a loopback port,
in a thread of the test process (its own event loop), so a test can reach into its stores
while `baseshift … --server URL` subprocesses talk to it over HTTP(S)."""
from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx

from baseshift.core.app.application import BaseShift
from baseshift.core.settings import Settings
from baseshift.web.app import create_app
from tests.conftest import free_port

T = TypeVar("T")
WAIT = 60.0
"""Upper bound for the server to start or stop; the tests never depend on how fast."""


@dataclass
class Served:
    url: str
    bs: BaseShift
    loop: asyncio.AbstractEventLoop
    notes: dict[str, Any] = field(default_factory=dict)
    """What a fixture made on it for the tests (a user's TOTP generator)."""

    def call(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run a coroutine on the server's loop (its stores live there); its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(WAIT)


@contextmanager
def served(settings: Settings, *, certfile: str | None = None,
           keyfile: str | None = None) -> Iterator[Served]:
    from hypercorn.asyncio import serve
    from hypercorn.config import Config

    port = free_port()
    scheme = "https" if certfile else "http"
    bs = BaseShift(settings)
    app = create_app(baseshift=bs)
    config = Config()
    config.bind = [f"127.0.0.1:{port}"]
    config.graceful_timeout = 1.0
    config.accesslog = None
    if certfile:
        config.certfile, config.keyfile = certfile, keyfile
    started: dict[str, Any] = {}
    ready = threading.Event()

    async def main() -> None:
        started["loop"], started["stop"] = asyncio.get_running_loop(), asyncio.Event()
        ready.set()
        await serve(app, config, shutdown_trigger=started["stop"].wait)  # type: ignore[arg-type]

    thread = threading.Thread(target=asyncio.run, args=(main(),), name="served-app")
    thread.start()
    try:
        assert ready.wait(WAIT)
        url = f"{scheme}://127.0.0.1:{port}"
        _wait_until_up(url, thread)
        yield Served(url, bs, started["loop"])
    finally:
        if "stop" in started:
            started["loop"].call_soon_threadsafe(started["stop"].set)
        thread.join(WAIT)


def _wait_until_up(url: str, thread: threading.Thread) -> None:
    deadline = time.monotonic() + WAIT
    while True:
        assert thread.is_alive(), "the server thread ended"
        assert time.monotonic() < deadline, f"{url} did not start"
        try:
            httpx.get(url + "/.well-known/jwks.json", timeout=2, verify=False)
            return
        except httpx.TransportError:
            time.sleep(0.05)
