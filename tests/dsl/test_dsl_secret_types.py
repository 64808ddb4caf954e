"""`secret` inputs and template outputs: both parsers read the modifier the same way, the
plan and its renderings carry it, and the checker keeps their values inside `with` blocks."""
from __future__ import annotations

import pytest
from dsl_helpers import codes, compile_text

from baseshift.core.app.templatespec import input_specs
from baseshift.core.diagnostics import render_all
from baseshift.dsl import fastparse, render_plan
from baseshift.dsl.decls import object_schema
from baseshift.dsl.larkparse import lark_parse

WORKFLOW = '''workflow w {{
  version "1.0.0"
  input {{ token: secret string, region: string, keys?: secret list<string> }}
  job a uses shell {{
    {statement}
    with {{ command: "echo ${{input.token}}" }}
  }}
  {tail}
}}
'''


def _workflow(statement: str = "", tail: str = "") -> str:
    return WORKFLOW.format(statement=statement, tail=tail)


@pytest.mark.parametrize("source", [
    "workflow w { input { t: secret string } }",
    "workflow w { input { t?: secret list<object> = [] } }",
    "workflow w { input { secret: secret string, s: string } }",
    "template t { output { session: secret string, n: integer } }",
    "workflow w { input { t: secret\n string } }",
])
def test_both_parsers_read_the_secret_modifier_alike(source: str) -> None:
    fast = fastparse.parse_file(source)
    slow = lark_parse(source, "x", "file")
    assert slow.diagnostics == ()
    assert fast is not None and fast == slow.tree
    fields = slow.tree.items[0].body[0].fields  # type: ignore[union-attr]
    assert fields[0].secret and fields[0].type.name != "secret"


@pytest.mark.parametrize("source", [
    "workflow w { input { t: secret } }",
    "workflow w { input { t: secret, u: string } }",
    "workflow w { input { t: secret: string } }",
    "workflow w { input { t: string secret } }",
])
def test_a_secret_without_its_type_is_a_syntax_error(source: str) -> None:
    assert fastparse.parse_file(source) is None
    assert "dsl.syntax" in codes(source)


def test_secret_stays_a_name_in_expressions() -> None:
    source = _workflow(tail='output { a: a.output }')
    source = source.replace("${input.token}", "${input.token} ${secret.X}")
    result = compile_text(source)
    assert result.ok, render_all(list(result.diagnostics), {result.path: result.source})


def test_the_plan_carries_secret_and_renders_it() -> None:
    result = compile_text(_workflow())
    assert result.plan is not None
    token, region, keys = result.plan.inputs
    assert token.secret and keys.secret and not region.secret
    assert "input token: secret string" in render_plan(result.plan, "text")
    assert "input keys?: secret list<string>" in render_plan(result.plan, "text")
    listed = result.plan.to_json()["inputs"]
    assert [i.get("secret", False) for i in listed] == [True, False, True]


def test_json_schema_marks_secrets_write_only_and_back() -> None:
    result = compile_text(_workflow())
    assert result.plan is not None
    schema = object_schema(result.plan.inputs)
    assert schema["properties"]["token"] == {"type": "string", "writeOnly": True,
                                             "format": "password"}
    assert schema["properties"]["keys"]["anyOf"][0]["writeOnly"] is True
    assert "writeOnly" not in schema["properties"]["region"]
    # a stored template's schema reads back as the same secret fields
    assert [s.secret for s in input_specs(schema)] == [True, False, True]


@pytest.mark.parametrize(("statement", "tail", "where"), [
    ('when input.token != ""', "", "a 'when' condition"),
    ('when upper(input.token) == "X"', "", "a 'when' condition"),
    ("for k in default(input.keys, [])", "", "a 'for' list"),
    ("", "output { t: input.token }", "a workflow output"),
    ("", 'output { t: "${lower(input.token)}!" }', "a workflow output"),
    ("", "output { all: input }", "a workflow output"),
    ("", "runs 1 per input.token", "a run key"),
    ("", 'runs 1 per "${input.region}/${input.token}"', "a run key"),
])
def test_secret_inputs_are_refused_outside_with_blocks(statement: str, tail: str,
                                                       where: str) -> None:
    result = compile_text(_workflow(statement, tail))
    assert not result.ok
    [d] = result.diagnostics
    assert d.code == "dsl.secret" and where in d.message and d.hint
    assert "secret input" in d.message or "holds secret inputs" in d.message
    text = render_all([d], {result.path: result.source})
    assert f"test.bsw:{d.span.line}:{d.span.col}:" in text and "^" in text


TEMPLATE = '''template vault.login {
  version "1.0.0"
  uses shell
  output { session: secret string, user: string }
  with { command: "login" }
}
'''


@pytest.mark.parametrize(("body", "ok"), [
    ('with { command: "use ${login.output.session}" }', True),
    ('with { command: "true" }  when login.output.user != ""', True),
    ('with { command: "true" }  when login.output.session != ""', False),
    ('with { command: "true" }  when len(login.output) > 0', False),
    ('with { command: "${x}" }  for x in [login.output.session]', False),
])
def test_secret_template_outputs_are_tainted(body: str, ok: bool) -> None:
    source = TEMPLATE + f'''workflow w {{
  version "1.0.0"
  job login uses vault.login@^1 {{ }}
  job use uses shell {{ needs login  {body} }}
}}
'''
    result = compile_text(source)
    assert result.ok is ok, render_all(list(result.diagnostics), {result.path: result.source})
    if not ok:
        assert [d.code for d in result.diagnostics] == ["dsl.secret"]
        assert "secret output 'session'" in result.diagnostics[0].message \
            or "holds secret fields" in result.diagnostics[0].message


def test_a_secret_output_cannot_become_a_workflow_output() -> None:
    source = TEMPLATE + '''workflow w {
  version "1.0.0"
  job login uses vault.login@^1 { }
  output { s: login.output.session, u: login.output.user }
}
'''
    assert codes(source) == ["dsl.secret"]


def test_secret_names_are_refused_with_the_secret_code() -> None:
    assert codes(_workflow('when secret.X == "a"')) == ["dsl.secret"]
