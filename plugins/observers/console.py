"""A log line for every run that fails, so that a server's operator sees it happen.

Logged at INFO on `baseshift.runs`: `baseshift serve` shows it (not with `--quiet`); the
commands that run a workflow in the foreground report the failure themselves and show only
warnings, so they print nothing more.

The message names the run, its workflow and the jobs that failed. The first failed job's
error is a field of the line (`error`, in JSON lines only, cut to `ERROR_CHARS`): the text
as the store keeps it, where every secret of the attempt is already masked
(core/attempts.py, core/masking.py). With tracing on, `trace_id` names the run's trace, as
the lines of its steps do. The console text leaves it out: it ends with what the
step printed, and `baseshift show RUN` has it.
"""
from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from baseshift.core.events import Event, RunStateChanged
from baseshift.core.hookspecs import hookimpl
from baseshift.core.states import JobState, RunState
from baseshift.core.tracecontext import TRACE_URL, run_trace_id

if TYPE_CHECKING:
    from collections.abc import Awaitable

    from baseshift.core.appface import App

log = logging.getLogger("baseshift.runs")

ERROR_CHARS = 1000
"""At most this much of the failed job's error goes into the line."""


@hookimpl
def track_event(baseshift: App, event: Event) -> Awaitable[None] | None:
    """A coroutine that logs a failed run; None for any other event (not a coroutine made
    and awaited for each of a fan-out's thousands of job events)."""
    if not (isinstance(event, RunStateChanged) and event.new is RunState.FAILED
            and log.isEnabledFor(logging.INFO)):
        return None
    return _failed(baseshift, event)


async def _failed(baseshift: App, event: RunStateChanged) -> None:
    """Its failed jobs are read from the store (not gathered from job events in this
    process: a run may finish in another server, and nothing is kept per run)."""
    snapshot = await baseshift.runs.snapshot(event.run_id, attempts=False)
    failed = {key: job for key, job in snapshot.jobs.items() if job.state is JobState.FAILED}
    jobs = list(failed)
    named = f" (job{'s' if len(jobs) > 1 else ''} {', '.join(jobs)})" if jobs else ""
    error = next((job.error for job in failed.values() if job.error), None)
    error = error or snapshot.run.error  # stored, so masked
    traced = ({"trace_id": run_trace_id(event.run_id)} if TRACE_URL in baseshift.stash
              else {})  # the run's trace, as its steps' lines name it
    log.info("run %s of workflow %s failed%s; `baseshift show %s` gives the reasons",
             event.run_id, event.workflow, named, event.run_id,
             extra={"event": "run.failed", "run_id": event.run_id,
                    "workflow": event.workflow, "jobs": jobs,
                    "error": None if error is None else error[:ERROR_CHARS], **traced})
