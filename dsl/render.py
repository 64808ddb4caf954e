"""Showing a Plan: as text for people, JSON for tools, Graphviz dot or a Mermaid chart."""
from __future__ import annotations

import json
from collections.abc import Callable

from baseshift.core.expr import describe
from baseshift.core.plan import JobSpec, Plan

FORMATS = ("text", "json", "dot", "mermaid")


def render_plan(plan: Plan, fmt: str) -> str:
    """Render `plan` in one of FORMATS; ValueError names the valid formats."""
    renderer = _RENDERERS.get(fmt)
    if renderer is None:
        raise ValueError(f"unknown plan format '{fmt}'; use one of: {', '.join(FORMATS)}")
    return renderer(plan)


def _json(plan: Plan) -> str:
    return json.dumps(plan.to_json(), indent=2)


def _text(plan: Plan) -> str:
    head = f"workflow {plan.name} {plan.version}"
    lines = [head + (f" - {plan.description}" if plan.description else "")]
    if plan.concurrency:
        lines.append(f"  concurrency {plan.concurrency}")
    for i in plan.inputs:
        default = f" = {json.dumps(i.default)}" if i.has_default else ""
        secret = "secret " if i.secret else ""
        lines.append(f"  input {i.name}{'?' if i.optional else ''}: {secret}{i.type}{default}")
    lines += _trigger_text(plan)
    lines += [line for n, job in enumerate(plan.jobs, 1) for line in _job_text(n, job)]
    if plan.handlers:
        lines.append("  on failure:")
        lines += [line for n, job in enumerate(plan.handlers, 1) for line in _job_text(n, job)]
    lines += [f"  output {name} = {describe(e)}" for name, e in plan.outputs]
    return "\n".join(lines) + "\n"


def _trigger_text(plan: Plan) -> list[str]:
    lines = []
    for s in plan.schedules:
        inputs = f" with {json.dumps(dict(s.inputs))}" if s.inputs else ""
        lines.append(f"  schedule {json.dumps(s.cron)} timezone {s.timezone} "
                     f"missed {s.missed.value}{inputs}")
    if plan.webhook:
        lines.append(f"  webhook secret {plan.webhook.secret}")
    if plan.run_limit:
        r = plan.run_limit
        key = f" per {describe(r.key)}" if r.key is not None else ""
        lines.append(f"  runs {r.limit}{key} on conflict {r.policy.value}")
    return lines


def _job_text(n: int, job: JobSpec) -> list[str]:
    uses = f"{job.template.ref} ({job.uses})" if job.template else job.uses
    out = [f"  {n}. {job.name} uses {uses}"]
    if job.needs:
        out.append("       needs " + ", ".join(d.job + "?" * d.optional for d in job.needs))
    if job.fanout:
        out.append(f"       for {job.fanout.var} in {describe(job.fanout.over)}")
    if job.when is not None:
        out.append(f"       when {describe(job.when)}")
    if job.retry.retries:
        r = job.retry
        out.append(f"       retry {r.retries} (delay {r.delay:g}s, factor {r.factor:g}, "
                   f"max {r.max_delay:g}s, jitter {r.jitter:g})")
    if job.timeout is not None:
        out.append(f"       timeout {job.timeout:g}s")
    if job.runs_on:
        out.append("       runs-on " + ", ".join(job.runs_on))
    return out


def _dot(plan: Plan) -> str:
    lines = [f"digraph {json.dumps(plan.name)} {{", "  rankdir=LR;",
             '  node [shape=box, fontname="Helvetica"];']
    for job in plan.jobs:
        lines.append(f"  {json.dumps(job.name)} [label={json.dumps(_label(job))}];")
    if plan.handlers:
        lines.append('  subgraph "cluster_on_failure" {')
        lines.append('    label="on failure"; style=dashed;')
        for job in plan.handlers:
            lines.append(f"    {json.dumps(job.name)} [label={json.dumps(_label(job))}];")
        lines.append("  }")
    for job in (*plan.jobs, *plan.handlers):
        for d in job.needs:
            style = " [style=dashed]" if d.optional else ""
            lines.append(f"  {json.dumps(d.job)} -> {json.dumps(job.name)}{style};")
    return "\n".join([*lines, "}"]) + "\n"


def _label(job: JobSpec) -> str:
    uses = job.template.ref if job.template else job.uses
    return f"{job.name}\n{uses}" + (f"\nfor {job.fanout.var}" if job.fanout else "")


def _mermaid(plan: Plan) -> str:
    ids = {job.name: f"j{n}" for n, job in enumerate((*plan.jobs, *plan.handlers))}
    lines = ["flowchart TD"]
    for job in plan.jobs:
        lines.append(f"  {ids[job.name]}[\"{_mermaid_text(job)}\"]")
    if plan.handlers:
        lines.append('  subgraph on_failure["on failure"]')
        lines += [f"    {ids[j.name]}[\"{_mermaid_text(j)}\"]" for j in plan.handlers]
        lines.append("  end")
    for job in (*plan.jobs, *plan.handlers):
        for d in job.needs:
            arrow = "-.->" if d.optional else "-->"
            lines.append(f"  {ids[d.job]} {arrow} {ids[job.name]}")
    return "\n".join(lines) + "\n"


def _mermaid_text(job: JobSpec) -> str:
    uses = job.template.ref if job.template else job.uses
    return f"{job.name}<br/>{uses}".replace('"', "#quot;")


_RENDERERS: dict[str, Callable[[Plan], str]] = {
    "text": _text, "json": _json, "dot": _dot, "mermaid": _mermaid,
}
