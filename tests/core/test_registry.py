"""Lazy backend references: nothing is imported until a backend is chosen, and a missing
driver is a ConfigError naming the command that installs it; one registry chooses every kind."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import ClassVar

import pytest
from plans import job

from baseshift.core import hookimpl
from baseshift.core.app.application import BaseShift
from baseshift.core.backends import LIVE, QUEUE, RESULTS, STATE
from baseshift.core.errors import ConfigError
from baseshift.core.events import Event, RunStateChanged
from baseshift.core.plan import Plan
from baseshift.core.registry import Backend, Offered, Requirement, extra
from baseshift.core.settings import Settings


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
    cls = Backend.of(ref).load()
    assert backend_module in sys.modules
    assert cls.__name__ == "Store" and (cls.kind, cls.name) == ("cache", "lazy")
    assert Backend.of(cls).load() is cls, "a class offered directly is its own reference"
    del sys.modules[backend_module]


def test_loading_a_backend_whose_driver_is_missing_is_a_config_error() -> None:
    ref = Backend("state", "dynamo", "no_such_package.store:Store",
                  requires=Requirement(("no_such_driver_xyz",), "pip install 'baseshift-dy'"))
    with pytest.raises(ConfigError, match="the state backend 'dynamo' needs no_such_driver_xyz"):
        ref.load()


class EchoLive:
    """A third-party `live` backend: built with the application, it works through hooks."""

    kind: ClassVar[str] = "live"
    name: ClassVar[str] = "echo"
    seen: ClassVar[list[str]] = []

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    @classmethod
    def from_settings(cls, settings: Settings) -> EchoLive:
        return cls(str(settings.extra.get("echo", {}).get("prefix", "")))

    @hookimpl
    def track_event(self, event: Event) -> None:
        if isinstance(event, RunStateChanged):
            type(self).seen.append(f"{self.prefix}{event.new.value}")


class OffersEcho:
    @hookimpl
    def register_backends(self) -> list[Offered]:
        return [Backend("live", "echo", EchoLive)]


async def test_the_chosen_live_backend_is_built_and_hears_events(tmp_path: Path) -> None:
    settings = Settings(store="memory", data_dir=tmp_path, load_entrypoints=False,
                        live="echo", extra={"echo": {"prefix": "> "}})
    EchoLive.seen.clear()
    async with BaseShift(settings, plugins=(OffersEcho(),)) as bs:
        assert isinstance(bs.pm.get_plugin("live:echo"), EchoLive)
        await bs.engine.wait(await bs.engine.submit(Plan("p", "1.0.0", jobs=(job("a"),)), {}))
    assert EchoLive.seen[-1] == "> COMPLETED"


def test_builtin_names_need_no_backend_and_the_rest_are_chosen_lazily(tmp_path: Path) -> None:
    bs = BaseShift(Settings(store="memory", data_dir=tmp_path, load_entrypoints=False))
    for kind in (QUEUE, LIVE, RESULTS):
        assert bs.backends.chosen(kind) is None and bs.backends.build(kind) is None
    state = bs.backends.chosen(STATE)
    assert state is not None and (state.kind, state.name) == ("state", "memory")
    assert bs.pm.get_plugin("live:echo") is None
    assert "store" not in vars(bs), "the state store is built on first use only"


def test_a_class_offered_directly_becomes_its_own_reference() -> None:
    ref = Backend.of(EchoLive)
    assert ref == Backend("live", "echo", EchoLive) and ref.load() is EchoLive
