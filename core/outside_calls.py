"""Jobs that wait for an outside call: whether a job does, and handing it the call.

An executor with `accept` (`AcceptsCalls`, such as `manual`) keeps its attempt RUNNING until
the API's complete or fail arrives. The call must reach the process whose attempt is
waiting, so such jobs always run in the process executing their run.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from . import audit
from .attempt_tasks import AttemptTasks
from .audit import AuditEntry
from .errors import Conflict
from .executors import Executors
from .protocols import AcceptsCalls
from .runstate import ActiveRun


class OutsideCalls:
    """The jobs of the runs executed here whose executor waits for outside calls."""

    def __init__(self, runs: Mapping[str, ActiveRun], executors: Executors,
                 tasks: AttemptTasks) -> None:
        self._runs = runs
        self._executors = executors
        self._tasks = tasks
        self._audit: dict[tuple[str, str], AuditEntry] = {}

    def waits_for_calls(self, run_id: str, key: str) -> bool:
        """Whether the job runs here with an executor that outside calls finish."""
        return self._acceptor(run_id, key) is not None

    def deliver(self, run_id: str, key: str, *, output: Any, error: str | None) -> None:
        """Finish the waiting attempt of a job: the API's complete/fail. Conflict if no
        attempt of it is waiting here."""
        accept = self._acceptor(run_id, key)
        if accept is None or not self._tasks.running(run_id, key):
            raise Conflict(f"job '{key}' of run '{run_id}' is not waiting for a result here",
                           hint="only jobs that use an executor waiting for outside calls "
                           "(such as `manual`) can be completed or failed")
        self._audit[(run_id, key)] = audit.entry(
            "run.approve" if error is None else "run.reject", f"run:{run_id}", job=key)
        accept.accept(run_id, key, output, error)

    def delivered(self, run_id: str, key: str) -> list[AuditEntry]:
        """The audit entry of the call delivered to the attempt of `key` that just ended
        (none when it ended otherwise), stored with the round that records its result."""
        found = self._audit.pop((run_id, key), None)
        return [] if found is None else [found]

    def _acceptor(self, run_id: str, key: str) -> AcceptsCalls | None:
        run = self._runs.get(run_id)
        if run is None or key not in run.jobs:
            return None
        return self._executors.acceptor(run.plan.job(run.jobs[key].name).uses)
