"""The plugin manager and the `Hooks` facade: the only code that calls `pm.hook`."""
from __future__ import annotations

import importlib
import inspect
import logging
from collections.abc import Iterable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pluggy

from . import hookspecs
from .errors import ConfigError, PluginError

if TYPE_CHECKING:
    from .app import BaseShift
    from .diagnostics import Diagnostic
    from .events import Event
    from .plan import Plan
    from .protocols import Executor, JobContext
    from .records import RunRecord

log = logging.getLogger("baseshift.plugins")

DEFAULT_PLUGINS: tuple[str, ...] = (
    "executor_python",
    "executor_shell",
    "executor_http",
    "executor_manual",
    "executor_grpc",
    "executor_kubernetes",
    "storage_sql",
    "storage_memory",
    "storage_postgres",
    "queue_postgres",
    "secrets_env",
    "observer_progress",
    "observer_console",
    "events_live",
    "live_redis",
    "cache_memory", "cache_redis",
    "api_workflows",
    "api_runs",
    "api_analytics",
    "server_cli",
    "worker",
    "templates_sql", "templates_memory", "templates_postgres", "templates_mongo",
    "results_mongo", "api_templates", "graphql_templates",
    "cli_templates",
    "web_ui",
    "trigger_cron", "trigger_webhook",
)
"""Builtin plugins, registered by module name from `baseshift.plugins` in this order."""

ENTRYPOINT_GROUP = "baseshift"


async def _in_order(results: list[Any]) -> None:
    """Await hook results one after another; when one fails, the coroutines of the later
    ones are closed rather than left never awaited."""
    pending = list(results)
    try:
        while pending:
            await await_me_maybe(pending.pop(0))
    finally:
        for result in pending:
            if inspect.iscoroutine(result):
                result.close()


def make_plugin_manager(*, builtins: Sequence[str] = DEFAULT_PLUGINS,
                        load_entrypoints: bool = True,
                        blocked: Iterable[str] = ()) -> pluggy.PluginManager:
    """A fresh manager: builtins, then pip-installed plugins, then `check_pending()`.

    Pluggy calls the last registered implementation first, so an installed plugin runs
    before a builtin one.
    """
    pm = pluggy.PluginManager("baseshift")
    pm.add_hookspecs(hookspecs)
    _check_known(blocked, builtins)
    for name in blocked:
        pm.set_blocked(name)
    for name in builtins:
        if not pm.is_blocked(name):
            pm.register(importlib.import_module(f"baseshift.plugins.{name}"), name=name)
    if load_entrypoints:
        _load_entrypoints(pm)
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        raise PluginError(f"plugin {exc.plugin!r}: {exc}") from None
    return pm


def _check_known(names: Iterable[str], builtins: Sequence[str]) -> None:
    """Refuse to disable a plugin that does not exist: a misspelt name in
    `BASESHIFT_DISABLE_PLUGINS` would otherwise leave the plugin it meant running."""
    unknown = [n for n in names if n not in builtins]
    if not unknown:
        return
    from importlib.metadata import entry_points

    known = [*builtins, *(ep.name for ep in entry_points(group=ENTRYPOINT_GROUP))]
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


async def await_me_maybe(value: Any) -> Any:
    """Await `value` if it is awaitable; hook implementations may be sync or async."""
    if inspect.isawaitable(value):
        return await value
    return value


class Hooks:
    """Typed, async-aware calls of every hook, applying each hook's documented mode."""

    def __init__(self, pm: pluggy.PluginManager, baseshift: BaseShift) -> None:
        self.pm = pm
        self.baseshift = baseshift
        self.refresh()

    def refresh(self) -> None:
        """Note which per-job hooks have implementations, so unused ones cost nothing.

        Call again after registering plugins (`configure` implementations may register
        helper objects of their own)."""
        self._observers = bool(self.pm.hook.track_event.get_hookimpls())
        self._wrappers = bool(self.pm.hook.job_wrapper.get_hookimpls())

    def configure(self) -> None:
        self.pm.hook.configure(baseshift=self.baseshift)
        self.refresh()

    async def startup(self) -> None:
        await _in_order(self.pm.hook.startup(baseshift=self.baseshift))

    async def shutdown(self) -> None:
        await _in_order(self.pm.hook.shutdown(baseshift=self.baseshift))

    def executors(self) -> dict[str, type[Executor]]:
        return _unique_by_name("register_executors", self._each("register_executors"))

    def backends(self, kind: str) -> dict[str, Any]:
        """The backends of `kind` by name: `registry.Backend` references (or classes, from
        plugins that return them); nothing is imported here."""
        results = [(owner, [c for c in group or () if getattr(c, "kind", None) == kind])
                   for owner, group in self._each("register_backends")]
        return _unique_by_name("register_backends", results)

    def _each(self, hook: str) -> list[tuple[str, Any]]:
        """Call a registry hook per plugin, keeping who returned what (for error messages)."""
        kwargs = {"baseshift": self.baseshift}
        out = []
        for impl in reversed(getattr(self.pm.hook, hook).get_hookimpls()):
            args = {k: kwargs[k] for k in impl.argnames}
            out.append((impl.plugin_name, impl.function(**args)))
        return out

    def routes(self) -> list[Any]:
        """Every plugin's HTTP routes in registration order: builtins first, then installed
        plugins (the first matching route wins, so a plugin cannot shadow a builtin)."""
        return [r for _, group in reversed(self._each("register_routes")) for r in group or ()]

    def job_template_sources(self) -> list[str]:
        return [s for group in self.pm.hook.register_job_templates(baseshift=self.baseshift)
                for s in group]

    def job_wrappers(self, run: RunRecord,
                     ctx: JobContext) -> list[AbstractAsyncContextManager[None]]:
        if not self._wrappers:
            return []
        results = self.pm.hook.job_wrapper(baseshift=self.baseshift, run=run, ctx=ctx)
        return [r for r in results if r is not None]

    async def track_event(self, event: Event) -> None:
        """Tell every observer; an observer's exception is logged, never propagated."""
        if not self._observers:
            return
        try:
            results = self.pm.hook.track_event(baseshift=self.baseshift, event=event)
            for result in results:
                await await_me_maybe(result)
        except Exception:
            log.exception("track_event observer failed for %r", event)

    async def resolve_secret(self, name: str) -> str | None:
        for result in self.pm.hook.resolve_secret(baseshift=self.baseshift, name=name):
            value = await await_me_maybe(result)
            if value is not None:
                return str(value)
        return None

    def validate_plan(self, plan: Plan) -> list[Diagnostic]:
        return [d for group in self.pm.hook.validate_plan(baseshift=self.baseshift, plan=plan)
                for d in group]


def plugin_commands(pm: pluggy.PluginManager) -> dict[str, Any]:
    """The `Command`s plugins add to the command line, by name (duplicates are an error)."""
    results = [(impl.plugin_name, impl.function())
               for impl in reversed(pm.hook.register_commands.get_hookimpls())]
    return _unique_by_name("register_commands", results)


def _unique_by_name(hook: str, results: list[tuple[str, Any]]) -> dict[str, Any]:
    """Merge collected classes by their `name`; two plugins offering one name is an error."""
    found: dict[str, Any] = {}
    owner_of: dict[str, str] = {}
    for owner, group in results:
        for cls in group or ():
            key = getattr(cls, "name", None)
            if not isinstance(key, str) or not key:
                raise PluginError(f"Plugin '{owner}' (hook {hook}): {cls!r} has no 'name'")
            if key in found and found[key] is not cls:
                raise PluginError(f"Plugin '{owner}' (hook {hook}): '{key}' is already "
                                  f"provided by plugin '{owner_of[key]}'")
            found[key], owner_of[key] = cls, owner
    return found
