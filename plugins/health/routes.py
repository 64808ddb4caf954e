"""The health routes (see plugin.py)."""
from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from baseshift.core.instance import instance_id
from baseshift.web.access import public
from baseshift.web.problems import problem
from baseshift.web.requests import baseshift_of
from baseshift.web.responses import JSONResponse

from .checks import readiness

LIVE, READY = "/health/live", "/health/ready"


@public("a liveness probe carries no credentials; it says only that the process answers "
        "(and which one: a random instance id made at its start, so the processes of `serve "
        "--processes N` can be told apart without giving anyone a fact of the host)")
async def live(request: Request) -> Response:
    return JSONResponse({"status": "ok", "instance": instance_id()},
                        headers={"Cache-Control": "no-store"})


@public("a readiness probe carries no credentials; failures name the dependency and its "
        "reason, with passwords masked")
async def ready(request: Request) -> Response:
    checks = await readiness(baseshift_of(request))
    shown = [c.to_json() for c in checks]
    failed = [c for c in checks if not c.ok]
    if failed:
        response = problem(503, "not ready: " + ", ".join(c.name for c in failed),
                           code="health.not-ready", checks=shown)
        response.headers["Cache-Control"] = "no-store"
        return response
    return JSONResponse({"status": "ok", "checks": shown}, headers={"Cache-Control": "no-store"})


def routes() -> list[BaseRoute]:
    return [Route(LIVE, live, methods=["GET"], name="health:live"),
            Route(READY, ready, methods=["GET"], name="health:ready")]
