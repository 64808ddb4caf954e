"""Issue 13 §1 through the CLI: values from inputs reach a shell step as text, never code."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

ECHO = ('workflow echo {\n  version "1.0.0"\n  input { v: string }\n'
        '  job say uses shell { with { command: "printf \'v=%s\' ${input.v}" } }\n'
        '  job quoted uses shell { with { command: "printf \'v=%s\' \\"<${input.v}>\\"" } }\n}\n')


def injections(folder: Path) -> list[str]:
    """What broke out of the old, unquoted splicing; each would create a file in `folder`."""
    target = folder / "pwned"
    return [f"x'; id > {folder / 'stolen.txt'}; echo '", f"$(touch {target})",
            f"`touch {target}`", f"; touch {target}", f"a\ntouch {target}",
            f"\"; touch {target}; echo \"", "O'Brien"]


def test_hello_greets_o_brien(run_cli: Any) -> None:
    result = run_cli("run", "workflows/hello.bsw", "--input", "name=O'Brien", "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["outputs"] == {"message": "HELLO O'BRIEN!"}


@pytest.mark.slow
def test_inputs_never_run_as_shell_code(run_cli: Any, tmp_path: Path) -> None:
    flow = tmp_path / "echo.bsw"
    flow.write_text(ECHO, encoding="utf-8")
    for value in injections(tmp_path):
        result = run_cli("run", str(flow), "--input", f"v={value}", "--json", cwd=tmp_path)
        assert result.exit_code == 0, result.stderr
        jobs = {j["key"]: j for j in json.loads(result.stdout)["jobs"]}
        assert jobs["say"]["output"]["stdout"] == f"v={value}"
        assert jobs["quoted"]["output"]["stdout"] == f"v=<{value}>"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cli-data", "echo.bsw"]


def test_check_warns_about_raw_input_with_its_place(run_cli: Any, tmp_path: Path) -> None:
    flow = tmp_path / "raw.bsw"
    flow.write_text('workflow raw {\n  version "1.0.0"\n  input { v: string }\n'
                    '  job a uses shell { with { command: "ls ${raw(input.v)}" } }\n}\n',
                    encoding="utf-8")
    result = run_cli("check", str(flow))
    assert result.exit_code == 0, result.stderr  # a warning does not fail the check
    shown = result.stdout + result.stderr
    assert f"{flow}:4:44: warning[dsl.raw-taint]" in shown
    assert "hint: quote it instead: write ${input.v} without raw()" in shown


STEPS = """templateId: twice
version: "1.0.0"
steps:
  - name: first
    type: shell
    config: {command: "printf 'v=%s' ${input.v}"}
  - name: second
    type: shell
    config: {command: "printf '%s|%s' \\"${steps.first.output.stdout}\\" '${input.v}'"}
inputSchema:
  type: object
  properties: {v: {type: string}}
  required: [v]
"""
ONE = """template once {
  version "1.0.0"
  uses shell
  with { command: "printf 'v=%s' ${input.v}" }
  input { v: string }
}
workflow use {
  version "1.0.0"
  input { v: string }
  job a uses twice@^1 { with { v: input.v } }
  job b uses once@^1 { with { v: input.v } }
}
"""


@pytest.mark.slow
def test_template_configs_and_steps_quote_too(run_cli: Any, tmp_path: Path) -> None:
    (tmp_path / "twice.template.yaml").write_text(STEPS, encoding="utf-8")
    flow = tmp_path / "use.bsw"
    flow.write_text(ONE, encoding="utf-8")
    for value in injections(tmp_path):
        result = run_cli("run", str(flow), "--input", f"v={value}", "--json", cwd=tmp_path)
        assert result.exit_code == 0, result.stderr
        jobs = {j["key"]: j for j in json.loads(result.stdout)["jobs"]}
        assert jobs["a"]["output"]["stdout"] == f"v={value}|{value}"
        assert jobs["b"]["output"]["stdout"] == f"v={value}"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cli-data", "twice.template.yaml",
                                                          "use.bsw"]
