"""The application object: settings, plugins, the chosen state store and the engine."""
from __future__ import annotations

import dataclasses
import sys
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from .catalog import WorkflowCatalog
from .errors import ConfigError, DSLError, NotFound
from .hub import EventHub
from .plan import Plan, TemplateSpec
from .plugins import DEFAULT_PLUGINS, Hooks, make_plugin_manager
from .protocols import AttemptQueue, StateStore
from .records import JobRecord, RunRecord
from .settings import Settings

if TYPE_CHECKING:
    from baseshift.dsl import CheckEnv, Compiled

    from .engine import Engine
    from .templatestore import TemplateStore


class BaseShift:
    """One Base Shift application: build it, `async with` it, then use `.engine`.

    Args:
        settings: the configuration; defaults come from the environment.
        plugins: extra plugin objects to register after the builtin and installed ones
            (tests use this to add a plugin for one application only).
        builtins: names of builtin plugin modules to register.
    """

    def __init__(self, settings: Settings | None = None, *, plugins: Sequence[object] = (),
                 builtins: Sequence[str] = DEFAULT_PLUGINS) -> None:
        self.settings = settings or Settings.from_env()
        self.pm = make_plugin_manager(builtins=builtins,
                                      load_entrypoints=self.settings.load_entrypoints,
                                      blocked=self.settings.disabled_plugins)
        for plugin in plugins:
            self.pm.register(plugin)
        self.stash: dict[str, Any] = {}
        self.hooks = Hooks(self.pm, self)
        self.hooks.configure()
        self.executor_classes = self.hooks.executors()
        self.store: StateStore = self._make_store()
        self.templates: TemplateStore | None = self._make_template_store()
        self.queue: AttemptQueue | None = self._make_queue()
        self._plugin_templates: list[TemplateSpec] | None = None
        self.extra_templates: tuple[TemplateSpec, ...] = ()
        """Templates from the template store and workflow folder, set by the catalog."""
        self.live = EventHub()
        self.catalog = WorkflowCatalog(self, self.settings.workflows_dir)
        from .engine import Engine
        from .service import RunService

        self.engine: Engine = Engine(self)
        self.runs = RunService(self)

    def _make_store(self) -> StateStore:
        stores = self.hooks.backends("state")
        cls = stores.get(self.settings.store)
        if cls is None:
            raise ConfigError(f"Config 'store' has value {self.settings.store!r}. "
                              f"Not one of: {', '.join(sorted(stores)) or '(none installed)'}.")
        store: StateStore = cls.from_settings(self.settings)
        return store

    def _make_queue(self) -> AttemptQueue | None:
        if self.settings.queue == "local":
            return None
        queues = self.hooks.backends("queue")
        cls = queues.get(self.settings.queue)
        if cls is None:
            raise ConfigError(f"Config 'queue' has value {self.settings.queue!r}. "
                              f"Not one of: {', '.join(['local', *sorted(queues)])}.")
        queue: AttemptQueue = cls.from_settings(self.settings)
        return queue

    def _make_template_store(self) -> TemplateStore | None:
        stores = self.hooks.backends("templates")
        if not stores:
            return None
        cls = stores.get(self.settings.templates)
        if cls is None:
            raise ConfigError(f"Config 'templates' has value {self.settings.templates!r}. "
                              f"Not one of: {', '.join(sorted(stores))}.")
        store: TemplateStore = cls.from_settings(self.settings)
        return store

    async def __aenter__(self) -> BaseShift:
        await self.store.open()
        if self.templates is not None:
            await self.templates.open()
        if self.queue is not None:
            await self.queue.open()
        await self.hooks.startup()
        await self.engine.start()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.engine.stop()
        if self.queue is not None:
            await self.queue.close()
        await self.hooks.shutdown()
        if self.templates is not None:
            await self.templates.close()
        await self.store.close()

    # ------------------------------------------------------------ workflows

    def check_env(self, extra_templates: Sequence[TemplateSpec] = ()) -> CheckEnv:
        """What the language checker needs to know: executors and available templates."""
        from baseshift.dsl import CheckEnv

        return CheckEnv(executors=self._executor_schemas(),
                        templates=(*self.plugin_templates(), *self.extra_templates,
                                   *extra_templates))

    def _executor_schemas(self) -> dict[str, dict[str, Any]]:
        return {n: dict(getattr(c, "config_schema", {}) or {})
                for n, c in self.executor_classes.items()}

    def plugin_templates(self) -> list[TemplateSpec]:
        """Templates shipped by plugins through `register_job_templates`, compiled once."""
        if self._plugin_templates is None:
            from baseshift.dsl import CheckEnv, compile_source

            env = CheckEnv(executors=self._executor_schemas())
            found: list[TemplateSpec] = []
            for i, source in enumerate(self.hooks.job_template_sources()):
                compiled = compile_source(source, f"<plugin template {i}>", env)
                if not compiled.ok:
                    raise DSLError("a plugin's job templates do not compile",
                                   list(compiled.diagnostics))
                found.extend(compiled.templates)
            self._plugin_templates = found
        return self._plugin_templates

    def compile_paths(self, paths: Sequence[str | Path]) -> list[Compiled]:
        """Parse and check files, adding the diagnostics of `validate_plan` plugins."""
        from baseshift.dsl import compile_files

        results = compile_files(list(paths), self.check_env())
        return [self.with_plugin_checks(c) for c in results]

    def with_plugin_checks(self, compiled: Compiled) -> Compiled:
        if compiled.plan is None:
            return compiled
        extra = self.hooks.validate_plan(compiled.plan)
        if not extra:
            return compiled
        merged = dataclasses.replace(compiled, diagnostics=(*compiled.diagnostics, *extra))
        return merged if merged.ok else dataclasses.replace(merged, plan=None)

    def load_workflow(self, path: str | Path) -> Plan:
        """The plan of one workflow file, with templates from the `.bsw` files beside it.

        Raises DSLError (with every diagnostic) when the file does not check.
        """
        target = Path(path)
        if not target.is_file():
            raise NotFound(f"no such workflow file: {target}")
        make_importable(target.parent)
        siblings = sorted(p for p in target.parent.glob("*.bsw") if p.resolve() != target.resolve())
        results = self.compile_paths([target, *siblings])
        mine = results[0]
        if not mine.ok or mine.plan is None:
            if mine.ok:
                raise DSLError(f"{target} declares no workflow", [])
            raise DSLError(f"{target} has errors", list(mine.diagnostics))
        return mine.plan

    def plan_for_run(self, run: RunRecord, jobs: dict[str, JobRecord]) -> Plan:
        """Rebuild a stored run's plan from the source it was started with, pinning each
        template job to the exact version the run recorded."""
        from baseshift.dsl import compile_source

        folder = Path(run.path).parent
        make_importable(folder)
        siblings = [p for p in sorted(folder.glob("*.bsw")) if str(p) != run.path]
        templates = [t for c in self.compile_paths(siblings) for t in c.templates] \
            if folder.is_dir() else []
        compiled = self.with_plugin_checks(
            compile_source(run.source, run.path, self.check_env(templates)))
        if compiled.plan is None:
            raise DSLError(f"the workflow of run {run.id} no longer checks",
                           list(compiled.diagnostics))
        return _pin_templates(compiled.plan, jobs,
                              [*self.plugin_templates(), *self.extra_templates, *templates])


def make_importable(folder: Path) -> None:
    """`uses python` finds modules kept beside the workflow file (e.g. workflows/shop.py)."""
    entry = str(folder.resolve())
    if entry not in sys.path:
        sys.path.append(entry)


def _pin_templates(plan: Plan, jobs: dict[str, JobRecord],
                   available: Sequence[TemplateSpec]) -> Plan:
    by_ref = {t.ref: t for t in available}
    pinned = []
    changed = False
    for spec in (*plan.jobs, *plan.handlers):
        recorded = jobs[spec.name].template if spec.name in jobs else None
        if spec.template is not None and recorded and recorded != spec.template.ref:
            template = by_ref.get(recorded)
            if template is None:
                raise NotFound(f"template {recorded}, used by job '{spec.name}' of this run, "
                               "is no longer available")
            spec = dataclasses.replace(spec, template=template, uses=template.uses)
            changed = True
        pinned.append(spec)
    if not changed:
        return plan
    n = len(plan.jobs)
    return dataclasses.replace(plan, jobs=tuple(pinned[:n]), handlers=tuple(pinned[n:]))
