"""`baseshift templates ...`, black-box: a subprocess per command, a private data dir."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.slow

EXAMPLE = Path(__file__).resolve().parents[2] / "workflows" / "greeting.template.yaml"
V2 = EXAMPLE.read_text().replace('"1.0.0"', '"2.0.0"').replace("required: [name]",
                                                                "required: []")


def test_help_lists_the_actions(run_cli: Any) -> None:
    result = run_cli("templates", "--help")
    assert result.exit_code == 0
    for action in ("list", "show", "publish", "delete", "diff"):
        assert action in result.stdout


def test_publish_list_show_diff_delete(run_cli: Any, tmp_path: Path) -> None:
    result = run_cli("templates", "publish", str(EXAMPLE))
    assert (result.exit_code, result.stdout) == (0, "published greeting@1.0.0\n"), result.stderr
    (tmp_path / "v2.template.yaml").write_text(V2)
    assert run_cli("templates", "publish", str(tmp_path / "v2.template.yaml")).exit_code == 0

    listed = run_cli("templates", "list")
    assert listed.stdout.splitlines()[1:] == [
        "greeting  1.0.0    shell  Print a greeting for someone",
        "greeting  2.0.0    shell  Print a greeting for someone"]
    docs = json.loads(run_cli("templates", "list", "--type", "shell", "--json").stdout)
    assert [d["version"] for d in docs] == ["1.0.0", "2.0.0"]
    assert json.loads(run_cli("templates", "list", "--type", "http", "--json").stdout) == []

    shown = json.loads(run_cli("templates", "show", "greeting", "^1", "--json").stdout)
    assert shown["version"] == "1.0.0" and shown["steps"][0]["type"] == "shell"
    assert run_cli("templates", "show", "greeting").stdout.startswith("greeting@2.0.0")

    diff = run_cli("templates", "diff", "greeting", "1.0.0", "2.0.0")
    assert diff.exit_code == 0
    assert diff.stdout.startswith("greeting 1.0.0 -> 2.0.0: compatible")
    as_json = json.loads(run_cli("templates", "diff", "greeting", "2.0.0", "1.0.0",
                                 "--json").stdout)
    assert as_json["reasons"] == ["input 'name' is now required"]

    assert run_cli("templates", "delete", "greeting", "2.0.0").exit_code == 0
    docs = json.loads(run_cli("templates", "list", "--json").stdout)
    assert [d["version"] for d in docs] == ["1.0.0"]


def test_publish_with_a_bump(run_cli: Any, tmp_path: Path) -> None:
    unversioned = tmp_path / "g.template.yaml"
    unversioned.write_text(EXAMPLE.read_text().replace('version: "1.0.0"\n', ""))
    assert run_cli("templates", "publish", str(unversioned), "--bump", "minor").stdout == \
        "published greeting@0.1.0\n"
    assert run_cli("templates", "publish", str(unversioned), "--bump", "major").stdout == \
        "published greeting@1.0.0\n"


def test_errors_exit_non_zero_with_a_message(run_cli: Any, tmp_path: Path) -> None:
    assert run_cli("templates", "publish", str(EXAMPLE)).exit_code == 0
    again = run_cli("templates", "publish", str(EXAMPLE))
    assert again.exit_code == 1 and "already published" in again.stderr
    missing = run_cli("templates", "show", "nobody")
    assert missing.exit_code == 1 and "template nobody is not published" in missing.stderr
    assert run_cli("templates", "delete", "greeting", "9.9.9").exit_code == 1
    absent = run_cli("templates", "publish", str(tmp_path / "none.yaml"))
    assert absent.exit_code == 2 and "no such file or folder" in absent.stderr
    assert run_cli("templates", "bogus").exit_code == 2
    assert run_cli("templates", "show").exit_code == 2


def test_an_invalid_file_is_reported_like_a_compiler(run_cli: Any, tmp_path: Path) -> None:
    bad = tmp_path / "bad.template.yaml"
    bad.write_text(EXAMPLE.read_text().replace("type: shell", "type: shel"))
    result = run_cli("templates", "publish", str(bad))
    assert result.exit_code == 1
    assert f"{bad}:8:5: error[template.invalid]: there is no executor 'shel'" in result.stderr
    assert "hint: known executors:" in result.stderr
    assert json.loads(run_cli("templates", "list", "--json").stdout) == []


@pytest.mark.parametrize("where", ["before", "after"])
def test_the_store_can_be_chosen(run_cli: Any, tmp_path: Path, where: str) -> None:
    option = ["--data-dir", str(tmp_path / "elsewhere")]
    args = ["templates", *option, "publish", str(EXAMPLE)] if where == "before" else \
        ["templates", "publish", str(EXAMPLE), *option]
    assert run_cli(*args).exit_code == 0
    assert (tmp_path / "elsewhere" / "baseshift.db").is_file()
    memory = run_cli("templates", "list", "--templates", "memory", "--json")
    assert json.loads(memory.stdout) == []
