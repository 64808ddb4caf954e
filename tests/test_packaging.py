"""The wheel holds every subpackage and the grammar, and works without the source tree."""
from __future__ import annotations

import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from tests.conftest import source_copy

REPO = Path(__file__).resolve().parent.parent

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("wheel")]  # one build per run


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    source = source_copy(REPO, out / "source")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps",
                    "--no-build-isolation", "--disable-pip-version-check", "-w", str(out),
                    str(source)], check=True, capture_output=True)
    [found] = out.glob("baseshift-*.whl")
    return found


def test_wheel_contents(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    for required in ("baseshift/core/engine.py", "baseshift/dsl/parser.py",
                     "baseshift/plugins/executors/shell.py", "baseshift/grammar/baseshift.lark",
                     "baseshift/server.py", "baseshift/__main__.py"):
        assert required in names
    assert not [n for n in names if n.startswith(("baseshift/tests", "baseshift/bench",
                                                  "baseshift/workflows", "core/", "dsl/"))]
    assert "baseshift/__init__.py" not in names


def test_installed_wheel_checks_a_workflow(wheel: Path, tmp_path: Path) -> None:
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                    "--no-index", "--disable-pip-version-check", "--target", str(target),
                    str(wheel)], check=True, capture_output=True)
    flow = tmp_path / "w.bsw"
    flow.write_text('workflow w {\n  version "1.0.0"\n  job a uses shell { with { command: '
                    '"echo hi" } }\n}\n')
    # -S skips .pth files, so the editable install of the source tree is not visible.
    code = ("import sys; sys.path[:0] = [sys.argv[1], sys.argv[2]]; "
            "import baseshift.core.app.cli as c; assert c.__file__.startswith(sys.argv[1]), "
            "c.__file__; sys.argv = ['baseshift', 'check', sys.argv[3]]; sys.exit(c.main())")
    result = subprocess.run([sys.executable, "-S", "-c", code, str(target),
                             sysconfig.get_paths()["purelib"], str(flow)],
                            capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "1 file ok" in result.stdout


def test_every_package_folder_is_listed_in_pyproject() -> None:
    """The package list is explicit (no discovery picking up tests/ or bench/), so a new
    plugin family must be added to it, or the wheel would ship without it."""
    import tomllib

    listed = set(tomllib.loads((REPO / "pyproject.toml").read_text())
                 ["tool"]["setuptools"]["packages"])
    found = {"baseshift." + ".".join(p.parent.relative_to(REPO).parts)
             for top in ("core", "dsl", "plugins", "web")
             for p in (REPO / top).rglob("__init__.py")}
    assert found <= listed, sorted(found - listed)
