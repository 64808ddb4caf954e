"""The log store's API (`/api/v1/logs`, `logs:read`): search by query string and by the
seed's JSON request, pages, time ranges, export as NDJSON and CSV, follow over SSE, scoping
to the workflows the actor may read, attempts' lines captured (masked) and hostile input."""
from __future__ import annotations

import asyncio
import csv
import io
import json
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from api_support import finished, parse, start

from baseshift.core.errors import NotFound
from baseshift.core.tracecontext import run_trace_id
from baseshift.plugins.logs.export import safe_cell
from baseshift.plugins.logs.search import log_store
from tests.auth_support import bearer, token_for
from tests.web.logs_support import LOGS, a_line, captured, store_lines

DAY = 86400.0
T0 = 1694217600.0  # 2023-09-09T00:00:00Z, the seed's example day


async def seed(bs: Any) -> None:
    await store_lines(
        bs,
        a_line("nightly started", T0 + 60, workflow="123456", run_id="r1", level="INFO"),
        a_line("disk full on /var", T0 + 120, workflow_id="123456", run_id="r1",
               level="error", error="ENOSPC"),
        a_line("hello ok", T0 + 180, workflow_id="hello", run_id="r2"),
        a_line("server listening", T0 + 240, logger="baseshift.web"),
        a_line("next day", T0 + 2 * DAY, workflow_id="123456", level="error"))


@pytest.mark.parametrize("store", ["memory", "sqlite", "postgres"])
async def test_the_seed_request_answers_the_seed_shape(make_client: Callable[..., Any],
                                                       store: str, pg_url: str) -> None:
    url = pg_url if store == "postgres" else None
    async with make_client(store=store, database_url=url) as (bs, client):
        await seed(bs)
        answer = await client.post(f"{LOGS}/query", json={
            "query": "workflow_id:123456 AND level:error", "from": "2023-09-09T00:00:00Z",
            "to": "2023-09-10T23:59:59Z", "limit": 100, "sort": {"timestamp": "desc"}})
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["total"] == 1 and body["next_cursor"] is None
        (line,) = body["logs"]
        assert line["timestamp"] == "2023-09-09T00:02:00Z"
        assert (line["level"], line["message"], line["workflow_id"], line["error"]) == (
            "error", "disk full on /var", "123456", "ENOSPC")
        assert line["trace_id"] == run_trace_id("r1")
        everything = (await client.post(f"{LOGS}/query", json={})).json()
        assert everything["total"] >= 5  # and the server's own lines, captured meanwhile


async def test_query_string_search_sorts_pages_and_reads_epoch_times(
        make_client: Callable[..., Any]) -> None:
    async with make_client() as (bs, client):
        await seed(bs)
        params = {"q": "workflow_id:123456 OR workflow_id:hello", "from": str(T0),
                  "to": "2023-09-09T23:00:00+00:00", "sort": "asc", "limit": "2"}
        first = (await client.get(LOGS, params=params)).json()
        assert first["total"] == 3
        assert [x["message"] for x in first["logs"]] == ["nightly started", "disk full on /var"]
        rest = (await client.get(LOGS, params={**params, "cursor": first["next_cursor"]})
                ).json()
        assert [x["message"] for x in rest["logs"]] == ["hello ok"]
        assert rest["next_cursor"] is None
        body = (await client.post(f"{LOGS}/query", json={
            "query": "workflow_id:123456 OR workflow_id:hello", "from": T0,
            "to": T0 + DAY - 1, "limit": 2, "sort": {"timestamp": "asc"},
            "cursor": first["next_cursor"]})).json()
        assert [x["message"] for x in body["logs"]] == ["hello ok"]


@pytest.mark.parametrize(("send", "field"), [
    ({"limit": 1001}, "limit"), ({"limit": 0}, "limit"), ({"limit": "ten"}, "limit"),
    ({"sort": {"timestamp": "sideways"}}, "sort"), ({"sort": {"level": "asc"}}, "sort"),
    ({"from": "yesterday"}, "from"), ({"to": True}, "to"), ({"cursor": "1; DROP"}, "cursor"),
    ({"query": 7}, "query"), ({"surprise": 1}, "surprise")])
async def test_a_wrong_request_is_a_problem_naming_the_field(
        make_client: Callable[..., Any], send: dict[str, Any], field: str) -> None:
    async with make_client() as (bs, client):
        answer = await client.post(f"{LOGS}/query", json=send)
        assert answer.status_code in (400, 422), answer.text
        assert answer.headers["content-type"] == "application/problem+json"
        assert field in answer.json()["detail"]


async def test_a_query_that_does_not_parse_answers_its_diagnostics_with_line_and_column(
        make_client: Callable[..., Any]) -> None:
    async with make_client() as (bs, client):
        for answer in (await client.post(f"{LOGS}/query", json={"query": "nosuch:x"}),
                       await client.get(LOGS, params={"q": "nosuch:x"})):
            assert answer.status_code == 400, answer.text
            problem = answer.json()
            assert answer.headers["content-type"] == "application/problem+json"
            assert problem["code"].startswith("logs.")
            assert problem["errors"] and problem["errors"][0]["line"] == 1
            assert problem["errors"][0]["col"] == 1


@pytest.mark.parametrize("store", ["memory", "sqlite"])
async def test_injection_attempts_are_only_text_to_match(make_client: Callable[..., Any],
                                                         store: str) -> None:
    async with make_client(store=store) as (bs, client):
        await store_lines(bs, a_line("100% done_ok", T0), a_line("1000 done", T0 + 1),
                          a_line("it's fine", T0 + 2))
        for query, wanted in [('"\' OR 1=1 --"', []), ('"%"', ["100% done_ok"]),
                              ("done_", ["100% done_ok"]), ('"it\'s"', ["it's fine"]),
                              ('"); DROP TABLE log_lines; --"', []),
                              ("job:[a-z]*", [])]:
            body = (await client.post(f"{LOGS}/query", json={"query": query,
                                                             "to": T0 + 10})).json()
            assert [x["message"] for x in body["logs"]] == wanted, query
        again = (await client.post(f"{LOGS}/query", json={"to": T0 + 10})).json()
        assert again["total"] == 3  # the table is still there, whole


async def test_export_streams_ndjson_and_csv_that_no_spreadsheet_evaluates(
        make_client: Callable[..., Any]) -> None:
    async with make_client() as (bs, client):
        await seed(bs)
        await store_lines(bs, a_line("=HYPERLINK(\"http://evil\")", T0 + 300),
                          a_line("-2+3", T0 + 301, error="@SUM(A1)"))
        window = {"from": T0, "to": T0 + DAY - 1, "sort": {"timestamp": "asc"}}
        nd = await client.post(f"{LOGS}/export", json=window)
        assert nd.status_code == 200
        assert nd.headers["content-type"].startswith("application/x-ndjson")
        assert nd.headers["content-disposition"].startswith('attachment; filename="baseshift-logs-')
        rows = [json.loads(x) for x in nd.text.splitlines()]
        assert [r["message"] for r in rows][:2] == ["nightly started", "disk full on /var"]
        assert len(rows) == 6
        cut = await client.post(f"{LOGS}/export", json={**window, "limit": 2})
        assert len(cut.text.splitlines()) == 2
        table = await client.post(f"{LOGS}/export", json={**window, "format": "csv"})
        assert table.headers["content-type"].startswith("text/csv")
        assert '.csv"' in table.headers["content-disposition"]
        read = list(csv.DictReader(io.StringIO(table.text)))
        assert [r["message"] for r in read][-2:] == ["'=HYPERLINK(\"http://evil\")", "'-2+3"]
        assert read[-1]["error"] == "'@SUM(A1)"
        assert read[0]["timestamp"] == "2023-09-09T00:01:00Z"
        bad = await client.post(f"{LOGS}/export", json={"format": "xlsx"})
        assert bad.status_code == 400 and "format" in bad.json()["detail"]


def test_cells_a_spreadsheet_would_evaluate_are_neutralised() -> None:
    for text in ("=1+1", "+1", "-1", "@A1", "\tx", "\rx"):
        assert safe_cell(text) == "'" + text
    assert safe_cell("plain = text") == "plain = text"


async def test_follow_streams_new_matching_lines_with_their_ids(
        make_client: Callable[..., Any]) -> None:
    async with make_client() as (bs, client):
        await store_lines(bs, a_line("before", T0, job="build"))
        start_id = (await client.get(LOGS, params={"q": "before"})).json()["logs"][0]["id"]

        async def follow() -> str:
            async with client.stream("GET", f"{LOGS}/follow",
                                     params={"q": "job:build", "limit": "2"},
                                     headers={"Last-Event-ID": str(start_id)}) as response:
                assert response.status_code == 200
                assert response.headers["content-type"].startswith("text/event-stream")
                return "".join([chunk async for chunk in response.aiter_text()])

        reader = asyncio.create_task(follow())
        await store_lines(bs, a_line("other job", T0 + 1, job="test"),
                          a_line("built", T0 + 2, job="build"),
                          a_line("built again", T0 + 3, job="build"))
        async with asyncio.timeout(30):
            text = await reader
        events = parse(text)
        assert [(e, d["message"]) for e, d in events] == [("log", "built"),
                                                          ("log", "built again")]
        assert f"id: {events[0][1]['id']}\n" in text and events[0][1]["id"] > start_id
        bad = await client.get(f"{LOGS}/follow", params={"q": "nosuch:x"})
        assert bad.status_code == 400 and bad.json()["errors"][0]["col"] == 1


async def test_lines_of_workflows_the_actor_may_not_read_never_leak(
        make_client: Callable[..., Any]) -> None:
    async with make_client() as (bs, client):
        await seed(bs)
        scoped = bearer(await token_for(bs, "operator", scope="hel*", user="scoped-op"))
        for answer in (await client.get(LOGS, headers=scoped),
                       await client.post(f"{LOGS}/query", json={"query": "ok OR full"},
                                         headers=scoped)):
            assert answer.status_code == 200, answer.text
            assert {x["workflow_id"] for x in answer.json()["logs"]} == {"hello"}
        exported = await client.post(f"{LOGS}/export", json={}, headers=scoped)
        assert {json.loads(x)["workflow_id"] for x in exported.text.splitlines()} == {"hello"}
        page = await client.get("/ui/logs", headers=scoped)
        assert "hello ok" in page.text and "disk full" not in page.text
        assert 'href="/ui/logs"' in page.text  # the menu links its page for a scoped reader
        assert "server listening" not in page.text
        everywhere = bearer(await token_for(bs, "operator"))
        seen = (await client.get(LOGS, params={"q": "listening"}, headers=everywhere)).json()
        assert seen["total"] >= 1  # the server's own lines need logs:read on every workflow
        viewer = bearer(await token_for(bs, "viewer"))
        refused = await client.get(LOGS, headers=viewer)
        assert refused.status_code == 403
        assert 'href="/ui/logs"' not in (await client.get("/", headers=viewer)).text


def test_a_store_without_log_lines_is_a_clear_problem() -> None:
    bare = SimpleNamespace(name="bare")
    request: Any = SimpleNamespace(app=SimpleNamespace(state=SimpleNamespace(
        baseshift=SimpleNamespace(store=bare))))
    with pytest.raises(NotFound, match="'bare' keeps no log lines"):
        log_store(request)


FAILING = '''workflow leaky_logs {
  version "1.0.0"
  job talk uses shell {
    with { command: "echo hello from talk; echo token=${secret.LOGS_TOKEN}; echo bye" }
  }
  job fall uses shell {
    needs talk
    with { command: "echo falling; echo ${secret.LOGS_TOKEN} >&2; exit 3" }
  }
}
'''
SECRET = "s3cr3t-logs-4711"


async def test_without_tracing_attempt_lines_name_no_trace(
        make_client: Callable[..., Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A trace id derived from the run would name a trace no viewer has: none is given."""
    monkeypatch.setenv("BASESHIFT_SECRET_LOGS_TOKEN", SECRET)
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "leaky_logs.bsw").write_text(FAILING)
    async with make_client(workflows=flows) as (bs, client):
        run_id = await start(client, "leaky_logs")
        assert (await finished(client, run_id))["status"] == "FAILED"
        await captured(bs)
        by_run = (await client.get(LOGS, params={"q": f"run_id:{run_id}"})).json()["logs"]
    assert by_run and all(x["trace_id"] is None for x in by_run), by_run


@pytest.mark.parametrize("store", ["memory", "sqlite", "postgres"])
async def test_attempt_lines_are_stored_masked_and_found_by_run_and_trace(
        make_client: Callable[..., Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        store: str, pg_url: str) -> None:
    monkeypatch.setenv("BASESHIFT_SECRET_LOGS_TOKEN", SECRET)
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "leaky_logs.bsw").write_text(FAILING)
    url = pg_url if store == "postgres" else None
    async with make_client(workflows=flows, store=store, database_url=url,
                           extra={"tracing": {"exporter": "memory"}}) as (bs, client):
        run_id = await start(client, "leaky_logs")
        assert (await finished(client, run_id))["status"] == "FAILED"
        await captured(bs)
        by_run = (await client.post(f"{LOGS}/query", json={
            "query": f"run_id:{run_id} AND source:attempt", "sort": {"timestamp": "asc"}})
                  ).json()["logs"]
        talk = [x["message"] for x in by_run if x["job"] == "talk"]
        assert talk == ["hello from talk", "token=***", "bye"]
        # the attempt a number, as in a JSON log line
        assert all(x["workflow_id"] == "leaky_logs" and x["attempt"] == 1 for x in by_run)
        failure = [x for x in by_run if x["level"] == "error"]
        assert len(failure) == 1 and failure[0]["job"] == "fall" and failure[0]["error"]
        by_trace = (await client.get(LOGS, params={"q": f"trace_id:{run_trace_id(run_id)}",
                                                   "limit": "1000"})).json()
        assert {x["id"] for x in by_run} <= {x["id"] for x in by_trace["logs"]}
        everything = await client.post(f"{LOGS}/export", json={})
        assert SECRET not in everything.text and "token=***" in everything.text


@pytest.mark.parametrize("store", ["memory", "sqlite"])
async def test_the_log_lines_policy_prunes_old_lines_through_the_retention_api(
        make_client: Callable[..., Any], store: str) -> None:
    async with make_client(store=store, extra={"retention": {"log_lines": 30}}) as (bs, client):
        await store_lines(bs, a_line("from 2023", T0), a_line("from 2023 too", T0 + 1))
        looked = (await client.post("/api/v1/data-retention/apply-policy",
                                    json={"dry_run": True})).json()
        assert looked["removed"] == {"log_lines": 2}
        assert looked["policies"] == {"log_lines": 30}
        done = (await client.post("/api/v1/data-retention/apply-policy",
                                  json={"dry_run": False})).json()
        assert done["removed"] == {"log_lines": 2}
        left = (await client.post(f"{LOGS}/query", json={"query": "2023"})).json()
        assert left["total"] == 0
