"""One contract for every job template store backend (template_store_contract.py), run
here against SQLite, memory and PostgreSQL."""
from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from baseshift.core.settings import Settings
from baseshift.core.templatestore import TemplateStore
from baseshift.plugins.templates.memory import MemoryTemplateStore
from baseshift.plugins.templates.pg_store import PostgresTemplateStore
from baseshift.plugins.templates.sqlite_store import SQLiteTemplateStore
from tests.conftest import drop_pg_schema, fresh_pg_schema
from tests.plugins import template_store_contract as contract

BACKENDS = {"sqlite": SQLiteTemplateStore, "memory": MemoryTemplateStore,
            "postgres": PostgresTemplateStore}
doc = contract.doc

class TestTemplateStoreContract(contract.TemplateStoreContract):
    """The template-store contract, against the `store` fixture below."""


@pytest.fixture(params=sorted(BACKENDS))
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[TemplateStore]:
    url = fresh_pg_schema() if request.param == "postgres" else None
    backend = BACKENDS[request.param].from_settings(Settings(data_dir=tmp_path,
                                                             database_url=url))
    await backend.open()
    try:
        yield backend
    finally:
        await backend.close()
        if url is not None:
            drop_pg_schema(url)


def test_backends_are_template_stores() -> None:
    for cls in BACKENDS.values():
        assert cls.kind == "templates"
        settings = Settings(database_url="postgresql://nobody@127.0.0.1:1/none")
        assert isinstance(cls.from_settings(settings), TemplateStore)


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
