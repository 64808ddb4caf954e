"""A console line for every run that fails, so that a server's operator sees it happen.

Logged at INFO on `baseshift.runs`: `baseshift serve` shows it (not with `--quiet`); the
commands that run a workflow in the foreground report the failure themselves and show only
warnings, so they print nothing more.
"""
from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from baseshift.core.events import Event, RunStateChanged
from baseshift.core.hookspecs import hookimpl
from baseshift.core.states import RunState

if TYPE_CHECKING:
    from baseshift.core.app import BaseShift

log = logging.getLogger("baseshift.runs")


@hookimpl
def track_event(baseshift: BaseShift, event: Event) -> None:
    if (isinstance(event, RunStateChanged) and event.new is RunState.FAILED
            and log.isEnabledFor(logging.INFO)):
        log.info("run %s of workflow %s failed: %s", event.run_id, event.workflow,
                 event.error or "a job failed")
