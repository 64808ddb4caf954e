"""Semantic checks of a parsed file, building the Plan and TemplateSpecs when they pass.

Every problem becomes a Diagnostic (all of them, never just the first): unknown names,
jobs, inputs, executors and templates, cycles, reads of jobs that are not upstream,
duplicates, bad versions, durations and values, type errors and `with` blocks that do not
fit their executor or template. docs/language.md lists every code.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from baseshift.core.diagnostics import Span
from baseshift.core.expr import Expr, ObjectExpr, references
from baseshift.core.plan import (
    Dependency,
    FanOut,
    InputSpec,
    JobSpec,
    Plan,
    RetryPolicy,
    TemplateSpec,
)
from baseshift.core.schema import ANY, INTEGER, OBJECT, STRING, list_of
from baseshift.core.shellmark import mark_job

from . import ast, decls, graph, triggers
from .report import Reporter, did_you_mean
from .shellcheck import check_shell
from .templates import (
    RUN,
    SECRET,
    Registry,
    check_version,
    fields_of,
    singles,
    unknown_executor,
)
from .typecheck import ANY_SHAPE, Checker, Scope, Shape, maybe_null, shape_of

RESERVED = frozenset({"input", "secret", "run", "failure", "true", "false", "null", "not",
                      "and", "or", "in"})
_FAILURE = Shape(OBJECT, {"jobs": Shape(list_of(STRING)), "error": Shape(STRING)}, "failure")
_JOB_STATEMENTS = (ast.Description, ast.When, ast.With, ast.Retry, ast.Timeout, ast.Priority,
                   ast.FanOut, ast.RunsOn)


class _Roots(Mapping[str, Shape]):
    """Root names of a scope: fixed ones plus jobs, whose shapes are made when first read."""

    def __init__(self, base: dict[str, Shape], jobs: frozenset[str],
                 make: Callable[[str], Shape]) -> None:
        self._base, self._jobs, self._make = base, jobs, make
        self._made: dict[str, Shape] = {}

    def __getitem__(self, name: str) -> Shape:
        found = self._base.get(name) or self._made.get(name)
        if found is not None:
            return found
        if name not in self._jobs:
            raise KeyError(name)
        self._made[name] = shape = self._make(name)
        return shape

    def __iter__(self) -> Iterator[str]:
        return iter([*self._base, *sorted(self._jobs - self._base.keys())])

    def __len__(self) -> int:
        return len(self._base) + len(self._jobs - self._base.keys())


@dataclass(slots=True)
class _Job:
    """What the checker knows about one job while checking the workflow."""

    node: ast.Job
    handler: bool
    found: dict[type, Any]
    name: str = ""
    deps: list[ast.Dep] = field(default_factory=list)
    executor: str | None = None
    template: TemplateSpec | None = None
    timeout: float | None = None
    retry: RetryPolicy = RetryPolicy()
    priority: int = 0
    runs_on: tuple[str, ...] = ()


class WorkflowCheck:
    """Checks one workflow block; `run()` returns its Plan, or None when it has errors."""

    def __init__(self, wf: ast.Workflow, report: Reporter,
                 executors: Mapping[str, Mapping[str, Any]], registry: Registry) -> None:
        self.wf, self.report, self.executors, self.registry = wf, report, executors, registry
        self.jobs: dict[str, _Job] = {}
        self.inputs: tuple[InputSpec, ...] = ()
        self.acyclic = True
        self.ancestry: dict[bool, graph.Ancestry] = {}
        self.runs_on: tuple[str, ...] = ()

    def run(self) -> Plan | None:
        start = self.report.errors
        kinds = (ast.Version, ast.Description, ast.Concurrency, ast.InputBlock, ast.OutputBlock,
                 ast.RunsOn)
        where = f"workflow '{self.wf.name.name}'"
        found = singles(self.wf.body, kinds, self.report, where)
        self.runs_on = decls.labels(found.get(ast.RunsOn), self.report, where) or ()
        version = check_version(found.get(ast.Version), self.report, self.wf.name, "workflow")
        self.inputs = decls.input_specs(fields_of(found.get(ast.InputBlock)), self.report, "input")
        concurrency = self._concurrency(found.get(ast.Concurrency))
        declared = triggers.check_triggers(self.wf, self.inputs, self.report)
        self._collect_jobs()
        main = [j for j in self.jobs.values() if not j.handler]
        handlers = [j for j in self.jobs.values() if j.handler]
        order = self._order(main, False) + self._order(handlers, True)
        self._check_expressions(order)
        outputs = self._outputs(found.get(ast.OutputBlock))
        if self.report.errors > start or version is None:
            return None
        specs = {name: self._spec(self.jobs[name]) for name in order}
        description = found[ast.Description].value.value if ast.Description in found else None
        used = {s.template.ref: s.template for s in specs.values() if s.template}
        return Plan(self.wf.name.name, version, tuple(s for s in specs.values() if not s.handler),
                    self.inputs, tuple(s for s in specs.values() if s.handler), outputs,
                    description, concurrency, templates=tuple(used.values()),
                    schedules=declared.schedules, webhook=declared.webhook,
                    run_limit=declared.run_limit)

    def _concurrency(self, c: ast.Concurrency | None) -> int | None:
        if c is None:
            return None
        value = c.value.value
        if not isinstance(value, int) or value < 1:
            self.report.error(c.value.span, "dsl.bad-value",
                              f"concurrency must be a whole number of at least 1, not {value}")
            return None
        return value

    # ---- jobs, needs and uses

    def _collect_jobs(self) -> None:
        for item in self.wf.body:
            if isinstance(item, ast.Job):
                self._add_job(item, False)
            elif isinstance(item, ast.OnFailure):
                for handler in item.jobs:
                    self._add_job(handler, True)
        for job in self.jobs.values():
            self._resolve_needs(job)

    def _add_job(self, node: ast.Job, handler: bool) -> None:
        name = node.name
        if name.name in self.jobs:
            first = self.jobs[name.name].node.name.span.line
            self.report.error(name.span, "dsl.duplicate",
                              f"job '{name.name}' is already defined on line {first}")
            return
        if name.name in RESERVED:
            self.report.error(name.span, "dsl.reserved",
                              f"'{name.name}' is a reserved name and cannot name a job")
        found = singles(node.body, _JOB_STATEMENTS, self.report, f"job '{name.name}'")
        job = _Job(node, handler, found, name.name)
        self.jobs[name.name] = job
        self._resolve_uses(job)
        self._settings(job)

    def _settings(self, job: _Job) -> None:
        f = job.found
        if ast.Timeout in f:
            t = f[ast.Timeout]
            job.timeout = decls.duration(t.text, t.span, "timeout", self.report)
        if ast.Retry in f:
            job.retry = decls.retry_policy(f[ast.Retry], self.report)
        p = f.get(ast.Priority)
        if p is not None and not isinstance(p.value.value, int):
            self.report.error(p.value.span, "dsl.bad-value",
                              f"priority must be a whole number, not {p.value.value}")
        elif p is not None:
            job.priority = p.value.value
        own = decls.labels(f.get(ast.RunsOn), self.report, f"job '{job.name}'")
        job.runs_on = self.runs_on if own is None else own

    def _resolve_uses(self, job: _Job) -> None:
        uses = job.node.uses
        if uses.range is not None:
            job.template = self.registry.resolve(uses, self.report)
            job.executor = job.template.uses if job.template else None
        elif uses.name.name in self.executors:
            job.executor = uses.name.name
        else:
            unknown_executor(self.report, uses.name, self.executors, self.registry.templates)

    def _resolve_needs(self, job: _Job) -> None:
        seen: set[str] = set()
        for stmt in job.node.body:
            if isinstance(stmt, ast.Needs):
                for dep in stmt.deps:
                    if self._dep_ok(job, dep, seen):
                        job.deps.append(dep)
                    seen.add(dep.name)

    def _dep_ok(self, job: _Job, dep: ast.Dep, seen: set[str]) -> bool:
        other = self.jobs.get(dep.name)
        problem: tuple[str, str, str | None] | None = None
        if dep.name in seen:
            problem = ("dsl.duplicate", f"job '{job.name}' needs '{dep.name}' twice", None)
        elif dep.name == job.name:
            problem = ("dsl.cycle", f"job '{job.name}' needs itself", "remove it from 'needs'")
        elif other is None:
            problem = ("dsl.unknown-job", f"job '{job.name}' needs '{dep.name}', which is not "
                       "defined", did_you_mean(dep.name, self.jobs, "defined jobs"))
        elif other.handler != job.handler:
            problem = ("dsl.handler", f"job '{job.name}' needs '{dep.name}', but "
                       + ("only 'on failure' jobs can need 'on failure' jobs" if other.handler
                          else "'on failure' jobs can only need other 'on failure' jobs"),
                       "'on failure' jobs run after the workflow failed; they can read any "
                       "main job without 'needs'")
        if problem:
            self.report.error(dep.span, *problem)
        return problem is None

    def _order(self, jobs: list[_Job], handlers: bool) -> list[str]:
        names = [j.name for j in jobs]
        needs = {j.name: [d.name for d in j.deps] for j in jobs}
        order = graph.topological_order(names, needs)
        if len(order) < len(names):
            for cycle in graph.find_cycles(names, needs, order):
                dep = next(d for d in self.jobs[cycle[0]].deps if d.name == cycle[1])
                self.report.error(dep.span, "dsl.cycle", "dependency cycle: " + " -> ".join(cycle),
                                  "a job cannot (even indirectly) need itself; remove one of "
                                  "these 'needs'")
            self.acyclic = False
        self.ancestry[handlers] = graph.Ancestry(order, needs)
        return order

    # ---- expressions

    def _job_shape(self, name: str) -> Shape:
        job = self.jobs[name]
        output = ANY_SHAPE
        t = job.template
        if t is not None and t.outputs:
            output = decls.record(t.outputs, f"the output of job '{job.name}' ({t.ref})",
                                  "dsl.unknown-field")
        if ast.FanOut in job.found:
            output = self._fanout_output(job, output)
        return Shape(OBJECT, {"output": output, "state": Shape(STRING),
                              "attempts": Shape(INTEGER)}, f"job '{job.name}'")

    def _fanout_output(self, job: _Job, each: Shape) -> Shape:
        """A fan-out job's output is the list of its instances' outputs, in item order; an
        instance whose own `when` was false left null in its place."""
        when = job.found.get(ast.When)
        var = job.found[ast.FanOut].var.name
        if when is not None and any(root == var for root, _, _ in references(when.condition)):
            each = maybe_null(each, f"an item of '{job.name}' whose condition was false is null")
        return Shape(list_of(each.type), what=f"job '{job.name}' fans out: one output per item",
                     items=each)

    def _scopes(self) -> tuple[Scope, Scope]:
        base = {"input": decls.record(self.inputs, "input", "dsl.unknown-input",
                                      null_means_default=True),
                "secret": SECRET, "run": RUN}
        usable = frozenset(self.jobs) - RESERVED
        main_names = frozenset(n for n in usable if not self.jobs[n].handler)
        handler_only = {n: "is an 'on failure' job; main jobs cannot read it"
                        for n in usable - main_names}
        main = Scope(_Roots(base, main_names, self._job_shape), main_names,
                     handler_only | {"failure": "can only be used in 'on failure' jobs"})
        handlers = Scope(_Roots(base | {"failure": _FAILURE}, usable, self._job_shape), usable)
        return main, handlers

    def _check_expressions(self, order: list[str]) -> None:
        main, handlers = self._scopes()
        acyclic = self.acyclic
        names = list(self.jobs)
        checkers = {False: Checker(self.report, main, names),
                    True: Checker(self.report, handlers, names)}
        for name in order:
            job = self.jobs[name]
            checker = checkers[job.handler]
            if ast.FanOut in job.found:
                checker = Checker(self.report, self._with_var(job, checker.scope, names), names)
            self._job_expressions(job, checker)
            if acyclic:
                self._upstream(job, checker.refs)
            checker.refs.clear()
        if not acyclic:
            return
        ordered = set(order)
        for job in self.jobs.values():
            if job.name not in ordered:
                self._job_expressions(job, Checker(self.report, main, names))

    def _with_var(self, job: _Job, scope: Scope, names: list[str]) -> Scope:
        fan = job.found[ast.FanOut]
        over = Checker(self.report, scope, names)
        shape = over.infer(fan.over)
        self._upstream(job, over.refs)
        item = ANY_SHAPE
        if shape.type.name == "list":
            over.present(fan.over, shape, "'for'")
            item = shape.items or shape_of(shape.type.item or ANY)
        elif shape.type.name != "any":
            self.report.error(fan.over.span, "dsl.type",
                              f"'for' needs a list to go over, not {shape.type}")
        var = fan.var.name
        if var in scope.roots:
            self.report.error(fan.var.span, "dsl.reserved",
                              f"the loop variable '{var}' hides the name '{var}'")
        roots = _Roots({"input": scope.roots["input"], "secret": SECRET, "run": RUN,
                        **({"failure": _FAILURE} if job.handler else {}),
                        var: item},
                       scope.jobs - {var}, self._job_shape)
        return Scope(roots, scope.jobs - {var}, scope.elsewhere)

    def _job_expressions(self, job: _Job, checker: Checker) -> None:
        when = job.found.get(ast.When)
        if when is not None:
            checker.condition(when.condition, "a 'when' condition")
            self._no_secrets(when.condition, "a 'when' condition")
        fan = job.found.get(ast.FanOut)
        if fan is not None:
            self._no_secrets(fan.over, "a 'for' list")
        with_ = job.found.get(ast.With)
        values = with_.values if with_ else ObjectExpr((), job.node.span)
        shapes = checker.field_shapes(values)
        types = [s.type for s in shapes]
        where = with_.span if with_ else job.node.uses.span
        if job.template is not None:
            decls.check_template_inputs(self.report, job.name, job.template, values, types, where)
            self._null_template_inputs(checker, job.template, values, shapes)
        elif job.executor is not None:
            decls.check_config(self.report, job.name, job.executor,
                               self.executors[job.executor], values, types, where)
            check_shell(self.report, values, self.executors[job.executor], self._tainted(job))

    def _tainted(self, job: _Job) -> Callable[[str], bool]:
        """Which root names carry data from outside the workflow (see `shellcheck`)."""
        outside = {"input", "failure", *self.jobs}
        fan = job.found.get(ast.FanOut)
        if fan is not None and any(r in outside for r, _, _ in references(fan.over)):
            outside.add(fan.var.name)
        return outside.__contains__

    @staticmethod
    def _null_template_inputs(checker: Checker, template: TemplateSpec, values: ObjectExpr,
                              shapes: list[Shape]) -> None:
        """A value that may be null breaks the input schema of a template input that is not
        optional (null passed explicitly does not take the default)."""
        inputs = {i.name: i for i in template.inputs}
        for (key, value), shape in zip(values.fields, shapes, strict=True):
            spec = inputs.get(key)
            if spec is not None and not spec.optional:
                checker.present(value, shape,
                                f"the non-optional input '{key}' of template {template.ref}")

    def _upstream(self, job: _Job, refs: list[tuple[str, Span]]) -> None:
        ancestry = self.ancestry[job.handler]
        reported: set[str] = set()
        for name, span in refs:
            other = self.jobs[name]
            if name in reported or ancestry.is_upstream(job.name, name):
                continue
            reported.add(name)
            if name == job.name:
                self.report.error(span, "dsl.not-upstream",
                                  f"job '{name}' cannot read its own result")
            elif other.handler == job.handler:
                self.report.error(span, "dsl.not-upstream",
                                  f"job '{job.name}' reads '{name}', which does not run "
                                  "before it", f"add 'needs {name}' to job '{job.name}'")

    def _outputs(self, block: ast.OutputBlock | None) -> tuple[tuple[str, Any], ...]:
        if block is None:
            return ()
        main, _ = self._scopes()
        Checker(self.report, main, list(self.jobs)).fields(block.values)
        self._no_secrets(block.values, "a workflow output")
        return block.values.fields

    def _no_secrets(self, e: Expr, where: str) -> None:
        """Secrets reach executors only: conditions, lists and outputs are stored in clear.
        So do secret inputs and secret template outputs, and whatever is built from them."""
        for what, span in decls.secret_reads(e, self.inputs, self._secret_outputs()):
            if what.startswith("the secret '") or what == "secrets":
                message = f"secrets can only be used in 'with' blocks, not in {where}"
            else:
                message = f"{what} can only be used in 'with' blocks, not in {where}"
            self.report.error(span, "dsl.secret", message,
                              "pass it to a job, and test or return the job's result; "
                              "a secret shows as *** everywhere else")

    def _secret_outputs(self) -> dict[str, tuple[frozenset[str], bool]]:
        """Per job whose template declares `secret` outputs: those fields, and whether the
        job fans out (its output is then a list of them)."""
        out: dict[str, tuple[frozenset[str], bool]] = {}
        for name, job in self.jobs.items():
            fields = frozenset(o.name for o in job.template.outputs if o.secret) \
                if job.template is not None else frozenset()
            if fields:
                out[name] = (fields, ast.FanOut in job.found)
        return out

    # ---- the plan

    def _spec(self, job: _Job) -> JobSpec:
        f = job.found
        fan = f.get(ast.FanOut)
        return mark_job(JobSpec(
            job.name, job.executor or "", f[ast.With].values if ast.With in f
            else ObjectExpr((), job.node.span),
            tuple(Dependency(d.name, d.optional, d.span) for d in job.deps),
            f[ast.When].condition if ast.When in f else None,
            FanOut(fan.var.name, fan.over, fan.span) if fan else None, job.template, job.retry,
            job.timeout, job.priority, job.handler,
            f[ast.Description].value.value if ast.Description in f else None, job.node.span,
            job.runs_on), self.executors)
