"""The process entry point: build the Base Shift application from the environment.

`create_baseshift()` reads BASESHIFT_* settings, loads the builtin and pip-installed plugins
and picks the configured state store. The HTTP server (REST API and web UI, served by
Hypercorn) is built on this object by the server work; the CLI builds the same object.
"""
from __future__ import annotations

from baseshift.core.app import BaseShift
from baseshift.core.settings import Settings


def create_baseshift(settings: Settings | None = None) -> BaseShift:
    """The application as configured by the environment (or by `settings`)."""
    return BaseShift(settings or Settings.from_env())
