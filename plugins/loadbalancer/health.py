"""Health of the registered servers: `GET /health/ready` on each. A 2xx answer is up and a
503 is down (the server says it is not ready); a server without that route (another answer,
404 included) counts as up because it answered HTTP at all; a refused or timed-out
connection is down."""
from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .nginx import Server
from .registry import Registry

if TYPE_CHECKING:  # imported when servers are probed: not at every command's start
    import httpx

log = logging.getLogger("baseshift.loadbalancer")

READY_PATH = "/health/ready"


@dataclass(frozen=True, slots=True)
class Health:
    up: bool
    detail: str
    checked_at: float


async def probe(client: httpx.AsyncClient, address: str) -> Health:
    import httpx

    url = f"http://{address}{READY_PATH}"
    try:
        answer = await client.get(url)
    except httpx.HTTPError as exc:
        return Health(False, f"no answer: {type(exc).__name__}", time.time())
    if answer.status_code == 503:
        return Health(False, f"{READY_PATH} answered 503: not ready", time.time())
    if answer.is_success:
        return Health(True, f"{READY_PATH} answered {answer.status_code}", time.time())
    return Health(True, f"answered HTTP {answer.status_code} ({READY_PATH} not served)",
                  time.time())


async def probe_all(servers: list[Server], timeout: float) -> dict[str, Health]:
    import httpx

    async with httpx.AsyncClient(timeout=timeout, follow_redirects=False) as client:
        found = await asyncio.gather(*(probe(client, s.address) for s in servers))
    return {s.address: h for s, h in zip(servers, found, strict=True)}


class HealthChecker:
    """Probes the servers every `interval` seconds in a server process; the status route
    uses the last results while they are fresh and probes itself otherwise."""

    def __init__(self, load: Callable[[], Awaitable[Registry]], interval: float) -> None:
        self._load = load
        self.interval = interval
        self.results: dict[str, Health] = {}
        self._task: asyncio.Task[None] | None = None

    def timeout(self) -> float:
        return min(self.interval, 5.0)

    def fresh(self, servers: list[Server]) -> dict[str, Health] | None:
        now = time.time()
        picked = {s.address: self.results.get(s.address) for s in servers}
        if any(h is None or now - h.checked_at > self.interval for h in picked.values()):
            return None
        return {a: h for a, h in picked.items() if h is not None}

    async def check(self, servers: list[Server]) -> dict[str, Health]:
        found = await probe_all(servers, self.timeout())
        for address, health in found.items():
            before = self.results.get(address)
            if before is not None and before.up != health.up:
                log.warning("load balancer: %s is %s (%s)", address,
                            "up" if health.up else "down", health.detail)
        self.results = found
        return found

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="loadbalancer-health")

    async def _loop(self) -> None:
        while True:
            try:
                registry = await self._load()
                await self.check(registry.servers)
            except Exception:  # a store outage must not end the checks
                log.exception("load balancer health check failed")
            await asyncio.sleep(self.interval)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
