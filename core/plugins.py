"""The plugin manager: builtin and installed plugins registered against the hook specs (the
`Hooks` facade that calls them lives in core/hooks.py)."""
from __future__ import annotations

import importlib
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import pluggy

from . import hookspecs
from .errors import ConfigError, PluginError
from .hooks import unique_by_name

__all__ = ["BUILTIN_PLUGINS", "DEFAULT_PLUGINS", "builtin_module", "describe_plugins",
           "make_plugin_manager", "plugin_commands"]


log = logging.getLogger("baseshift.plugins")

BUILTIN_PLUGINS: dict[str, str] = {
    "commands_workflows": "commands.workflows",
    "commands_runs": "commands.runs",
    "commands_store": "commands.store",
    "commands_info": "commands.info",
    "executor_python": "executors.python",
    "executor_shell": "executors.shell",
    "executor_http": "executors.http",
    "executor_manual": "executors.manual",
    "executor_grpc": "grpc.executor",
    "executor_kubernetes": "kubernetes.executor",
    "storage_sql": "storage.sqlite",
    "storage_memory": "storage.memory",
    "storage_postgres": "storage.postgres",
    "auth": "auth.plugin",
    "rbac": "auth.rbac",
    "auth_cli": "auth.cli",
    "oidc": "auth.oidc",
    "client_cli": "client.cli",
    "audit_api": "audit.api",
    "audit_cli": "audit.cli",
    "compliance": "compliance.plugin",
    "compliance_auth": "auth.compliance",
    "compliance_audit": "audit.compliance",
    "compliance_server": "server.compliance",
    "compliance_backup": "commands.compliance",
    "compliance_masking": "secrets.compliance",
    "queue_postgres": "queue.postgres",
    "secrets_env": "secrets.env",
    "keys": "keys.plugin",
    "keys_cli": "keys.cli",
    "keys_api": "keys.api",
    "observer_progress": "observers.progress",
    "observer_console": "observers.console",
    "events_live": "observers.live",
    "live_redis": "redis.live",
    "cache_memory": "cache.memory",
    "cache_redis": "redis.cache",
    "cache_api": "cache.api",
    "api_workflows": "api.workflows",
    "api_runs": "api.runs",
    "api_analytics": "api.analytics",
    "metrics": "metrics.plugin",
    "tracing": "tracing.plugin",
    "logship_elasticsearch": "logship.elasticsearch",
    "server_cli": "server.serve",
    "worker": "queue.worker",
    "templates_sql": "templates.sqlite",
    "templates_memory": "templates.memory",
    "templates_postgres": "templates.postgres",
    "templates_mongo": "mongo.templates",
    "results_mongo": "mongo.results",
    "api_templates": "templates.api",
    "graphql_templates": "templates.graphql",
    "cli_templates": "templates.cli",
    "web_ui": "ui.web",
    "trigger_cron": "triggers.cron",
    "trigger_webhook": "triggers.webhook",
    "run_limits": "limits.run_limits",
    "retention": "retention.plugin",
    "retention_cli": "retention.cli",
    "logs": "logs.plugin",
    "health": "health.plugin",
    "database": "database.plugin",
    "loadbalancer": "loadbalancer.plugin",
    "alerts": "alerts.plugin",
}
"""Builtin plugins by name, registered in this order from their module under
`baseshift.plugins` (a family package each: `ls plugins/` is the capability map). The names
are what `baseshift plugins` lists and `BASESHIFT_DISABLE_PLUGINS` takes."""

DEFAULT_PLUGINS: tuple[str, ...] = tuple(BUILTIN_PLUGINS)
"""The names of the builtin plugins, in registration order."""

ENTRYPOINT_GROUP = "baseshift"


def make_plugin_manager(*, builtins: Sequence[str] = DEFAULT_PLUGINS,
                        load_entrypoints: bool = True,
                        blocked: Iterable[str] = ()) -> pluggy.PluginManager:
    """A fresh manager: builtins, then pip-installed plugins, then `check_pending()`.

    Pluggy calls the last registered implementation first, so an installed plugin runs
    before a builtin one.
    """
    pm = pluggy.PluginManager("baseshift")
    pm.add_hookspecs(hookspecs)
    _check_known(blocked)
    for name in blocked:
        pm.set_blocked(name)
    for name in builtins:
        if not pm.is_blocked(name):
            pm.register(importlib.import_module(builtin_module(name)), name=name)
    if load_entrypoints:
        _load_entrypoints(pm)
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        raise PluginError(f"plugin {exc.plugin!r}: {exc}") from None
    return pm


def builtin_module(name: str) -> str:
    """The dotted module of the builtin plugin called `name`."""
    return f"baseshift.plugins.{BUILTIN_PLUGINS[name]}"


def _check_known(names: Iterable[str]) -> None:
    """Refuse to disable a plugin that does not exist: a misspelt name in
    `BASESHIFT_DISABLE_PLUGINS` would otherwise leave the plugin it meant running. Every
    builtin plugin is known, registered in this manager or not."""
    unknown = [n for n in names if n not in BUILTIN_PLUGINS]
    if not unknown:
        return
    from importlib.metadata import entry_points

    known = [*BUILTIN_PLUGINS, *(ep.name for ep in entry_points(group=ENTRYPOINT_GROUP))]
    for name in unknown:
        if name not in known:
            import difflib

            close = difflib.get_close_matches(name, known, n=1)
            raise ConfigError(
                f"cannot disable plugin {name!r}: no plugin has that name",
                hint=(f"did you mean {close[0]!r}? " if close else "")
                + "`baseshift plugins` lists the plugins by name")


def _load_entrypoints(pm: pluggy.PluginManager) -> None:
    try:
        pm.load_setuptools_entrypoints(ENTRYPOINT_GROUP)
    except pluggy.PluginValidationError as exc:
        raise PluginError(f"plugin {exc.plugin!r}: {exc}") from None
    except Exception as exc:  # a broken third-party package must name itself, not crash
        raise PluginError(f"loading plugins from entry-point group '{ENTRYPOINT_GROUP}' "
                          f"failed: {type(exc).__name__}: {exc}") from exc


@dataclass(frozen=True, slots=True)
class PluginInfo:
    """What `baseshift plugins` shows for one registered plugin."""

    name: str
    module: str
    distribution: str | None
    version: str | None
    hooks: tuple[str, ...]


def describe_plugins(pm: pluggy.PluginManager) -> list[PluginInfo]:
    """Every registered plugin with its distribution and the hooks it implements."""
    dists = {id(plugin): dist for plugin, dist in pm.list_plugin_distinfo()}
    out = []
    for name, plugin in pm.list_name_plugin():
        if plugin is None:
            continue
        dist = dists.get(id(plugin))
        hooks = tuple(sorted(h.name for h in pm.get_hookcallers(plugin) or ()))
        out.append(PluginInfo(
            name=name,
            module=getattr(plugin, "__name__", type(plugin).__name__),
            distribution=dist.project_name if dist else None,
            version=dist.version if dist else None,
            hooks=hooks,
        ))
    return out


def plugin_commands(pm: pluggy.PluginManager) -> dict[str, Any]:
    """The `Command`s of the command line, by name (duplicates are an error), in the order
    their plugins were registered: the builtin ones first, then installed ones."""
    results = [(impl.plugin_name, impl.function())
               for impl in pm.hook.register_commands.get_hookimpls()]
    return unique_by_name("register_commands", results)
