"""The immutable plan a workflow file compiles to: inputs, jobs, their DAG and policies."""
from __future__ import annotations

import json
import math
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cached_property
from typing import Any

from .diagnostics import Span
from .expr import Expr, ObjectExpr, describe
from .expr import to_json as expr_json
from .schema import TypeRef

NO_SPAN = Span(0, 0, 0, 0)


@dataclass(frozen=True, slots=True)
class InputSpec:
    """A typed workflow (or template) input: `amount: number`, `note?: string`, `n: integer = 3`,
    `token: secret string` (a template's output fields are InputSpecs too).

    A `secret` value is sealed where it is stored and shows as `***` (docs/security.md)."""

    name: str
    type: TypeRef
    default: Any = None
    has_default: bool = False
    optional: bool = False
    description: str | None = None
    span: Span = NO_SPAN
    secret: bool = False

    @property
    def required(self) -> bool:
        return not (self.optional or self.has_default)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """`retry N backoff D factor F max M jitter J`: N more attempts after the first one.

    The delay before retry k (1-based) is `min(D * F**(k-1), M)`, then spread by up to
    ±J (a fraction) so that many failing jobs do not retry in lock-step.
    """

    retries: int = 0
    delay: float = 1.0
    factor: float = 2.0
    max_delay: float = 300.0
    jitter: float = 0.0

    def delay_before(self, retry: int, rng: random.Random | None = None) -> float:
        """Seconds to wait before retry number `retry` (1-based), capped at `max_delay`."""
        try:
            grown = self.delay * self.factor ** max(retry - 1, 0)
        except OverflowError:  # factor ** 1100 with retry 2000: far past any max_delay
            grown = math.inf
        base = min(grown, self.max_delay)
        if not self.jitter:
            return base
        spread = (rng or random).uniform(-self.jitter, self.jitter)
        return max(0.0, base * (1 + spread))


@dataclass(frozen=True, slots=True)
class Dependency:
    """`needs a` (must succeed) or `needs a?` (waited for; its skipping does not propagate)."""

    job: str
    optional: bool = False
    span: Span = NO_SPAN


@dataclass(frozen=True, slots=True)
class FanOut:
    """`for item in EXPR`: one job instance per list item, run in parallel."""

    var: str
    over: Expr
    span: Span = NO_SPAN


@dataclass(frozen=True, slots=True)
class TemplateStep:
    """One step of a multi-step template (stored templates): an executor and its config.

    Inside `config`, `input` is what the calling job passed and `steps.NAME.output` is the
    output of an earlier step."""

    name: str
    uses: str
    config: ObjectExpr


@dataclass(frozen=True, slots=True)
class TemplateSpec:
    """A reusable, versioned step: an executor with fixed config and typed input/output.

    Inside `config`, the name `input` refers to the values the calling job passes in `with`.
    A template with `steps` runs them in order within one attempt (`uses`/`config` are then
    those of the first step); its output is the last step's output.
    """

    name: str
    version: str
    uses: str
    config: ObjectExpr
    input_schema: dict[str, Any]
    output_schema: dict[str, Any]
    inputs: tuple[InputSpec, ...] = ()
    outputs: tuple[InputSpec, ...] = ()
    description: str | None = None
    span: Span = NO_SPAN
    steps: tuple[TemplateStep, ...] = ()

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "uses": self.uses,
            "description": self.description,
            "config": expr_json(self.config),
            "inputSchema": self.input_schema,
            "outputSchema": self.output_schema,
            **({"steps": [{"name": s.name, "uses": s.uses, "config": expr_json(s.config)}
                          for s in self.steps]} if self.steps else {}),
        }


@dataclass(frozen=True, slots=True)
class JobSpec:
    """One job of the plan. `uses` is always an executor name; `template` is set when the
    job was declared with `uses name@range` and records the exact version resolved."""

    name: str
    uses: str
    config: ObjectExpr
    needs: tuple[Dependency, ...] = ()
    when: Expr | None = None
    fanout: FanOut | None = None
    template: TemplateSpec | None = None
    retry: RetryPolicy = RetryPolicy()
    timeout: float | None = None
    priority: int = 0
    handler: bool = False
    description: str | None = None
    span: Span = NO_SPAN
    runs_on: tuple[str, ...] = ()
    """Worker labels (sorted, unique): only a worker with all of them may run the job."""

    @property
    def dependencies(self) -> tuple[str, ...]:
        return tuple(d.job for d in self.needs)

    def to_json(self) -> dict[str, Any]:
        r = self.retry
        return {
            "name": self.name,
            "uses": self.uses,
            "template": self.template.ref if self.template else None,
            "with": expr_json(self.config),
            "needs": [d.job + ("?" if d.optional else "") for d in self.needs],
            "when": describe(self.when) if self.when is not None else None,
            "for": {"var": self.fanout.var, "in": describe(self.fanout.over)}
            if self.fanout else None,
            "retry": {"retries": r.retries, "delay": r.delay, "factor": r.factor,
                      "max_delay": r.max_delay, "jitter": r.jitter},
            "timeout": self.timeout,
            "priority": self.priority,
            "runs_on": list(self.runs_on),
            "handler": self.handler,
            "description": self.description,
        }


class MissedRuns(StrEnum):
    """What a schedule does about fire times that passed while the server was down."""

    SKIP = "skip"
    CATCH_UP = "catch-up"


class ConflictPolicy(StrEnum):
    """What happens to a new run when its key already has the allowed number of runs."""

    QUEUE = "queue"
    CANCEL_NEW = "cancel-new"
    CANCEL_RUNNING = "cancel-running"


@dataclass(frozen=True, slots=True)
class Schedule:
    """`schedule "0 3 * * *" timezone "Europe/Paris" missed catch-up with { ... }`: start a
    run at every time the cron expression names, in that time zone, with those inputs."""

    cron: str
    timezone: str = "UTC"
    missed: MissedRuns = MissedRuns.SKIP
    inputs: Mapping[str, Any] = field(default_factory=dict)
    span: Span = NO_SPAN

    @property
    def key(self) -> str:
        """Identifies the schedule across reloads: editing its cron, zone or inputs makes a
        new schedule (two schedules may fire at the same times with different inputs)."""
        inputs = json.dumps(dict(self.inputs), sort_keys=True, separators=(",", ":"))
        return f"{self.cron} {self.timezone} {inputs}"

    def to_json(self) -> dict[str, Any]:
        return {"cron": self.cron, "timezone": self.timezone, "missed": self.missed.value,
                "inputs": dict(self.inputs)}


@dataclass(frozen=True, slots=True)
class Webhook:
    """`webhook secret NAME`: runs start on `POST /api/v1/hooks/WORKFLOW` from callers that
    prove they know the secret NAME (resolved through the `resolve_secret` hook)."""

    secret: str
    span: Span = NO_SPAN


@dataclass(frozen=True, slots=True)
class RunLimit:
    """`runs N per KEY on conflict POLICY`: at most `limit` unfinished runs of the workflow
    whose `key` (an expression over `input`; None: one key for all runs) is the same."""

    limit: int
    key: Expr | None = None
    policy: ConflictPolicy = ConflictPolicy.QUEUE
    span: Span = NO_SPAN

    def to_json(self) -> dict[str, Any]:
        return {"limit": self.limit, "key": describe(self.key) if self.key is not None else None,
                "policy": self.policy.value}


@dataclass(frozen=True)
class Plan:
    """A checked workflow: jobs in a topological order, failure handlers, outputs.

    Built only by `baseshift.dsl` after every check passed, so the engine can trust it:
    every dependency exists, the graph is acyclic, every expression refers to known names.
    """

    name: str
    version: str
    jobs: tuple[JobSpec, ...]
    inputs: tuple[InputSpec, ...] = ()
    handlers: tuple[JobSpec, ...] = ()
    outputs: tuple[tuple[str, Expr], ...] = ()
    description: str | None = None
    concurrency: int | None = None
    source: str = ""
    path: str = "<memory>"
    templates: tuple[TemplateSpec, ...] = field(default=())
    schedules: tuple[Schedule, ...] = ()
    webhook: Webhook | None = None
    run_limit: RunLimit | None = None

    @cached_property
    def by_name(self) -> dict[str, JobSpec]:
        return {j.name: j for j in (*self.jobs, *self.handlers)}

    @cached_property
    def dependants(self) -> dict[str, tuple[str, ...]]:
        """For each job, the jobs that list it in `needs` (the edges the engine follows)."""
        out: dict[str, list[str]] = {j.name: [] for j in (*self.jobs, *self.handlers)}
        for job in (*self.jobs, *self.handlers):
            for dep in job.needs:
                out[dep.job].append(job.name)
        return {k: tuple(v) for k, v in out.items()}

    def job(self, name: str) -> JobSpec:
        return self.by_name[name]

    def to_json(self) -> dict[str, Any]:
        return {
            "workflow": self.name,
            "version": self.version,
            "description": self.description,
            "concurrency": self.concurrency,
            "inputs": [_input_json(i) for i in self.inputs],
            "jobs": [j.to_json() for j in self.jobs],
            "on_failure": [j.to_json() for j in self.handlers],
            "outputs": {k: expr_json(v) for k, v in self.outputs},
            "templates": [t.to_json() for t in self.templates],
            "schedules": [s.to_json() for s in self.schedules],
            "webhook": {"secret": self.webhook.secret} if self.webhook else None,
            "run_limit": self.run_limit.to_json() if self.run_limit else None,
        }


def _input_json(i: InputSpec) -> dict[str, Any]:
    return {"name": i.name, "type": str(i.type), "required": i.required,
            "default": i.default if i.has_default else None, "description": i.description,
            **({"secret": True} if i.secret else {})}
