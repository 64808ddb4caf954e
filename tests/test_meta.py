"""Rules about the code base itself: hooks documented and tested, layering, plugin lists."""
from __future__ import annotations

import ast
import inspect
import re
from pathlib import Path

import pytest

from baseshift.core import hookspecs
from baseshift.core.plugins import BUILTIN_PLUGINS, DEFAULT_PLUGINS

REPO = Path(__file__).resolve().parent.parent
HOOKS = sorted(name for name, fn in vars(hookspecs).items()
               if callable(fn) and hasattr(fn, "baseshift_spec"))


def test_there_are_hooks() -> None:
    assert len(HOOKS) >= 9


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_has_mode_and_async_in_its_docstring(hook: str) -> None:
    doc = inspect.getdoc(getattr(hookspecs, hook)) or ""
    assert re.search(r"Mode: (collect|first)\.", doc), hook
    assert "Async:" in doc, hook


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_is_documented_with_its_arguments(hook: str) -> None:
    docs = (REPO / "docs" / "plugins.md").read_text()
    params = list(inspect.signature(getattr(hookspecs, hook)).parameters)
    heading = re.search(rf"^### `{hook}\(([^)]*)\)", docs, re.MULTILINE)
    assert heading, f"docs/plugins.md has no section for {hook}"
    assert [p.strip() for p in heading.group(1).split(",") if p.strip()] == params


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_has_a_test(hook: str) -> None:
    tests = (REPO / "tests" / "core" / "test_hooks.py").read_text()
    names = re.findall(r"def (test_hook_\w+)\(", tests)
    assert any(hook in name for name in names), f"no test_hook_* test names hook {hook}"


def test_builtin_plugin_modules_are_all_registered() -> None:
    with_hooks = {".".join(p.relative_to(REPO / "plugins").with_suffix("").parts)
                  for p in (REPO / "plugins").rglob("*.py") if "@hookimpl" in p.read_text()}
    assert with_hooks == set(BUILTIN_PLUGINS.values())
    assert list(BUILTIN_PLUGINS) == list(DEFAULT_PLUGINS)


def test_plugins_top_level_holds_families_not_modules() -> None:
    """`ls plugins/` reads as the capability map: each family is a package; only the
    helper every family shares (`extras`) sits beside them."""
    top = sorted(p.name for p in (REPO / "plugins").glob("*.py"))
    assert top == ["__init__.py", "extras.py"]
    families = {p.parent.name for p in (REPO / "plugins").glob("*/__init__.py")}
    assert {v.split(".")[0] for v in BUILTIN_PLUGINS.values()} <= families


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


COMPOSITION = {"app.py", "appface.py", "commands.py", "cli.py", "catalog.py", "loader.py",
               "template_files.py"}
"""Core modules that assemble the application and may reach the language front end."""


@pytest.mark.parametrize("path", sorted((REPO / "core").glob("*.py")), ids=lambda p: p.name)
def test_core_imports_no_plugins_web_or_storage_engines(path: Path) -> None:
    banned = ("baseshift.plugins", "baseshift.web", "starlette", "sqlalchemy", "sqlmodel",
              "redis", "httpx")
    if path.name not in COMPOSITION:
        banned += ("baseshift.dsl",)
    bad = [m for m in _imports(path) if m.startswith(banned)]
    assert not bad, f"core/{path.name} imports {bad}"


@pytest.mark.parametrize("path", sorted((REPO / "dsl").glob("*.py")), ids=lambda p: p.name)
def test_dsl_imports_only_core(path: Path) -> None:
    bad = [m for m in _imports(path)
           if m.startswith(("baseshift.plugins", "baseshift.web", "sqlalchemy", "sqlmodel",
                            "httpx", "starlette"))]
    assert not bad, f"dsl/{path.name} imports {bad}"


def test_no_test_module_imports_another() -> None:
    """Shared helpers live in conftest.py or a helpers module: importing a test module
    collects its tests twice and ties two subjects together."""
    bad = {str(p.relative_to(REPO)): m for p in sorted((REPO / "tests").rglob("*.py"))
           for m in _imports(p) if m.rsplit(".", 1)[-1].startswith("test_")}
    assert bad == {}


def test_ruff_is_clean() -> None:
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-m", "ruff", "check", "--output-format",
                             "concise", "."], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.slow
def test_mypy_strict_is_clean(tmp_path: Path, request: pytest.FixtureRequest) -> None:
    """mypy cannot follow the editable install's folder mapping, so it reads the repository
    through a `baseshift` symlink, as the installed package would look.

    The symlink and mypy's cache live in pytest's cache folder (tmp_path under `-p
    no:cacheprovider`), so a rerun checks only the modules that changed and those that
    depend on them: mypy's incremental mode, which reports the same errors as a cold run."""
    import subprocess
    import sys

    cache = getattr(request.config, "cache", None)
    work = cache.mkdir("mypy") if cache is not None else tmp_path
    link = work / "baseshift"
    if not (link.is_symlink() and link.resolve() == REPO):
        link.unlink(missing_ok=True)
        link.symlink_to(REPO)
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--config-file", str(REPO / "pyproject.toml"),
         "--cache-dir", str(work / ".mypy_cache"),
         "-p", "baseshift.core", "-p", "baseshift.dsl", "-p", "baseshift.plugins",
         "-p", "baseshift.web"],
        cwd=work, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
