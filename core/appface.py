"""What every hook receives as `baseshift`: the application, as a protocol.

The hook specs (core/hookspecs.py) name this, not the `BaseShift` class: the class is built
from the components below, and the specs are read by the plugin manager that class creates,
so naming the class would tie them in a circle. `BaseShift` is checked against this protocol
(core/app/application.py), so the two cannot drift apart."""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import pluggy

    from .cache import Cache, CacheStats, JSONValue
    from .compiled import CheckEnv, Compiled, FileTemplate, WorkflowEntry
    from .diagnostics import Diagnostic
    from .engine import Engine
    from .executors import Executors
    from .hooks import Hooks
    from .hub import EventHub
    from .plan import Plan, TemplateSpec
    from .protocols import AttemptQueue, Executor, StateStore
    from .records import JobRecord, RunRecord, RunSnapshot
    from .settings import Settings
    from .stash import Stash
    from .templatestore import TemplateStore


class Catalog(Protocol):
    """The server's workflows (`core.app.catalog.WorkflowCatalog`), as plugins use them."""

    folder: Path
    """The workflows folder, resolved."""
    problems: tuple[Diagnostic, ...]
    """What the last load found wrong beyond single files (duplicate names, say)."""
    file_templates: tuple[FileTemplate, ...]
    generation: int
    """Counts the reloads that changed something, so a reader can tell its view is stale."""
    reload_listeners: dict[str, Callable[[str], None]]
    """By observer name: told `"failed"` (a reload raised) or `"broken"` (a file does not
    check) per reload."""

    def entries(self) -> list[WorkflowEntry]: ...

    def log_summary(self, what: str) -> None: ...

    def plan_stats(self) -> CacheStats:
        """Hits and misses of the compiled files a reload kept (core/app/plan_memo.py)."""
        ...

    def get(self, name: str) -> WorkflowEntry: ...

    def plan(self, name: str) -> Plan: ...

    def validate(self, source: str, filename: str = "pasted.bsw") -> Compiled: ...

    async def validation(self, source: str, filename: str, cache: Cache
                         ) -> dict[str, JSONValue | None]: ...

    async def refresh(self, *, force: bool = False) -> bool: ...

    async def watch(self, interval: float = ...) -> None: ...


class Runs(Protocol):
    """Starting and steering runs (`core.app.service.RunService`), as plugins use it."""

    async def start(self, workflow: str, inputs: Mapping[str, Any]) -> str: ...

    async def start_plan(self, plan: Plan, inputs: Mapping[str, Any]) -> str: ...

    async def snapshot(self, run_id: str, *, attempts: bool = True) -> RunSnapshot: ...

    async def cancel(self, run_id: str) -> RunRecord: ...

    async def cancel_stored(self, snapshot: RunSnapshot, plan: Plan,
                            reason: str = ...) -> None: ...

    async def retry(self, run_id: str) -> None: ...

    async def rerun_from(self, run_id: str, job: str) -> None: ...

    async def complete_job(self, run_id: str, job: str, output: Any = None,
                           by: str | None = None) -> None: ...

    async def fail_job(self, run_id: str, job: str, error: str,
                       by: str | None = None) -> None: ...

    async def resume_interrupted(self, *, quiet: bool = False) -> list[str]: ...

    async def resume(self, run_id: str) -> None: ...

    async def adopt_orphans_forever(self, interval: float = ...) -> None: ...


class App(Protocol):
    """The application: its settings, backends, engine and services, and the hooks."""

    settings: Settings
    hooks: Hooks
    pm: pluggy.PluginManager
    """The plugin manager, for a plugin that registers an object of its own as a plugin."""
    stash: Stash
    """Plugin state, by a typed key the plugin owns (`core/stash.py`)."""
    executor_classes: dict[str, type[Executor]]
    executors: Executors
    """The executor instances (one per step type), read-only."""
    extra_templates: tuple[TemplateSpec, ...]
    live: EventHub
    engine: Engine

    @property
    def catalog(self) -> Catalog: ...

    @property
    def runs(self) -> Runs: ...

    @property
    def store(self) -> StateStore: ...

    @property
    def cache(self) -> Cache: ...

    @property
    def templates(self) -> TemplateStore | None: ...

    @property
    def queue(self) -> AttemptQueue | None: ...

    def check_env(self, extra_templates: Sequence[TemplateSpec] = ()) -> CheckEnv: ...

    def with_plugin_checks(self, compiled: Compiled) -> Compiled: ...

    def load_workflow(self, path: str | Path) -> Plan: ...

    def plan_for_run(self, run: RunRecord, jobs: dict[str, JobRecord]) -> Plan: ...
