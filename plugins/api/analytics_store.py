"""The state store's analytics queries, or the configuration error that says the chosen
store has none: shared by the analytics plugin's start-up check and its views."""
from __future__ import annotations

from baseshift.core.capabilities import missing_ability
from baseshift.core.protocols import RunAnalytics, StateStore


def analytics(store: StateStore) -> RunAnalytics:
    """The store's analytics queries; a ConfigError naming the store when it has none."""
    if not isinstance(store, RunAnalytics):
        raise missing_ability(store, "answer analytics queries (RunAnalytics)",
                              "the analytics API (plugin api_analytics)",
                              "choose a store that has them, or disable plugin api_analytics")
    return store
