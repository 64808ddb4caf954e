"""Lazy backend references: nothing is imported until a backend is chosen, and a missing
driver is a ConfigError naming the command that installs it."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

from baseshift.core.errors import ConfigError
from baseshift.core.registry import Backend, Requirement, extra, load_backend


@pytest.fixture
def backend_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A module that exists on the path but has not been imported yet, offering a backend."""
    name = f"bs_lazy_backend_{tmp_path.name.replace('-', '_')}"
    (tmp_path / f"{name}.py").write_text(
        "class Store:\n    kind = 'cache'\n    name = 'lazy'\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    return name


def test_an_installed_requirement_passes_without_importing_it(backend_module: str) -> None:
    Requirement(("json", backend_module), "pip install x").check("the thing")
    assert backend_module not in sys.modules


@pytest.mark.parametrize("module", ["no_such_driver_xyz", "no_such_driver_xyz.sub"])
def test_a_missing_module_names_what_needs_it_and_the_install_command(module: str) -> None:
    need = extra("postgres", "json", module)
    assert need.missing() == [module]
    with pytest.raises(ConfigError, match=f"store = 'x' needs {module}, which is not "
                       "installed") as caught:
        need.check("store = 'x'")
    assert caught.value.hint == "install it with: pip install 'baseshift[postgres]'"


def test_a_backend_is_imported_when_loaded(backend_module: str) -> None:
    ref = Backend("cache", "lazy", f"{backend_module}:Store")
    assert backend_module not in sys.modules
    cls = load_backend(ref)
    assert backend_module in sys.modules
    assert cls.__name__ == "Store" and (cls.kind, cls.name) == ("cache", "lazy")
    assert load_backend(cls) is cls, "a class offered directly is its own reference"
    del sys.modules[backend_module]


def test_loading_a_backend_whose_driver_is_missing_is_a_config_error() -> None:
    ref = Backend("state", "dynamo", "no_such_package.store:Store",
                  requires=Requirement(("no_such_driver_xyz",), "pip install 'baseshift-dy'"))
    with pytest.raises(ConfigError, match="the state backend 'dynamo' needs no_such_driver_xyz"):
        ref.load()
