"""Run limits (`runs N per KEY on conflict POLICY`) applied through the run hooks.

The run service asks this plugin about every new run (`admit_run`), every retry or re-run
(`reopen_run`) and the runs left INITIALIZED at server start and after a server died
(`take_up_runs`); it decides about the runs of workflows that declare a run limit and
leaves the others to the engine. The queues and the follower of live events are the
application's `Admission` (`admission.py`), kept in `baseshift.stash[STASH_KEY]`.
"""
from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

from baseshift.core.hookspecs import hookimpl
from baseshift.core.stash import StashKey

from .admission import Admission

if TYPE_CHECKING:
    from baseshift.core.appface import App
    from baseshift.core.plan import Plan
    from baseshift.core.records import RunRecord

STASH_KEY: StashKey[Admission] = StashKey("run_limits")
"""`baseshift.stash[STASH_KEY]`: the application's Admission (its queues)."""


@hookimpl
def configure(baseshift: App) -> None:
    baseshift.stash[STASH_KEY] = Admission(baseshift)


@hookimpl
async def admit_run(baseshift: App, plan: Plan, inputs: Mapping[str, Any]) -> str | None:
    return await baseshift.stash[STASH_KEY].start(plan, inputs)


@hookimpl
async def reopen_run(baseshift: App, plan: Plan, run: RunRecord,
                     action: Callable[[], Awaitable[None]]) -> bool | None:
    return await baseshift.stash[STASH_KEY].reopen(plan, run, action)


@hookimpl
async def take_up_runs(baseshift: App, runs: list[RunRecord]) -> list[str]:
    return await baseshift.stash[STASH_KEY].take_up(runs)


@hookimpl
async def shutdown(baseshift: App) -> None:
    """Stop following finished runs (queued runs stay stored for the next start)."""
    await baseshift.stash[STASH_KEY].shutdown()
