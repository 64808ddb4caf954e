"""The builtin `compliance` plugin: the `compliance:read` permission, the report's routes and
its templates. The controls themselves come from the plugins that own each fact (auth,
audit, server, commands, secrets and any installed one), through `compliance_controls`.

Options (`[plugins.compliance]` in baseshift.toml), read by those controls: `max_admins`
(3), `signing_key_max_days` (90), `backup_max_days` (7)."""
from __future__ import annotations

from typing import TYPE_CHECKING

from baseshift.core.access import Permission
from baseshift.core.hookspecs import hookimpl

from .access import COMPLIANCE_READ

if TYPE_CHECKING:
    from starlette.routing import BaseRoute

    from baseshift.core.appface import App


@hookimpl
def register_permissions() -> list[Permission]:
    return [COMPLIANCE_READ]


@hookimpl
def register_routes() -> list[BaseRoute]:
    from .routes import routes

    return routes()


@hookimpl
def configure(baseshift: App) -> None:
    from pathlib import Path

    from baseshift.web.render import add_templates

    add_templates(baseshift, Path(__file__).parent / "templates")
