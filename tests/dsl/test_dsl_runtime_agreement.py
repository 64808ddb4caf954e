"""Checker and run time agree: what `check` accepts runs, and what it refuses would fail.

Each test states one agreement; a defect found later is added here as a strict xfail until fixed.
Checker-only tests compile text with the real executor schemas; run-time tests evaluate
expressions with core.expr.evaluate or run the CLI on a temporary folder.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from dsl_helpers import compile_text

from baseshift.core.expr import evaluate
from baseshift.dsl.parser import parse_expression

WF = 'workflow w {{\n  version "1.0.0"\n{body}\n}}\n'


def _wf(body: str) -> str:
    return WF.format(body=body)


def _diags(source: str) -> list[str]:
    return [f"{d.code}: {d.message}" for d in compile_text(source).diagnostics]


def _output_expr_diags(inputs: str, expr: str) -> list[str]:
    return _diags(_wf(f"  input {{ {inputs} }}\n"
                      f'  job a uses shell {{ with {{ command: "true" }} }}\n'
                      f"  output {{ x: {expr} }}"))


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "baseshift", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=60)


def _run(tmp_path: Path, source: str, name: str = "wf.bsw") -> tuple[dict[str, Any] | None, str]:
    """Check then run a workflow file; (the run's JSON or None, everything printed)."""
    (tmp_path / name).write_text(source, encoding="utf-8")
    check = _cli("check", name, cwd=tmp_path)
    assert check.returncode == 0, f"precondition: check must accept it\n{check.stdout}"
    data = tmp_path / "data"
    data.mkdir(exist_ok=True)
    run = _cli("run", name, "--json", "--store", "memory", "--data-dir", str(data),
               cwd=tmp_path)
    try:
        return json.loads(run.stdout), run.stdout + run.stderr
    except json.JSONDecodeError:
        return None, run.stdout + run.stderr


# ---------------------------------------------------------------- 1. check ok, run fails


@pytest.mark.slow
def test_when_that_cannot_be_evaluated_crashes_the_engine(tmp_path: Path) -> None:
    """A `when` that errors (here a division by an input that is 0) killed the run with
    'internal error ... illegal job transition PENDING -> FAILED' and a traceback instead of
    failing the job."""
    snapshot, out = _run(tmp_path, _wf(
        "  input { cnt: integer = 0 }\n"
        '  job a uses shell { when 1 / input.cnt > 1  with { command: "true" } }'))
    assert "Traceback" not in out and "illegal job transition" not in out, out
    assert snapshot is not None and snapshot["status"] == "FAILED"
    assert "condition could not be evaluated" in snapshot["jobs"][0]["error"]


@pytest.mark.slow
def test_fanout_list_that_cannot_be_evaluated_crashes_the_engine(tmp_path: Path) -> None:
    """A `for x in ...` whose list errors at run time crashed the engine (PENDING -> FAILED)."""
    snapshot, out = _run(tmp_path, _wf(
        "  input { n: integer = 0 }\n"
        '  job a uses shell { for x in range(10 / input.n)  with { command: "echo ${x}" } }'))
    assert "Traceback" not in out and "illegal job transition" not in out, out
    assert snapshot is not None and snapshot["status"] == "FAILED"


@pytest.mark.slow
@pytest.mark.parametrize("body", [
    '  job a uses shell { when secret.HOME != ""  with { command: "true" } }',
    '  job a uses shell { with { command: "true" } }\n  output { h: secret.HOME }',
])
def test_secret_outside_with_is_refused_by_check(tmp_path: Path, body: str) -> None:
    """`secret.X` in `when`/`for`/`output` would be unknown at run time (and stored in clear),
    so check refuses it with a clear message."""
    (tmp_path / "wf.bsw").write_text(_wf(body), encoding="utf-8")
    check = _cli("check", "wf.bsw", cwd=tmp_path)
    assert check.returncode == 1
    assert "secrets can only be used in 'with' blocks" in check.stdout + check.stderr


@pytest.mark.slow
def test_optional_template_input_passed_null_fails_at_run_time(tmp_path: Path) -> None:
    """The checker lets a job pass null to an optional template input (and `x?: T = null`),
    but the run fails: "inputs of template ... are invalid: who: None is not of type 'string'"."""
    snapshot, out = _run(tmp_path, (
        'template greet {\n  version "1.0.0"\n  uses shell\n'
        '  with { command: "echo hi ${input.who}" }\n  input { who?: string }\n}\n'
        + _wf("  input { note?: string }\n"
              "  job a uses greet@1.0.0 { with { who: null } }\n"
              "  job b uses greet@1.0.0 { with { who: input.note } }")))
    assert snapshot is not None, out
    assert snapshot["status"] == "COMPLETED", snapshot["error"]


@pytest.mark.slow
def test_integer_template_output_that_is_a_whole_float_cannot_index(tmp_path: Path) -> None:
    """A template output declared `integer` passes its schema as 1.0 (JSON Schema counts 1.0
    as an integer), but `xs[job.output.n]` then fails: 'list index must be an integer'."""
    (tmp_path / "counter_mod.py").write_text("def count():\n    return {'n': 1.0}\n")
    snapshot, out = _run(tmp_path, (
        'template counter {\n  version "1.0.0"\n  uses python\n'
        '  with { function: "counter_mod:count" }\n  output { n: integer }\n}\n'
        + _wf('  input { xs: list<string> = ["a", "b"] }\n'
              "  job c uses counter@1.0.0 { }\n"
              '  job d uses shell { needs c  with { command: "echo ${input.xs[c.output.n]}" } }')))
    assert snapshot is not None, out
    assert snapshot["status"] == "COMPLETED", snapshot["error"]


@pytest.mark.parametrize("setting", [
    'uses http { with { url: "http://127.0.0.1:1/x", method: "post" } }',
    'uses http { with { url: "127.0.0.1:1/x" } }',
    'uses http { with { url: "http://127.0.0.1:1/x", json: { a: 1 }, body: "x" } }',
    'uses python { with { function: "mymod.count" } }',
    'uses shell { with { command: "" } }',
    'uses shell { with { command: "true", expect_exit: "0" } }',
    'uses shell { with { command: "true", env: { A: 1 } } }',
])
def test_literal_settings_that_break_the_executor_schema_pass_check(setting: str) -> None:
    """A literal `with` value the executor always rejects at run time (wrong enum value,
    pattern, empty string, both json and body, wrong item type) passes `baseshift check`."""
    assert any(d.startswith("dsl.config") for d in _diags(_wf(f"  job a {setting}")))


@pytest.mark.parametrize("expr", [
    "sum(input.ss)",          # run: unsupported operand type(s) for +: 'int' and 'str'
    "contains(5, 1)",         # run: argument of type 'int' is not iterable
    "contains(input.s, 1)",   # run: 'in <string>' requires string as left operand
    'pluck(5, "k")',          # run: pluck() needs a list, not number
    'pluck(input.objs, "k") + 1',  # run: '+' needs a number, not list
    "input.o in input.o",     # run: unhashable type: 'dict'
])
def test_calls_and_operators_the_evaluator_always_rejects_pass_check(expr: str) -> None:
    """Function arguments / operands of statically known wrong types pass check and always
    fail at run time (sum of strings, contains/pluck on a number, an object 'in' an object)."""
    inputs = ('s: string = "abc", ss: list<string> = ["a"], o: object = {a: 1}, '
              "objs: list<object> = [{k: 1}]")
    assert any(d.startswith("dsl.type") for d in _output_expr_diags(inputs, expr))


@pytest.mark.parametrize("expr", ["input.cnt + 1", "input.cnt > 1", "len(input.note)",
                                  'input.note + "!"'])
def test_optional_input_used_as_if_always_present_passes_check(expr: str) -> None:
    """An optional input without a default is null when absent, yet check types it as
    present: `input.cnt + 1` checks clean and fails at run time ("needs a number, not null")."""
    assert _output_expr_diags("cnt?: integer, note?: string", expr), \
        "expected a diagnostic (or a hint to use default(...))"


def test_list_concatenation_keeps_the_left_item_type() -> None:
    """`(input.xs + ["a"])[2] == "a"` is true at run time but check rejects it: the sum of a
    list<integer> and a list<string> is typed list<integer>."""
    assert _output_expr_diags('xs: list<integer> = [1, 2]', '(input.xs + ["a"])[2] == "a"') == []


@pytest.mark.slow
def test_when_that_is_not_a_boolean_at_run_time_fails_the_job(tmp_path: Path) -> None:
    """A `when` the checker cannot type (an executor's output) that turns out to be "no" ran
    the job (a non-empty string is truthy); the job must fail and say why instead."""
    snapshot, out = _run(tmp_path, _wf(
        """  job a uses shell { with { command: "echo '{\\"go\\": \\"no\\"}'" } }\n"""
        '  job b uses shell { needs a  when a.output.go  with { command: "true" } }'))
    assert snapshot is not None, out
    jobs = {j["name"]: j for j in snapshot["jobs"]}
    assert jobs["b"]["state"] == "FAILED", jobs["b"]
    assert "not true or false" in jobs["b"]["error"]


@pytest.mark.parametrize("value", ["", "no", 0, 1, [], {}, None, 0.5])
def test_a_condition_is_true_or_false_never_truthy(value: Any) -> None:
    """The engine's `when` takes true or false only: any other value is an error that
    names the expression and its type, as the checker does for the types it knows."""
    from baseshift.core.errors import ExpressionError
    from baseshift.core.expr import condition

    with pytest.raises(ExpressionError, match=r"^v is an? \w+, not true or false"):
        condition(parse_expression("v"), {"v": value})
    assert condition(parse_expression("v == 1"), {"v": 1}) is True
    assert condition(parse_expression("v"), {"v": False}) is False


@pytest.mark.parametrize(("inputs", "expr"), [
    ("s: string", "input.s"),
    ("n: integer", "input.n"),
    ("xs: list<string>", "input.xs"),
    ("o: object", "input.o"),
    ("n: integer, ok: boolean", "input.ok and input.n"),
    ("s: string", "not input.s"),
    ("s: string", '"${input.s}!"'),
])
def test_conditions_that_are_not_booleans_are_refused_by_check(inputs: str, expr: str) -> None:
    """A `when` of another type than boolean (or an `and`/`or`/`not` operand) was
    evaluated by truthiness; check refuses it with a hint that shows a comparison."""
    diags = compile_text(_wf(f"  input {{ {inputs} }}\n"
                             f'  job a uses shell {{ when {expr}  with {{ command: "x" }} }}'
                             )).diagnostics
    assert [d.code for d in diags] == ["dsl.condition"], [d.message for d in diags]
    assert diags[0].hint and diags[0].hint.startswith(("compare it: ", "test its size: "))


@pytest.mark.parametrize(("body", "reads"), [
    ("  job sq uses shell { for x in [1, 2]  with { command: \"echo ${x}\" } }\n"
     "  output { s: sq.output.sum }", "sq.output.sum"),
    ("  job sq uses shell { for x in [1, 2]  with { command: \"echo ${x}\" } }\n"
     "  output { s: sq.output + 1 }", "sq.output + 1"),
    ("  job sq uses shell { for x in [1, 2]  with { command: \"echo ${x}\" } }\n"
     "  output { s: keys(sq.output) }", "keys"),
])
def test_a_fan_out_output_is_a_list(body: str, reads: str) -> None:
    """A fan-out job's output is the list of its instances' outputs, so reading a field of
    it ("cannot read field 'sum' of a list" at run time) or using it as a number fails."""
    diags = [d for d in compile_text(_wf(body)).diagnostics if d.code == "dsl.type"]
    assert diags, reads
    assert "list" in diags[0].message


# ---------------------------------------------------------------- evaluator inconsistencies


@pytest.mark.parametrize(("expr", "value"), [
    ("lower(v)", None),            # "none", while string(null) and "${null}" are ""
    ("upper(v)", None),            # "NONE"
    ("lower(v)", ["A", "B"]),      # "['a', 'b']" (Python repr), not JSON like "${v}"
    ('split(v, ",")', [1, 2]),     # ['[1', ' 2]']
])
def test_string_functions_render_values_like_interpolation(expr: str, value: Any) -> None:
    """lower(null) is "none" and lower(["A"]) is "['a', 'b']" (Python's str), while
    string(null) is "" and lists interpolate as JSON: f(v) should equal f(string(v))."""
    got = evaluate(parse_expression(expr), {"v": value})
    via_text = evaluate(parse_expression(expr.replace("(v", "(string(v)")), {"v": value})
    assert got == via_text


def test_error_messages_drop_the_parentheses_of_the_expression() -> None:
    """Errors quote `(a + b) * c` as `a + b * c` (e.g. check says 'input.xs + ["a"][2] ==
    "a": comparing ...'), so the message shows a different expression than the file's."""
    from baseshift.core.expr import describe

    for text in ("(a + b) * c", '(xs + ["a"])[2]', "not (a and b)", "-(a - b)"):
        assert describe(parse_expression(text)) == text


# ---------------------------------------------------------------- 3. syntax messages


def _one_job(statement: str) -> list[Any]:
    return list(compile_text(_wf(
        '  input { n: integer, s: string }\n'
        f"  job a uses shell {{ {statement} }}\n"
        '  job b uses shell { with { command: "x" } }')).diagnostics)


def test_double_ampersand_is_answered_with_and() -> None:
    """`when a > 1 && b` once got 'separate list items with commas'; it must say to use 'and'."""
    diags = _one_job('when input.n > 1 && input.n < 5  with { command: "x" }')
    assert len(diags) == 1
    assert "list items" not in (diags[0].hint or "")
    assert "'and'" in diags[0].message + (diags[0].hint or "")


def test_unclosed_string_reports_follow_on_errors() -> None:
    """A missing closing quote adds "unexpected 'job'; expected ':'" (object hint) and "a '{'
    above is not closed" errors for lines that are fine."""
    diags = _one_job('with { command: "echo hi }')
    assert [d.span.line for d in diags] == [4], [f"{d.span.line}: {d.message}" for d in diags]


def test_with_without_braces_claims_a_brace_is_unclosed() -> None:
    """`with command: "x"` also reports 'unexpected end of file ... a '{' above is not
    closed' although every brace in the file is balanced."""
    diags = _one_job('with command: "x"')
    assert len(diags) == 1, [f"{d.span.line}: {d.message} / {d.hint}" for d in diags]


def test_the_hint_for_a_backslash_quote_inside_interpolation_is_followed_to_a_clean_check() -> None:
    """Inside `${...}` a string is written with plain quotes. The hint used to advise
    `\\"` there, which the lexer refuses; it now gives the expression as it must be written,
    and writing it so passes the check."""
    broken = _wf('  input { "a b": string = "x" }\n'
                 '  job a uses shell { with { command: "echo ${input[\\"a b\\"]}" } }')
    [diag] = compile_text(broken).diagnostics
    assert diag.hint == 'write ${input["a b"]}'
    assert diag.hint is not None
    fixed = broken.replace('${input[\\"a b\\"]}', diag.hint.removeprefix("write "))
    assert _diags(fixed) == []


# ---------------------------------------------------------------- 4. tracebacks


@pytest.mark.parametrize("source", [
    _wf("  concurrency 1" + "0" * 5000),
    _wf("  output { x: 1" + "0" * 5000 + " }"),
    WF.format(body="").replace('"1.0.0"', '"1' + "0" * 5000 + '.0.0"'),
    'template t {\n  version "1.0.0"\n  uses shell\n  with { command: "x" }\n}\n'
    + _wf("  job a uses t@^1" + "0" * 5000 + " { }"),
    _wf("  output { x: " + "{a: " * 1500 + "1" + "}" * 1500 + " }"),
], ids=["huge-int-concurrency", "huge-int-expr", "huge-version", "huge-range",
        "deep-object"])
def test_compile_never_raises(source: str) -> None:
    """Over-long numbers (> 4300 digits) and deeply nested objects make `baseshift check`
    (and `run` of any file beside them) print a Python traceback."""
    compile_text(source)


@pytest.mark.slow
def test_utf8_file_with_bom_is_a_syntax_error(tmp_path: Path) -> None:
    """A UTF-8 file saved with a byte-order mark (Windows editors) fails with "unexpected
    text '\\ufeffworkflow'", an invisible character in the message."""
    (tmp_path / "bom.bsw").write_text(_wf(""), encoding="utf-8-sig")
    check = _cli("check", "bom.bsw", cwd=tmp_path)
    assert check.returncode == 0, check.stdout
