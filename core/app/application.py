"""The application object: settings, plugins, the chosen state store and the engine."""
from __future__ import annotations

import dataclasses
import functools
from collections.abc import Sequence
from contextlib import AsyncExitStack
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from ..backends import CACHE, OBSERVERS, QUEUE, STATE, TEMPLATES, BackendRegistry
from ..cache import Cache
from ..compiled import CheckEnv, Compiled, FileTemplate
from ..errors import DSLError, NotFound
from ..executors import Executors
from ..hooks import Hooks
from ..hub import EventHub
from ..plan import Plan, TemplateSpec
from ..plugins import DEFAULT_PLUGINS, make_plugin_manager
from ..protocols import AttemptQueue, StateStore
from ..records import JobRecord, RunRecord
from ..settings import Settings
from ..shellmark import Schemas, mark_job
from ..stash import Stash
from .catalog import WorkflowCatalog
from .compile_cache import environment_digest
from .heap import settle_heap
from .loader import load_folder, make_importable
from .unapplied_limits import unapplied

if TYPE_CHECKING:
    from ..appface import App
    from ..engine import Engine
    from ..templatestore import TemplateStore


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
        self.stash = Stash()
        self._opened = AsyncExitStack()
        self.hooks = Hooks(self.pm, self)
        self.hooks.configure()
        self.executor_classes = self.hooks.executors()
        self.executors = Executors(self.executor_classes)
        """The executor instances, read-only: the engine, a queue worker and the gRPC service
        run jobs with them; closed when the application stops."""
        # Chosen now (an unknown name or a missing driver is an error at once), built on first
        # use: `check` and `plan` never import a database library.
        self.backends = BackendRegistry(self.settings, self.hooks)
        self._register_observers()
        self._plugin_templates: list[TemplateSpec] | None = None
        self.extra_templates: tuple[TemplateSpec, ...] = ()
        """The template store's templates, as the catalog last read them (a folder's own
        templates are not kept here: `core/app/loader.py` reads them with the folder)."""
        self.live = EventHub()
        self.catalog = WorkflowCatalog(self, self.settings.workflows_dir)
        from ..engine import Engine
        from .service import RunService

        self.engine: Engine = Engine(self)
        self.runs = RunService(self)

    def _register_observers(self) -> None:
        """Build the chosen `live` and `results` backends now and register them as plugins:
        they work through hooks (`startup`, `track_event`, `shutdown`)."""
        for kind in OBSERVERS:
            ref = self.backends.chosen(kind)
            if ref is not None:
                self.pm.register(self.backends.build(kind), name=f"{ref.kind}:{ref.name}")
        self.hooks.refresh()

    @functools.cached_property
    def store(self) -> StateStore:
        """The state store, built from the settings on first use."""
        store = self.backends.build(STATE)
        assert store is not None  # a state store is never optional
        return store

    @functools.cached_property
    def cache(self) -> Cache:
        cache = self.backends.build(CACHE)
        assert cache is not None  # nor is a cache
        return cache

    @functools.cached_property
    def templates(self) -> TemplateStore | None:
        return self.backends.build(TEMPLATES)

    @functools.cached_property
    def queue(self) -> AttemptQueue | None:
        """Where attempts go to `baseshift worker`s; None runs them in this process."""
        return self.backends.build(QUEUE)

    async def __aenter__(self) -> BaseShift:
        """Open the backends, then start plugins and the engine. If any step fails (an
        unreachable server, say), what was opened is closed again before the error goes on."""
        async with AsyncExitStack() as opened:
            for backend in (self.store, self.cache, self.templates, self.queue):
                if backend is not None:
                    await backend.open()
                    opened.push_async_callback(backend.close)
            await self.hooks.startup()
            opened.push_async_callback(self.hooks.shutdown)
            await self.engine.start()
            self._opened = opened.pop_all()
        if self.settings.tune_gc:
            settle_heap()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        """Stop the engine first (running attempts stay resumable) and close the executors,
        then close the rest in the reverse order of opening."""
        await self.engine.stop()
        await self.executors.aclose()
        await self._opened.aclose()

    # ------------------------------------------------------------ workflows

    def check_env(self, extra_templates: Sequence[TemplateSpec] = ()) -> CheckEnv:
        """What the language checker needs to know: executors and available templates."""
        return CheckEnv(executors=self._executor_schemas(),
                        templates=(*self.plugin_templates(), *self.extra_templates,
                                   *extra_templates))

    def check_digest(self, extra_templates: Sequence[TemplateSpec] = ()) -> str:
        """A digest of everything `check_env(extra_templates)` and the plugins' checks judge
        a text by: the key of a checked text in the cache (core/app/compile_cache.py)."""
        env = self.check_env(extra_templates)
        return environment_digest(env.templates, env.executors,
                                  [name for name, _ in self.pm.list_name_plugin()],
                                  self.hooks.admits_runs())

    def _executor_schemas(self) -> dict[str, dict[str, Any]]:
        return {n: dict(getattr(c, "config_schema", {}) or {})
                for n, c in self.executor_classes.items()}

    def plugin_templates(self) -> list[TemplateSpec]:
        """Templates shipped by plugins through `register_job_templates`, compiled once."""
        if self._plugin_templates is None:
            from baseshift.dsl import compile_source

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
        """`compiled` with the diagnostics of `validate_plan` plugins, and an error for a run
        limit that no plugin would apply."""
        if compiled.plan is None:
            return compiled
        extra = self.hooks.validate_plan(compiled.plan)
        if compiled.plan.run_limit is not None and not self.hooks.admits_runs():
            extra.append(unapplied(compiled.plan))
        if not extra:
            return compiled
        merged = dataclasses.replace(compiled, diagnostics=(*compiled.diagnostics, *extra))
        return merged if merged.ok else dataclasses.replace(merged, plan=None)

    def load_workflow(self, path: str | Path) -> Plan:
        """The plan of one workflow file, checked with the other files of its folder as
        `baseshift check` and the server check it (`core/app/loader.py`).

        Raises DSLError (with every diagnostic) when the file does not check.
        """
        target = Path(path)
        if not target.is_file():
            raise NotFound(f"no such workflow file: {target}")
        make_importable(target.parent)
        mine = load_folder(self, target.parent, include=[target]).file(target)
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
        own = Path(run.path).resolve()
        templates = [t.spec for t in self._folder_templates(folder)
                     if t.path.resolve() != own]
        compiled = self.with_plugin_checks(
            compile_source(run.source, run.path, self.check_env(templates)))
        if compiled.plan is None:
            raise DSLError(f"the workflow of run {run.id} no longer checks",
                           list(compiled.diagnostics))
        return _pin_templates(compiled.plan, jobs,
                              [*self.plugin_templates(), *self.extra_templates, *templates],
                              self._executor_schemas())


    def _folder_templates(self, folder: Path) -> Sequence[FileTemplate]:
        """The templates defined in the files of `folder`: the catalog's, once it has loaded
        that folder (they are reloaded on change), else read from the files now. A run page,
        a retry or a take-up then compiles only the run's own source."""
        catalog = self.catalog
        if catalog.generation and folder.resolve() == catalog.folder:
            return catalog.file_templates
        return load_folder(self, folder).templates


def _pin_templates(plan: Plan, jobs: dict[str, JobRecord],
                   available: Sequence[TemplateSpec], schemas: Schemas) -> Plan:
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
            spec = mark_job(dataclasses.replace(spec, template=template, uses=template.uses),
                            schemas)
            changed = True
        pinned.append(spec)
    if not changed:
        return plan
    n = len(plan.jobs)
    return dataclasses.replace(plan, jobs=tuple(pinned[:n]), handlers=tuple(pinned[n:]))


if TYPE_CHECKING:
    _IS_AN_APP: type[App] = BaseShift  # mypy: BaseShift is what every hook is promised
