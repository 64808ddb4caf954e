"""The analytics API: run and workflow performance, job success rates and durations, and the
Insights figures (the views are in `analytics_routes`, imported only when a server builds its
routes); in a server, the sampling of queue depth and scheduler lag (`insights`).

The views ask the state store for `RunAnalytics`; a server whose store lacks them does not
start (a CLI command, which serves no API, does not care)."""
from __future__ import annotations

from typing import TYPE_CHECKING

from baseshift.core.events import Event
from baseshift.core.hookspecs import hookimpl
from baseshift.core.stash import SERVING

from .analytics_store import analytics
from .insights import SAMPLES, samples_of

if TYPE_CHECKING:
    from collections.abc import Sequence

    from starlette.routing import BaseRoute

    from baseshift.core.appface import App


@hookimpl
def startup(baseshift: App) -> None:
    """In a server, check that the store answers analytics queries before anything runs,
    and start sampling the queue depth and scheduler lag."""
    if baseshift.stash.get(SERVING):
        analytics(baseshift.store)
        samples_of(baseshift).start()


@hookimpl
async def shutdown(baseshift: App) -> None:
    samples = baseshift.stash.pop(SAMPLES)
    if samples is not None:
        await samples.stop()


@hookimpl
def track_events(baseshift: App, events: Sequence[Event]) -> None:
    """Follow jobs ready but not started, for the scheduler lag of the Insights samples
    (in a server: a command that serves nothing keeps no samples)."""
    samples = baseshift.stash.get(SAMPLES)
    if samples is not None:
        samples.ready.observe_all(events)


@hookimpl
def register_routes() -> list[BaseRoute]:
    from .analytics_routes import routes

    return routes()
