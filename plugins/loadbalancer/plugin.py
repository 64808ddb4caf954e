"""The load balancer plugin's hooks: its permissions, and, when `[plugins.loadbalancer]` is
configured, its routes, the NGINX configuration written at start when there is none, and the
health checks of the registered servers in a server process.

Options (`[plugins.loadbalancer]`): `nginx` (the binary, default `nginx`), `prefix` (NGINX's
prefix folder, default `DATA_DIR/nginx`), `config` (the generated file, default
`PREFIX/nginx.conf`), `pid`, `error_log`, `access_log` (default in the prefix), `upstream`
(default `baseshift`), `listen` (default `127.0.0.1:8080`), `tls_cert` and `tls_key` (TLS
terminates at NGINX), `health_interval` (seconds, default 10).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from baseshift.core.hookspecs import hookimpl
from baseshift.core.stash import SERVING

from .settings import configured, options_of

if TYPE_CHECKING:
    from starlette.routing import BaseRoute

    from baseshift.core.access import Permission
    from baseshift.core.appface import App


@hookimpl
def configure(baseshift: App) -> None:
    if configured(baseshift.settings):
        options_of(baseshift.settings)  # a bad option stops the start


@hookimpl
def register_permissions() -> list[Permission]:
    from .routes import PERMISSIONS

    return list(PERMISSIONS)


@hookimpl
def register_routes(baseshift: App) -> list[BaseRoute]:
    if not configured(baseshift.settings):
        return []
    from .routes import routes

    return routes()


@hookimpl
async def startup(baseshift: App) -> None:
    if not configured(baseshift.settings) or not baseshift.stash.get(SERVING):
        return
    from .health import HealthChecker
    from .service import CHECKER, load_registry, write_config

    await write_config(baseshift)
    if CHECKER not in baseshift.stash:
        checker = HealthChecker(lambda: load_registry(baseshift),
                                options_of(baseshift.settings).interval)
        baseshift.stash[CHECKER] = checker
        checker.start()


@hookimpl
async def shutdown(baseshift: App) -> None:
    from .service import CHECKER

    checker = baseshift.stash.pop(CHECKER)
    if checker is not None:
        await checker.stop()
