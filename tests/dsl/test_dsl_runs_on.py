"""`runs-on` worker labels: both parsers read them alike, the checker's rules, the plan."""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from dsl_helpers import codes, compile_text

from baseshift.core.expr import ObjectExpr
from baseshift.core.plan import JobSpec
from baseshift.dsl import fastparse, render_plan
from baseshift.dsl.larkparse import lark_parse, lark_parser

WF = 'workflow w {{\n  version "1.0.0"\n{body}\n}}\n'
JOB = '  job a uses shell {{\n{stmts}\n    with {{ command: "true" }}\n  }}'


def _job(stmts: str) -> str:
    return WF.format(body=JOB.format(stmts=stmts))


def _labels(source: str) -> dict[str, tuple[str, ...]]:
    result = compile_text(source)
    assert result.plan is not None, [d.message for d in result.diagnostics]
    return {j.name: j.runs_on for j in (*result.plan.jobs, *result.plan.handlers)}


def test_label_pattern_is_the_grammars() -> None:
    assert lark_parser().get_terminal("LABEL").pattern.value == fastparse.LABEL.pattern


@pytest.mark.parametrize("source", [
    _job("    runs-on gpu"),
    _job("    runs-on gpu, cuda12,linux-x64 , zone_a"),
    _job("    runs-on gpu,  # a comment\n      cuda12"),
    _job("    when input.x == 1\n    runs-on gpu"),           # after an expression
    _job("    for x in [1, 2]\n    runs-on gpu-2, a-1s, b9e5"),  # labels the fast reader splits
    _job("    needs b?\n    runs-on on-demand, jobs, for_x, with-gpu, Runs"),
    _job("    runs-on gpu\n    priority -1"),
    WF.format(body="  runs-on linux\n  runs 1 per input.x\n  input { x: string }\n"
                   '  job a uses shell { with { command: "true" } }'),
    WF.format(body='  runs 2\n  runs-on linux\n  job a uses shell { with { command: "true" } }'),
])
def test_fast_reader_and_lark_build_the_same_tree(source: str) -> None:
    fast = fastparse.parse_file(source)
    slow = lark_parse(source, "x", "file")
    assert slow.diagnostics == ()
    assert fast is not None and fast == slow.tree


@pytest.mark.parametrize("stmt", [
    "    runs -on gpu", "    runs- on gpu", "    runs-onx gpu", "    runs-on gpu-.x",
    "    runs-on", "    runs-on gpu,", "    runs-on gpu cuda12", '    runs-on "gpu"',
    "    runs-on 9gpu", "    runs-on _gpu", "    runs-on -gpu",
])
def test_malformed_runs_on_is_left_to_lark_which_reports_it(stmt: str) -> None:
    source = _job(stmt)
    assert fastparse.parse_file(source) is None
    assert codes(source) and set(codes(source)) == {"dsl.syntax"}


@pytest.mark.parametrize("word", ["with", "needs", "when", "for", "retry", "timeout",
                                  "priority", "description", "runs", "runs-on", "job", "on",
                                  "input", "output", "version"])
def test_a_statement_word_is_not_a_label(word: str) -> None:
    d = compile_text(_job(f"    runs-on gpu, {word}")).diagnostics[0]
    assert d.span.line == 4 and d.span.col == 18
    assert d.code == "dsl.syntax" and "expected a label" in d.message
    assert d.hint is not None and "runs-on gpu, linux-x64" in d.hint


def test_a_missing_comma_is_one_error_with_its_hint() -> None:
    [d] = compile_text(_job("    runs-on gpu cuda12")).diagnostics
    assert d.message.startswith("unexpected name 'cuda12'")
    assert d.hint == "separate labels with commas: runs-on gpu, cuda12"


def test_labels_are_sorted_and_a_job_without_runs_on_has_none() -> None:
    source = WF.format(body=(
        '  job a uses shell { runs-on zone_b, gpu, cuda12  with { command: "x" } }\n'
        '  job b uses shell { with { command: "x" } }'))
    assert _labels(source) == {"a": ("cuda12", "gpu", "zone_b"), "b": ()}
    assert JobSpec("j", "shell", ObjectExpr(())).runs_on == ()


def test_workflow_runs_on_is_the_default_a_job_replaces() -> None:
    source = WF.format(body=(
        "  runs-on linux, arm64\n"
        '  job a uses shell { with { command: "x" } }\n'
        '  job b uses shell { runs-on gpu  with { command: "x" } }\n'
        '  on failure { job c uses shell { with { command: "x" } } }'))
    assert _labels(source) == {"a": ("arm64", "linux"), "b": ("gpu",), "c": ("arm64", "linux")}


def test_duplicates_are_reported_where_they_are() -> None:
    result = compile_text(_job("    runs-on gpu, cuda12, gpu\n    runs-on gpu"))
    found = [(d.code, d.span.line, d.span.col, d.message) for d in result.diagnostics]
    assert found == [
        ("dsl.duplicate", 4, 26, "job 'a' lists label 'gpu' twice"),
        ("dsl.duplicate", 5, 5, "job 'a' has more than one 'runs-on'"),
    ]
    assert result.diagnostics[0].hint is not None and "remove" in result.diagnostics[0].hint


def test_plan_text_and_json_show_the_labels() -> None:
    plan = compile_text(_job("    runs-on gpu, cuda12")).plan
    assert plan is not None
    assert "       runs-on cuda12, gpu\n" in render_plan(plan, "text")
    assert '"runs_on": [\n        "cuda12",\n        "gpu"\n      ]' in render_plan(plan, "json")
    plain = compile_text(_job("")).plan
    assert plain is not None and "runs-on" not in render_plan(plain, "text")


@pytest.mark.slow
def test_baseshift_plan_prints_the_labels(tmp_path: Path,
                                          run_cli: Callable[..., Any]) -> None:
    (tmp_path / "w.bsw").write_text(WF.format(body=(
        "  runs-on linux\n"
        '  job build uses shell { with { command: "make" } }\n'
        '  job train uses shell { needs build  runs-on gpu  with { command: "x" } }')))
    result = run_cli("plan", "w.bsw", cwd=tmp_path)
    assert result.exit_code == 0, result.stderr
    assert result.stdout.rstrip("\n").splitlines()[1:] == [
        "  1. build uses shell", "       runs-on linux",
        "  2. train uses shell", "       needs build", "       runs-on gpu"]
