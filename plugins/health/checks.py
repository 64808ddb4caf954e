"""The readiness checks: each dependency answers a trivial request within a short timeout.

A check returns None when the dependency answers, else the reason it does not, with every
password inside a URL masked: the readiness answer is public.
"""
from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from baseshift.core.appface import App
from baseshift.core.config import masked
from baseshift.core.protocols import Pingable

TIMEOUT = 2.0
"""Seconds each check may take: a hung database makes readiness fail, not hang."""

PROBE_RUN = "health-check"
"""The run id the state store is asked about: a primary-key lookup that finds nothing."""


@dataclass(frozen=True, slots=True)
class Check:
    """One dependency's answer: its name, and why it failed (None: it answered)."""

    name: str
    reason: str | None = None

    @property
    def ok(self) -> bool:
        return self.reason is None

    def to_json(self) -> dict[str, str]:
        body = {"name": self.name, "status": "ok" if self.ok else "failed"}
        if self.reason is not None:
            body["reason"] = self.reason
        return body


async def _bounded(name: str, probe: Callable[[], Awaitable[object]],
                   timeout: float) -> Check:
    try:
        await asyncio.wait_for(probe(), timeout)
    except TimeoutError:
        return Check(name, f"no answer within {timeout:g} s")
    except Exception as exc:  # any failure is the answer, shown without secrets
        text = " ".join(str(exc).split()) or type(exc).__name__
        return Check(name, str(masked(text))[:500])
    return Check(name)


async def readiness(bs: App, timeout: float = TIMEOUT) -> list[Check]:
    """Every check of `bs`, run together: the state store, the work queue (when one is
    configured), Redis (when `redis_url` is set) and the workflow catalog."""
    probes: dict[str, Callable[[], Awaitable[object]]] = {
        "store": lambda: bs.store.run_states([PROBE_RUN])}
    queue = bs.queue
    if isinstance(queue, Pingable):
        probes["queue"] = queue.ping
    if bs.settings.redis_url:
        url = bs.settings.redis_url
        probes["redis"] = lambda: _ping_redis(url, timeout)
    checks = list(await asyncio.gather(*(_bounded(n, p, timeout) for n, p in probes.items())))
    catalog = bs.catalog
    checks.append(Check("workflows") if catalog.generation
                  else Check("workflows", "the workflow catalog is not loaded yet"))
    return checks


async def _ping_redis(url: str, timeout: float) -> None:
    """PING on a connection of its own: the backends' clients retry and reconnect, which
    would hide an outage behind their back-off."""
    import redis.asyncio as aioredis

    client = aioredis.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout)
    try:
        await client.ping()
    finally:
        await client.aclose()
