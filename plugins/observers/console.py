"""A console line for every run that fails, so that a server's operator sees it happen.

Logged at INFO on `baseshift.runs`: `baseshift serve` shows it (not with `--quiet`); the
commands that run a workflow in the foreground report the failure themselves and show only
warnings, so they print nothing more.

The line names the run, its workflow and the jobs that failed, never their error text: that
text ends with what the step printed, which may hold a secret, and a server's log is often
shipped and kept where the run's own record is not. `baseshift show RUN` has the reasons.
"""
from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from baseshift.core.events import Event, RunStateChanged
from baseshift.core.hookspecs import hookimpl
from baseshift.core.states import JobState, RunState

if TYPE_CHECKING:
    from baseshift.core.appface import App

log = logging.getLogger("baseshift.runs")


@hookimpl
async def track_event(baseshift: App, event: Event) -> None:
    """On a failed run, its failed jobs are read from the store (not gathered from job events
    in this process: a run may finish in another server, and nothing is kept per run)."""
    if not (isinstance(event, RunStateChanged) and event.new is RunState.FAILED
            and log.isEnabledFor(logging.INFO)):
        return
    snapshot = await baseshift.runs.snapshot(event.run_id, attempts=False)
    jobs = [key for key, job in snapshot.jobs.items() if job.state is JobState.FAILED]
    named = f" (job{'s' if len(jobs) > 1 else ''} {', '.join(jobs)})" if jobs else ""
    log.info("run %s of workflow %s failed%s; `baseshift show %s` gives the reasons",
             event.run_id, event.workflow, named, event.run_id)
