"""Backends as the application finds them: offered by the builtin plugins' `register_backends`
and built by the registry (core/backends.py), so a contract suite runs against every backend
of a kind that a builtin plugin offers, with no list of classes to keep up to date."""
from __future__ import annotations

import contextlib
import functools
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, TypeVar

from baseshift.core.backends import BackendKind, BackendRegistry
from baseshift.core.hooks import Hooks
from baseshift.core.plugins import make_plugin_manager
from baseshift.core.settings import Settings

T = TypeVar("T")


@functools.cache
def _hooks() -> Hooks:
    return Hooks(make_plugin_manager(load_entrypoints=False), None)


def names(kind: BackendKind[Any]) -> list[str]:
    """The names the builtin plugins offer backends of `kind` under, sorted."""
    return sorted(_hooks().backends(kind.kind))


def build(kind: BackendKind[T], settings: Settings) -> T:
    """A new backend of `kind`, the one `settings` choose, built as the application would."""
    built = BackendRegistry(settings, _hooks()).build(kind)
    assert built is not None, f"settings choose no {kind.kind} backend"
    return built


@contextlib.asynccontextmanager
async def opened_state_store(name: str, folder: Path) -> AsyncIterator[Any]:
    """An open state store of the builtin kind `name` (postgres: in a fresh schema, dropped
    after; sqlite: a file in `folder`)."""
    from baseshift.core.backends import STATE
    from tests.conftest import drop_pg_schema, fresh_pg_schema

    url = fresh_pg_schema() if name == "postgres" else None
    store = build(STATE, Settings(data_dir=folder / "data", store=name, database_url=url))
    await store.open()
    try:
        yield store
    finally:
        await store.close()
        if url is not None:
            drop_pg_schema(url)
