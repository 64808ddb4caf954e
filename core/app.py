"""The application object: settings, plugins, the chosen state store and the engine."""
from __future__ import annotations

import dataclasses
import functools
from collections.abc import Sequence
from contextlib import AsyncExitStack
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from .cache import Cache
from .catalog import WorkflowCatalog
from .errors import ConfigError, DSLError, NotFound
from .executors import Executors
from .hooks import Hooks
from .hub import EventHub
from .loader import load_folder, make_importable
from .plan import Plan, TemplateSpec
from .plugins import DEFAULT_PLUGINS, make_plugin_manager
from .protocols import AttemptQueue, StateStore
from .records import JobRecord, RunRecord
from .registry import load_backend
from .settings import Settings

if TYPE_CHECKING:
    from baseshift.dsl import CheckEnv, Compiled

    from .appface import App
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
        self._opened = AsyncExitStack()
        self.hooks = Hooks(self.pm, self)
        self.hooks.configure()
        self.executor_classes = self.hooks.executors()
        self.executors = Executors(self.executor_classes)
        """The executor instances, read-only: the engine, a queue worker and the gRPC service
        run jobs with them; closed when the application stops."""
        # Chosen now (an unknown name or a missing driver is an error at once), built on first
        # use: `check` and `plan` never import a database library.
        self._chosen: dict[str, Any] = {
            "state": self._choose("state", "store"),
            "cache": self._choose("cache", "cache"),
            "templates": self._choose("templates", "templates", optional=True),
            "queue": self._choose("queue", "queue", builtin=("local",)),
        }
        self._plugin_templates: list[TemplateSpec] | None = None
        self.extra_templates: tuple[TemplateSpec, ...] = ()
        """The template store's templates, as the catalog last read them (a folder's own
        templates are not kept here: `core/loader.py` reads them with the folder)."""
        self.live = EventHub()
        self.catalog = WorkflowCatalog(self, self.settings.workflows_dir)
        from .engine import Engine
        from .service import RunService

        self.engine: Engine = Engine(self)
        self.runs = RunService(self)

    def _choose(self, kind: str, setting: str, *, builtin: tuple[str, ...] = (),
                optional: bool = False) -> Any:
        """What plugins offer for the backend of `kind` that setting `setting` names (None for
        a name in `builtin`, handled by the core itself, or when no plugin offers an
        `optional` kind); checks that its driver is installed, imports nothing."""
        chosen = getattr(self.settings, setting)
        offered = self.hooks.backends(kind)
        if chosen in builtin or (optional and not offered):
            return None
        ref = offered.get(chosen)
        if ref is None:
            names = [*builtin, *sorted(offered)]
            raise ConfigError(f"Config '{setting}' has value {chosen!r}. "
                              f"Not one of: {', '.join(names) or '(none installed)'}.")
        requires = getattr(ref, "requires", None)
        if requires is not None:
            requires.check(f"{setting} = {chosen!r}")
        return ref

    def _build(self, kind: str) -> Any:
        ref = self._chosen[kind]
        return None if ref is None else load_backend(ref).from_settings(self.settings)

    @functools.cached_property
    def store(self) -> StateStore:
        """The state store, built from the settings on first use."""
        store: StateStore = self._build("state")
        return store

    @functools.cached_property
    def cache(self) -> Cache:
        cache: Cache = self._build("cache")
        return cache

    @functools.cached_property
    def templates(self) -> TemplateStore | None:
        templates: TemplateStore | None = self._build("templates")
        return templates

    @functools.cached_property
    def queue(self) -> AttemptQueue | None:
        """Where attempts go to `baseshift worker`s; None runs them in this process."""
        queue: AttemptQueue | None = self._build("queue")
        return queue

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
        """The plan of one workflow file, checked with the other files of its folder as
        `baseshift check` and the server check it (`core/loader.py`).

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
        templates = [t.spec for t in load_folder(self, folder).templates
                     if t.path.resolve() != own]
        compiled = self.with_plugin_checks(
            compile_source(run.source, run.path, self.check_env(templates)))
        if compiled.plan is None:
            raise DSLError(f"the workflow of run {run.id} no longer checks",
                           list(compiled.diagnostics))
        return _pin_templates(compiled.plan, jobs,
                              [*self.plugin_templates(), *self.extra_templates, *templates])


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


if TYPE_CHECKING:
    _IS_AN_APP: type[App] = BaseShift  # mypy: BaseShift is what every hook is promised
