"""What every hook receives as `baseshift`: the application, as a protocol.

The hook specs (core/hookspecs.py) name this, not the `BaseShift` class: the class is built
from the components below, and the specs are read by the plugin manager that class creates,
so naming the class would tie them in a circle. `BaseShift` is checked against this protocol
(core/app.py), so the two cannot drift apart."""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from baseshift.dsl import CheckEnv, Compiled

    from .cache import Cache
    from .catalog import WorkflowCatalog
    from .engine import Engine
    from .executors import Executors
    from .hooks import Hooks
    from .hub import EventHub
    from .plan import Plan, TemplateSpec
    from .protocols import AttemptQueue, Executor, StateStore
    from .records import JobRecord, RunRecord
    from .service import RunService
    from .settings import Settings
    from .templatestore import TemplateStore


class App(Protocol):
    """The application: its settings, backends, engine and services, and the hooks."""

    settings: Settings
    hooks: Hooks
    stash: dict[str, Any]
    """Plugin state, by a key the plugin owns."""
    executor_classes: dict[str, type[Executor]]
    executors: Executors
    """The executor instances (one per step type), read-only."""
    extra_templates: tuple[TemplateSpec, ...]
    live: EventHub
    catalog: WorkflowCatalog
    engine: Engine
    runs: RunService

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
