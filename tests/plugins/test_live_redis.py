"""Live status in Redis (`live = "redis"`): the seed's keys and channels for real runs, and
two applications ("servers") sharing Redis and a store, where the runs one executes reach
the other's live hub and SSE streams.

Uses the real Redis on 127.0.0.1:6379 under a key prefix of each test's own, removed
afterwards."""
from __future__ import annotations

import asyncio
import json
import logging
import re
import shutil
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis

from baseshift.core.app.application import BaseShift
from baseshift.core.errors import ConfigError
from baseshift.core.events import Event, JobStateChanged, RunStateChanged
from baseshift.core.hub import Subscription
from baseshift.core.plugins import DEFAULT_PLUGINS
from baseshift.core.report import ordered_jobs
from baseshift.core.settings import Settings
from baseshift.plugins.redis.connect import ChannelListener
from baseshift.plugins.redis.live import STASH_KEY, RedisLive, decode_events
from baseshift.web.app import create_app
from tests.auth_support import bearer, token_for
from tests.plugins.conftest import REDIS_URL

REPO = Path(__file__).resolve().parents[2]
WORKFLOWS = (REPO / "workflows" / "hello.bsw", REPO / "workflows" / "fanout.bsw",
             REPO / "workflows" / "shop.py", REPO / "tests" / "web" / "workflows" / "approval.bsw")
BUILTINS = tuple(dict.fromkeys((*DEFAULT_PLUGINS, "live_redis")))
"""The builtins with this plugin (once, whether or not it is a default already)."""
TTL = 3600
API = "/api/v1"
APPROVED = {"approved": True, "by": "ada"}

Change = tuple[str, str | None, str]


@pytest.fixture
async def raw() -> AsyncIterator[aioredis.Redis]:
    client = aioredis.from_url(REDIS_URL, decode_responses=True)
    yield client
    await client.aclose()


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """The workflows of these tests, in a folder the servers share."""
    target = tmp_path / "workflows"
    target.mkdir()
    for path in WORKFLOWS:
        shutil.copy(path, target / path.name)
    return target


@pytest.fixture
def make_settings(tmp_path: Path, folder: Path, prefix: str) -> Callable[..., Settings]:
    """Settings of one server: SQLite in a data dir every server of the test shares (so
    each can read the others' runs), Redis live status under the test's prefix."""

    def factory(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "load_entrypoints": False, "store": "sqlite", "templates": "memory",
            "data_dir": tmp_path / "data", "workflows_dir": folder, "live": "redis",
            "redis_url": REDIS_URL, "extra": {"live_redis": {"prefix": prefix, "ttl": TTL}}}
        return Settings(**{**values, **overrides})

    return factory


@pytest.fixture
def make_server(make_settings: Callable[..., Settings]) -> Callable[..., Any]:
    @asynccontextmanager
    async def factory(**overrides: Any) -> AsyncIterator[BaseShift]:
        async with BaseShift(make_settings(**overrides), builtins=BUILTINS) as bs:
            yield bs

    return factory


def live_of(bs: BaseShift) -> RedisLive:
    live = bs.stash[STASH_KEY]
    assert isinstance(live, RedisLive)
    return live


async def run_to_end(bs: BaseShift, name: str) -> str:
    plan = bs.load_workflow(bs.settings.workflows_dir / name)
    run_id = await bs.engine.submit(plan, {})
    await bs.engine.wait(run_id)
    await live_of(bs).flush()
    return run_id


async def messages_until_finished(pubsub: Any, events_channel: str) -> list[tuple[str, str]]:
    """(channel, data) of every message until the event that finishes a run."""
    seen: list[tuple[str, str]] = []
    async with asyncio.timeout(30):
        while True:
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
            if message is None:
                continue
            seen.append((message["channel"], message["data"]))
            if message["channel"] == events_channel:
                _, events = decode_events(message["data"])
                if any(isinstance(e, RunStateChanged) and e.new.finished for e in events):
                    return seen


def changes(events: list[Event]) -> list[Change]:
    return [(type(e).__name__, getattr(e, "job", None), e.new.value) for e in events
            if isinstance(e, JobStateChanged | RunStateChanged)]


async def collect_until_finished(sub: Subscription, count: int = 1) -> list[Event]:
    """A hub subscription's events until `count` runs have finished."""
    seen: list[Event] = []
    async with asyncio.timeout(60):
        async for event in sub:
            assert isinstance(event, Event), event  # never Lagged here
            seen.append(event)
            if isinstance(event, RunStateChanged) and event.new.finished:
                count -= 1
                if count == 0:
                    return seen
    raise AssertionError("the subscription ended")


# ------------------------------------------------------------------ keys and channels


async def test_a_run_writes_the_seed_keys_and_publishes_each_status(
        make_server: Callable[..., Any], raw: aioredis.Redis, prefix: str) -> None:
    pubsub = raw.pubsub()
    await pubsub.psubscribe(f"{prefix}job_status_channel:*")
    await pubsub.subscribe(f"{prefix}baseshift:events")
    async with make_server() as bs, bs.live.subscribe() as local:
        run_id = await run_to_end(bs, "fanout.bsw")
        snapshot = await bs.store.load_run(run_id, attempts=False)
        origin = live_of(bs).origin
        emitted = await collect_until_finished(local)
    assert snapshot is not None
    keys = [key for key, _ in ordered_jobs(snapshot)]
    assert keys[:3] == ["square", "square[0]", "square[1]"] and keys[-1] == "total"

    assert await raw.get(f"{prefix}workflow:{run_id}:state") == "COMPLETED"
    assert await raw.lrange(f"{prefix}workflow:{run_id}:jobs", 0, -1) == keys
    assert not await raw.exists(f"{prefix}workflow:{run_id}:currentJob")
    for key in keys:
        job = await raw.hgetall(f"{prefix}job:{run_id}/{key}")
        assert {k: job[k] for k in ("status", "run", "job")} \
            == {"status": "SUCCEEDED", "run": run_id, "job": key}
        assert job["error"] == "" and float(job["updated"]) > 0
    assert (await raw.hgetall(f"{prefix}job:{run_id}/total"))["attempt"] == "1"
    for name in (f"workflow:{run_id}:state", f"workflow:{run_id}:jobs", f"job:{run_id}/total",
                 f"job:{run_id}/square[7]"):
        assert 0 < await raw.ttl(prefix + name) <= TTL, name

    messages = await messages_until_finished(pubsub, f"{prefix}baseshift:events")
    await pubsub.aclose()
    statuses = [data for channel, data in messages
                if channel == f"{prefix}job_status_channel:{run_id}/total"]
    assert statuses == ["READY", "RUNNING", "SUCCEEDED"]
    batches = [decode_events(data) for channel, data in messages
               if channel == f"{prefix}baseshift:events"]
    assert {o for o, _ in batches} == {origin}
    events = [e for _, batch in batches for e in batch]
    run_changes = [c for c in changes(events) if c[0] == "RunStateChanged"]
    assert run_changes == [("RunStateChanged", None, "RUNNING"),
                           ("RunStateChanged", None, "COMPLETED")]
    assert "JobsAdded" in [type(e).__name__ for e in events]
    assert events == emitted  # every event the engine emitted, in order, equal once decoded


async def test_keys_while_a_job_waits_then_after_the_run(
        make_server: Callable[..., Any], raw: aioredis.Redis, prefix: str) -> None:
    async with make_server() as bs:
        plan = bs.load_workflow(bs.settings.workflows_dir / "approval.bsw")
        run_id = await bs.engine.submit(plan, {})
        review = f"{prefix}job:{run_id}/review"
        async with asyncio.timeout(30):
            while await raw.hget(review, "status") != "RUNNING":
                await asyncio.sleep(0.02)
        await live_of(bs).flush()
        assert await raw.get(f"{prefix}workflow:{run_id}:state") == "RUNNING"
        assert await raw.get(f"{prefix}workflow:{run_id}:currentJob") == "review"
        assert await raw.hget(f"{prefix}job:{run_id}/publish", "status") == "PENDING"
        assert await raw.ttl(f"{prefix}workflow:{run_id}:state") == -1  # no expiry yet
        await bs.runs.complete_job(run_id, "review", APPROVED)
        await bs.engine.wait(run_id)
        await live_of(bs).flush()
    assert await raw.get(f"{prefix}workflow:{run_id}:state") == "COMPLETED"
    assert not await raw.exists(f"{prefix}workflow:{run_id}:currentJob")
    assert await raw.hget(f"{prefix}job:{run_id}/publish", "status") == "SUCCEEDED"
    assert 0 < await raw.ttl(f"{prefix}job:{run_id}/publish") <= TTL


# ------------------------------------------------------------------ configuration


def test_live_redis_needs_a_redis_url(make_settings: Callable[..., Settings]) -> None:
    with pytest.raises(ConfigError, match="'live' is 'redis' but 'redis_url' is not set"):
        BaseShift(make_settings(redis_url=None), builtins=BUILTINS)
    with pytest.raises(ConfigError, match="'redis_url' has value 'localhost:6379'"):
        BaseShift(make_settings(redis_url="localhost:6379"), builtins=BUILTINS)


async def test_unreachable_redis_is_one_config_error_at_start(
        make_server: Callable[..., Any]) -> None:
    with pytest.raises(ConfigError, match="cannot reach Redis at redis://127.0.0.1:1/0"):
        async with make_server(redis_url="redis://127.0.0.1:1/0"):
            pass


async def test_other_live_settings_write_nothing(make_server: Callable[..., Any],
                                                 raw: aioredis.Redis, prefix: str) -> None:
    async with make_server(live="local") as bs:
        assert STASH_KEY not in bs.stash
        plan = bs.load_workflow(bs.settings.workflows_dir / "hello.bsw")
        await bs.engine.wait(await bs.engine.submit(plan, {}))
    assert [k async for k in raw.scan_iter(match=f"{prefix}*")] == []


# ------------------------------------------------------------------ several servers


async def test_each_server_sees_every_run_once(make_server: Callable[..., Any]) -> None:
    """Server A and B share Redis and the store: B's hub gets the run A executes (and A's
    hub B's run), each event once, in the order the executing server emitted them."""
    async with make_server() as a, make_server() as b, \
            a.live.subscribe() as seen_by_a, b.live.subscribe() as seen_by_b:
        first = await run_to_end(a, "hello.bsw")
        on_a, on_b = await asyncio.gather(collect_until_finished(seen_by_a),
                                          collect_until_finished(seen_by_b))
        second = await run_to_end(b, "hello.bsw")
        more = await asyncio.gather(collect_until_finished(seen_by_a),
                                    collect_until_finished(seen_by_b))
        on_a, on_b = on_a + more[0], on_b + more[1]
    assert on_a == on_b
    assert [e.run_id for e in on_a if isinstance(e, RunStateChanged)] \
        == [first, first, second, second]
    expected = [("RunStateChanged", None, "RUNNING"), *[
        ("JobStateChanged", job, state) for job in ("greet", "shout")
        for state in ("READY", "RUNNING", "SUCCEEDED")], ("RunStateChanged", None, "COMPLETED")]
    assert sorted(changes([e for e in on_a if e.run_id == first])) == sorted(expected)
    assert changes([e for e in on_a if e.run_id == first]) \
        == changes([e for e in on_a if e.run_id == second])


async def test_bad_bridge_messages_are_logged_and_skipped(
        make_server: Callable[..., Any], raw: aioredis.Redis, prefix: str,
        caplog: pytest.LogCaptureFixture) -> None:
    async with make_server() as a, make_server() as b, b.live.subscribe() as seen_by_b:
        for junk in ("not json", json.dumps({"origin": "x", "events": [{"type": "Future"}]})):
            await raw.publish(f"{prefix}baseshift:events", junk)
        run_id = await run_to_end(a, "hello.bsw")
        on_b = await collect_until_finished(seen_by_b)
    assert {e.run_id for e in on_b} == {run_id}
    assert "cannot handle message b'not json'" in caplog.text
    assert "unknown event type 'Future'" in caplog.text


async def test_the_bridge_reconnects_after_redis_drops_it(make_server: Callable[..., Any],
                                                         raw: aioredis.Redis,
                                                         prefix: str) -> None:
    channel = f"{prefix}baseshift:events"
    async with make_server() as a, make_server() as b, b.live.subscribe() as seen_by_b:
        name = f"baseshift-live-{live_of(b).origin}"
        killed = [c["id"] for c in await raw.client_list() if c.get("name") == name]
        assert killed
        for client_id in killed:
            await raw.client_kill_filter(_id=client_id)
        await until_subscribers(raw, channel, 2)
        run_id = await run_to_end(a, "hello.bsw")
        on_b = await collect_until_finished(seen_by_b)
    assert {e.run_id for e in on_b} == {run_id}
    assert changes(on_b)[-1] == ("RunStateChanged", None, "COMPLETED")


class _DroppedAtOnce:
    """A subscription that Redis confirmed and then dropped at once."""

    async def listen(self) -> AsyncIterator[dict[str, Any]]:
        raise ConnectionError("Connection closed by server.")
        yield {}  # an async generator, as PubSub.listen is

    async def aclose(self) -> None:
        pass


async def test_a_redis_that_accepts_then_drops_is_retried_at_a_growing_pace(
        raw: aioredis.Redis, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    """Subscribing works, the subscription is lost at once: each retry waits twice as long
    (the wait restarts only after a subscription stayed up), not 0.1 s with a warning each."""
    listener = ChannelListener(raw, "dropped", lambda _: None, logging.getLogger("test.drop"))

    async def subscribe() -> _DroppedAtOnce:
        return _DroppedAtOnce()
    monkeypatch.setattr(listener, "_subscribe", subscribe)
    await listener.start()
    try:
        async with asyncio.timeout(10):
            while len(waits := re.findall(r"reconnecting in ([0-9.]+)s", caplog.text)) < 5:
                await asyncio.sleep(0.05)
    finally:
        await listener.stop()
    assert waits[:5] == ["0.1", "0.2", "0.4", "0.8", "1.6"]


async def test_a_redis_outage_delays_live_status_and_breaks_nothing(
        make_server: Callable[..., Any], raw: aioredis.Redis, prefix: str,
        caplog: pytest.LogCaptureFixture) -> None:
    """B reaches Redis through a proxy that goes away for a while: B's runs go on, their
    events wait and reach A once Redis is back, and B hears A's runs again."""
    channel = f"{prefix}baseshift:events"
    caplog.set_level(logging.INFO, "baseshift.live_redis")
    async with Proxy() as proxy, make_server() as a, \
            make_server(redis_url=proxy.url) as b, a.live.subscribe() as seen_by_a, \
            b.live.subscribe() as seen_by_b:
        await proxy.cut()
        await until_subscribers(raw, channel, 1)
        plan = b.load_workflow(b.settings.workflows_dir / "hello.bsw")
        during = await b.engine.submit(plan, {})
        assert (await b.engine.wait(during)).state.value == "COMPLETED"
        async with asyncio.timeout(30):  # both the writer and the listener noticed
            while "cannot write live status" not in caplog.text \
                    or "reconnecting in" not in caplog.text:
                await asyncio.sleep(0.02)
        proxy.restore()
        assert changes(await collect_until_finished(seen_by_a))[-1] \
            == ("RunStateChanged", None, "COMPLETED")
        await until_subscribers(raw, channel, 2)
        after = await run_to_end(a, "hello.bsw")
        on_b = await collect_until_finished(seen_by_b, 2)
    assert [e.run_id for e in on_b if isinstance(e, RunStateChanged)] \
        == [during, during, after, after]
    assert "listening to Redis channel" in caplog.text


async def until_subscribers(raw: aioredis.Redis, channel: str, count: int) -> None:
    async with asyncio.timeout(30):
        while dict(await raw.pubsub_numsub(channel)).get(channel) != count:
            await asyncio.sleep(0.02)


class Proxy:
    """A TCP proxy in front of the real Redis that can go away (`cut`: connections dropped,
    new ones refused) and come back (`restore`), like a Redis restart or a network cut."""

    def __init__(self) -> None:
        self.port = 0
        self._server: asyncio.Server | None = None
        self._open: set[asyncio.StreamWriter] = set()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    async def __aenter__(self) -> Proxy:
        await self._listen()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.cut()

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(self._pipe, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    def restore(self) -> None:
        self._restoring = asyncio.ensure_future(self._listen())

    async def cut(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for writer in list(self._open):
            writer.transport.abort()
        self._open.clear()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", 6379)
        self._open.update((writer, up_writer))
        await asyncio.gather(_copy(reader, up_writer), _copy(up_reader, writer),
                             return_exceptions=True)


async def _copy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    finally:
        writer.transport.abort()


async def test_sse_of_server_b_follows_a_run_server_a_executes(
        make_settings: Callable[..., Settings]) -> None:
    """End to end over HTTP: started and completed through A's API, streamed by B's
    /workflows/{id}/events from its snapshot to `end`."""
    async with serve(make_settings()) as (a, api_a), serve(make_settings()) as (b, api_b):
        started = await api_a.post(f"{API}/workflows", json={"workflow": "approval_gate"})
        assert started.status_code == 201, started.text
        run_id = started.json()["workflow_id"]
        async with asyncio.timeout(30):
            while ((await api_b.get(f"{API}/workflows/{run_id}/status")).json()
                   .get("current_job") or {}).get("id") != "review":
                await asyncio.sleep(0.02)
        listening = b.live.subscribers
        reader = asyncio.create_task(read_stream(api_b, run_id))
        async with asyncio.timeout(30):
            while b.live.subscribers == listening:
                await asyncio.sleep(0.01)
        done = await api_a.post(f"{API}/workflows/{run_id}/jobs/review/complete",
                                json={"output": APPROVED})
        assert done.status_code == 202, done.text
        async with asyncio.timeout(60):
            messages = await reader
    assert messages[0][0] == "snapshot"
    assert messages[0][1]["current_job"]["id"] == "review"
    seen = [(data["type"], data.get("job"), data["new"]) for event, data in messages
            if event in ("JobStateChanged", "RunStateChanged")]
    assert seen.index(("JobStateChanged", "review", "SUCCEEDED")) \
        < seen.index(("JobStateChanged", "publish", "SUCCEEDED")) \
        < seen.index(("RunStateChanged", None, "COMPLETED"))
    assert messages[-1] == ("end", {"workflow_id": run_id})


@asynccontextmanager
async def serve(settings: Settings) -> AsyncIterator[tuple[BaseShift, httpx.AsyncClient]]:
    """One server: its ASGI app with the lifespan running, and a client calling it."""
    bs = BaseShift(settings, builtins=BUILTINS)
    app = create_app(baseshift=bs)
    async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://localhost") as client:
        client.headers.update(bearer(await token_for(bs, "operator")))
        yield bs, client


async def read_stream(client: httpx.AsyncClient, run_id: str) -> list[tuple[str, Any]]:
    """The SSE messages of a run as (event, JSON data), keep-alive comments dropped."""
    async with client.stream("GET", f"{API}/workflows/{run_id}/events") as response:
        assert response.status_code == 200
        text = "".join([chunk async for chunk in response.aiter_text()])
    messages = []
    for block in text.split("\n\n"):
        lines = [line for line in block.splitlines() if line and not line.startswith(":")]
        if lines:
            event = next(line[7:] for line in lines if line.startswith("event: "))
            data = "\n".join(line[6:] for line in lines if line.startswith("data: "))
            messages.append((event, json.loads(data)))
    return messages


async def test_a_batch_redis_refuses_is_dropped_and_later_ones_are_written(
        make_server: Callable[..., Any], raw: aioredis.Redis, prefix: str,
        caplog: pytest.LogCaptureFixture) -> None:
    """A key of the wrong type makes Redis refuse a batch for good (not an outage): the
    writer logs and drops it instead of retrying it forever, and goes on with the next."""
    async with make_server() as bs:
        plan = bs.load_workflow(bs.settings.workflows_dir / "approval.bsw")
        blocked = await bs.engine.submit(plan, {})
        async with asyncio.timeout(30):
            while await raw.hget(f"{prefix}job:{blocked}/review", "status") != "RUNNING":
                await asyncio.sleep(0.02)
        await raw.set(f"{prefix}job:{blocked}/publish", "not a hash")
        await bs.runs.complete_job(blocked, "review", APPROVED)
        await bs.engine.wait(blocked)
        async with asyncio.timeout(30):
            await live_of(bs).flush()
        after = await run_to_end(bs, "hello.bsw")
    assert "WRONGTYPE" in caplog.text and "dropped" in caplog.text
    assert "retrying" not in caplog.text
    assert await raw.get(f"{prefix}workflow:{after}:state") == "COMPLETED"
