"""A workflow whose attempts end in each way that matters to the job wrappers (the metrics',
the trace's): a template of two steps (one attempt), a timeout and a secret not set (each a
failure of the attempt), for tests/core/test_hooks.py, tests/web/test_metrics.py and
tests/web/test_tracing.py."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from baseshift.core.app.template_files import check_template_files
from baseshift.core.plan import Plan
from baseshift.dsl import compile_source

TWO_STEPS = """templateId: twice
version: "1.0.0"
steps:
  - {name: first, type: shell, config: {command: "printf one"}}
  - {name: second, type: shell, config: {command: "printf two"}}
"""
TRIED = """workflow tried {
  version "1.0.0"
  job steps uses twice@^1 { }
  job slow uses shell { timeout 200ms  with { command: "sleep 5" } }
  job unset uses shell { needs steps  with { command: "echo ${secret.BS_UNSET_KEY}" } }
}
"""
UNSET = ("secret 'BS_UNSET_KEY' is not set (set the environment variable BS_UNSET_KEY, or "
         "configure a secrets plugin)")
"""The error of job `unset`."""


def tried_plan(bs: Any, folder: Path) -> Plan:
    """`TRIED` compiled for application `bs`, with the template `twice` written in
    `folder`."""
    path = folder / "twice.template.yaml"
    path.write_text(TWO_STEPS, encoding="utf-8")
    templates = [spec for f in check_template_files([path]) for _, spec in f.templates]
    compiled = compile_source(TRIED, "tried.bsw", bs.check_env(templates))
    assert compiled.plan is not None, compiled.diagnostics
    return compiled.plan
