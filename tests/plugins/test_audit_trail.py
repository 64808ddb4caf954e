"""The audit trail as every builtin state store keeps it (core/audit.py): entries written in
the transaction of the change they record (none when the change is refused), one chain
under concurrent writers of a fleet, template stores on the same database writing into it,
and `baseshift audit verify` catching a row edited, inserted or deleted in SQLite and in
PostgreSQL."""
from __future__ import annotations

import json
import sqlite3
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest

from baseshift.core.access import Grant, Role
from baseshift.core.audit import (
    AuditEntry,
    AuditLog,
    AuditQuery,
    ChainHead,
    verify,
)
from baseshift.core.backends import STATE
from baseshift.core.errors import Conflict, NotFound
from baseshift.core.identity import UserRecord
from baseshift.core.records import Changes
from baseshift.core.states import RunState
from baseshift.core.templatestore import TemplateExists, parse_document
from baseshift.plugins.storage.pg_connect import PgTarget
from baseshift.plugins.storage.pg_store import PostgresStateStore
from baseshift.plugins.storage.sqlite_store import SQLiteStateStore
from baseshift.plugins.templates.pg_store import PostgresTemplateStore
from baseshift.plugins.templates.sqlite_store import SQLiteTemplateStore
from tests.conftest import CliResult, drop_pg_schema, fresh_pg_schema
from tests.plugins.backends import names, opened_state_store
from tests.plugins.races import race, two_sql_stores
from tests.plugins.store_records import a_job, a_run

BACKENDS = names(STATE)
SQL_BACKENDS = ["postgres", "sqlite"]


def an_entry(action: str = "run.start", resource: str = "run:r1", actor: str = "ann",
             **detail: str) -> AuditEntry:
    return AuditEntry(action, resource, actor, client="192.0.2.7", request_id="rq-1",
                      at=1000.0, detail=detail)


@pytest.fixture(params=BACKENDS)
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Any]:
    async with opened_state_store(request.param, tmp_path) as s:
        assert isinstance(s, AuditLog)
        yield s


async def entries_of(store: AuditLog, **query: Any) -> list[tuple[str, str, str]]:
    page = await store.audit_page(AuditQuery(**query))
    return [(r.entry.action, r.entry.resource, r.entry.actor) for r in reversed(page)]


# --------------------------------------------------------------------- every store


async def test_a_new_trail_is_empty_and_intact(store: Any) -> None:
    assert await store.audit_head() == ChainHead()
    assert await verify(store) == (0, None)


async def test_a_run_and_its_entry_are_written_together(store: Any) -> None:
    await store.create_run(a_run("r1"), [a_job("a")], audit=[an_entry()])
    batch = Changes()
    batch.moved_run(a_run("r1", state=RunState.CANCELLED), RunState.INITIALIZED)
    batch.audit.append(an_entry("run.cancel", actor="bob"))
    await store.apply(batch)
    assert await entries_of(store) == [("run.start", "run:r1", "ann"),
                                       ("run.cancel", "run:r1", "bob")]
    stored = (await store.audit_page(AuditQuery(limit=1)))[0]
    assert (stored.seq, stored.entry.client, stored.entry.request_id) == (2, "192.0.2.7", "rq-1")
    assert await verify(store) == (2, None)


async def test_a_refused_change_leaves_no_entry(store: Any) -> None:
    await store.create_run(a_run("r1"), [a_job("a")])
    with pytest.raises(Conflict):  # the id is taken: neither the run nor its entry
        await store.create_run(a_run("r1"), [a_job("a")], audit=[an_entry()])
    with pytest.raises(NotFound):  # a grant of an unknown role
        await store.add_user(UserRecord(id="u1", name="ann"), [Grant("nobody")],
                             audit=[an_entry("user.create", "user:ann")])
    with pytest.raises(NotFound):
        await store.delete_role("nobody", audit=[an_entry("role.delete", "role:nobody")])
    assert not await store.revoke_api_token("no-such-token", 5.0,
                                            audit=[an_entry("token.revoke", "token:x")])
    assert await entries_of(store) == []
    assert await store.get_user("ann") is None


async def test_identity_changes_carry_their_entries(store: Any) -> None:
    await store.save_role(Role("viewer", frozenset({"runs:read"})),
                          audit=[an_entry("role.save", "role:viewer")])
    await store.add_user(UserRecord(id="u1", name="ann"), [Grant("viewer")],
                         audit=[an_entry("user.create", "user:ann")])
    await store.save_user(UserRecord(id="u1", name="ann", disabled=True),
                          audit=[an_entry("user.disable", "user:ann")])
    await store.append_audit([an_entry("auth.login", "user:mallory", "anonymous")])
    assert await entries_of(store) == [
        ("role.save", "role:viewer", "ann"), ("user.create", "user:ann", "ann"),
        ("user.disable", "user:ann", "ann"), ("auth.login", "user:mallory", "anonymous")]
    assert await entries_of(store, resource="user:", actor="ann") == [
        ("user.create", "user:ann", "ann"), ("user.disable", "user:ann", "ann")]
    assert await verify(store) == (4, None)


async def test_pages_walk_the_trail_newest_first(store: Any) -> None:
    await store.append_audit([an_entry(resource=f"run:r{i}") for i in range(7)])
    seen, before = [], None
    while True:
        page = await store.audit_page(AuditQuery(limit=3, before=before))
        seen += [r.seq for r in page]
        if len(page) < 3:
            break
        before = page[-1].seq
    assert seen == [7, 6, 5, 4, 3, 2, 1]
    assert [r.seq for r in await store.audit_records(2, 3)] == [3, 4, 5]


async def test_details_keep_any_text(store: Any) -> None:
    odd = "<script>alert('x')</script> \"quoted\" ünïcode ✓ \\ back"
    await store.append_audit([an_entry(resource=f"user:{odd}", actor=odd, reason=odd)])
    record = (await store.audit_page(AuditQuery()))[0]
    assert (record.entry.actor, record.entry.resource, record.entry.detail) == (
        odd, f"user:{odd}", {"reason": odd})
    assert await verify(store) == (1, None)


# --------------------------------------------------------------------- fleets


@pytest.fixture(params=SQL_BACKENDS)
async def two_stores(request: pytest.FixtureRequest,
                     tmp_path: Path) -> AsyncIterator[tuple[Any, Any]]:
    async with two_sql_stores(request.param, tmp_path) as stores:
        yield stores


async def test_concurrent_writers_extend_one_chain(two_stores: tuple[Any, Any]) -> None:
    a, b = two_stores
    rounds = 15
    for i in range(rounds):
        await race(  # the runs' own write path on one, the identity/SQLAlchemy one on the other
            lambda i=i: a.create_run(a_run(f"a{i}"), [a_job("x", f"a{i}")],  # type: ignore
                                     audit=[an_entry(resource=f"run:a{i}")]),
            lambda i=i: b.append_audit([an_entry("auth.login", f"user:b{i}"),  # type: ignore
                                        an_entry("auth.login", f"user:c{i}")]))
    assert await verify(a) == (3 * rounds, None)
    assert (await b.audit_head()).seq == 3 * rounds


# --------------------------------------------------------------------- templates


def template(version: str = "1.0.0") -> Any:
    return parse_document({"templateId": "greet", "version": version, "steps": [
        {"name": "say", "type": "shell", "config": {"command": "echo hi"}}]})


@pytest.fixture(params=SQL_BACKENDS)
async def state_and_templates(request: pytest.FixtureRequest,
                              tmp_path: Path) -> AsyncIterator[tuple[Any, Any]]:
    """A state store and a template store on the same database, as configured by default
    (SQLite: one file) or for a fleet (PostgreSQL: one schema)."""
    url = fresh_pg_schema() if request.param == "postgres" else None
    file = f"sqlite:///{tmp_path / 'baseshift.db'}"
    state = PostgresStateStore(str(url)) if url else SQLiteStateStore(file)
    templates = (PostgresTemplateStore(PgTarget.parse(url)) if url
                 else SQLiteTemplateStore(file))
    await templates.open()  # first: it makes the audit tables of a new database too
    await state.open()
    yield state, templates
    await templates.close()
    await state.close()
    if url is not None:
        drop_pg_schema(url)


async def test_templates_write_into_the_state_stores_trail(
        state_and_templates: tuple[Any, Any]) -> None:
    state, templates = state_and_templates
    assert templates.audit_database == state.audit_database is not None
    await state.append_audit([an_entry()])
    await templates.publish(template(), audit=[an_entry("template.publish", "template:greet")])
    with pytest.raises(TemplateExists):
        await templates.publish(template(), audit=[an_entry("template.publish",
                                                            "template:greet", "mallory")])
    await templates.delete("greet", "1.0.0",
                           audit=[an_entry("template.delete", "template:greet")])
    with pytest.raises(NotFound):
        await templates.delete("greet", "1.0.0",
                               audit=[an_entry("template.delete", "template:greet", "mallory")])
    assert await entries_of(state) == [("run.start", "run:r1", "ann"),
                                       ("template.publish", "template:greet", "ann"),
                                       ("template.delete", "template:greet", "ann")]
    assert await verify(state) == (3, None)


# --------------------------------------------------------------------- tampering


def sqlite_rows(data_dir: Path, statement: str, *params: Any) -> None:
    with sqlite3.connect(data_dir / "baseshift.db") as conn:
        conn.execute(statement, params)


class Tamper:
    """Runs `baseshift audit verify` against a store filled by a few CLI-free writes, and
    edits its tables as someone with database access would."""

    def __init__(self, run_cli: Callable[..., CliResult], env: dict[str, str],
                 execute: Callable[[str], None]) -> None:
        self.run_cli, self.env, self.execute = run_cli, env, execute

    def verify(self) -> CliResult:
        return self.run_cli("audit", "verify", "--json", env=self.env)


@pytest.fixture(params=SQL_BACKENDS)
async def tamper(request: pytest.FixtureRequest, tmp_path: Path,
                 run_cli: Callable[..., CliResult]) -> AsyncIterator[Tamper]:
    data = tmp_path / "cli-data"  # run_cli's data dir
    if request.param == "postgres":
        url = fresh_pg_schema()
        store: Any = PostgresStateStore(url)
        env = {"BASESHIFT_STORE": "postgres", "BASESHIFT_DATABASE_URL": url}
        schema = url.rsplit("schema=", 1)[1]

        def execute(statement: str) -> None:
            with psycopg.connect(PgTarget.parse(url).dsn, autocommit=True) as conn:
                conn.execute(f'SET search_path TO "{schema}"'.encode())
                conn.execute(statement.encode())
    else:
        url = None
        store = SQLiteStateStore(f"sqlite:///{data / 'baseshift.db'}")
        env = {}

        def execute(statement: str) -> None:
            sqlite_rows(data, statement)
    await store.open()
    await store.append_audit([an_entry(resource=f"run:r{i}") for i in range(5)])
    await store.close()
    yield Tamper(run_cli, env, execute)
    if url is not None:
        drop_pg_schema(url)


def verdict(result: CliResult) -> dict[str, Any]:
    out: dict[str, Any] = json.loads(result.stdout)
    return out


@pytest.mark.slow
def test_verify_passes_an_intact_trail(tamper: Tamper) -> None:
    result = tamper.verify()
    assert result.exit_code == 0, result.stderr
    assert verdict(result) == {"intact": True, "entries": 5, "head": 5, "broken_at": None,
                               "reason": None}
    plain = tamper.run_cli("audit", "verify", env=tamper.env)
    assert plain.exit_code == 0 and "intact: 5 entries" in plain.stdout


@pytest.mark.slow
@pytest.mark.parametrize(("statement", "broken_at", "reason"), [
    ("UPDATE audit_log SET actor = 'mallory' WHERE seq = 3", 3, "edited"),
    ("UPDATE audit_log SET detail = '{\"workflow\":\"x\"}' WHERE seq = 1", 1, "edited"),
    ("DELETE FROM audit_log WHERE seq = 2", 2, "missing"),
    ("DELETE FROM audit_log WHERE seq = 5", 5, "head"),
    ("INSERT INTO audit_log SELECT seq + 10, at, actor, action, resource, outcome, client, "
     "request_id, detail, prev_hash, hash FROM audit_log WHERE seq = 5", 15, "beyond"),
    ("UPDATE audit_head SET seq = 4", 5, "head"),
])
def test_verify_names_the_first_broken_entry(tamper: Tamper, statement: str, broken_at: int,
                                             reason: str) -> None:
    tamper.execute(statement)
    result = tamper.verify()
    assert result.exit_code == 1
    found = verdict(result)
    assert (found["intact"], found["broken_at"]) == (False, broken_at), found
    assert reason in found["reason"]
    plain = tamper.run_cli("audit", "verify", env=tamper.env)
    assert plain.exit_code == 1 and f"BROKEN at entry {broken_at}" in plain.stderr


@pytest.mark.slow
def test_audit_list_prints_the_newest_entries(tamper: Tamper) -> None:
    result = tamper.run_cli("audit", "list", "--limit", "2", env=tamper.env)
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 2 and lines[0].startswith("#5 ") and "run:r4" in lines[0]
    listed = tamper.run_cli("audit", "list", "--resource", "run:r1", "--json", env=tamper.env)
    assert [e["seq"] for e in json.loads(listed.stdout)["entries"]] == [2]
    bad = tamper.run_cli("audit", "list", "--limit", "0", env=tamper.env)
    assert bad.exit_code == 2 and "1 to 500" in bad.stderr
