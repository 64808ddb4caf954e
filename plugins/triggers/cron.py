"""Cron schedules for the server: runs the scheduler (`scheduler.py`) while it serves.

Acts only in a server (`baseshift.stash[SERVING]`, set by the ASGI app): a CLI run of one
workflow never fires schedules. Options in `settings.extra["trigger_cron"]`: `clock` (an
object with `now()` and `async sleep(seconds)`, for tests), `grace`, `max_catch_up`,
`recheck` (see `scheduler.py`).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from baseshift.core.hookspecs import hookimpl
from baseshift.core.stash import SERVING, StashKey

from .scheduler import GRACE, MAX_CATCH_UP, RECHECK, Scheduler

if TYPE_CHECKING:
    from baseshift.core.appface import App

OPTIONS = "trigger_cron"
"""The plugin's table of options in `settings.extra`."""
STASH_KEY: StashKey[Scheduler] = StashKey("trigger_cron")
"""`baseshift.stash[STASH_KEY]`: the running Scheduler."""


@hookimpl
def startup(baseshift: App) -> None:
    """Start the scheduler task (it first ticks once the event loop gets to it)."""
    if not baseshift.stash.get(SERVING) or STASH_KEY in baseshift.stash:
        return
    options: dict[str, Any] = dict(baseshift.settings.extra.get(OPTIONS) or {})
    scheduler = Scheduler(baseshift, clock=options.get("clock"),
                          grace=float(options.get("grace", GRACE)),
                          max_catch_up=int(options.get("max_catch_up", MAX_CATCH_UP)),
                          recheck=float(options.get("recheck", RECHECK)))
    baseshift.stash[STASH_KEY] = scheduler
    scheduler.start()


@hookimpl
async def shutdown(baseshift: App) -> None:
    scheduler = baseshift.stash.pop(STASH_KEY)
    if scheduler is not None:
        await scheduler.stop()
