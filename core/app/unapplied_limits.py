"""A run limit no plugin applies is an error, never an unlimited run.

Run limits (`runs N per KEY`) are applied by a plugin through the `admit_run`, `reopen_run`
and `take_up_runs` hooks: the builtin `run_limits`. With it disabled, and no other plugin
taking over starts, `baseshift check` reports the clause and a start is refused.
"""
from __future__ import annotations

from ..diagnostics import Diagnostic
from ..errors import ConfigError
from ..expr import describe
from ..plan import Plan, RunLimit

CODE = "plan.run-limit-unapplied"
HINT = ("the builtin plugin 'run_limits' applies them: take it out of "
        "BASESHIFT_DISABLE_PLUGINS (or `disabled_plugins`), or remove the `runs` line")


def unapplied(plan: Plan) -> Diagnostic:
    """The error `baseshift check` reports for a run limit when no plugin admits runs."""
    limit = plan.run_limit
    assert limit is not None
    return Diagnostic(plan.path, limit.span, CODE, _message(plan.name, limit), HINT)


def refuse_unapplied(plan: Plan) -> None:
    """Raise ConfigError if `plan` has a run limit: called when no plugin took over its
    start or reopen, which would otherwise run it unlimited."""
    if plan.run_limit is not None:
        raise ConfigError(_message(plan.name, plan.run_limit), hint=HINT)


def _message(workflow: str, limit: RunLimit) -> str:
    key = f" per {describe(limit.key)}" if limit.key is not None else ""
    return (f"workflow '{workflow}' declares a run limit (runs {limit.limit}{key}), "
            "but no plugin applies run limits")
