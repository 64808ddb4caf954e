"""Plugin state on the application (`App.stash`), typed: a `StashKey[T]` names one entry and
carries its type, so what one plugin stores and another reads cannot disagree unnoticed."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Generic, TypeVar, overload

T = TypeVar("T")


@dataclass(frozen=True)
class StashKey(Generic[T]):
    """The key of one entry of the stash, holding a `T`. Define it once, in the module that
    owns the entry, named after its plugin (`StashKey[Scheduler]("trigger_cron")`): keys are
    equal when their names are. Not slotted: `StashKey[T](name)` sets `__orig_class__`,
    which a frozen slotted dataclass refuses with a TypeError."""

    name: str


class Stash:
    """What plugins keep on the application between hooks, by `StashKey`."""

    def __init__(self) -> None:
        self._values: dict[StashKey[Any], Any] = {}

    def __getitem__(self, key: StashKey[T]) -> T:
        value: T = self._values[key]
        return value

    def __setitem__(self, key: StashKey[T], value: T) -> None:
        self._values[key] = value

    def __contains__(self, key: object) -> bool:
        return key in self._values

    @overload
    def get(self, key: StashKey[T]) -> T | None: ...

    @overload
    def get(self, key: StashKey[T], default: T) -> T: ...

    def get(self, key: StashKey[T], default: T | None = None) -> T | None:
        value: T | None = self._values.get(key, default)
        return value

    def setdefault(self, key: StashKey[T], default: T) -> T:
        value: T = self._values.setdefault(key, default)
        return value

    def pop(self, key: StashKey[T]) -> T | None:
        """Remove the entry and return it (None when there was none)."""
        value: T | None = self._values.pop(key, None)
        return value


SERVING: StashKey[bool] = StashKey("serving")
"""True in an application that serves HTTP (set by the ASGI app, `web/app.py`): what only a
server does (the cron scheduler) starts only then."""
WORKING: StashKey[bool] = StashKey("working")
"""True in the application of a `baseshift worker` (plugins/queue/worker_loop.py): what a
long-running process does beside a server (keeping its own log lines) starts then too."""
