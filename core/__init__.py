"""Base Shift's core: the public API plugins use (`from baseshift.core import hookimpl`)."""
from __future__ import annotations

from .errors import BaseShiftError, ExecutionError, JobTimeout
from .hookspecs import hookimpl, hookspec
from .protocols import Executor, JobContext, JobResult, StateStore

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
