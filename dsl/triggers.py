"""Checks of a workflow's triggers and run limit: `schedule`, `webhook` and `runs` statements.

Cron expressions are checked with croniter and time zones with zoneinfo, so a schedule that
checks is one the server can fire; a schedule's inputs must be literal values that fit the
workflow's declared inputs, and a run key may read nothing but `input`.
"""
from __future__ import annotations

import functools
import zoneinfo
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from croniter import croniter

from baseshift.core.diagnostics import Span
from baseshift.core.errors import InputError
from baseshift.core.expr import Expr, ObjectExpr, references
from baseshift.core.inputs import prepare_inputs
from baseshift.core.plan import ConflictPolicy, InputSpec, MissedRuns, RunLimit, Schedule, Webhook

from . import ast, cronfields, decls
from .report import Reporter, did_you_mean
from .typecheck import Checker, Scope

CRON_HINT = ('a cron expression has five fields, minute hour day-of-month month day-of-week, '
             'like "0 3 * * *" (03:00 every day) or "*/15 * * * 1-5"; or @hourly, @daily, '
             '@weekly, @monthly, @yearly')
_Single = TypeVar("_Single", ast.Webhook, ast.RunLimit)
_ALIASES = frozenset({"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight",
                      "@hourly"})


@dataclass(frozen=True, slots=True)
class Triggers:
    """What the trigger statements of one workflow declare, once checked."""

    schedules: tuple[Schedule, ...] = ()
    webhook: Webhook | None = None
    run_limit: RunLimit | None = None


def check_triggers(wf: ast.Workflow, inputs: Sequence[InputSpec], report: Reporter) -> Triggers:
    """Check every `schedule`, `webhook` and `runs` statement of `wf`, reporting problems."""
    schedules: list[Schedule] = []
    seen: dict[str, int] = {}
    webhook: ast.Webhook | None = None
    limit: ast.RunLimit | None = None
    for item in wf.body:
        if isinstance(item, ast.Schedule):
            schedule = _schedule(item, inputs, report)
            if schedule is not None and schedule.key in seen:
                report.error(item.span, "dsl.duplicate", f"this schedule repeats the one on "
                             f"line {seen[schedule.key]}")
            elif schedule is not None:
                seen[schedule.key] = item.span.line
                schedules.append(schedule)
        elif isinstance(item, ast.Webhook):
            webhook = _single(webhook, item, "webhook", wf, report)
        elif isinstance(item, ast.RunLimit):
            limit = _single(limit, item, "runs", wf, report)
    return Triggers(tuple(schedules),
                    Webhook(webhook.secret.name, webhook.span) if webhook else None,
                    _run_limit(limit, inputs, report) if limit else None)


def _single(first: _Single | None, item: _Single, word: str, wf: ast.Workflow,
            report: Reporter) -> _Single:
    if first is None:
        return item
    report.error(item.span, "dsl.duplicate", f"workflow '{wf.name.name}' has more than one "
                 f"'{word}' (the first is on line {first.span.line})")
    return first


# ---------------------------------------------------------------- schedules


def _schedule(s: ast.Schedule, inputs: Sequence[InputSpec],
              report: Reporter) -> Schedule | None:
    errors = len(report.diagnostics)
    cron = " ".join(s.cron.value.split())
    check_cron(cron, s.cron.span, report)
    options: dict[str, ast.ScheduleOption] = {}
    for option in s.options:
        if option.kind in options:
            report.error(option.span, "dsl.duplicate", f"this schedule already has a "
                         f"'{option.kind}' (on line {options[option.kind].span.line})")
        else:
            options[option.kind] = option
    zone = _timezone(options.get("timezone"), report)
    missed = _missed(options.get("missed"), report)
    values = _inputs(options.get("with"), s.span, inputs, report)
    if len(report.diagnostics) > errors or zone is None or missed is None or values is None:
        return None
    return Schedule(cron, zone, missed, values, s.span)


def check_cron(cron: str, span: Span, report: Reporter) -> bool:
    """Whether `cron` is a five-field cron expression (or an @alias) croniter can follow."""
    fields = cron.split()
    if len(fields) == 1 and fields[0].lower() in _ALIASES:
        return True
    if len(fields) != 5:
        report.error(span, "dsl.bad-schedule", f"'{cron}' is not a cron expression: it has "
                     f"{len(fields)} field{'s' if len(fields) != 1 else ''}, not 5", CRON_HINT)
        return False
    if not croniter.is_valid(cron):
        why = cronfields.explain(cron)
        report.error(span, "dsl.bad-schedule", f"'{cron}' is not a valid cron expression"
                     + (f": {why}" if why else ""), CRON_HINT)
        return False
    if not croniter.is_valid(cron, strict=True):  # e.g. the 31st of February
        report.error(span, "dsl.bad-schedule", f"'{cron}' names a day that never comes",
                     "check the day of month against the month")
        return False
    return True


def _timezone(option: ast.ScheduleOption | None, report: Reporter) -> str | None:
    if option is None:
        return "UTC"
    assert isinstance(option.value, ast.Text)
    name = option.value.value
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        report.error(option.value.span, "dsl.bad-timezone", f"unknown time zone '{name}'",
                     did_you_mean(name, _zones(), "time zones are named like Europe/Paris "
                                  "or America/New_York; some") or None)
        return None
    return name


@functools.cache
def _zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def _missed(option: ast.ScheduleOption | None, report: Reporter) -> MissedRuns | None:
    if option is None:
        return MissedRuns.SKIP
    assert isinstance(option.value, ast.Text)
    word = option.value.value
    try:
        return MissedRuns(word)
    except ValueError:
        choices = [m.value for m in MissedRuns]
        report.error(option.value.span, "dsl.bad-value",
                     f"'missed' takes {' or '.join(choices)}, not '{word}'",
                     did_you_mean(word, choices, "choices"))
        return None


def _inputs(option: ast.ScheduleOption | None, where: Span, declared: Sequence[InputSpec],
            report: Reporter) -> dict[str, Any] | None:
    given: dict[str, Any] = {}
    if option is not None:
        assert isinstance(option.value, ObjectExpr)
        for key, value in option.value.fields:
            literal = decls.constant(value)
            if literal is decls.NO_VALUE:
                report.error(value.span, "dsl.bad-value", f"the scheduled input '{key}' must "
                             "be a literal value", "a scheduled run has no caller to read "
                             "values from: write the value itself")
                return None
            given[key] = literal
    try:
        prepare_inputs(declared, given)
    except InputError as exc:
        span = option.span if option is not None else where
        report.error(span, "dsl.bad-value", f"scheduled runs would fail: {exc.message}",
                     _input_hint(exc))
        return None
    return given


def _input_hint(exc: InputError) -> str | None:
    if exc.message.startswith("missing required input"):
        field = exc.details.get("field", "NAME")
        return f"pass it to the scheduled runs: schedule \"...\" with {{ {field}: ... }}"
    return exc.hint


# ---------------------------------------------------------------- runs N per KEY


def _run_limit(r: ast.RunLimit, inputs: Sequence[InputSpec], report: Reporter) -> RunLimit | None:
    errors = len(report.diagnostics)
    limit = r.limit.value
    if not isinstance(limit, int) or limit < 1:
        report.error(r.limit.span, "dsl.bad-value",
                     f"'runs' takes a whole number of at least 1, not {limit}")
    policy = ConflictPolicy.QUEUE
    if r.policy is not None:
        try:
            policy = ConflictPolicy(r.policy.value)
        except ValueError:
            choices = [p.value for p in ConflictPolicy]
            report.error(r.policy.span, "dsl.bad-value", "'on conflict' takes "
                         f"{', '.join(choices)}, not '{r.policy.value}'",
                         did_you_mean(r.policy.value, choices, "choices"))
    if r.key is not None:
        _check_key(r.key, inputs, report)
    # not an int with no new diagnostic: a syntax error's damage swallowed the report
    if len(report.diagnostics) > errors or not isinstance(limit, int):
        return None
    return RunLimit(limit, r.key, policy, r.span)


def _check_key(key: Expr, inputs: Sequence[InputSpec], report: Reporter) -> None:
    """A run key is computed before the run exists: it can only read the run's inputs."""
    others = [(root, span) for root, _, span in references(key) if root != "input"]
    for root, span in others:
        report.error(span, "dsl.run-key", f"a run key can only read the run's inputs, not "
                     f"'{root}'", "write it with input, like: runs 1 per input.customer")
    if not others:
        record = decls.record(inputs, "input", "dsl.unknown-input")
        Checker(report, Scope({"input": record})).infer(key)
    for what, span in decls.secret_reads(key, inputs) if not others else ():
        report.error(span, "dsl.secret", f"a run key cannot read {what}: run keys are stored "
                     "and shown in clear", "key the runs on an input that is not secret")
