"""What the Insights tests share: runs written straight into the store at chosen times (so
the hours and durations are known), and an HTML reader listing every element with its
attributes (the page and its SVG, as a browser's parser would see them)."""
from __future__ import annotations

import time
from html.parser import HTMLParser
from typing import Any

from baseshift.core.states import RunState
from tests.plugins.store_records import a_run

HOUR = 3600


class Elements(HTMLParser):
    """Every start tag as (tag, attributes), in document order."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.found.append((tag, dict(attrs)))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)


def elements(html: str) -> list[tuple[str, dict[str, str | None]]]:
    parser = Elements()
    parser.feed(html)
    parser.close()
    return parser.found


async def seed_runs(store: Any, now: float | None = None,
                    names: tuple[str, str] = ("alpha", "beta")) -> float:
    """Runs of two workflows in the current hour and two hours before: `names[0]` 3
    completed (1, 2, 4 s) and 1 failed (8 s), `names[1]` 1 failed (10 s) and 1 running.
    Returns the `now` used."""
    now = time.time() if now is None else now
    hour = now // HOUR * HOUR
    a, b = names
    specs = [(a, hour + 1, RunState.COMPLETED, 1.0), (a, hour + 2, RunState.COMPLETED, 2.0),
             (a, hour - 2 * HOUR + 5, RunState.COMPLETED, 4.0),
             (a, hour - 2 * HOUR + 6, RunState.FAILED, 8.0),
             (b, hour - 2 * HOUR + 7, RunState.FAILED, 10.0), (b, hour + 3, RunState.RUNNING, None)]
    for i, (workflow, created, state, duration) in enumerate(specs):
        created = min(created, now)
        times = ({} if duration is None else
                 {"started_at": created, "ended_at": created + duration})
        await store.create_run(a_run(f"seed{i}", workflow=workflow, created_at=created,
                                     state=state, **times), [])
    return now
