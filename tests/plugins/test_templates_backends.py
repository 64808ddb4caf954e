"""One contract for every job template store backend (template_store_contract.py), run
here against SQLite, memory and PostgreSQL."""
from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from baseshift.core.backends import TEMPLATES
from baseshift.core.errors import NotFound
from baseshift.core.settings import Settings
from baseshift.core.templatestore import TemplateStore
from baseshift.plugins.templates.common import template_store
from baseshift.plugins.templates.sqlite_store import SQLiteTemplateStore
from tests.conftest import drop_pg_schema, fresh_pg_schema
from tests.plugins import template_store_contract as contract
from tests.plugins.backends import build, names

BACKENDS = [name for name in names(TEMPLATES) if name != "mongo"]
"""The template stores builtin plugins offer (memory, postgres, sqlite); MongoDB's runs the
contract in test_documents_mongo.py, against mongomock and a server."""
doc = contract.doc

class TestTemplateStoreContract(contract.TemplateStoreContract):
    """The template-store contract, against the `store` fixture below."""


@pytest.fixture(params=BACKENDS)
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[TemplateStore]:
    url = fresh_pg_schema() if request.param == "postgres" else None
    backend = build(TEMPLATES, Settings(data_dir=tmp_path, templates=request.param,
                                        database_url=url))
    await backend.open()
    try:
        yield backend
    finally:
        await backend.close()
        if url is not None:
            drop_pg_schema(url)


def test_backends_are_template_stores() -> None:
    assert BACKENDS == ["memory", "postgres", "sqlite"]
    for name in BACKENDS:
        settings = Settings(templates=name, database_url="postgresql://nobody@127.0.0.1:1/none")
        backend = build(TEMPLATES, settings)
        assert type(backend).kind == "templates" and isinstance(backend, TemplateStore)


async def test_sqlite_keeps_templates_in_the_state_database(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    first = SQLiteTemplateStore.from_settings(settings)
    await first.open()
    await first.publish(doc())
    await first.close()
    with sqlite3.connect(tmp_path / "baseshift.db") as conn:
        assert conn.execute("select name, version from job_template").fetchall() == [
            ("greet", "1.0.0")]
    again = SQLiteTemplateStore.from_settings(settings)
    await again.open()
    try:
        assert [d.ref for d in await again.list()] == ["greet@1.0.0"]
    finally:
        await again.close()


class _NoTemplates:
    templates = None


def test_without_a_template_store_the_hint_names_every_builtin_backend() -> None:
    with pytest.raises(NotFound, match="this server has no job template store") as info:
        template_store(_NoTemplates())  # type: ignore[arg-type]
    assert info.value.hint is not None
    assert all(f" {name}" in info.value.hint for name in names(TEMPLATES))
