"""Trigger statements: `schedule`, `webhook`, `runs ... on conflict`, read the same by both
parsers and checked into plan fields."""
from __future__ import annotations

import pytest
from dsl_helpers import codes, compile_text

from baseshift.core.expr import Attr, Interp, Name
from baseshift.core.plan import ConflictPolicy, MissedRuns
from baseshift.dsl import fastparse
from baseshift.dsl.larkparse import lark_parse

JOB = '  job a uses shell { with { command: "true" } }\n'


def _wf(body: str) -> str:
    return 'workflow w {\n  version "1.0.0"\n' + body + JOB + "}\n"


def _both(source: str) -> None:
    """Whatever the fast reader accepts, lark reads to the same tree without errors."""
    fast = fastparse.parse_file(source)
    slow = lark_parse(source, "x", "file")
    if fast is not None:
        assert slow.diagnostics == ()
        assert fast == slow.tree
    else:
        assert slow.diagnostics


@pytest.mark.parametrize("body", [
    '  schedule "0 3 * * *"\n',
    '  schedule "0 3 * * *" timezone "Europe/Paris" missed catch-up with { n: 1 }\n',
    '  schedule "0 3 * * *" with { n: 1 } missed skip\n  schedule "@daily"\n',
    "  webhook secret HOOK\n",
    "  webhook secret runs\n",
    "  runs 1\n",
    "  runs 1 per input.a.b on conflict cancel-running\n",
    '  runs 1 per "${input.a}-${input.b}" on\n\t conflict queue\n',
    "  runs 1 on # not here\n conflict queue\n",
    "  runs 1 per input.x\n  on failure { }\n",
    "  runs 1 per input.x on conflicts\n",
    "  runs 1 on conflict catch - up\n",
    "  runs 1 on conflict a-1e5\n",
    "  runs 1 on conflict a-1.5\n",
    '  output { runs: 1, schedule: 2, per: 3 webhook: 4 }\n',
])
def test_fast_reader_agrees_with_lark(body: str) -> None:
    _both(_wf(body))


def test_plan_fields() -> None:
    result = compile_text(_wf(
        "  input { customer: string = \"x\", n: integer = 1 }\n"
        '  schedule "0  3 * * *" timezone "Europe/Paris" missed catch-up with { n: 2 }\n'
        '  schedule "*/5 * * * *"\n'
        "  webhook secret HOOK_SECRET\n"
        "  runs 2 per input.customer on conflict cancel-new\n"))
    plan = result.plan
    assert plan is not None, result.diagnostics
    first, second = plan.schedules
    assert (first.cron, first.timezone, first.missed, dict(first.inputs)) == (
        "0 3 * * *", "Europe/Paris", MissedRuns.CATCH_UP, {"n": 2})
    assert (second.timezone, second.missed, dict(second.inputs)) == ("UTC", MissedRuns.SKIP, {})
    assert plan.webhook is not None and plan.webhook.secret == "HOOK_SECRET"
    limit = plan.run_limit
    assert limit is not None and limit.limit == 2 and limit.policy is ConflictPolicy.CANCEL_NEW
    assert isinstance(limit.key, Attr) and isinstance(limit.key.obj, Name)
    assert plan.to_json()["run_limit"] == {"limit": 2, "key": "input.customer",
                                           "policy": "cancel-new"}


def test_defaults_without_triggers() -> None:
    plan = compile_text(_wf("")).plan
    assert plan is not None
    assert (plan.schedules, plan.webhook, plan.run_limit) == ((), None, None)


def test_run_limit_defaults_to_queue_and_string_keys_interpolate() -> None:
    plan = compile_text(_wf('  input { a: string }\n  runs 3 per "k-${input.a}"\n')).plan
    assert plan is not None and plan.run_limit is not None
    assert plan.run_limit.policy is ConflictPolicy.QUEUE
    assert isinstance(plan.run_limit.key, Interp)


@pytest.mark.parametrize(("body", "code"), [
    ('  schedule "0 3 * * * *"\n', "dsl.bad-schedule"),
    ('  schedule "0 25 * * *"\n', "dsl.bad-schedule"),
    ('  schedule "@fortnightly"\n', "dsl.bad-schedule"),
    ('  schedule "0 0 31 2 *"\n', "dsl.bad-schedule"),
    ('  schedule "² * * * *"\n', "dsl.bad-schedule"),  # a digit int() reads, cron does not
    ('  schedule "0 ٣ * * *"\n', "dsl.bad-schedule"),
    ('  schedule "0 3 * * *" timezone "Mars/Olympus"\n', "dsl.bad-timezone"),
    ('  schedule "0 3 * * *" timezone "../etc/passwd"\n', "dsl.bad-timezone"),
    ('  schedule "0 3 * * *" missed later\n', "dsl.bad-value"),
    ("  runs 1.5\n", "dsl.bad-value"),
    ("  runs 1 on conflict wait\n", "dsl.bad-value"),
    ("  runs 1 per run.id\n", "dsl.run-key"),
    ("  runs 1 per a.output\n", "dsl.run-key"),
    ("  runs 1 per input.missing\n", "dsl.unknown-input"),
    ('  schedule "0 3 * * *"\n  schedule "0 3 * * *"\n', "dsl.duplicate"),
    ("  webhook secret A\n  webhook secret A\n", "dsl.duplicate"),
])
def test_checks(body: str, code: str) -> None:
    assert code in codes(_wf(body))


def test_same_times_with_other_inputs_is_another_schedule() -> None:
    plan = compile_text(_wf('  input { c: string = "x" }\n'
                            '  schedule "0 3 * * *" with { c: "a" }\n'
                            '  schedule "0 3 * * *" with { c: "b" }\n')).plan
    assert plan is not None and len(plan.schedules) == 2
    assert plan.schedules[0].key != plan.schedules[1].key
