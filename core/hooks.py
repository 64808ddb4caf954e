"""The `Hooks` facade: the only code that calls `pm.hook`, applying each hook's mode.

Kept apart from the plugin manager (core/plugins.py), which needs the hook specs: the
components that call hooks import this module, and the specs name the application those
components make up, so neither may import the other's module."""
from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, cast

import pluggy

from .access import combine
from .errors import ConfigError, PluginError
from .registry import Backend
from .sealing import Sealer

if TYPE_CHECKING:
    from .access import Actor, Permission, Resource
    from .compliance import Control
    from .diagnostics import Diagnostic
    from .events import Event
    from .notifications import Notifier
    from .plan import Plan
    from .protocols import Executor, JobContext, Wrapper
    from .records import RunRecord

log = logging.getLogger("baseshift.plugins")


async def await_me_maybe(value: Any) -> Any:
    """Await `value` if it is awaitable; hook implementations may be sync or async."""
    if inspect.isawaitable(value):
        return await value
    return value


class Hooks:
    """Typed, async-aware calls of every hook, applying each hook's documented mode."""

    def __init__(self, pm: pluggy.PluginManager, baseshift: object) -> None:
        """`baseshift` is the application every hook receives (`appface.App`); only passed on."""
        self.pm = pm
        self.baseshift = baseshift
        self.refresh()

    def refresh(self) -> None:
        """Bind the implementations of the hooks called for every event, batch and attempt
        (`track_event`, `track_events`, `job_wrapper`), which are called directly, not
        through pluggy: a pluggy call costs more than most of them (docs/plugins.md). No
        implementation, no cost.

        Call again after registering plugins (`configure` implementations may register
        helper objects of their own)."""
        self._observers = [(impl.plugin_name, self._bound(impl, "event"))
                           for impl in self._direct("track_event")]
        self._batch_observers = [(impl.plugin_name, self._bound(impl, "events"))
                                 for impl in self._direct("track_events")]
        self._wrappers = [self._bound(impl, "run", "ctx") for impl in self._direct("job_wrapper")]

    def configure(self) -> None:
        self.pm.hook.configure(baseshift=self.baseshift)
        self.refresh()

    async def startup(self) -> None:
        """Start each plugin in turn. When one raises, the plugins started before it are
        shut down (in shutdown order) before the error goes on: a failed start leaves no task
        running and no log handler attached. The one that raised cleans up after itself."""
        started: set[str] = set()
        try:
            for impl in self._impls("startup"):
                await await_me_maybe(self._call(impl))
                started.add(impl.plugin_name)
        except BaseException:
            for impl in self._impls("shutdown"):
                if impl.plugin_name in started:
                    try:
                        await await_me_maybe(self._call(impl))
                    except Exception:  # the start's own error is the one to report
                        log.exception("plugin %s failed to shut down after a failed start",
                                      impl.plugin_name)
            raise

    async def shutdown(self) -> None:
        await self._one_at_a_time("shutdown")

    async def _one_at_a_time(self, hook: str) -> None:
        """Call and await each implementation before calling the next: when one raises,
        the later ones are never called, so no coroutine of theirs is left unawaited (a
        single pluggy call makes every coroutine before the first that raises)."""
        for impl in self._impls(hook):
            await await_me_maybe(self._call(impl))

    def executors(self) -> dict[str, type[Executor]]:
        return unique_by_name("register_executors", self._each("register_executors"))

    def backends(self, kind: str) -> dict[str, Backend]:
        """The backends of `kind` by name, as `registry.Backend` references (a class a plugin
        returned becomes its own reference); nothing is imported here."""
        results = [(owner, [c for c in group or () if getattr(c, "kind", None) == kind])
                   for owner, group in self._each("register_backends")]
        return {name: Backend.of(offered)
                for name, offered in unique_by_name("register_backends", results).items()}

    def _each(self, hook: str) -> list[tuple[str, Any]]:
        """Call a registry hook per plugin, keeping who returned what (for error messages)."""
        return [(impl.plugin_name, self._call(impl)) for impl in self._impls(hook)]

    def routes(self) -> list[Any]:
        """Every plugin's HTTP routes in registration order: builtins first, then installed
        plugins (the first matching route wins, so a plugin cannot shadow a builtin)."""
        return [r for _, group in reversed(self._each("register_routes")) for r in group or ()]

    def middleware(self) -> list[Any]:
        """Every plugin's HTTP middleware, outermost first: builtins first, then installed
        plugins, each plugin's in the order it returned them."""
        return [m for _, group in reversed(self._each("register_middleware"))
                for m in group or ()]

    def notifiers(self) -> dict[str, Notifier]:
        """Every plugin's alert notifiers by name (`register_notifiers`)."""
        return unique_by_name("register_notifiers", self._each("register_notifiers"))

    def job_template_sources(self) -> list[str]:
        return [s for group in self.pm.hook.register_job_templates(baseshift=self.baseshift)
                for s in group]

    def job_wrappers(self, run: RunRecord, ctx: JobContext) -> list[Wrapper]:
        """The wrappers of one attempt, in pluggy's order (the last registered first)."""
        found: list[Wrapper] = []
        for wrap in self._wrappers:
            wrapper = wrap(run, ctx)
            if wrapper is not None:
                found.append(wrapper)
        return found

    async def track_event(self, event: Event) -> None:
        """Tell every observer about one event (`track_events`)."""
        await self.track_events((event,))

    async def track_events(self, events: Sequence[Event]) -> None:
        """Tell every `track_event` observer about each event in turn, then every
        `track_events` observer about them all, in pluggy's order; what one returns is
        awaited before the next is told. An observer's exception is logged, never
        propagated, and the other observers are still told."""
        if not events:
            return
        events = tuple(events)  # one batch, which no observer can change for the next
        for event in events:
            for name, observe in self._observers:
                try:
                    result = observe(event)
                    if result is not None:
                        await result
                except Exception:
                    log.exception("track_event observer %s failed for %r", name, event)
        for name, observe_all in self._batch_observers:
            try:
                result = observe_all(events)
                if result is not None:
                    await result
            except Exception:
                log.exception("track_events observer %s failed for %d events", name,
                              len(events))

    async def resolve_secret(self, name: str) -> str | None:
        # one implementation at a time: calling them all first left the coroutines of those
        # after the answering one never awaited (a RuntimeWarning, and a wasted vault call)
        value = await self._first("resolve_secret", name=name)
        return None if value is None else str(value)

    def sealer(self) -> Sealer:
        """The sealer a plugin provides (`provide_sealer`); a ConfigError when none does."""
        for result in self.pm.hook.provide_sealer(baseshift=self.baseshift):
            if result is not None:
                return cast(Sealer, result)
        raise ConfigError("no plugin seals secret values",
                          hint="enable the builtin 'keys' plugin, or install a key plugin")

    async def compliance_controls(self) -> list[Control]:
        """Every plugin's controls, as found now."""
        found: list[Control] = []
        for impl in self._impls("compliance_controls"):
            found.extend(await await_me_maybe(self._call(impl)) or ())
        return found

    def validate_plan(self, plan: Plan) -> list[Diagnostic]:
        return [d for group in self.pm.hook.validate_plan(baseshift=self.baseshift, plan=plan)
                for d in group]

    async def admit_run(self, plan: Plan, inputs: Mapping[str, Any]) -> str | None:
        """The id of the run a plugin started (or queued, or refused) for `plan`; None when
        none took the start over."""
        run_id = await self._first("admit_run", plan=plan, inputs=inputs)
        return None if run_id is None else str(run_id)

    def admits_runs(self) -> bool:
        """Whether a plugin may take over starts (`admit_run`): without one, a run limit
        cannot be applied."""
        return bool(self.pm.hook.admit_run.get_hookimpls())

    async def reopen_run(self, plan: Plan, run: RunRecord,
                         action: Callable[[], Awaitable[None]]) -> bool:
        """Whether a plugin decided about reopening `run` (and awaited `action` if allowed)."""
        return bool(await self._first("reopen_run", plan=plan, run=run, action=action))

    async def take_up_runs(self, runs: list[RunRecord]) -> set[str]:
        """The ids of the INITIALIZED `runs` that plugins take care of."""
        taken: set[str] = set()
        for impl in self._impls("take_up_runs"):
            taken.update(await await_me_maybe(self._call(impl, runs=runs)) or ())
        return taken

    async def authenticate(self, request: Any) -> Actor | None:
        """The actor a plugin recognises in `request`; None: anonymous."""
        actor: Actor | None = await self._first("authenticate", request=request)
        return actor

    async def authorize(self, actor: Actor, permission: str, resource: Resource) -> bool:
        """Whether the plugins' answers let `actor` use `permission` on `resource`."""
        answers = [await await_me_maybe(self._call(impl, actor=actor, permission=permission,
                                                   resource=resource))
                   for impl in self._impls("authorize")]
        return combine(answers)

    def permissions(self) -> dict[str, Permission]:
        """Every declared permission by name (`register_permissions`)."""
        return unique_by_name("register_permissions", self._each("register_permissions"))

    async def _first(self, hook: str, **kwargs: Any) -> Any:
        """Call a first-mode hook's implementations one at a time until one answers: those
        after it are not called at all, since an implementation may act (start a run)."""
        for impl in self._impls(hook):
            value = await await_me_maybe(self._call(impl, **kwargs))
            if value is not None:
                return value
        return None

    def _impls(self, hook: str) -> list[pluggy.HookImpl]:
        """A hook's implementations in pluggy's call order (the last registered first)."""
        return list(reversed(getattr(self.pm.hook, hook).get_hookimpls()))

    def _direct(self, hook: str) -> list[pluggy.HookImpl]:
        """The implementations of a hook called directly (`refresh`); a wrapper of such a
        hook would never be called, so registering one is an error."""
        impls = self._impls(hook)
        for impl in impls:
            if impl.hookwrapper or impl.wrapper:
                raise PluginError(f"Plugin '{impl.plugin_name}': a hookwrapper or wrapper "
                                  f"implementation of {hook} is not supported (it is called "
                                  "once per event or attempt, not through pluggy)")
        return impls

    def _bound(self, impl: pluggy.HookImpl, *names: str) -> Callable[..., Any]:
        """`impl` as a function of the hook's arguments `names` (in that order) that
        passes it those it asks for, and the application."""
        function, wanted = impl.function, impl.argnames
        if wanted == names:
            return cast(Callable[..., Any], function)
        if wanted == ("baseshift", *names):
            return functools.partial(function, self.baseshift)
        baseshift = self.baseshift

        def call(*given: Any) -> Any:
            values = {"baseshift": baseshift, **dict(zip(names, given, strict=True))}
            return function(**{name: values[name] for name in wanted})

        return call

    def _call(self, impl: pluggy.HookImpl, **kwargs: Any) -> Any:
        """Call one implementation with the arguments it names (and the application)."""
        kwargs["baseshift"] = self.baseshift
        return impl.function(**{k: kwargs[k] for k in impl.argnames})


def unique_by_name(hook: str, results: list[tuple[str, Any]]) -> dict[str, Any]:
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
