"""`baseshift check` reads a folder as `run` and the server do: YAML template files are
checked as templates, and a file may use the templates of the files beside it."""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
USES_GREETING = """\
workflow welcome {
  version "1.0.0"
  job hi uses greeting@^1 { with { name: "Ada" } }
}
"""


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    target = tmp_path / "workflows"
    shutil.copytree(REPO / "workflows", target, ignore=shutil.ignore_patterns("__pycache__"))
    return target


@pytest.mark.parametrize("name", ["conditional.bsw", "failure.bsw", "orders.bsw"])
def test_a_file_checked_alone_sees_the_templates_beside_it(run_cli: Any, name: str) -> None:
    result = run_cli("check", f"workflows/{name}")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.strip() == "1 file ok (1 workflow, 0 templates)"


def test_a_folder_check_counts_and_uses_its_yaml_templates(run_cli: Any, folder: Path) -> None:
    (folder / "welcome.bsw").write_text(USES_GREETING)
    result = run_cli("check", str(folder))
    assert result.exit_code == 0, result.stderr
    assert result.stdout.strip() == "10 files ok (8 workflows, 4 templates)"
    alone = run_cli("check", str(folder / "welcome.bsw"))
    assert alone.exit_code == 0, alone.stderr


@pytest.mark.parametrize("how", ["folder", "file"])
def test_a_broken_yaml_template_fails_the_check_at_its_line(run_cli: Any, folder: Path,
                                                            how: str) -> None:
    path = folder / "greeting.template.yaml"
    path.write_text(path.read_text().replace("type: shell", "type: shel"))
    result = run_cli("check", str(folder if how == "folder" else path))
    assert result.exit_code == 1
    assert f"{path}:8:5: error[template.invalid]: there is no executor 'shel'" \
        in result.stderr
    assert "hint: known executors:" in result.stderr
    assert "dsl.syntax" not in result.stderr


def test_a_yaml_template_file_is_checked_as_a_template(run_cli: Any, folder: Path) -> None:
    result = run_cli("check", str(folder / "greeting.template.yaml"), "--json")
    assert result.exit_code == 0, result.stderr
    assert '"diagnostics": []' in result.stdout
    bad = folder / "broken.template.yml"
    bad.write_text("templateId: x\nsteps: [oops\n")
    result = run_cli("check", str(bad))
    assert result.exit_code == 1
    assert f"{bad}:3:1: error[template.yaml]: not valid YAML" in result.stderr
    assert result.stderr.count("error[") == 1


def test_a_plain_yaml_file_is_refused_with_a_hint(run_cli: Any, folder: Path) -> None:
    plain = folder / "settings.yaml"
    plain.write_text("a: 1\n")
    result = run_cli("check", str(plain))
    assert result.exit_code != 0
    assert "is neither a workflow (.bsw) nor a template file" in result.stderr
    assert "NAME.template.yaml" in result.stderr
