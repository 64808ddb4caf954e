"""Templates as YAML files beside workflows: read, converted, problems located at the key."""
from __future__ import annotations

from pathlib import Path

from baseshift.core.app.loader import folder_files
from baseshift.core.app.template_files import check_template_files, is_template_file
from baseshift.core.diagnostics import Diagnostic
from baseshift.core.plan import TemplateSpec
from baseshift.dsl import CheckEnv, compile_source

REPO = Path(__file__).resolve().parent.parent.parent
GOOD = """\
templateId: shout
version: "1.2.0"
steps:
  - name: say
    type: shell
    config: {command: "echo ${upper(input.word)}"}
inputSchema:
  type: object
  properties: {word: {type: string}}
  required: [word]
  additionalProperties: false
"""


def template_files(folder: Path) -> list[Path]:
    """The template files of a folder, as the loader finds them."""
    return [p for p in folder_files(folder) if is_template_file(p)]


def read_template_files(folder: Path, executors: list[str] | None = None
                        ) -> tuple[list[TemplateSpec], list[Diagnostic]]:
    """Every valid template of the folder's YAML files, and each problem."""
    files = check_template_files(template_files(folder), executors=executors)
    return ([spec for f in files for _, spec in f.templates],
            [d for f in files for d in f.diagnostics])


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def test_the_example_template_file_reads() -> None:
    specs, problems = read_template_files(REPO / "workflows")
    assert problems == []
    assert "greeting@1.0.0" in [s.ref for s in specs]


def test_only_template_yaml_files_are_read(tmp_path: Path) -> None:
    write(tmp_path, "a.template.yaml", GOOD)
    write(tmp_path, "b.template.yml", GOOD.replace("shout", "whisper"))
    write(tmp_path, "settings.yaml", "not: a template")
    assert [p.name for p in template_files(tmp_path)] == ["a.template.yaml", "b.template.yml"]
    specs, problems = read_template_files(tmp_path)
    assert ([s.ref for s in specs], problems) == (["shout@1.2.0", "whisper@1.2.0"], [])


def test_a_workflow_can_use_a_yaml_template(tmp_path: Path) -> None:
    write(tmp_path, "a.template.yaml", GOOD)
    specs, _ = read_template_files(tmp_path)
    source = 'workflow w {\n  version "1.0.0"\n  job j uses shout@^1 {\n' \
             '    with { word: "hi" }\n  }\n}\n'
    compiled = compile_source(source, "w.bsw", CheckEnv(executors={"shell": {}},
                                                         templates=tuple(specs)))
    assert compiled.ok, compiled.diagnostics
    assert compiled.plan is not None and compiled.plan.job("j").template == specs[0]


def test_problems_point_at_the_key(tmp_path: Path) -> None:
    write(tmp_path, "v.template.yaml", GOOD.replace('"1.2.0"', '"1.2"'))
    write(tmp_path, "s.template.yaml", GOOD.replace("type: shell", "type: nope"))
    write(tmp_path, "e.template.yaml", GOOD.replace("input.word", "input.word +"))
    specs, problems = read_template_files(tmp_path, executors=["shell"])
    assert specs == []
    found = {Path(d.path).name: (d.span.line, d.span.col, d.code, d.message) for d in problems}
    assert found["v.template.yaml"][:3] == (2, 1, "template.invalid")
    assert found["s.template.yaml"][:2] == (5, 5)
    assert "there is no executor 'nope'" in found["s.template.yaml"][3]
    assert found["e.template.yaml"][:2] == (6, 14)
    assert "is not an expression" in found["e.template.yaml"][3]


def test_yaml_syntax_errors_and_duplicates(tmp_path: Path) -> None:
    write(tmp_path, "a.template.yaml", GOOD)
    write(tmp_path, "b.template.yaml", GOOD + "---\n" + GOOD)
    write(tmp_path, "c.template.yaml", "templateId: [x\n")
    write(tmp_path, "d.template.yaml", "templateId: !!python/object:os.system x\n")
    specs, problems = read_template_files(tmp_path)
    assert [s.ref for s in specs] == ["shout@1.2.0"]
    messages = sorted((Path(d.path).name, d.code, d.message.split(";")[0]) for d in problems)
    assert [m[:2] for m in messages] == [
        ("b.template.yaml", "template.invalid"), ("b.template.yaml", "template.invalid"),
        ("c.template.yaml", "template.yaml"), ("d.template.yaml", "template.invalid")]
    assert "also defined in" in messages[0][2]


TRICKY = """\
template tricky.one {
  version "0.1.0"
  uses shell
  with { command: "echo \\${HOME} ${input.word} and ${upper(input.word)}",
         args: [1, "two", input.n * 2, { deep: input.word, keep: null, yes: true }],
         n: input.n }
  input { word: string, n: integer = 3 }
  output { said: string }
}
"""


SCOPE = {"input": {"amount": 1.239, "currency": "EUR", "message": "m", "word": "w", "n": 3},
         "secret": {}, "run": {"id": "r", "workflow": "w"}}


def test_a_bsw_template_reads_back_from_its_document() -> None:
    """The APIs show a `.bsw` template as a document; reading that document again gives
    the same step config, schemas and description (so the shown JSON is faithful)."""
    from baseshift.core.app.templatespec import to_document, to_spec
    from baseshift.core.expr import evaluate
    from baseshift.dsl import parse_expression

    env = CheckEnv(executors={"shell": {}, "python": {}})
    source = (REPO / "workflows" / "templates.bsw").read_text() + TRICKY
    compiled = compile_source(source, "t.bsw", env)
    assert compiled.ok, compiled.diagnostics
    assert len(compiled.templates) == 4
    for spec in compiled.templates:
        doc = to_document(spec)
        again = to_spec(doc, parse_expression)
        assert (again.name, again.version, again.uses) == (spec.name, spec.version, spec.uses)
        assert evaluate(again.config, SCOPE) == evaluate(spec.config, SCOPE), spec.ref
        assert (again.input_schema, again.output_schema, again.description) == (
            spec.input_schema, spec.output_schema, spec.description)
    tricky = to_document(compiled.templates[-1])
    assert tricky.steps[0].name == "one"
    assert tricky.steps[0].config["command"] == "echo $${HOME} ${input.word} and " \
        "${upper(input.word)}"
    assert tricky.steps[0].config["args"] == [1, "two", "${input.n * 2}",
                                              {"deep": "${input.word}", "keep": None,
                                               "yes": True}]
