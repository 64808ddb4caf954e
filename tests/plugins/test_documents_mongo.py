"""MongoDB documents: the template store (the shared template contract plus its own promises)
and job results in `job_results`.

No MongoDB server can be installed on the machine these tests were written on. Every test
runs against mongomock (the query logic: indexes, upserts, the publish race), and again
against a real server when BASESHIFT_MONGO_URL is set; the real-server variants skip with
"no MongoDB server: set BASESHIFT_MONGO_URL" otherwise. The errors for a bad or unreachable
URL use the real driver against a closed port, so they always run.
"""
from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import mongomock
import pytest

from baseshift.core.app.application import BaseShift
from baseshift.core.errors import ConfigError, StoreError
from baseshift.core.plugins import DEFAULT_PLUGINS
from baseshift.core.settings import Settings
from baseshift.core.states import JobState, RunState
from baseshift.core.templatestore import (
    TemplateDocument,
    TemplateError,
    TemplateIncompatible,
    TemplateStore,
)
from baseshift.plugins.mongo.documents import MongoConnection
from baseshift.plugins.mongo.results import (
    STASH_KEY,
    MongoResults,
    ResultWriter,
    bson_safe,
    result_document,
    results_of,
)
from baseshift.plugins.mongo.templates import COLLECTION, MongoTemplateStore
from baseshift.plugins.storage.memory import MemoryStateStore
from tests.plugins import template_store_contract as contract

REPO = Path(__file__).resolve().parents[2]
NO_SERVER = "no MongoDB server: set BASESHIFT_MONGO_URL"
FAKE_HOST = ("mongomock.test", 27017)
CLOSED_PORT_URL = "mongodb://127.0.0.1:1/?serverSelectionTimeoutMS=200"
BUILTINS = tuple(dict.fromkeys((*DEFAULT_PLUGINS, "templates_mongo", "results_mongo")))
"""The default plugins plus ours (which the defaults may already hold)."""
doc = contract.doc

class TestMongoTemplateStoreContract(contract.TemplateStoreContract):
    """The template-store contract, against the `store` fixture below."""


def with_database(url: str, name: str) -> str:
    """`url` naming database `name` (each real-server test gets its own)."""
    return urlunsplit(urlsplit(url)._replace(path=f"/{name}"))


@pytest.fixture(params=["mongomock", "server"])
def mongo_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """A MongoDB URL with a fresh database: mongomock's (patched into pymongo) or the real
    server's, dropped afterwards."""
    if request.param == "mongomock":
        with mongomock.patch(servers=(FAKE_HOST,)):
            yield f"mongodb://{FAKE_HOST[0]}:{FAKE_HOST[1]}/{fresh_name()}"
    else:
        with server_database() as url:
            yield url


def fresh_name() -> str:
    return f"baseshift_test_{uuid.uuid4().hex[:12]}"


@contextmanager
def server_database() -> Iterator[str]:
    """The real server's URL naming a fresh database, dropped afterwards; skips without one."""
    server = os.environ.get("BASESHIFT_MONGO_URL")
    if not server:
        pytest.skip(NO_SERVER)
    name = fresh_name()
    try:
        yield with_database(server, name)
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


@pytest.fixture
async def store(connection: MongoConnection) -> AsyncIterator[TemplateStore]:
    backend = MongoTemplateStore(connection)
    await backend.open()
    yield backend


@pytest.fixture
async def mock_connection() -> AsyncIterator[MongoConnection]:
    """A connection with an injected mongomock client, for tests of one backend's logic."""
    conn = MongoConnection("mongodb://mock/unit", client=mongomock.MongoClient(tz_aware=True))
    await conn.open()
    yield conn
    await conn.close()


# ------------------------------------------------------------------ templates


def test_the_mongo_backend_is_a_template_store() -> None:
    store = MongoTemplateStore.from_settings(Settings(mongo_url="mongodb://db.example:27017"))
    assert (store.kind, store.name) == ("templates", "mongo")
    assert isinstance(store, TemplateStore)
    with pytest.raises(ConfigError, match="'mongo_url' is not set"):
        MongoTemplateStore.from_settings(Settings(templates="mongo"))


async def test_versions_are_documents_in_the_seed_shape(store: MongoTemplateStore) -> None:
    schema = {"$schema": "https://json-schema.org/draft/2020-12/schema", "type": "object",
              "$defs": {"who": {"type": "string"}},
              "properties": {"name": {"$ref": "#/$defs/who"}}}
    stored = await store.publish(doc(inputSchema=schema))
    rows = list(store.connection.collection(COLLECTION).find({}, {"_id": 0}))
    assert len(rows) == 1
    row = rows[0]
    assert (row["templateId"], row["version"], row["seq"], row["retired"]) == (
        "greet", "1.0.0", 1, False)
    assert row["steps"] == [{"name": "say", "type": "shell",
                             "config": {"command": "echo hi ${input.name}"}}]
    assert await store.get("greet") == stored  # `$` and `.`-free keys round-trip exactly
    assert (await store.get("greet")).input_schema == schema  # type: ignore[union-attr]


async def test_a_deleted_version_stays_as_a_retired_document(store: MongoTemplateStore) -> None:
    await store.publish(doc())
    await store.publish(doc(version="1.1.0"))
    await store.delete("greet", "1.1.0")
    await store.publish(doc(version="1.2.0"))
    rows = store.connection.collection(COLLECTION).find({}, {"_id": 0}, sort=[("seq", 1)])
    assert [(r["version"], r["seq"], r["retired"]) for r in rows] == [
        ("1.0.0", 1, False), ("1.1.0", 2, True), ("1.2.0", 3, False)]


class RacingStore(MongoTemplateStore):
    """Lets another server publish between this store's read and its insert: the window
    two servers publishing at once share."""

    def __init__(self, connection: MongoConnection, other: MongoTemplateStore,
                 meanwhile: TemplateDocument) -> None:
        super().__init__(connection)
        self.other, self.meanwhile, self.checks = other, meanwhile, 0

    def _check(self, doc: TemplateDocument, rows: list[Any], bump: Any) -> TemplateDocument:
        self.checks += 1
        if self.checks == 1:
            self.other._publish(self.meanwhile, None)
        return MongoTemplateStore._check(doc, rows, bump)


async def test_a_publish_that_lost_a_race_is_checked_against_the_winner(
        mock_connection: MongoConnection) -> None:
    plain = MongoTemplateStore(mock_connection)
    await plain.open()
    base = {**contract.INPUT, "required": ["name"]}
    await plain.publish(doc(inputSchema=base))
    with_age = {**base, "properties": {**base["properties"], "age": {"type": "integer"}}}
    age_text = {**base, "properties": {**base["properties"], "age": {"type": "string"}}}
    racer = RacingStore(mock_connection, plain, doc(version="1.1.0", inputSchema=with_age))
    # Compatible with 1.0.0, which is all it saw first; not with the 1.1.0 that won.
    with pytest.raises(TemplateIncompatible, match="no longer accepts integer"):
        await racer.publish(doc(version="1.2.0", inputSchema=age_text))
    assert racer.checks == 2
    assert [d.version for d in await plain.list()] == ["1.0.0", "1.1.0"]


async def test_bumps_racing_each_get_their_own_version(mock_connection: MongoConnection
                                                       ) -> None:
    plain = MongoTemplateStore(mock_connection)
    await plain.open()
    racer = RacingStore(mock_connection, plain, doc(version="1.0.0"))
    assert (await racer.publish(doc(version=None), "minor")).version == "1.1.0"
    assert [d.version for d in await plain.list()] == ["1.0.0", "1.1.0"]


async def test_servers_publishing_at_once_each_check_against_the_last() -> None:
    """Real concurrency needs a real server: mongomock does not enforce a unique index
    atomically across threads."""
    with server_database() as url:
        stores = [MongoTemplateStore(MongoConnection(url)) for _ in range(3)]
        for store in stores:
            await store.open()
        try:
            published = await asyncio.gather(*(
                stores[i % 3].publish(doc(version=None), "minor") for i in range(12)))
            rows = stores[0].connection.collection(COLLECTION).find({}, sort=[("seq", 1)])
            seqs = [(r["seq"], r["version"]) for r in rows]
        finally:
            for store in stores:
                await store.close()
    assert sorted(d.semver.minor for d in published) == list(range(1, 13))
    assert seqs == [(i, f"0.{i}.0") for i in range(1, 13)]


async def test_documents_removed_by_hand_give_a_clear_error(
        mock_connection: MongoConnection) -> None:
    store = MongoTemplateStore(mock_connection)
    await store.open()
    await store.publish(doc())
    await store.publish(doc(version="1.1.0"))
    mock_connection.collection(COLLECTION).delete_one({"version": "1.0.0"})
    with pytest.raises(StoreError, match="did not settle") as info:
        await store.publish(doc(version="1.2.0"))
    assert "gaps" in (info.value.hint or "")


async def test_a_value_bson_cannot_hold_is_a_template_error(
        mock_connection: MongoConnection) -> None:
    store = MongoTemplateStore(mock_connection)
    await store.open()
    huge = doc(steps=[{"name": "say", "type": "shell", "config": {"n": 2**70}}])
    with pytest.raises(TemplateError, match="cannot be stored in MongoDB"):
        await store.publish(huge)
    assert await store.list() == []


# ------------------------------------------------------------------ job results


def test_bson_safe_turns_only_oversized_integers_into_text() -> None:
    value = {"a": [1, 2**63 - 1, -(2**63), 2**63, True, None, 1.5, {"b": -(2**70)}], "c": "x"}
    assert bson_safe(value) == {"a": [1, 2**63 - 1, -(2**63), str(2**63), True, None, 1.5,
                                      {"b": str(-(2**70))}], "c": "x"}


async def test_results_upsert_by_job_id_and_read_back(connection: MongoConnection) -> None:
    results = MongoResults(connection)
    await results.ensure_indexes()
    at = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)

    def document(run: str, job: str, result: Any) -> dict[str, Any]:
        return {"job_id": f"{run}/{job}", "run_id": run, "workflow": "w", "job": job,
                "result": result, "timestamp": at}

    await results.put([document("r1", "b", {"n": 1}), document("r1", "a", [1, 2]),
                       document("r2", "a", "other run")])
    await results.put([document("r1", "b", {"n": 2})])  # a re-run job gets its new output
    got = await results.get_result("r1/b")
    assert got == document("r1", "b", {"n": 2})
    assert got is not None and got["timestamp"] == at
    assert [d["job"] for d in await results.run_results("r1")] == ["a", "b"]
    assert await results.get_result("r1/nope") is None
    indexes = connection.collection("job_results").index_information()
    assert indexes["job_id"].get("unique") is True and "run_id" in indexes


class FlakyResults(MongoResults):
    """Fails its first `failures` writes, as a MongoDB outage would."""

    def __init__(self, connection: MongoConnection, failures: int) -> None:
        super().__init__(connection)
        self.failures = failures

    async def put(self, docs: Any) -> None:
        if self.failures:
            self.failures -= 1
            raise StoreError("MongoDB at mongodb://mock is unreachable")
        await super().put(docs)


async def test_the_writer_keeps_results_until_mongodb_takes_them(
        mock_connection: MongoConnection, caplog: pytest.LogCaptureFixture) -> None:
    from tests.plugins.store_records import a_job, a_run

    state = MemoryStateStore()
    await state.open()
    await state.create_run(a_run(), [a_job("a", state=JobState.SUCCEEDED, output=7),
                                     a_job("b", state=JobState.FAILED)])
    writer = ResultWriter(state, FlakyResults(mock_connection, failures=1),
                          owns_connection=False)
    writer.add("r1", "a")
    writer.add("r1", "b")  # not succeeded: noted by mistake, never written
    assert await writer.flush() is False
    assert writer.pending == 2 and "not in MongoDB yet" in caplog.text
    assert await writer.flush() is True
    assert writer.pending == 0
    assert [(d["job_id"], d["result"]) for d in await writer.results.run_results("r1")] == [
        ("r1/a", 7)]


async def test_a_result_mongodb_refuses_is_skipped_not_retried_for_ever(
        mock_connection: MongoConnection, caplog: pytest.LogCaptureFixture) -> None:
    """A key with a NUL byte is valid JSON, never valid BSON: that document is logged and
    skipped, the run's other results are written, nothing stays pending."""
    from tests.plugins.store_records import a_job, a_run

    state = MemoryStateStore()
    await state.open()
    await state.create_run(a_run(), [
        a_job("a", state=JobState.SUCCEEDED, output={"bad\x00key": 1}),
        a_job("b", state=JobState.SUCCEEDED, output=7)])
    writer = ResultWriter(state, MongoResults(mock_connection), owns_connection=False)
    writer.add("r1", "a")
    writer.add("r1", "b")
    assert await writer.flush() is True
    assert writer.pending == 0
    assert [(d["job_id"], d["result"]) for d in await writer.results.run_results("r1")] == [
        ("r1/b", 7)]
    assert "job result r1/a cannot be stored in MongoDB" in caplog.text
    assert "not in MongoDB yet" not in caplog.text


# ------------------------------------------------------------------ the application


def app(tmp_path: Path, **settings: Any) -> BaseShift:
    settings.setdefault("store", "memory")
    return BaseShift(Settings(load_entrypoints=False, data_dir=tmp_path / "data", **settings),
                     builtins=BUILTINS)


async def test_a_run_leaves_its_results_as_documents(mongo_url: str, tmp_path: Path) -> None:
    """End to end: a fan-out workflow with `results = "mongo"` (templates elsewhere)."""
    numbers = [1, 2, 2**40]  # 2**80 squared is valid JSON, too big for BSON's integers
    bs = app(tmp_path, results="mongo", mongo_url=mongo_url)
    async with bs:
        run_id = await bs.engine.submit(bs.load_workflow(REPO / "workflows/fanout.bsw"),
                                        {"numbers": numbers})
        await bs.engine.wait(run_id)
        snapshot = await bs.store.load_run(run_id)
        assert snapshot is not None and snapshot.run.state is RunState.COMPLETED
    check = MongoConnection(mongo_url)  # after shutdown: everything was flushed
    await check.open()
    try:
        docs = await MongoResults(check).run_results(run_id)
    finally:
        await check.close()
    by_job = {d["job"]: d for d in docs}
    assert sorted(by_job) == ["square", "square[0]", "square[1]", "square[2]", "total"]
    assert by_job["square"]["result"] == [1, 4, str(2**80)]
    assert by_job["square[1]"]["result"] == 4
    assert by_job["square[2]"]["result"] == str(2**80)
    assert by_job["total"]["result"]["sum"] == str(1 + 4 + 2**80)
    for key, document in by_job.items():
        job = snapshot.jobs[key]
        assert document["job_id"] == f"{run_id}/{key}" and document["run_id"] == run_id
        assert document["workflow"] == "sum_of_squares"
        assert document == result_document(snapshot.run, job)


async def test_templates_and_results_share_one_client(mongo_url: str, tmp_path: Path) -> None:
    workflows = tmp_path / "workflows"
    workflows.mkdir()
    (workflows / "greeter.py").write_text(
        "def greet(name):\n    return {'greeting': 'hi ' + name}\n")
    (workflows / "greet.bsw").write_text(
        'workflow greet {\n  version "1.0.0"\n  job say uses hello.say@^1 {\n'
        '    with { name: "Ada" }\n  }\n}\n')
    bs = app(tmp_path, templates="mongo", results="mongo", mongo_url=mongo_url,
             workflows_dir=workflows)
    async with bs:
        assert isinstance(bs.templates, MongoTemplateStore)
        assert results_of(bs).connection is bs.templates.connection
        await bs.templates.publish(contract.parse_document({
            "templateId": "hello.say", "version": "1.0.0", "inputSchema": contract.INPUT,
            "steps": [{"name": "say", "type": "python",
                       "config": {"function": "greeter:greet", "name": "${input.name}"}}]}))
        await bs.catalog.refresh(force=True)
        run_id = await bs.runs.start("greet", {})
        await bs.engine.wait(run_id)
        assert (await bs.runs.snapshot(run_id)).jobs["say"].template == "hello.say@1.0.0"
        await bs.stash[STASH_KEY].flush()
        got = await results_of(bs).get_result(f"{run_id}/say")
    assert got is not None and got["result"] == {"greeting": "hi Ada"}


async def test_results_need_a_started_app_with_results_mongo(tmp_path: Path) -> None:
    async with app(tmp_path) as bs:
        with pytest.raises(ConfigError, match="not kept in MongoDB"):
            results_of(bs)


# ------------------------------------------------------------------ clear errors at start


def test_results_mongo_without_a_url_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="'results' is 'mongo' but 'mongo_url' is not set"):
        app(tmp_path, results="mongo")


@pytest.mark.parametrize("url, message", [
    ("http://db.example", "Invalid URI scheme"),
    ("mongodb://", "at least one hostname"),
])
async def test_a_bad_url_is_a_config_error(tmp_path: Path, url: str, message: str) -> None:
    bs = app(tmp_path, templates="mongo", mongo_url=url)
    with pytest.raises(ConfigError, match=message) as info:
        await bs.__aenter__()
    assert "mongo_url" in str(info.value)


@pytest.mark.parametrize("kind", ["templates", "results"])
async def test_an_unreachable_server_is_one_store_error(tmp_path: Path, kind: str) -> None:
    bs = app(tmp_path, mongo_url=CLOSED_PORT_URL.replace("//", "//ada:s3cret@"),
             **{kind: "mongo"})
    with pytest.raises(StoreError, match="is unreachable") as info:
        async with bs:
            pass
    message = str(info.value)
    assert "127.0.0.1:1" in message and "s3cret" not in message
    assert message.endswith("Connection refused (hint: check mongo_url and that the server "
                            "is running)")


@pytest.mark.slow
def test_the_command_line_reports_an_unreachable_server_in_one_line(run_cli: Any) -> None:
    env = {"BASESHIFT_TEMPLATES": "mongo", "BASESHIFT_MONGO_URL": CLOSED_PORT_URL}
    result = run_cli("run", str(REPO / "workflows/hello.bsw"), env=env)
    assert result.exit_code != 0
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert lines[0].startswith("error: MongoDB at mongodb://127.0.0.1:1/")
    assert "is unreachable (connecting): 127.0.0.1:1: " in lines[0]
    assert lines[0].endswith("Connection refused")
    assert lines[1:] == ["hint: check mongo_url and that the server is running"]
