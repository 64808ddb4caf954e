"""Retention and erasure on the MongoDB stores: the job result documents (`results =
"mongo"`) go with the runs and results they copy (never those of held or unfinished runs),
and old template versions leave the MongoDB template store. Against mongomock, and again
against a real server when BASESHIFT_MONGO_URL is set (the same gate as
test_documents_mongo.py: no server can be installed on this machine)."""
from __future__ import annotations

import os
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import mongomock
import pytest

from baseshift.core.app.application import BaseShift
from baseshift.core.audit import AuditQuery
from baseshift.core.plugins import DEFAULT_PLUGINS
from baseshift.core.retention import RetentionPolicy
from baseshift.core.settings import Settings
from baseshift.core.states import JobState, RunState
from baseshift.core.templatestore import StepDocument, TemplateDocument
from baseshift.plugins.mongo.documents import MongoConnection
from baseshift.plugins.mongo.results import STASH_KEY, MongoResults
from baseshift.plugins.mongo.templates import MongoTemplateStore
from baseshift.plugins.retention.service import (
    apply_policies,
    documents_of,
    erase,
    prune_templates,
)
from baseshift.plugins.storage.memory import MemoryStateStore
from tests.plugins.store_records import a_job, a_run, an_attempt, changes

REPO = Path(__file__).resolve().parents[2]
FAKE_HOST = ("mongomock.test", 27017)
OLD, NEW = 1_000_000.0, 2_000_000_000.0
"""Job end times: long ago (1970) and far ahead (2033)."""


@pytest.fixture(params=["mongomock", "server"])
def mongo_url(request: pytest.FixtureRequest) -> Iterator[str]:
    name = f"baseshift_test_{uuid.uuid4().hex[:12]}"
    if request.param == "mongomock":
        with mongomock.patch(servers=(FAKE_HOST,)):
            yield f"mongodb://{FAKE_HOST[0]}:{FAKE_HOST[1]}/{name}"
        return
    server = os.environ.get("BASESHIFT_MONGO_URL")
    if not server:
        pytest.skip("no MongoDB server: set BASESHIFT_MONGO_URL")
    try:
        yield urlunsplit(urlsplit(server)._replace(path=f"/{name}"))
    finally:
        import pymongo

        with pymongo.MongoClient(server) as client:
            client.drop_database(name)


@pytest.fixture
async def connection(mongo_url: str) -> AsyncIterator[MongoConnection]:
    conn = MongoConnection(mongo_url)
    await conn.open()
    yield conn
    await conn.close()


def document(run: str, job: str, ended: float) -> dict[str, Any]:
    return {"job_id": f"{run}/{job}", "run_id": run, "workflow": "w", "job": job,
            "result": {"to": "subject@example.org"},
            "timestamp": datetime.fromtimestamp(ended, UTC)}


async def seed(store: MemoryStateStore, run_id: str, ended: float | None) -> None:
    run = a_run(run_id, created_at=OLD - 10, state=RunState.RUNNING)
    await store.create_run(run, [a_job("a", run_id, state=JobState.RUNNING)])
    if ended is not None:
        await store.apply(changes(
            a_run(run_id, created_at=OLD - 10, ended_at=ended, state=RunState.COMPLETED),
            a_job("a", run_id, state=JobState.SUCCEEDED, output={"x": 1}, ended_at=ended),
            an_attempt("a", 1, run_id, state=JobState.SUCCEEDED, started_at=OLD - 10,
                       ended_at=ended, log="done")))


async def test_result_documents_go_with_old_runs_but_not_held_or_live_ones(
        connection: MongoConnection, tmp_path: Any) -> None:
    results = MongoResults(connection)
    await results.ensure_indexes()
    store = MemoryStateStore()
    for run_id, ended in (("old", OLD), ("held", OLD), ("live", None), ("new", NEW)):
        await seed(store, run_id, ended)
    await store.set_legal_hold("held", True)
    await results.put([document("old", "a", OLD), document("held", "a", OLD),
                       document("live", "a", OLD), document("new", "a", NEW)])
    policy = RetentionPolicy.from_options({"job_results": 30})
    looked = await apply_policies(store, None, policy, tmp_path, dry_run=True,
                                  documents=results)
    assert looked.removed == {"job_results": 1, "result_documents": 1}
    assert await results.get_result("old/a") is not None
    done = await apply_policies(store, None, policy, tmp_path, dry_run=False,
                                documents=results)
    assert done.removed == {"job_results": 1, "result_documents": 1}
    assert await results.get_result("old/a") is None
    for kept in ("held", "live", "new"):
        assert await results.get_result(f"{kept}/a") is not None, kept


async def test_erasure_removes_the_run_s_result_documents(connection: MongoConnection) -> None:
    results = MongoResults(connection)
    store = MemoryStateStore()
    await seed(store, "r1", OLD)
    await results.put([document("r1", "a", OLD), document("r1", "b", OLD),
                       document("r2", "a", OLD)])
    await erase(store, "r1", results)
    assert await results.run_results("r1") == []
    assert len(await results.run_results("r2")) == 1
    assert await store.tombstone("r1") is not None


async def test_old_template_versions_leave_the_mongo_template_store(
        connection: MongoConnection) -> None:
    templates = MongoTemplateStore(connection)
    await templates.open()
    state = MemoryStateStore()
    step = (StepDocument("say", "shell", {"command": "echo hi"}),)
    for version in ("1.0.0", "1.1.0", "2.0.0"):
        await templates.publish(TemplateDocument("notify", version, step))
    await state.create_run(a_run("live", state=RunState.RUNNING),
                           [a_job("a", "live", template="notify@1.0.0",
                                  state=JobState.RUNNING)])
    soon = time.time() + 3600
    assert await prune_templates(state, templates, soon, dry_run=True) == 1
    assert await prune_templates(state, templates, soon, dry_run=False) == 1
    assert [d.version for d in await templates.list("notify")] == ["1.0.0", "2.0.0"]
    (deleted,) = await state.audit_page(AuditQuery(action="template.delete"))
    assert deleted.entry.detail == {"version": "1.1.0"}


async def test_an_erased_run_leaves_no_result_document(mongo_url: str, tmp_path: Path) -> None:
    """End to end: the results plugin registers its copies, and erasure reaches them."""
    builtins = tuple(dict.fromkeys((*DEFAULT_PLUGINS, "results_mongo")))
    settings = Settings(load_entrypoints=False, data_dir=tmp_path / "data", store="memory",
                        results="mongo", mongo_url=mongo_url)
    async with BaseShift(settings, builtins=builtins) as bs:
        run_id = await bs.engine.submit(bs.load_workflow(REPO / "workflows/fanout.bsw"),
                                        {"numbers": [1, 2]})
        await bs.engine.wait(run_id)
        copies = documents_of(bs)
        assert isinstance(copies, MongoResults)
        assert await bs.stash[STASH_KEY].flush()
        assert await copies.run_results(run_id)
        await erase(bs.store, run_id, copies)
        assert await copies.run_results(run_id) == []
    assert documents_of(bs) is None  # gone with the plugin
