"""The public API: compile_files across files, templates, I/O problems, render_plan."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from dsl_helpers import ENV, EXECUTORS, compile_text

from baseshift.core.plan import TemplateSpec
from baseshift.dsl import CheckEnv, compile_files, compile_source, render_plan

TEMPLATE = '''template greet {
  version "1.0.0"
  uses shell
  with { command: "echo hello ${input.who}" }
  input { who: string = "world" }
  output { said: string }
}
'''
WORKFLOW = '''workflow hello {
  version "0.1.0"
  job hi uses greet@^1 { with { who: "Ada" } }
  job after uses shell { needs hi  with { command: "echo ${hi.output.said}" } }
}
'''


def test_templates_from_other_files_are_used(tmp_path: Path) -> None:
    (tmp_path / "t.bsw").write_text(TEMPLATE)
    (tmp_path / "w.bsw").write_text(WORKFLOW)
    first, second = compile_files([tmp_path / "t.bsw", tmp_path / "w.bsw"], ENV)
    assert first.ok and first.plan is None and [t.ref for t in first.templates] == ["greet@1.0.0"]
    assert second.ok and second.plan is not None
    job = second.plan.job("hi")
    assert job.uses == "shell" and job.template is not None and job.template.ref == "greet@1.0.0"
    assert second.plan.templates == (job.template,)
    assert second.plan.path == str(tmp_path / "w.bsw") and second.plan.source == WORKFLOW
    schema = job.template.input_schema
    assert schema == {"type": "object", "properties": {"who": {"type": "string",
                                                              "default": "world"}},
                      "required": [], "additionalProperties": False}


def test_env_templates_and_duplicates_across_files(tmp_path: Path) -> None:
    [spec] = compile_source(TEMPLATE, "t.bsw", ENV).templates
    env = CheckEnv(EXECUTORS, (spec,))
    assert compile_source(WORKFLOW, "w.bsw", env).ok
    (tmp_path / "a.bsw").write_text(TEMPLATE)
    (tmp_path / "b.bsw").write_text(TEMPLATE)
    a, b = compile_files([tmp_path / "a.bsw", tmp_path / "b.bsw"], ENV)
    assert a.ok and [d.code for d in b.diagnostics] == ["dsl.duplicate"]


def test_unreadable_and_non_utf8_files_are_diagnostics(tmp_path: Path) -> None:
    (tmp_path / "bin.bsw").write_bytes(b"\xff\xfe workflow")
    missing, binary = compile_files([tmp_path / "nope.bsw", tmp_path / "bin.bsw"], ENV)
    assert [d.code for d in missing.diagnostics] == ["dsl.io"] and not missing.ok
    assert [d.code for d in binary.diagnostics] == ["dsl.io"] and binary.plan is None


def test_plan_order_is_topological_with_declaration_ties() -> None:
    source = '''workflow w {
  version "1.0.0"
  job d uses shell { needs b, c?  with { command: "d" } }
  job c uses shell { with { command: "c" } }
  job b uses shell { needs a  with { command: "b" } }
  job a uses shell { with { command: "a" }  retry 2 fixed backoff 500ms  timeout 1m30s }
}
'''
    plan = compile_text(source).plan
    assert plan is not None
    assert [j.name for j in plan.jobs] == ["c", "a", "b", "d"]
    a = plan.job("a")
    assert (a.retry.retries, a.retry.factor, a.retry.delay, a.timeout) == (2, 1.0, 0.5, 90.0)
    assert [(d.job, d.optional) for d in plan.job("d").needs] == [("b", False), ("c", True)]


@pytest.mark.parametrize("fmt", ["text", "json", "dot", "mermaid"])
def test_render_plan_formats(fmt: str) -> None:
    source = (Path(__file__).parent / "cases/valid/order_fulfillment.bsw").read_text()
    plan = compile_text(source).plan
    assert plan is not None
    out = render_plan(plan, fmt)
    assert "validate_payment" in out
    if fmt == "json":
        assert json.loads(out)["workflow"] == "order_fulfillment"


def test_render_plan_rejects_unknown_format() -> None:
    plan = compile_text(WORKFLOW.replace("greet@^1 { with { who: \"Ada\" } }",
                                         'shell { with { command: "x" } }')).plan
    assert plan is not None
    with pytest.raises(ValueError, match="text, json, dot, mermaid"):
        render_plan(plan, "svg")


def test_template_spec_is_what_the_engine_needs() -> None:
    [spec] = compile_source(TEMPLATE, "t.bsw", ENV).templates
    assert isinstance(spec, TemplateSpec)
    assert spec.output_schema["properties"] == {"said": {"type": "string"}}
    assert spec.to_json()["config"]["object"]["command"] == {"expr": '"echo hello ${input.who}"'}
