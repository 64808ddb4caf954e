"""The ASGI application: a Base Shift app, its plugins' routes, problem+json errors.

Every route comes from the `register_routes` hook; this module only wires the lifespan
(start the engine, load workflows, resume interrupted runs, watch the folder) and errors.
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager, suppress

from starlette.applications import Starlette
from starlette.middleware import Middleware

from baseshift.core.app.application import BaseShift
from baseshift.core.settings import Settings
from baseshift.core.stash import SERVING

from .access import guard_undeclared
from .accesslog import AccessLog
from .authn import Authentication
from .guards import RequestGuard
from .headers import SecurityHeaders
from .hosts import AllowedHosts, HostGuard
from .problems import EXCEPTION_HANDLERS

log = logging.getLogger("baseshift.web")

Lifespan = Callable[[Starlette], AbstractAsyncContextManager[None]]


def create_app(settings: Settings | None = None, *, plugins: Sequence[object] = (),
               baseshift: BaseShift | None = None,
               on_ready: Callable[[BaseShift], None] | None = None) -> Starlette:
    """The HTTP server for one Base Shift application (built from the environment by
    default). The application starts and stops with the ASGI lifespan; `on_ready` is called
    once workflows are loaded and interrupted runs resumed."""
    bs = baseshift or BaseShift(settings or Settings.from_env(), plugins=plugins)
    bs.stash[SERVING] = True
    app = Starlette(routes=guard_undeclared(bs.hooks.routes()),
                    exception_handlers=EXCEPTION_HANDLERS,
                    middleware=[
                        Middleware(AccessLog),  # outermost: refusals are logged too
                        Middleware(SecurityHeaders),  # refusals carry them too
                        *bs.hooks.middleware(),  # plugins' (metrics): every request
                        Middleware(HostGuard,
                                   allowed=AllowedHosts.parse(bs.settings.allowed_hosts)),
                        Middleware(RequestGuard),
                        Middleware(Authentication)],
                    lifespan=_lifespan(bs, on_ready))
    app.state.baseshift = bs
    return app


def _lifespan(bs: BaseShift, on_ready: Callable[[BaseShift], None] | None) -> Lifespan:
    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with bs:
            await bs.catalog.refresh(force=True)
            _report_catalog(bs)
            resumed = await bs.runs.resume_interrupted()
            if resumed:
                log.info("resumed %d interrupted run(s): %s", len(resumed), ", ".join(resumed),
                         extra={"event": "runs.resumed", "run_ids": resumed})
            await bs.runs.take_up_waiting()
            tasks = [asyncio.create_task(bs.catalog.watch(), name="baseshift-catalog"),
                     asyncio.create_task(bs.runs.adopt_orphans_forever(),
                                         name="baseshift-adopt")]
            if on_ready is not None:
                on_ready(bs)
            try:
                yield
            finally:
                for task in tasks:
                    task.cancel()
                    with suppress(asyncio.CancelledError):
                        await task

    return lifespan


def _report_catalog(bs: BaseShift) -> None:
    bs.catalog.log_summary("loaded")
