"""`GET /health/live` and `GET /health/ready`: the probes of a load balancer or Kubernetes.

Both are public (a probe carries no credentials) and say nothing secret: live only that the
process answers, ready which dependency fails and why, with passwords masked.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from baseshift.core.hookspecs import hookimpl

if TYPE_CHECKING:
    from starlette.routing import BaseRoute


@hookimpl
def register_routes() -> list[BaseRoute]:
    from .routes import routes

    return routes()
