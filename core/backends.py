"""The kinds of backend settings choose, and the registry that chooses one of each from what
`register_backends` offers: the only place a backend is picked by its name."""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from .errors import ConfigError
from .registry import Backend

if TYPE_CHECKING:
    from .cache import Cache
    from .hooks import Hooks
    from .protocols import AttemptQueue, StateStore
    from .settings import Settings
    from .templatestore import TemplateStore

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class BackendKind(Generic[T]):
    """One kind of backend, building a `T`: the `kind` plugins offer it under, the setting
    naming the chosen one, and the names the core handles itself with no backend at all
    (`local`, `none`). An `optional` kind no plugin offers has no backend either."""

    kind: str
    setting: str
    builtin: tuple[str, ...] = ()
    optional: bool = False


STATE: BackendKind[StateStore] = BackendKind("state", "store")
CACHE: BackendKind[Cache] = BackendKind("cache", "cache")
TEMPLATES: BackendKind[TemplateStore] = BackendKind("templates", "templates", optional=True)
QUEUE: BackendKind[AttemptQueue] = BackendKind("queue", "queue", builtin=("local",))
LIVE: BackendKind[object] = BackendKind("live", "live", builtin=("local",))
"""Live status for other processes: built at once and registered as a plugin (its hooks)."""
RESULTS: BackendKind[object] = BackendKind("results", "results", builtin=("none",))
"""Job results kept elsewhere too: built at once and registered as a plugin (its hooks)."""
KINDS: tuple[BackendKind[Any], ...] = (STATE, CACHE, TEMPLATES, QUEUE, LIVE, RESULTS)
OBSERVERS: tuple[BackendKind[object], ...] = (LIVE, RESULTS)
"""Kinds whose backends work through hooks (`track_event`, `startup`...), not calls."""


class BackendRegistry:
    """The backend settings choose of every kind, chosen at once (an unknown name or a
    missing driver is an error before anything starts) and imported only when built."""

    def __init__(self, settings: Settings, hooks: Hooks) -> None:
        self.settings = settings
        self._chosen = {kind.kind: _choose(settings, kind, hooks.backends(kind.kind))
                        for kind in KINDS}

    def chosen(self, kind: BackendKind[Any]) -> Backend | None:
        """The reference settings chose for `kind`; None for a builtin name."""
        return self._chosen[kind.kind]

    def build(self, kind: BackendKind[T]) -> T | None:
        """A new backend of `kind` from the settings (None where the core needs none)."""
        ref = self._chosen[kind.kind]
        if ref is None:
            return None
        built: T = ref.load().from_settings(self.settings)
        return built


def _choose(settings: Settings, kind: BackendKind[Any],
            offered: dict[str, Backend]) -> Backend | None:
    """What plugins offer under the name `kind.setting` holds (None for a builtin name, or
    an optional kind nobody offers); checks that its driver is installed, imports nothing."""
    chosen = getattr(settings, kind.setting)
    if chosen in kind.builtin or (kind.optional and not offered):
        return None
    ref = offered.get(chosen)
    if ref is None:
        names = [*kind.builtin, *sorted(offered)]
        raise ConfigError(f"Config '{kind.setting}' has value {chosen!r}. "
                          f"Not one of: {', '.join(names) or '(none installed)'}.")
    if ref.requires is not None:
        ref.requires.check(f"{kind.setting} = {chosen!r}")
    return ref
