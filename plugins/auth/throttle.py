"""Login throttling: after a few failures, a user name or a client address must wait, twice
as long after each further failure (up to a quarter of an hour), so guessing passwords or
TOTP codes online takes years.

The failures are counted from the audit trail, where every refused sign-in is an entry
(`auth.login`, outcome `failure`): every server of a fleet writes to the same trail, so
they throttle together, and a restart forgets nothing. A success ends the count. Attempts
refused while waiting are audited as `auth.throttled` and do not count (waiting out the
delay is enough; hammering meanwhile does not reset it either)."""
from __future__ import annotations

import time
from collections.abc import Callable
from typing import ClassVar

from baseshift.core.audit import SUCCESS, AuditLog, AuditQuery
from baseshift.core.errors import BaseShiftError

FREE_FAILURES = 5
"""Failures allowed before any wait (typos happen)."""
MAX_WAIT = 900.0
FORGET_AFTER = 3600.0
"""Failures older than this no longer count."""
LOGIN = "auth.login"
THROTTLED = "auth.throttled"
LOOKBACK = FREE_FAILURES + 11
"""Entries read per key: enough failures to reach MAX_WAIT (2 ** 10 > 900)."""


class TooManyAttempts(BaseShiftError):
    code: ClassVar[str] = "auth.throttled"
    status: ClassVar[int] = 429

    def __init__(self, wait: float) -> None:
        super().__init__("too many failed sign-in attempts; try again later",
                         hint=f"wait {int(wait) + 1} seconds", details={"retry_after":
                                                                        int(wait) + 1})


def wait_after(failures: int, last: float, now: float) -> float:
    """Seconds still to wait after `failures` in a row, the last at `last`."""
    if failures < FREE_FAILURES:
        return 0.0
    delay = min(MAX_WAIT, 2.0 ** (failures - FREE_FAILURES))
    return max(0.0, last + delay - now)


class Throttle:
    """Reads the failures of a user name and of a client address from `trail`."""

    def __init__(self, trail: AuditLog, clock: Callable[[], float] = time.time) -> None:
        self.trail = trail
        self.clock = clock

    async def check(self, username: str, client: str | None) -> None:
        """Raise `TooManyAttempts` while the name or the address must still wait."""
        now = self.clock()
        queries = [AuditQuery(action=LOGIN, resource=f"user:{username[:100]}",
                              since=now - FORGET_AFTER, limit=LOOKBACK)]
        if client:
            queries.append(AuditQuery(action=LOGIN, client=client, since=now - FORGET_AFTER,
                                      limit=LOOKBACK))
        wait = max([await self._wait(q, now) for q in queries])
        if wait > 0:
            raise TooManyAttempts(wait)

    async def _wait(self, query: AuditQuery, now: float) -> float:
        failures, last = 0, 0.0
        for record in await self.trail.audit_page(query):  # newest first
            if record.entry.outcome == SUCCESS:
                break
            failures += 1
            last = max(last, record.entry.at)
        return wait_after(failures, last, now)
