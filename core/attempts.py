"""One job attempt: what it is (`Launch`, from `prepare_attempt`), then running it inside the
job wrappers: render its config (secrets, template), call the executor (each step's, within
the timeout), check the output. The engine records whatever this returns."""
from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager, AbstractContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple, NoReturn, Protocol, TypeGuard, cast

from .errors import BaseShiftError, ExecutionError, ExpressionError, JobTimeout
from .expr import evaluate, references
from .json_text import has_surrogate, replace_surrogates, surrogate_message, surrogate_path
from .logcontext import log_bound, log_masked
from .masking import Masker
from .masking import secret_fields as secret_parts
from .protocols import Executor, JobContext, JobResult, Wrapper
from .runstate import ActiveRun
from .secretvalues import (
    interpolated,
    open_inputs,
    open_output,
    reads_secret,
    seal_output,
    secret_inputs,
    secret_jobs,
    secret_outputs,
)
from .states import JobState
from .templating import TemplateCalls

if TYPE_CHECKING:
    from types import TracebackType

    from .hooks import Hooks
    from .plan import JobSpec, Plan
    from .records import RunSnapshot
    from .scope import RunScope
    from .sealing import Sealer
    from .settings import Settings


class Outcome(NamedTuple):
    """How an attempt ended: its output, or its error and whether another attempt may
    succeed; its log either way. A named tuple because it is the very tuple an
    `AttemptQueue.run` returns (core/protocols.py), named."""

    output: Any
    error: str | None
    retryable: bool
    log: str


@dataclass(frozen=True, slots=True)
class Launch:
    """An attempt ready to run: which attempt of which job of which run, the job's spec, the
    scope its config is rendered in (its fan-out item included) and its stored inputs
    (secrets, secret inputs and secret outputs still `***`)."""

    run: ActiveRun
    key: str
    number: int
    spec: JobSpec
    scope: RunScope
    config: Any


def prepare_attempt(run: ActiveRun, key: str) -> Launch:
    """The attempt job `key` of `run` is running now, as `AttemptRunner.run` executes it.

    The engine prepares each attempt it begins with this, and a queue worker each attempt
    it claims (`claimed_attempt`), so an attempt is the same wherever it runs."""
    rec = run.jobs[key]
    return Launch(run, key, rec.attempts, run.plan.job(rec.name), run.item_scope(rec),
                  rec.inputs)


def claimed_attempt(plan: Plan, snapshot: RunSnapshot, key: str, number: int) -> Launch | None:
    """Attempt `number` of job `key`, prepared from the run as stored (what a queue worker
    knows of it); None when the stored job is no longer running that attempt."""
    rec = snapshot.jobs.get(key)
    if rec is None or rec.state is not JobState.RUNNING or rec.attempts != number:
        return None
    return prepare_attempt(ActiveRun(plan, snapshot.run, snapshot.jobs), key)


class AttemptHost(Protocol):
    """What attempts need of the application: where jobs run, and the hooks."""

    settings: Settings
    hooks: Hooks


class AttemptRunner:
    """Executes attempts for one engine; holds the per-engine template caches."""

    def __init__(self, baseshift: AttemptHost, executors: Mapping[str, Executor]) -> None:
        self.bs = baseshift
        self.hooks = baseshift.hooks
        self.executors = executors
        self.templates = TemplateCalls()

    async def run(self, launch: Launch) -> Outcome:
        """Run the attempt; every failure of user code becomes an outcome. A cancellation of
        this task (cancel, timeout of the run, shutdown) propagates. Every secret of the
        attempt is masked in its output, error and log (core/masking.py), unless the
        dangerous setting `mask_secrets = false` turned that off; lone surrogates in
        the error and the log (a step printing bytes that are not UTF-8) become U+FFFD:
        every store and page must be able to write them. Lines the step logs name the
        attempt and are masked the same way (core/logcontext.py)."""
        masker = Masker()
        with (log_bound(run_id=launch.run.id, workflow=launch.run.record.workflow,
                        job=launch.key, attempt=launch.number),  # on every line it logs
              log_masked(masker if self.bs.settings.mask_secrets else None)):
            outcome = await self._attempt(launch, masker)
        error = None if outcome.error is None else replace_surrogates(outcome.error)
        outcome = outcome._replace(error=error, log=replace_surrogates(outcome.log))
        fields = secret_outputs(launch.spec)
        hidden: dict[str, Any] = {}
        if fields and isinstance(outcome.output, dict):  # sealed below, masked everywhere
            hidden = {k: v for k, v in outcome.output.items() if k in fields and v is not None}
            masker.add_derived(list(hidden.values()))
            outcome = outcome._replace(output={k: v for k, v in outcome.output.items()
                                               if k not in hidden})
        if masker and self.bs.settings.mask_secrets:  # off: docs/security.md
            outcome = Outcome(masker.value(outcome.output),
                              None if outcome.error is None else masker.text(outcome.error),
                              outcome.retryable, masker.text(outcome.log))
        if not hidden:
            return outcome
        try:
            sealed = await seal_output(self.hooks.sealer(), fields, hidden)
        except BaseShiftError as exc:
            return Outcome(None, f"the job's secret outputs could not be sealed: {exc}", False,
                           outcome.log)
        return outcome._replace(output={**outcome.output, **sealed})

    async def _attempt(self, launch: Launch, masker: Masker) -> Outcome:
        run, spec = launch.run, launch.spec
        ctx = JobContext(run.id, launch.key, launch.number, {}, spec.timeout,
                         str(self.bs.settings.data_dir))
        wrappers = self.hooks.job_wrappers(run.record, ctx)
        result: JobResult | None = None
        try:
            # once around the whole attempt (its config's rendering, each of its steps); one
            # or two plain wrappers (the metrics', the tracing's) entered as plain `with`
            # blocks: no coroutine made for each entry and exit of each attempt, and
            # `_plain`'s test made in place (a call less for each)
            if not wrappers:
                result = await self._work(launch, ctx, masker)
            elif len(wrappers) == 1 and hasattr(one := wrappers[0], "__exit__"):
                with one:  # type: ignore[union-attr]  # plain: tested just above
                    result = await self._work(launch, ctx, masker)
            elif len(wrappers) == 2 and hasattr(outer := wrappers[0], "__exit__") and \
                    hasattr(inner := wrappers[1], "__exit__"):
                with outer, inner:  # type: ignore[union-attr]  # plain: tested above
                    result = await self._work(launch, ctx, masker)
            else:
                async with _Wrapped(wrappers):
                    result = await self._work(launch, ctx, masker)
            if result is None:
                raise ExecutionError("a job wrapper suppressed the attempt's failure: it has "
                                     "no result")
            output = self.templates.check_output(spec, result.output)
            _check_json(output)
            return Outcome(output, None, False, result.log or "\n".join(ctx.lines))
        except asyncio.CancelledError as exc:
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise  # cancel or shutdown: the engine already recorded what it needed
            # user code let a CancelledError escape without this task being cancelled
            return Outcome(None, f"CancelledError: {exc}", True, "\n".join(ctx.lines))
        except (ExpressionError, NotRetryable) as exc:
            return Outcome(None, str(exc), False, "\n".join(ctx.lines))
        except (Exception, SystemExit) as exc:  # any failure of user code fails the attempt
            return Outcome(None, describe_failure(exc), True, "\n".join(ctx.lines))

    async def _work(self, launch: Launch, ctx: JobContext, masker: Masker) -> JobResult:
        """What the wrappers wrap: the config rendered, then the executor called (each
        step's in turn, for a template of several)."""
        spec = launch.spec
        given, ctx.config = await self._render(launch, masker)
        if spec.template is not None and len(spec.template.steps) > 1:
            return await self._run_steps(launch, given, ctx, masker)
        return await self._execute(spec.uses, ctx)

    async def _render(self, launch: Launch, masker: Masker) -> tuple[Any, dict[str, Any]]:
        """The job's `with` block as the job gets it (secrets resolved, sealed values
        opened), and the executor config rendered from it (the template's, for a template
        job). Every value that is or is built from a secret is added to `masker`."""
        spec, scope, plan = launch.spec, launch.scope, launch.run.plan
        config = launch.config
        names = self.templates.secret_names(spec)
        secrets = {n: await self._secret(n, masker) for n in names}
        opened = await self._opened(launch, masker)
        hidden = [i.name for i in spec.template.inputs if i.secret] if spec.template else []
        if names or opened or hidden:
            full = scope.with_values(secret=secrets, **opened)
            config = evaluate(spec.config, full)
            reads = lambda e: reads_secret(e, plan)  # noqa: E731
            masker.add_derived(secret_parts(spec.config, config, reads))
            masker.add_derived(interpolated(spec.config, full, reads))
        if isinstance(config, dict):
            masker.add_derived([config.get(name) for name in hidden])
        given = config
        if spec.template is not None:
            try:
                config = self.templates.render(spec, config, scope, secrets)
                masker.add_derived(secret_parts(spec.template.config, config))
            except ValueError as exc:
                raise NotRetryable(str(exc)) from None
        if not isinstance(config, dict):
            raise NotRetryable("the job's with-block must be an object")
        return given, config

    async def _opened(self, launch: Launch, masker: Masker) -> dict[str, Any]:
        """What the job's `with` block reads of sealed values, opened: `input` when it reads
        a secret input, and each job whose secret outputs it reads. Empty when none."""
        run, spec = launch.run, launch.spec
        plan = run.plan
        out: dict[str, Any] = {}
        hidden = secret_inputs(plan)
        if hidden and any(root == "input" and (not path or path[0] in hidden)
                          for root, path, _ in references(spec.config)):
            values = await self._open(open_inputs, plan.inputs, run.record.inputs)
            masker.add_derived([values.get(name) for name in hidden])
            out["input"] = values
        for name in secret_jobs(spec.config, plan):
            rec = run.jobs.get(name)
            if rec is None:
                continue
            fields = secret_outputs(plan.job(name))
            output = await self._open(open_output, fields, rec.output)
            items = output if isinstance(output, list) else [output]
            masker.add_derived([item.get(f) for item in items if isinstance(item, dict)
                                for f in fields])
            out[name] = {"output": output, "state": rec.state.value, "attempts": rec.attempts}
        return out

    async def _open(self, how: Callable[[Sealer, Any, Any], Awaitable[Any]], declared: Any,
                    stored: Any) -> Any:
        """Open sealed values with `how` (`open_inputs`, `open_output`); a value that cannot
        be opened (a retired key, no key plugin) fails the attempt for good."""
        try:
            return await how(self.hooks.sealer(), declared, stored)
        except BaseShiftError as exc:
            raise NotRetryable(f"a secret value could not be opened: {exc.message}") from None

    async def _run_steps(self, launch: Launch, given: Any, ctx: JobContext,
                         masker: Masker) -> JobResult:
        """A multi-step template: its steps in order, each seeing `steps.NAME.output` of the
        earlier ones; the job's output is the last step's. `timeout` bounds each step."""
        spec = launch.spec
        assert spec.template is not None
        try:
            values = self.templates.inputs(spec.template, given)
        except ValueError as exc:
            raise NotRetryable(str(exc)) from None
        secrets = {n: await self._secret(n, masker)
                   for n in self.templates.secret_names(spec)}
        done: dict[str, Any] = {}
        result = JobResult()
        for step in spec.template.steps:
            scope = launch.scope.with_values(input=values, secret=secrets, steps=done)
            config = evaluate(step.config, scope)
            masker.add_derived(secret_parts(step.config, config))
            ctx.config = config if isinstance(config, dict) else {}
            ctx.log(f"step {step.name} ({step.uses})")
            result = await self._execute(step.uses, ctx)
            if result.log:
                ctx.log(result.log)
            done[step.name] = {"output": result.output}
        return JobResult(result.output, "\n".join(ctx.lines))

    async def _secret(self, name: str, masker: Masker) -> str:
        value = await self.hooks.resolve_secret(name)
        if value is None:
            raise NotRetryable(f"secret '{name}' is not set (set the environment variable "
                               f"{name}, or configure a secrets plugin)")
        masker.add(value)
        return value

    async def _execute(self, uses: str, ctx: JobContext) -> JobResult:
        """One executor call, within the job's timeout."""
        executor = self.executors[uses]
        try:
            async with asyncio.timeout(ctx.timeout):
                result = await executor.execute(ctx)
        except TimeoutError:
            raise JobTimeout(f"timed out after {_seconds(ctx.timeout)}") from None
        if not isinstance(result, JobResult):
            result = JobResult(output=result)
        return result


_PLAIN = frozenset({type(None), bool, int, float, str})

def _plain(wrapper: Wrapper) -> TypeGuard[AbstractContextManager[object]]:
    """Whether a wrapper is a plain context manager (one that is both is entered as one).
    Not `isinstance(wrapper, AbstractContextManager)`: an ABC check is a Python call, and
    this is asked around every attempt."""
    return hasattr(wrapper, "__exit__")


class _Wrapped(AbstractAsyncContextManager[None]):
    """The job wrappers of one attempt as one manager, the first outermost, as nested
    `with` and `async with` blocks would be: each exit sees what the one inside left of the
    block's exception (nothing if it suppressed it, the one it raised instead if it raised).
    When one fails to enter, those entered are left with its exception, which then fails
    the attempt. Neither an exit stack nor nested objects: this runs around every attempt,
    and a plain (not async) wrapper costs no coroutine here."""

    __slots__ = ("entered", "wrappers")

    def __init__(self, wrappers: list[Wrapper]) -> None:
        self.wrappers = wrappers
        self.entered: list[Wrapper] = []

    async def __aenter__(self) -> None:
        entered = self.entered
        for wrapper in self.wrappers:
            try:
                if _plain(wrapper):
                    wrapper.__enter__()
                else:
                    await cast(AbstractAsyncContextManager[object], wrapper).__aenter__()
            except BaseException as exc:
                await self.__aexit__(type(exc), exc, exc.__traceback__)
                raise
            entered.append(wrapper)

    async def __aexit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> bool:
        pending = exc
        for wrapper in reversed(self.entered):
            given = (None, None, None) if pending is None else \
                (type(pending), pending, pending.__traceback__)
            try:
                if _plain(wrapper):
                    suppressed = wrapper.__exit__(*given)
                else:
                    suppressed = await cast(AbstractAsyncContextManager[object],
                                            wrapper).__aexit__(*given)
                if suppressed:
                    pending = None
            except BaseException as raised:
                if raised is not pending and raised.__context__ is None:
                    raised.__context__ = pending
                pending = raised
        self.entered = []
        if pending is None:
            return exc is not None  # the block's exception, suppressed
        if pending is exc:
            return False
        raise pending


class NotRetryable(ExecutionError):
    """A failure that another attempt cannot fix (bad inputs, a missing secret)."""


def _check_json(value: Any) -> None:
    """Outputs must be JSON that every store accepts: no NaN or infinities (PostgreSQL's json
    type refuses them, and they are not JSON), no lone surrogate in a string (`\\ud800`
    printed as JSON, or returned by a python step: it cannot be written as UTF-8)."""
    if type(value) in _PLAIN and not (type(value) is float and not math.isfinite(value)):
        if type(value) is str and has_surrogate(value):
            _refuse_surrogate("output")
        return
    # A cheap filter first: the JSON text writes every surrogate (paired ones too) as an
    # escape `\udXXX`, so the value is walked for its path only when the text holds one.
    if "\\ud" in output_text(value) and (path := surrogate_path(value, "output")) is not None:
        _refuse_surrogate(path)


def _refuse_surrogate(path: str) -> NoReturn:
    raise ExecutionError(f"the job's output is not JSON: {surrogate_message(path)}")


def output_text(value: Any) -> str:
    """A job's output as JSON text; ExecutionError when it is not JSON (NaN and infinities
    included): the check of `_check_json`, for whoever also needs the text."""
    try:
        return json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ExecutionError(f"the job's output is not JSON: {exc}") from None


def describe_failure(exc: BaseException) -> str:
    """How a failed attempt's error reads: an ExecutionError's message, else the exception
    type and text."""
    if isinstance(exc, ExecutionError):
        return exc.message
    return f"{type(exc).__name__}: {exc}"


def _seconds(value: float | None) -> str:
    return f"{value:g}s" if value is not None else "?"
