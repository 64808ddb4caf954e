"""Where an application keeps its tracing: read by the tracing plugin and by the plugins that
make spans of their own (the gRPC executor and service), without importing OpenTelemetry
when tracing is off."""
from __future__ import annotations

from typing import TYPE_CHECKING

from baseshift.core.stash import StashKey

if TYPE_CHECKING:
    from baseshift.core.appface import App

    from .spans import Tracing

TRACING: StashKey[Tracing] = StashKey("tracing")


def tracing_of(bs: App) -> Tracing | None:
    """The application's tracing, or None when it is off."""
    return bs.stash.get(TRACING)
