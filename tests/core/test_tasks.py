"""The retry backoff of background tasks: it grows to its longest wait, and a server that
accepts a connection and drops it at once never earns a quick retry (a hot loop)."""
from __future__ import annotations

from baseshift.core.tasks import Backoff


def test_the_backoff_grows_to_its_longest_wait() -> None:
    backoff = Backoff(0.1, 5.0)
    assert [backoff.next() for _ in range(8)] == [0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 5.0, 5.0]


def test_a_connection_dropped_at_once_keeps_the_slow_pace() -> None:
    """A database that accepts and drops connections must not be retried in a hot loop."""
    backoff = Backoff(0.1, 5.0)
    for _ in range(6):
        backoff.next()
        backoff.connected_for(0.01)
    assert backoff.next() == 5.0
    backoff.connected_for(5.0)  # a stable connection earns a quick first retry
    assert backoff.next() == 0.1


def test_a_try_that_worked_starts_the_waits_again() -> None:
    backoff = Backoff(0.5, 30.0)
    assert [backoff.next() for _ in range(3)] == [0.5, 1.0, 2.0]
    backoff.reset()
    assert backoff.next() == 0.5
