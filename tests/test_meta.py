"""Rules about the code base itself: hooks documented and tested, layering, plugin lists."""
from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

from baseshift.core import hookspecs
from baseshift.core.plugins import BUILTIN_PLUGINS, DEFAULT_PLUGINS
from tests.import_graph import circles, dependencies, imports_of, shipped_modules

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
    return {imp.module for imp in imports_of(path)}


MODULES = shipped_modules()
GRAPH = dependencies(MODULES)


def _layer(module: str) -> str:
    """api (the package `baseshift.core`), kernel (core/*.py), app (core/app/), dsl, web
    or plugins."""
    parts = module.split(".")
    if module == "baseshift.core":
        return "api"
    if parts[1] == "core":
        return "app" if parts[2:3] == ["app"] else "kernel"
    return parts[1]


MAY_IMPORT = {
    "kernel": {"kernel"},
    "dsl": {"kernel", "dsl"},
    "app": {"kernel", "dsl", "app"},
    "web": {"kernel", "app", "web"},
    "plugins": {"api", "kernel", "dsl", "app", "web", "plugins"},
    "api": {"kernel", "app", "plugins"},
}
"""Who may import whom (docs/architecture.md): the kernel only itself; the language front
end the kernel; the application layer (core/app/) the front end too; the HTTP toolkit the
application layer; plugins any of them. The public API (`baseshift.core` itself) names
kernel and application types, and the rules a builtin family shares with third-party
backends (the template publishing rules), for plugins only."""

KERNEL_BANNED = ("starlette", "sqlalchemy", "sqlmodel", "redis", "httpx", "psycopg", "jinja2")
"""Drivers and frameworks the kernel and the language never import: they speak through
hookspecs and protocols, and plugins bring the drivers."""


def test_layers_cover_every_shipped_folder() -> None:
    assert {_layer(m) for m in MODULES} == set(MAY_IMPORT)
    folders = {p.parent.relative_to(REPO).parts[0] for p in MODULES.values()}
    assert folders == {"core", "dsl", "plugins", "web"}


@pytest.mark.parametrize("module", sorted(MODULES))
def test_module_imports_only_the_layers_below_it(module: str) -> None:
    layer = _layer(module)
    bad = sorted(dep for dep in GRAPH[module] if _layer(dep) not in MAY_IMPORT[layer])
    if layer in ("kernel", "dsl"):
        bad += sorted(m for m in _imports(MODULES[module]) if m.startswith(KERNEL_BANNED))
    assert not bad, f"{module} ({layer}) imports {bad}"


def test_no_import_circles_in_shipped_code() -> None:
    """Counting imports under TYPE_CHECKING and inside functions: a circle held together by
    a deferred or type-only import is still two modules that cannot be understood apart."""
    assert circles(GRAPH) == []


def _family(module: str) -> str:
    parts = module.split(".")
    return ".".join(parts[:3]) if parts[1] == "plugins" else module


BACKEND_MODULES = {m.group(1) for path in MODULES.values()
                   for m in re.finditer(r'"(baseshift\.plugins\.[\w.]+):\w+"', path.read_text())}
"""Modules holding a backend class (the targets of `Backend` references)."""


def test_backend_modules_are_found() -> None:
    assert "baseshift.plugins.storage.sqlite_store" in BACKEND_MODULES


@pytest.mark.parametrize("module", sorted(m for m in MODULES if _layer(m) == "plugins"))
def test_plugins_use_no_plugin_or_backend_module_of_another_family(module: str) -> None:
    """A family offers what others may share through modules of their own (`pg_connect`,
    `cache.lru`, `templates.specs`), never through one of its plugins or backend classes:
    those are chosen, disabled and replaced by configuration."""
    plugins = {f"baseshift.plugins.{m}" for m in BUILTIN_PLUGINS.values()}
    reached = {dep for dep in GRAPH[module] if _layer(dep) == "plugins"
               and _family(dep) != _family(module)}
    assert not sorted(reached & (plugins | BACKEND_MODULES)), module


@pytest.mark.parametrize("module", sorted(m for m in MODULES if _layer(m) == "plugins"))
def test_plugins_use_only_public_names_of_other_modules(module: str) -> None:
    """A family shares helpers through public names; a private name (`_x`) of another
    family, or of the kernel, is an internal that may change under it."""
    bad = sorted(f"{imp.module}.{imp.name}" for imp in imports_of(MODULES[module])
                 if imp.module.startswith("baseshift") and imp.name and imp.name.startswith("_")
                 and _family(imp.module) != _family(module))
    assert not bad, f"{module} imports private {bad}"


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
