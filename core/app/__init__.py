"""The application layer: the `BaseShift` object that assembles the kernel's components
with the plugins' backends, the workflow catalog, the run service and the command line.

It may import the language front end (`baseshift.dsl`); the kernel (the modules of
`baseshift.core` itself) may not import it, nor anything here. `BaseShift` is imported on
first use (PEP 562), so that `baseshift.core.app.cli` starts without loading the engine."""
from __future__ import annotations

from typing import TYPE_CHECKING

from ..exports import lazy_exports

if TYPE_CHECKING:
    from .application import BaseShift

__all__ = ["BaseShift"]

if not TYPE_CHECKING:
    __getattr__, __dir__ = lazy_exports(globals(), {"application": ("BaseShift",)})
