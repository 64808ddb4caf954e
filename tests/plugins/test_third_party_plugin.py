"""A pip-installed plugin adds a step type, a template and a command through the `baseshift`
entry point."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import source_copy

HERE = Path(__file__).resolve().parent
PACKAGE = HERE.parent / "fixture_plugins" / "baseshift-hello"

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("hello_plugin")]  # one install

WORKFLOW = """
workflow greetings {
  version "1.0.0"
  job hi uses greet { with { name: "Ada" } }
  job polite uses hello.polite@^1 { needs hi  with { who: hi.output.greeting } }
  output { first: hi.output.greeting, second: polite.output.greeting }
}
"""


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """pip-install the fixture plugin into a private folder (no network, no build isolation)."""
    target = tmp_path_factory.mktemp("site")
    source = source_copy(PACKAGE, tmp_path_factory.mktemp("source") / PACKAGE.name)
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                    "--no-build-isolation", "--disable-pip-version-check", "--no-index",
                    "--target", str(target), str(source)], check=True, capture_output=True)
    return target


def cli(site: Path, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), os.environ.get(
        "PYTHONPATH", "")]), "BASESHIFT_DATA_DIR": str(tmp_path / "data")}
    return subprocess.run([sys.executable, "-m", "baseshift", *args], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)


def test_installed_plugin_is_listed(site: Path, tmp_path: Path) -> None:
    result = cli(site, tmp_path, "plugins", "--json")
    assert result.returncode == 0, result.stderr
    plugins = {p["name"]: p for p in json.loads(result.stdout)}
    assert plugins["hello"]["distribution"] == "baseshift-hello"
    assert plugins["hello"]["version"] == "0.3.0"
    assert plugins["hello"]["hooks"] == ["register_commands", "register_executors",
                                         "register_job_templates"]


def test_workflow_uses_the_plugins_step_type_and_template(site: Path, tmp_path: Path) -> None:
    flow = tmp_path / "greetings.bsw"
    flow.write_text(WORKFLOW)
    result = cli(site, tmp_path, "run", str(flow), "--json")
    assert result.returncode == 0, result.stderr
    run = json.loads(result.stdout)
    assert run["status"] == "COMPLETED"
    assert run["outputs"] == {"first": "hello Ada", "second": "bonjour dear hello Ada"}
    polite = next(j for j in run["jobs"] if j["name"] == "polite")
    assert polite["template"] == "hello.polite@1.0.0"


def test_the_plugins_command_reads_its_table_of_the_configuration_file(
        site: Path, tmp_path: Path) -> None:
    (tmp_path / "baseshift.toml").write_text('[plugins.hello]\nlanguage = "de"\n')
    result = cli(site, tmp_path, "hello", "Ada")
    assert (result.returncode, result.stdout) == (0, "hallo Ada\n"), result.stderr
    result = cli(site, tmp_path, "hello", "Ada", "--language", "fr")
    assert (result.returncode, result.stdout) == (0, "bonjour Ada\n"), result.stderr


def test_the_plugins_command_is_in_the_help_and_checks_its_arguments(
        site: Path, tmp_path: Path) -> None:
    assert "greet someone, as the `greet` step does" in cli(site, tmp_path, "--help").stdout
    result = cli(site, tmp_path, "hello", "Ada", "--language", "xx")
    assert result.returncode == 2
    assert "invalid choice: 'xx'" in result.stderr


def test_without_the_plugin_the_step_type_is_unknown(tmp_path: Path) -> None:
    flow = tmp_path / "greetings.bsw"
    flow.write_text(WORKFLOW)
    env = {**os.environ, "BASESHIFT_DATA_DIR": str(tmp_path / "data")}
    result = subprocess.run([sys.executable, "-m", "baseshift", "check", str(flow)], env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert "error[dsl.unknown-executor]: there is no executor 'greet'" in result.stderr
