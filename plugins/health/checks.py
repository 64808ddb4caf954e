"""The readiness checks: each dependency answers a trivial request within a short timeout.

A check returns None when the dependency answers, else the reason it does not, with every
password inside a URL masked: the readiness answer is public.

The store and the queue are asked on the sessions the application itself uses. Cancelling a
query half-way could leave such a session unusable, so a probe that outlives its timeout is
not cancelled: it goes on in the background, the check fails at once, and the next
readiness request waits for that same probe instead of queueing another one behind it.
"""
from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from baseshift.core.appface import App
from baseshift.core.config import masked
from baseshift.core.protocols import Pingable
from baseshift.core.stash import StashKey

TIMEOUT = 2.0
"""Seconds each check may take: a hung database makes readiness fail, not hang."""

PROBE_RUN = "health-check"
"""The run id the state store is asked about: a primary-key lookup that finds nothing."""

Probe = Callable[[], Awaitable[object]]


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


@dataclass
class InFlight:
    """The probes of shared sessions still running, by check name (one at most each)."""

    running: dict[str, asyncio.Task[object]] = field(default_factory=dict)

    def task(self, name: str, probe: Probe) -> asyncio.Task[object]:
        task = self.running.get(name)
        if task is None or task.done():
            task = asyncio.ensure_future(probe())
            task.add_done_callback(_retrieved)
            self.running[name] = task
        return task


IN_FLIGHT: StashKey[InFlight] = StashKey("health")


def _retrieved(task: asyncio.Task[object]) -> None:
    """Its outcome was reported by a check, or nobody waits for it any more."""
    if not task.cancelled():
        task.exception()


async def _bounded(name: str, answer: Awaitable[object], timeout: float) -> Check:
    try:
        await asyncio.wait_for(answer, timeout)
    except TimeoutError:
        return Check(name, f"no answer within {timeout:g} s")
    except Exception as exc:  # any failure is the answer, shown without secrets
        text = " ".join(str(exc).split()) or type(exc).__name__
        return Check(name, str(masked(text))[:500])
    return Check(name)


async def readiness(bs: App, timeout: float = TIMEOUT) -> list[Check]:
    """Every check of `bs`, run together: the state store, the work queue (when one is
    configured), Redis (when `redis_url` is set) and the workflow catalog."""
    shared: dict[str, Probe] = {"store": lambda: bs.store.run_states([PROBE_RUN])}
    queue = bs.queue
    if isinstance(queue, Pingable):
        shared["queue"] = queue.ping
    flying = bs.stash.setdefault(IN_FLIGHT, InFlight())
    answers: dict[str, Awaitable[object]] = {
        name: asyncio.shield(flying.task(name, probe)) for name, probe in shared.items()}
    if bs.settings.redis_url:
        answers["redis"] = _ping_redis(bs.settings.redis_url, timeout)
    checks = list(await asyncio.gather(*(_bounded(n, a, timeout) for n, a in answers.items())))
    catalog = bs.catalog
    checks.append(Check("workflows") if catalog.generation
                  else Check("workflows", "the workflow catalog is not loaded yet"))
    return checks


async def _ping_redis(url: str, timeout: float) -> None:
    """PING on a connection of its own (closed after, cancelled safely): the backends'
    clients retry and reconnect, which would hide an outage behind their back-off."""
    import redis.asyncio as aioredis

    client = aioredis.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout)
    try:
        await client.ping()
    finally:
        await client.aclose()
