"""The plugin contract: every hook Base Shift calls, with its mode and whether it may be async.

Modes (applied by the `Hooks` facade in `core/hooks.py`, the only caller of `pm.hook`):

- collect: every implementation runs; list results are flattened.
- first: implementations are awaited in call order; the first non-None result wins.

"May be async" means an implementation may be `async def` or return an awaitable; the facade
awaits it. Arguments may be added to a hook later, never renamed or removed: pluggy passes
them by keyword and an implementation takes only the ones it names.
"""
from __future__ import annotations

from contextlib import AbstractAsyncContextManager, AbstractContextManager
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Mapping, Sequence

    from .access import Actor, Decision, Permission, Resource
    from .appface import App
    from .command import Command
    from .compliance import Control
    from .diagnostics import Diagnostic
    from .events import Event
    from .notifications import Notifier
    from .plan import Plan
    from .protocols import Executor, JobContext
    from .records import RunRecord
    from .registry import Offered
    from .sealing import Sealer

hookspec = pluggy.HookspecMarker("baseshift")
hookimpl = pluggy.HookimplMarker("baseshift")

# --------------------------------------------------------------------- lifecycle


@hookspec
def configure(baseshift: App) -> None:
    """Set the plugin up once, after settings are read and before any backend opens.

    Mode: collect. Async: no.
    """


@hookspec
def startup(baseshift: App) -> Awaitable[None] | None:
    """Called after the state store is open, before runs are started or resumed.

    Mode: collect. Async: yes.
    """


@hookspec
def shutdown(baseshift: App) -> Awaitable[None] | None:
    """Called once when the application stops, after the engine has stopped; close pools here.

    Mode: collect. Async: yes.
    """


# --------------------------------------------------------------------- registries


@hookspec
def register_executors(baseshift: App) -> list[type[Executor]]:
    """Return executor classes: the step types a job names with `uses NAME`.

    Each class has a unique `name`, a `config_schema` (JSON Schema of its `with` block) and an
    `async execute(ctx) -> JobResult`; it is instantiated once with no arguments. Two plugins
    offering the same name is an error naming both.

    Mode: collect. Async: no.
    """


@hookspec
def register_backends(baseshift: App) -> list[Offered]:
    """Return `registry.Backend` references: a `kind`, a `name` and the import path of the
    class, imported only when settings choose it (so an unused backend costs nothing and
    needs no driver installed). Settings choose one per kind by name (`core/backends.py`);
    it is built with `load().from_settings(baseshift.settings)`. Kinds: "state" (`store`,
    implements `StateStore`, and `RunAnalytics` for the analytics API), "templates"
    (`templates`, `TemplateStore`), "queue" (`queue`, `AttemptQueue`), "cache" (`cache`,
    `core.cache.Cache`), "live" (`live`) and "results" (`results`): these two are built
    when the application is, and registered as plugins, so their hook implementations
    (`startup`, `track_event`, `shutdown`) do their work. A backend's `requires` names the
    modules it needs and the command installing them: a missing one is a ConfigError that
    shows that command. A class with `kind` and `name` is accepted in place of a reference.

    Mode: collect. Async: no.
    """


@hookspec
def register_job_templates(baseshift: App) -> list[str]:
    """Return workflow-language sources holding `template` blocks shipped by the plugin.

    They are available to every workflow through `uses name@range`, like templates in files
    beside the workflow.

    Mode: collect. Async: no.
    """


@hookspec
def register_routes(baseshift: App) -> list[Any]:
    """Return Starlette routes (`Route`, `Mount`, `WebSocketRoute`) for the HTTP server.

    Every route of the server, the builtin REST API and web pages included, comes from this
    hook. Name routes `"<plugin>:<view>"` so templates can `url_for` them. Routes are added
    in plugin registration order (builtins first); the first route that matches a path wins.

    Mode: collect. Async: no.
    """


@hookspec
def register_middleware(baseshift: App) -> list[Any]:
    """Return ASGI middleware for the HTTP server, as Starlette `Middleware(cls, **options)`
    entries (request metrics, tracing, access logs).

    They wrap every request, refused ones included: inside the security headers (so what they
    answer carries them), outside the host check, the request guard and authentication. The
    first plugin's first entry is the outermost; builtins come first. After routing,
    `scope["route"]` is the matched route (its `path` is the template, never the raw path).

    Mode: collect. Async: no.
    """


@hookspec
def register_notifiers(baseshift: App) -> list[Notifier]:
    """Return alert notifiers (`core.notifications.Notifier` instances): the channels an
    alert rule's `notify` entries name by `type` (the builtin `alerts` plugin offers
    `webhook` and `email`). Two plugins offering one name is an error naming both.

    Mode: collect. Async: no.
    """


@hookspec
def register_commands() -> list[Command]:
    """Return `Command`s: extra `baseshift` subcommands (name, help, arguments, handler).

    Called while the command line is parsed, before any application exists, so this hook
    takes no arguments. A name that is already taken is an error naming both plugins.

    Mode: collect. Async: no.
    """


# --------------------------------------------------------------------- engine


@hookspec
def job_wrapper(
    baseshift: App, run: RunRecord, ctx: JobContext
) -> AbstractContextManager[object] | AbstractAsyncContextManager[object] | None:
    """Return a context manager entered once around one job attempt (timing, tracing,
    logs): around rendering its config (`ctx.config` is set inside the block) and every
    step of a template. A plain one when entering and leaving need no await (it costs
    less), else an async one.

    Wrappers are entered in call order and exited in reverse; an exception inside fails the
    attempt. Return None to not wrap.

    Mode: collect. Async: the returned context manager may be; the hook itself is not.
    """


@hookspec
def track_event(baseshift: App, event: Event) -> Awaitable[None] | None:
    """Observe an event: run and job state changes, fan-out expansion.

    Called after the change is stored, never as the system of record. An exception is
    logged and does not affect the run.

    Mode: collect. Async: yes.
    """


@hookspec
def track_events(baseshift: App, events: Sequence[Event]) -> Awaitable[None] | None:
    """Observe a batch of events, in order: every event of one engine round (hundreds in a
    large fan-out), after the `track_event` observers saw them one by one.

    For an observer that counts every event: one call for many, and the batch can be
    counted with builtins rather than a call per event. The same sequence object goes to
    every observer of the batch. Called after the changes are stored; an exception is
    logged and does not affect the run.

    Mode: collect. Async: yes.
    """


@hookspec
def resolve_secret(baseshift: App, name: str) -> str | Awaitable[str | None] | None:
    """Return the value of secret `name` (`${secret.NAME}` in a workflow), or None if unknown.

    Secret values reach executors but are never stored: stored job inputs show `***`.

    Mode: first. Async: yes.
    """


@hookspec
def provide_sealer(baseshift: App) -> Sealer | None:
    """Return the `core.sealing.Sealer` that encrypts stored secret values (run inputs
    declared `secret`, `secret` outputs, the key API), or None to leave it to another
    plugin. The builtin `keys` plugin answers last, so a third-party plugin takes over by
    answering. Called once the state store is open; return the same object every time.

    Mode: first. Async: no.
    """


@hookspec
def compliance_controls(baseshift: App) -> list[Control] | Awaitable[list[Control]]:
    """Return the `core.compliance.Control`s the plugin can judge from the live installation
    (its configuration and stored state), for the compliance report. Each is computed when
    called: nothing in a control is a constant.

    Mode: collect. Async: yes.
    """


# --------------------------------------------------------------------- admission


@hookspec
def admit_run(baseshift: App, plan: Plan, inputs: Mapping[str, Any]
              ) -> str | Awaitable[str | None] | None:
    """Take over the start of a new run of `plan`: start it, queue it (stored INITIALIZED) or
    refuse it (stored CANCELLED), and return its id; or return None to let the engine start
    it at once. The builtin `run_limits` plugin applies the plan's `run_limit` here.

    A plan with a `run_limit` that no plugin took over is refused (a ConfigError), and
    `baseshift check` reports it when no plugin implements this hook: a disabled
    `run_limits` never lets such a workflow run unlimited.

    Mode: first. Async: yes.
    """


@hookspec
def reopen_run(baseshift: App, plan: Plan, run: RunRecord,
               action: Callable[[], Awaitable[None]]) -> bool | Awaitable[bool | None] | None:
    """Decide whether finished run `run` may run again (a retry, a re-run from a job): await
    `action`, which reopens it, and return True; raise (a Conflict) to refuse; or return None
    to let it reopen at once. The same rule as `admit_run` holds for plans with a
    `run_limit`.

    Mode: first. Async: yes.
    """


@hookspec
def take_up_runs(baseshift: App, runs: list[RunRecord]) -> list[str] | Awaitable[list[str]]:
    """Take up runs left INITIALIZED (stored, not begun): `runs`, oldest first, are those no
    engine here executes, at server start and then every few seconds (those of a stopped
    server once they are old enough). Return the ids of the runs the plugin takes care of
    (queues, starts or keeps waiting); the run service starts the others.

    Mode: collect. Async: yes.
    """


# --------------------------------------------------------------------- access


@hookspec
def authenticate(baseshift: App, request: Any) -> Actor | Awaitable[Actor | None] | None:
    """Return the `core.access.Actor` a request comes from, or None when the plugin does not
    recognise its credentials. `request` is the server's request object (a Starlette
    `Request` for the builtin HTTP server). Raise `Unauthorized` for a credential the plugin
    owns that is wrong, expired or revoked: the request is then refused, not treated as
    anonymous. With no answer at all the actor is anonymous.

    Mode: first. Async: yes.
    """


@hookspec
def authorize(baseshift: App, actor: Actor, permission: str, resource: Resource
              ) -> Decision | Awaitable[Decision | None] | None:
    """Decide whether `actor` may use `permission` on `resource`: return `Decision.ALLOW`,
    `Decision.DENY` or None (no opinion). Every implementation is asked; one DENY refuses,
    and without any ALLOW the request is refused too. The builtin `rbac` plugin allows what
    the actor's grants give.

    Mode: collect. Async: yes.
    """


@hookspec
def register_permissions(baseshift: App) -> list[Permission]:
    """Return the `core.access.Permission`s the plugin's routes and commands need, so roles
    can grant them (the builtin `admin` role holds every declared permission). Two plugins
    declaring one name is an error naming both.

    Mode: collect. Async: no.
    """


# --------------------------------------------------------------------- language


@hookspec
def validate_plan(baseshift: App, plan: Plan) -> list[Diagnostic]:
    """Return extra diagnostics for a checked plan (house rules such as "every job needs a
    timeout"). Errors among them stop the workflow from running, like language errors.

    Mode: collect. Async: no.
    """
