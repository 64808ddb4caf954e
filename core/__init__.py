"""Base Shift's core: the public API plugins use (`from baseshift.core import hookimpl`).

The names are imported on first use (PEP 562), so importing a submodule such as
`baseshift.core.app.cli` does not load the engine's types."""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .errors import BaseShiftError, ExecutionError, JobTimeout
    from .hookspecs import hookimpl, hookspec
    from .protocols import Executor, JobContext, JobResult, StateStore

_WHERE = {
    "BaseShiftError": "errors", "ExecutionError": "errors", "JobTimeout": "errors",
    "hookimpl": "hookspecs", "hookspec": "hookspecs",
    "Executor": "protocols", "JobContext": "protocols", "JobResult": "protocols",
    "StateStore": "protocols",
}

__all__ = [
    "BaseShiftError",
    "ExecutionError",
    "Executor",
    "JobContext",
    "JobResult",
    "JobTimeout",
    "StateStore",
    "hookimpl",
    "hookspec",
]


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
