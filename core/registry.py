"""Lazy references to what plugins offer, so a backend nobody chose is never imported.

`register_backends` returns `Backend`s: a kind, a name and the import path of the class. The
class (and the driver it needs: psycopg, redis, pymongo ...) is imported only when settings
choose that backend, and a driver that is not installed is a `ConfigError` naming the
`pip install` command that adds it, never an ImportError traceback.
"""
from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from .errors import ConfigError

if TYPE_CHECKING:
    from .settings import Settings


@dataclass(frozen=True, slots=True)
class Requirement:
    """Python modules an optional feature needs, and the command that installs them."""

    modules: tuple[str, ...]
    install: str
    """What to run when one is missing, e.g. `pip install 'baseshift[postgres]'`."""

    def missing(self) -> list[str]:
        """The modules that are not installed (checked without importing them)."""
        return [m for m in self.modules if not _installed(m)]

    def check(self, what: str) -> None:
        """Raise ConfigError naming `what` and the install command if a module is missing."""
        absent = self.missing()
        if absent:
            raise ConfigError(f"{what} needs {', '.join(absent)}, which is not installed",
                              hint=f"install it with: {self.install}")


def extra(name: str, *modules: str) -> Requirement:
    """The requirement met by the builtin extra `baseshift[name]`."""
    return Requirement(modules, f"pip install 'baseshift[{name}]'")


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a parent package is missing, or a broken stub
        return False


class BackendClass(Protocol):
    """What a `Backend` reference loads: a class offered for a `kind` under a `name`, built
    with `from_settings` (into a `StateStore`, a `Cache` ... as its kind says)."""

    kind: ClassVar[str]
    name: ClassVar[str]

    @classmethod
    def from_settings(cls, settings: Settings) -> Any: ...


@dataclass(frozen=True, slots=True)
class Backend:
    """A backend a plugin offers: chosen by settings per `kind` by `name`, built with
    `load().from_settings(settings)`.

    `target` is `"package.module:ClassName"`, imported by `load`, or (for a class a plugin
    offered itself) the class; `requires` lists the drivers it needs."""

    kind: str
    name: str
    target: str | type[BackendClass]
    requires: Requirement | None = None

    @classmethod
    def of(cls, offered: Backend | type[BackendClass]) -> Backend:
        """What `register_backends` returned, as a reference: a class offered directly (as
        plugins written before lazy references do) is its own target."""
        if isinstance(offered, Backend):
            return offered
        return cls(offered.kind, offered.name, offered)

    def load(self) -> type[BackendClass]:
        """Import and return the backend class (ConfigError if its driver is missing)."""
        if self.requires is not None:
            self.requires.check(f"the {self.kind} backend '{self.name}'")
        if not isinstance(self.target, str):
            return self.target
        module, _, attr = self.target.partition(":")
        loaded: type[BackendClass] = getattr(importlib.import_module(module), attr)
        return loaded


Offered = Backend | type[BackendClass]
"""What `register_backends` returns a list of."""
