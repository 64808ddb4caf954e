"""`/health/live` and `/health/ready`: public probes; ready answers 503 problem+json naming
each dependency that does not answer (PostgreSQL, Redis, a silent server), without secrets;
the Kubernetes manifests probe these very routes."""
from __future__ import annotations

import asyncio
import dataclasses
import os
import re
import tomllib
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML
from starlette.routing import Route

from baseshift.core.instance import instance_id
from baseshift.plugins.health.checks import IN_FLIGHT, readiness
from baseshift.plugins.storage.pg_store import PostgresStateStore
from tests.conftest import free_port

REPO = Path(__file__).resolve().parents[2]
SECRET = "hunter2"


async def test_live_answers_ok_to_anyone(make_client: Callable[..., Any]) -> None:
    async with make_client(role=None) as (bs, client):
        response = await client.get("/health/live")
    assert response.status_code == 200
    body = response.json()
    assert body == {"status": "ok", "instance": instance_id()}
    assert re.fullmatch(r"[0-9a-f]{16}", body["instance"])
    assert str(os.getpid()) not in response.text


FORK = """
import os
from baseshift.core.instance import instance_id
before = instance_id()
child = os.fork()
if child == 0:
    print("child", instance_id(), flush=True)
    os._exit(0)
os.waitpid(child, 0)
print("parent", before, instance_id(), flush=True)
"""


def test_a_forked_child_has_an_instance_id_of_its_own() -> None:
    """(In a process of its own: this one runs threads, and forking those is unsafe.)"""
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", FORK], capture_output=True, text=True,
                         check=True).stdout
    lines = {line.split()[0]: line.split()[1:] for line in out.splitlines()}
    (child,), (parent, parent_after) = lines["child"], lines["parent"]
    assert parent == parent_after and re.fullmatch(r"[0-9a-f]{16}", parent)
    assert re.fullmatch(r"[0-9a-f]{16}", child) and child != parent


async def test_ready_answers_ok_when_every_dependency_answers(
        make_client: Callable[..., Any], pg_url: str) -> None:
    async with make_client(role=None, store="postgres", database_url=pg_url,
                           queue="postgres", redis_url="redis://127.0.0.1:6379/0") as (bs,
                                                                                       client):
        response = await client.get("/health/ready")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "ok"
    assert {c["name"]: c["status"] for c in body["checks"]} == {
        "store": "ok", "queue": "ok", "redis": "ok", "workflows": "ok"}


def server_gone(store: PostgresStateStore, dsn: str) -> None:
    """The store's server goes away: its sessions end, and whatever answers at the new
    address `dsn` is where every new connection (the read pool's too) now goes."""
    store.target = dataclasses.replace(store.target, dsn=dsn)
    assert store._pool is not None
    store._pool.conninfo = dsn
    for conn in list(store._pool._pool):  # the pool's idle sessions end
        conn.pgconn.finish()


async def test_ready_is_503_when_postgresql_stops_answering(
        make_client: Callable[..., Any], pg_url: str) -> None:
    pool = {"storage_postgres": {"pool_timeout": 0.5}}  # a read gives up before the probe
    async with make_client(role=None, store="postgres", database_url=pg_url,
                           extra=pool) as (bs, client):
        assert (await client.get("/health/ready")).status_code == 200
        store = bs.store
        assert isinstance(store, PostgresStateStore)
        # the server goes away: its session ends and nothing answers at its address
        server_gone(store, f"postgresql://bs:{SECRET}@127.0.0.1:{free_port()}/test")
        response = await client.get("/health/ready")
        live = await client.get("/health/live")
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["code"] == "health.not-ready"
    failed = {c["name"]: c for c in body["checks"] if c["status"] == "failed"}
    assert list(failed) == ["store"]
    assert "reading the store failed" in failed["store"]["reason"]  # the pool gave up
    assert SECRET not in response.text
    assert live.status_code == 200


async def test_ready_is_503_when_the_configured_redis_does_not_answer(
        make_client: Callable[..., Any]) -> None:
    url = f"redis://:{SECRET}@127.0.0.1:{free_port()}/0"
    async with make_client(role=None, redis_url=url) as (bs, client):
        response = await client.get("/health/ready")
    assert response.status_code == 503
    failed = [c for c in response.json()["checks"] if c["status"] == "failed"]
    assert [c["name"] for c in failed] == ["redis"]
    assert failed[0]["reason"]
    assert SECRET not in response.text


@pytest.fixture
async def silent_server() -> AsyncIterator[int]:
    """A port whose server accepts connections and never says a word (a hung server)."""
    held: list[asyncio.StreamWriter] = []

    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    yield server.sockets[0].getsockname()[1]
    for writer in held:
        writer.close()
    server.close()
    await server.wait_closed()


async def test_a_hung_server_fails_its_check_instead_of_hanging(
        make_client: Callable[..., Any], silent_server: int) -> None:
    async with make_client(role=None, redis_url=f"redis://127.0.0.1:{silent_server}/0") as (
            bs, client):
        checks = await readiness(bs, timeout=0.2)
    failed = [c for c in checks if not c.ok]
    assert [c.name for c in failed] == ["redis"]


async def test_a_hung_database_fails_fast_and_is_asked_once(
        make_client: Callable[..., Any], pg_url: str, silent_server: int) -> None:
    async with make_client(role=None, store="postgres", database_url=pg_url) as (bs, client):
        store = bs.store
        assert isinstance(store, PostgresStateStore)
        # the session ended and the server's address now accepts and says nothing
        server_gone(store, f"postgresql://127.0.0.1:{silent_server}/test")
        first = await readiness(bs, timeout=0.2)
        probe = bs.stash.get(IN_FLIGHT)
        assert probe is not None
        running = probe.running["store"]
        second = await readiness(bs, timeout=0.2)
        assert probe.running["store"] is running  # still the first probe, not another
    for checks in (first, second):
        assert [(c.name, c.reason) for c in checks if not c.ok] == [
            ("store", "no answer within 0.2 s")]


async def test_ready_waits_for_the_workflow_catalog(make_baseshift: Callable[..., Any]) -> None:
    async with make_baseshift() as bs:
        before = {c.name: c.ok for c in await readiness(bs)}
        await bs.catalog.refresh(force=True)
        after = {c.name: c.ok for c in await readiness(bs)}
    assert before == {"store": True, "workflows": False}
    assert after == {"store": True, "workflows": True}


def _probes(document: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    containers = document["spec"]["template"]["spec"]["containers"]
    return [(name, container[name]) for container in containers
            for name in ("readinessProbe", "livenessProbe") if name in container]


async def test_the_server_manifest_probes_the_health_routes(
        make_client: Callable[..., Any]) -> None:
    yaml = YAML(typ="safe")
    documents = list(yaml.load_all((REPO / "deploy" / "kubernetes" / "30-server.yaml")
                                   .read_text()))
    server = next(d for d in documents if d and d["kind"] == "Deployment")
    probes = dict(_probes(server))
    config_map = yaml.load((REPO / "deploy" / "kubernetes" / "10-config.yaml").read_text())
    allowed = tomllib.loads(config_map["data"]["baseshift.toml"])["baseshift"]["allowed_hosts"]
    assert probes["readinessProbe"]["httpGet"]["path"] == "/health/ready"
    assert probes["livenessProbe"]["httpGet"]["path"] == "/health/live"
    async with make_client(role=None, allowed_hosts=tuple(allowed)) as (bs, client):
        paths = {r.path for r in client._transport.app.router.routes  # type: ignore[attr-defined]
                 if isinstance(r, Route)}
        for _, probe in probes.items():
            get = probe["httpGet"]
            assert get["path"] in paths
            headers = {h["name"]: h["value"] for h in get.get("httpHeaders", [])}
            # the probe's Host is one the deployment's allow-list accepts
            response = await client.get(get["path"], headers=headers)
            assert response.status_code == 200, response.text
