"""The analytics API: run and workflow performance, job success rates and durations (the views
are in `analytics_routes`, imported only when a server builds its routes).

The views ask the state store for `RunAnalytics`; a server whose store lacks them does not
start (a CLI command, which serves no API, does not care)."""
from __future__ import annotations

from typing import TYPE_CHECKING

from baseshift.core.capabilities import missing_ability
from baseshift.core.hookspecs import hookimpl
from baseshift.core.protocols import RunAnalytics
from baseshift.core.stash import SERVING

if TYPE_CHECKING:
    from starlette.routing import BaseRoute

    from baseshift.core.appface import App
    from baseshift.core.protocols import StateStore


def analytics(store: StateStore) -> RunAnalytics:
    """The store's analytics queries; a ConfigError naming the store when it has none."""
    if not isinstance(store, RunAnalytics):
        raise missing_ability(store, "answer analytics queries (RunAnalytics)",
                              "the analytics API (plugin api_analytics)",
                              "choose a store that has them, or disable plugin api_analytics")
    return store


@hookimpl
def startup(baseshift: App) -> None:
    """In a server, check that the store answers analytics queries before anything runs."""
    if baseshift.stash.get(SERVING):
        analytics(baseshift.store)


@hookimpl
def register_routes() -> list[BaseRoute]:
    from .analytics_routes import routes

    return routes()
