"""Feeds stored engine events to the application's live event hub (`baseshift.live`)."""
from __future__ import annotations

from typing import TYPE_CHECKING

from baseshift.core.hookspecs import hookimpl

if TYPE_CHECKING:
    from baseshift.core.appface import App
    from baseshift.core.events import Event


@hookimpl
def track_event(baseshift: App, event: Event) -> None:
    if baseshift.live.subscribers:
        baseshift.live.publish(event)
