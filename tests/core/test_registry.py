"""Lazy backend references: nothing is imported until a backend is chosen, and a missing
driver is a ConfigError naming the command that installs it."""
from __future__ import annotations

import sys

import pytest

from baseshift.core.errors import ConfigError
from baseshift.core.registry import Backend, Requirement, extra, load_backend


def test_an_installed_requirement_passes_without_importing_it() -> None:
    sys.modules.pop("colorsys", None)
    Requirement(("json", "colorsys"), "pip install x").check("the thing")
    assert "colorsys" not in sys.modules


@pytest.mark.parametrize("module", ["no_such_driver_xyz", "no_such_driver_xyz.sub"])
def test_a_missing_module_names_what_needs_it_and_the_install_command(module: str) -> None:
    need = extra("postgres", "json", module)
    assert need.missing() == [module]
    with pytest.raises(ConfigError, match=f"store = 'x' needs {module}, which is not "
                       "installed") as caught:
        need.check("store = 'x'")
    assert caught.value.hint == "install it with: pip install 'baseshift[postgres]'"


def test_a_backend_is_imported_when_loaded() -> None:
    sys.modules.pop("baseshift.plugins.cache_memory", None)
    ref = Backend("cache", "memory", "baseshift.plugins.cache_memory:MemoryCache")
    assert "baseshift.plugins.cache_memory" not in sys.modules
    cls = load_backend(ref)
    assert cls.__name__ == "MemoryCache" and (cls.kind, cls.name) == ("cache", "memory")
    assert load_backend(cls) is cls, "a class offered directly is its own reference"


def test_loading_a_backend_whose_driver_is_missing_is_a_config_error() -> None:
    ref = Backend("state", "dynamo", "no_such_package.store:Store",
                  requires=Requirement(("no_such_driver_xyz",), "pip install 'baseshift-dy'"))
    with pytest.raises(ConfigError, match="the state backend 'dynamo' needs no_such_driver_xyz"):
        ref.load()
