"""Login throttling: after a few failures, a user name or a client address must wait, twice
as long after each further failure (up to a quarter of an hour), so guessing passwords or
TOTP codes online takes years. Kept per process: each server of a fleet throttles alone,
which multiplies an attacker's rate by the number of servers, not more."""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

from baseshift.core.errors import BaseShiftError

FREE_FAILURES = 5
"""Failures allowed before any wait (typos happen)."""
MAX_WAIT = 900.0
FORGET_AFTER = 3600.0
"""A key with no failure for this long starts over."""


class TooManyAttempts(BaseShiftError):
    code: ClassVar[str] = "auth.throttled"
    status: ClassVar[int] = 429

    def __init__(self, wait: float) -> None:
        super().__init__("too many failed sign-in attempts; try again later",
                         hint=f"wait {int(wait) + 1} seconds", details={"retry_after":
                                                                        int(wait) + 1})


@dataclass(slots=True)
class _Failures:
    count: int = 0
    last: float = 0.0


class Throttle:
    """Failure counts by key (`user:NAME`, `client:ADDRESS`)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._failures: dict[str, _Failures] = {}

    def check(self, *keys: str) -> None:
        """Raise `TooManyAttempts` while any key must still wait."""
        now = self.clock()
        wait = max((self._wait(key, now) for key in keys), default=0.0)
        if wait > 0:
            raise TooManyAttempts(wait)

    def _wait(self, key: str, now: float) -> float:
        failures = self._failures.get(key)
        if failures is None or failures.count < FREE_FAILURES:
            return 0.0
        if now - failures.last > FORGET_AFTER:
            del self._failures[key]
            return 0.0
        delay = min(MAX_WAIT, 2.0 ** (failures.count - FREE_FAILURES))
        return max(0.0, failures.last + delay - now)

    def failed(self, *keys: str) -> None:
        now = self.clock()
        if len(self._failures) > 100_000:  # a flood of made-up names must not eat memory
            self._failures = {k: f for k, f in self._failures.items()
                              if now - f.last <= FORGET_AFTER}
        for key in keys:
            failures = self._failures.setdefault(key, _Failures())
            failures.count += 1
            failures.last = now

    def succeeded(self, *keys: str) -> None:
        for key in keys:
            self._failures.pop(key, None)
