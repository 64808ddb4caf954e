"""The public API plugins import: what `baseshift.core` and `baseshift.web` export, that
docs/plugins.md lists exactly that, that importing them stays cheap, and that the
third-party fixture plugins need nothing else."""
from __future__ import annotations

import ast
import importlib
import json
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parent.parent
PUBLIC = ("baseshift.core", "baseshift.web")
SOURCES = {"baseshift.core": REPO / "core" / "__init__.py",
           "baseshift.web": REPO / "web" / "__init__.py"}


def _module(name: str) -> ModuleType:
    return importlib.import_module(name)


def _documented() -> dict[str, set[str]]:
    """The names "The public API" of docs/plugins.md lists (`- `name`: ...`), by module:
    those after "From `baseshift.web`" belong to it, the others to the core."""
    docs = (REPO / "docs" / "plugins.md").read_text()
    section = docs.split("\n## The public API\n", 1)[1].split("\n## ", 1)[0]
    core, _, web = section.partition("\nFrom `baseshift.web`")
    item = re.compile(r"^- `(\w+)`: \S", re.MULTILINE)
    return {"baseshift.core": set(item.findall(core)), "baseshift.web": set(item.findall(web))}


@pytest.mark.parametrize("module", PUBLIC)
def test_the_docs_list_exactly_the_exported_names(module: str) -> None:
    exported = set(_module(module).__all__)
    documented = _documented()[module]
    assert sorted(exported - documented) == [], "exported but not in docs/plugins.md"
    assert sorted(documented - exported) == [], "in docs/plugins.md but not exported"
    assert len(_module(module).__all__) == len(exported), "a name is exported twice"


@pytest.mark.parametrize("module, name", [(m, n) for m in PUBLIC for n in _module(m).__all__])
def test_every_exported_name_resolves(module: str, name: str) -> None:
    assert hasattr(_module(module), name)


def _string_constants(node: ast.AST) -> set[str]:
    return {n.value for n in ast.walk(node) if isinstance(n, ast.Constant)
            and isinstance(n.value, str)}


@pytest.mark.parametrize("module", PUBLIC)
def test_type_checkers_and_the_lazy_lookup_see_the_same_names(module: str) -> None:
    """The names are written three times (imports for type checkers, `__all__`, the lazy
    lookup by submodule); this keeps the three the same."""
    tree = ast.parse(SOURCES[module].read_text())
    guarded = next(n for n in tree.body if isinstance(n, ast.If)
                   and isinstance(n.test, ast.Name) and n.test.id == "TYPE_CHECKING")
    imported = {a.asname or a.name for n in ast.walk(guarded)
                if isinstance(n, ast.ImportFrom) for a in n.names}
    call = next(n for n in ast.walk(tree) if isinstance(n, ast.Call)
                and isinstance(n.func, ast.Name) and n.func.id == "lazy_exports")
    mapping = call.args[1]
    assert isinstance(mapping, ast.Dict)
    lazy = {name for value in mapping.values for name in _string_constants(value)}
    exported = set(_module(module).__all__)
    assert imported == exported
    assert lazy == exported


def test_dir_lists_the_exported_names() -> None:
    for module in PUBLIC:
        assert set(_module(module).__all__) <= set(dir(_module(module)))


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="has no attribute 'Engine'"):
        _module("baseshift.core").Engine  # noqa: B018


def _loaded(*modules: str) -> set[str]:
    """The modules a fresh interpreter holds after importing `modules`."""
    code = f"import json, sys, {', '.join(modules)}\nprint(json.dumps(sorted(sys.modules)))"
    return set(json.loads(subprocess.run([sys.executable, "-c", code], check=True,
                                         capture_output=True, text=True).stdout))


HEAVY = {"pluggy", "starlette", "sqlalchemy", "lark", "jinja2", "httpx", "baseshift.dsl",
         "baseshift.core.engine", "baseshift.core.app.application",
         "baseshift.core.protocols"}


def test_importing_the_public_modules_loads_none_of_what_they_export() -> None:
    """A plugin importing one name pays for that name only."""
    loaded = _loaded("baseshift.core", "baseshift.web")
    assert {m for m in loaded if m.startswith("baseshift")} == {
        "baseshift", "baseshift.core", "baseshift.core.exports", "baseshift.web"}
    assert not loaded & HEAVY


def test_the_command_line_module_stays_light() -> None:
    """Every command line imports `baseshift.core.app.cli` and so the packages before it."""
    assert not _loaded("baseshift.core.app.cli") & HEAVY


FIXTURES = sorted((REPO / "tests" / "fixture_plugins").rglob("*.py"))


def test_there_are_fixture_plugins() -> None:
    assert FIXTURES


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: str(p.relative_to(REPO)))
def test_third_party_plugins_import_only_the_public_modules(path: Path) -> None:
    """The fixture plugins stand for a plugin on PyPI: they use the documented API only."""
    found: list[str] = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append(node.module)
    deeper = [m for m in found if m.startswith("baseshift") and m not in PUBLIC]
    assert deeper == [], f"import these names from {' or '.join(PUBLIC)}"
