"""Text that is not Unicode (a lone UTF-16 surrogate, `"\\ud800"` in JSON) is refused at every
boundary with a 422 (or a clear CLI error, or a failed attempt) naming the field, and every list
and page still answers when a database made by an older version holds some."""
from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import re
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from baseshift.core.errors import InputError
from baseshift.core.json_text import has_surrogate, surrogate_path
from tests.web.api_support import finished, job

HOOK_SECRET = "surrogate-hook-secret"
PROBLEM = "application/problem+json"
CRAFTED = ["\ud800", "a\udfffb", "\udc80", "\ud83d", "\ud83d\ude00", "\U0001f600", "plain"]
"""Lone surrogates high and low, a pair of them (still two lone code points in a str, not
valid UTF-8), then a real astral character and plain text, which are fine."""
TEXT = st.one_of(st.sampled_from(CRAFTED), st.text(max_size=12))
PLACEHOLDER = "PLACEHOLDER-TEXT"
PRINTED = r""" "printf '%s' '{\"v\": [1, \"\\ud800\"]}'" """.strip()
"""A DSL string: the command `printf '%s' '{"v": [1, "\\ud800"]}'`."""
TEMPLATE_INPUT = {"type": "object", "properties": {"name": {"type": "string"}}}
TEMPLATE_OUTPUT = {"type": "object", "properties": {"greeting": {"type": "string"}}}


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """`echo`: an input stored as given and a python step returning the JSON text of `escaped`
    decoded (so the step's output holds whatever that text escapes); `printed`: a shell step
    printing a JSON object with a `\\ud800` escape."""
    monkeypatch.setenv("SURROGATE_HOOK_SECRET", HOOK_SECRET)
    target = tmp_path / "surrogates"
    target.mkdir()
    (target / "echo.bsw").write_text(
        'workflow echo {\n  version "1.0.0"\n'
        '  input { name: string, escaped: string = "1", tags: list<string> = [] }\n'
        "  webhook secret SURROGATE_HOOK_SECRET\n"
        '  job back uses python { with { function: "json:loads", s: input.escaped } }\n'
        "}\n", encoding="utf-8")
    (target / "printed.bsw").write_text(
        'workflow printed {\n  version "1.0.0"\n'
        f"  job say uses shell {{ with {{ command: {PRINTED} }} }}\n"
        "}\n", encoding="utf-8")
    return target


def body_of(value: Any) -> bytes:
    """`value` as JSON bytes: `json.dumps` writes a surrogate as its escape, as a client would."""
    return json.dumps(value).encode()


async def post_json(client: httpx.AsyncClient, path: str, value: Any,
                    headers: dict[str, str] | None = None) -> httpx.Response:
    return await client.post(path, content=body_of(value),
                             headers={"Content-Type": "application/json", **(headers or {})})


def refused_if_not_unicode(response: httpx.Response, value: Any, name: str = "") -> bool:
    """Never a 500; a 422 problem naming the field when `value` holds a lone surrogate.
    Whether the boundary accepted it."""
    assert response.status_code < 500, response.text
    field = surrogate_path(json.loads(body_of(value)), name)  # as the server decodes it
    if field is None:
        return response.status_code < 300
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == PROBLEM
    problem = response.json()
    assert problem["field"] == field
    assert "not valid Unicode" in problem["detail"]
    return False


def signed(body: bytes) -> dict[str, str]:
    digest = hmac.new(HOOK_SECRET.encode(), body, hashlib.sha256).hexdigest()
    return {"X-BaseShift-Signature": f"sha256={digest}", "Content-Type": "application/json"}


READERS = ["/api/v1/workflows", "/ui/runs", "/api/v1/definitions", "/api/v1/templates",
           "/api/v1/audit-logs", "/ui/audit", "/api/v1/users", "/ui/templates",
           "/ui/admin/users", "/api/v1/compliance/report", "/ui/compliance",
           "/ui/compliance/report.html", "/ui/compliance/report.pdf"]


async def read_everything(client: httpx.AsyncClient, run_ids: list[str]) -> None:
    """Every list and page, and each run's pages: all answer 200."""
    paths = [*READERS]
    for run_id in run_ids:
        paths += [f"/api/v1/workflows/{run_id}", f"/api/v1/workflows/{run_id}?logs=true",
                  f"/api/v1/workflows/{run_id}/jobs", f"/api/v1/workflows/{run_id}/status",
                  f"/ui/runs/{run_id}"]
    for path in paths:
        response = await client.get(path)
        assert response.status_code == 200, (path, response.text[:300])


async def through_every_boundary(client: httpx.AsyncClient, texts: list[str],
                                 outputs: list[tuple[str, str]]) -> list[str]:
    """Send each text through the API, a webhook, a step's output, a template and a user;
    answer the runs that were started (and add to `outputs` each run whose step returns a
    text)."""
    run_ids: list[str] = []
    for text in texts:
        start = {"workflow": "echo", "inputs": {"name": text}}
        response = await post_json(client, "/api/v1/workflows", start)
        if refused_if_not_unicode(response, start):
            run_ids.append(response.json()["workflow_id"])
        keyed = {"workflow": "echo", "inputs": {"name": "n", text: "x"}}
        assert (await post_json(client, "/api/v1/workflows", keyed)).status_code < 500
        response = await post_json(client, "/api/v1/workflows", {
            "workflow": "echo", "inputs": {"name": "n", "escaped": json.dumps(text)}})
        assert response.status_code == 201, response.text  # the escape is plain ASCII text
        outputs.append((response.json()["workflow_id"], text))
        body = body_of({"name": text})
        response = await client.post("/api/v1/hooks/echo", content=body, headers=signed(body))
        if refused_if_not_unicode(response, {"name": text}):
            run_ids.append(response.json()["workflow_id"])
        raw = b'{"name": "' + text.encode("utf-8", "surrogatepass").replace(b"\\", b"") + b'"}'
        response = await client.post("/api/v1/hooks/echo", content=raw, headers=signed(raw))
        assert response.status_code < 500, response.text  # not UTF-8: 400, or a 422
        template = {"templateId": "surrogate.say", "bump": "patch", "description": text,
                    "steps": [{"name": "say", "type": "shell", "config": {"command": "true"}}],
                    "inputSchema": TEMPLATE_INPUT, "outputSchema": TEMPLATE_OUTPUT}
        refused_if_not_unicode(await post_json(client, "/api/v1/templates", template), template)
        user = {"name": text, "roles": ["viewer"]}
        refused_if_not_unicode(await post_json(client, "/api/v1/users", user), user)
    return run_ids


async def output_refused_if_not_unicode(client: httpx.AsyncClient, run_id: str,
                                        text: str) -> None:
    """The step returns `json.loads(json.dumps(text))`: `text`, a surrogate pair joined."""
    body = await finished(client, run_id)
    back = job(body, "back")
    returned = json.loads(json.dumps(text))
    if has_surrogate(returned):
        assert body["status"] == "FAILED"
        assert "output holds text that is not valid Unicode" in back["error"], back
    else:
        assert back["state"] == "SUCCEEDED", back
        assert back["output"] == returned


@settings(max_examples=12, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(texts=st.lists(TEXT, min_size=1, max_size=3))
def test_arbitrary_text_through_every_boundary_never_breaks_a_reader(
        make_client: Callable[..., Any], folder: Path, texts: list[str]) -> None:
    async def main() -> None:
        async with make_client(workflows=folder, store="sqlite") as (_, client):
            outputs: list[tuple[str, str]] = []
            run_ids = await through_every_boundary(client, texts, outputs)
            for run_id in run_ids:
                await finished(client, run_id)
            for run_id, text in outputs:
                await output_refused_if_not_unicode(client, run_id, text)
            await read_everything(client, [*run_ids, *(run_id for run_id, _ in outputs)])

    asyncio.run(main())


@pytest.mark.parametrize("text", CRAFTED)
async def test_a_step_output_holding_a_surrogate_fails_the_attempt_naming_it(
        make_client: Callable[..., Any], folder: Path, text: str) -> None:
    async with make_client(workflows=folder, store="sqlite") as (_, client):
        response = await post_json(client, "/api/v1/workflows", {
            "workflow": "echo", "inputs": {"name": "n", "escaped": json.dumps(text)}})
        assert response.status_code == 201, response.text
        run_id = response.json()["workflow_id"]
        await output_refused_if_not_unicode(client, run_id, text)
        await read_everything(client, [run_id])


async def test_printed_json_with_a_surrogate_escape_fails_the_attempt(
        make_client: Callable[..., Any], folder: Path) -> None:
    async with make_client(workflows=folder, store="sqlite") as (_, client):
        response = await post_json(client, "/api/v1/workflows", {"workflow": "printed"})
        assert response.status_code == 201, response.text
        run_id = response.json()["workflow_id"]
        body = await finished(client, run_id)
        assert body["status"] == "FAILED"
        error = job(body, "say")["error"]
        assert "output.v[1] holds text that is not valid Unicode" in error, error
        await read_everything(client, [run_id])


async def test_the_issue_example_is_a_422_and_the_runs_still_list(
        make_client: Callable[..., Any]) -> None:
    async with make_client(store="sqlite") as (_, client):
        raw = b'{"workflow": "hello", "inputs": {"name": "\\ud800"}}'
        response = await client.post("/api/v1/workflows", content=raw,
                                      headers={"Content-Type": "application/json"})
        assert response.status_code == 422, response.text
        problem = response.json()
        assert problem["field"] == "inputs.name"
        assert problem["code"] == "run.bad-input"
        listed = await client.get("/api/v1/workflows")
        assert listed.status_code == 200 and listed.json()["runs"] == []


async def test_every_way_into_the_service_refuses_it(make_client: Callable[..., Any],
                                                     folder: Path) -> None:
    """UI forms, the CLI and gRPC reach the same service: the check is there too."""
    async with make_client(workflows=folder) as (bs, _):
        with pytest.raises(InputError) as caught:
            await bs.runs.start("echo", {"name": "ok", "tags": '["a", "\\udfff"]'})
        assert caught.value.details["field"] == "tags[1]"
        with pytest.raises(InputError) as caught:
            await bs.runs.start("echo", {"name": "\ud800"})
        assert caught.value.details["field"] == "name"


def stored_with_surrogates(database: Path) -> int:
    """Put the `\\ud800` escape in place of PLACEHOLDER in every text column, as a version that
    did not refuse it stored it (JSON columns written with escapes); answer the cells changed."""
    changed = 0
    with sqlite3.connect(database) as db:
        tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        for table in tables:
            for column in [r[1] for r in db.execute(f'PRAGMA table_info("{table}")')]:
                changed += db.execute(
                    f'UPDATE "{table}" SET "{column}" = replace("{column}", ?, ?) '
                    f'WHERE typeof("{column}") = \'text\' AND instr("{column}", ?) > 0',
                    (PLACEHOLDER, "\\ud800", PLACEHOLDER)).rowcount
    return changed


async def test_runs_an_older_version_stored_with_surrogates_still_read(
        make_client: Callable[..., Any], folder: Path, tmp_path: Path) -> None:
    data = tmp_path / "old-data"
    async with make_client(workflows=folder, store="sqlite", data_dir=data) as (_, client):
        response = await post_json(client, "/api/v1/workflows", {
            "workflow": "echo", "inputs": {"name": PLACEHOLDER, "tags": [PLACEHOLDER],
                                           "escaped": json.dumps(PLACEHOLDER)}})
        assert response.status_code == 201, response.text
        run_id = response.json()["workflow_id"]
        assert (await finished(client, run_id))["status"] == "COMPLETED"
    databases = [p for p in data.rglob("*") if p.is_file() and p.read_bytes()[:15]
                 == b"SQLite format 3"]
    assert databases
    assert sum(stored_with_surrogates(db) for db in databases) >= 2
    async with make_client(workflows=folder, store="sqlite", data_dir=data) as (_, client):
        await read_everything(client, [run_id])
        body = (await client.get(f"/api/v1/workflows/{run_id}")).json()
        assert body["inputs"]["name"] == "\ufffd"
        assert job(body, "back")["output"] == "\ufffd"
        page = await client.get(f"/ui/runs/{run_id}")
        assert "\ufffd" in page.text


async def test_a_form_field_holding_a_json_escape_is_refused_on_the_page(
        make_client: Callable[..., Any], folder: Path) -> None:
    """A form cannot carry a surrogate itself (its UTF-8 is checked, `%ED%A0%80` reads as
    U+FFFD), but a list input's JSON text can escape one."""
    async with make_client(workflows=folder, store="sqlite") as (bs, client):
        answer = await client.post("/ui/workflows/echo/runs", data={
            "name": "ok", "tags": '["a", "\\ud800"]'})
        assert answer.status_code == 422, answer.text
        assert "input &#39;tags&#39;: tags[1] holds text that is not valid Unicode" in answer.text
        answer = await client.post("/ui/workflows/echo/runs", content=b"name=%ED%A0%80",
                                   headers={"content-type": "application/x-www-form-urlencoded"})
        assert answer.status_code == 303, answer.text
        answer = await client.post("/ui/workflows/echo/runs", content=b"name=\xed\xa0\x80",
                                   headers={"content-type": "application/x-www-form-urlencoded"})
        assert answer.status_code == 400, answer.text
        runs = await bs.store.list_runs()
        assert [r.inputs["name"] for r in runs] == ["\ufffd" * 3]
        await read_everything(client, [r.id for r in runs])


def test_the_cli_refuses_inputs_that_are_not_unicode(run_cli: Any, folder: Path,
                                                     tmp_path: Path) -> None:
    echo = str(folder / "echo.bsw")
    not_utf8 = run_cli("run", echo, "--input", "name=caf\udce9")  # b"caf\xe9" in argv
    assert not_utf8.exit_code == 2, not_utf8
    assert "error: name holds text that is not valid Unicode" in not_utf8.stderr
    escaped = run_cli("run", echo, "--input", "name=ok", "--input", 'tags=["\\ud800"]')
    assert escaped.exit_code == 2, escaped
    assert "error: input 'tags': tags[0] holds text that is not valid Unicode" in escaped.stderr
    inputs = tmp_path / "inputs.json"
    inputs.write_text('{"name": "ok", "tags": ["a", "\\udc80"]}', encoding="utf-8")
    from_file = run_cli("run", echo, "--input-file", str(inputs))
    assert from_file.exit_code == 2, from_file
    assert "error: tags[1] holds text that is not valid Unicode" in from_file.stderr
    fine = run_cli("run", echo, "--input", "name=caf\u00e9")
    assert fine.exit_code == 0, fine


def test_every_json_answer_goes_through_the_response_that_replaces_surrogates() -> None:
    """Starlette's own JSONResponse raises on a stored surrogate: routes use web/responses.py."""
    repo = Path(__file__).resolve().parents[2]
    direct = [str(path.relative_to(repo)) for folder in ("web", "plugins", "core")
              for path in (repo / folder).rglob("*.py")
              if re.search(r"from starlette\.responses import [^\n]*\bJSONResponse\b",
                           path.read_text(encoding="utf-8"))]
    assert direct == []


@pytest.mark.parametrize("path", [
    "/api/v1/workflows?workflow=%ED%A0%80", "/api/v1/workflows?state=%5Cud800",
    "/api/v1/workflows/%ED%A0%80", "/api/v1/workflows/%ED%A0%80/jobs",
    "/api/v1/audit-logs?actor=%ED%A0%80&action=%ED%B2%80", "/ui/audit?actor=%ED%A0%80",
    "/ui/runs?workflow=%ED%A0%80", "/ui/runs/%ED%A0%80", "/api/v1/definitions/%ED%A0%80",
    "/api/v1/templates/%ED%A0%80", "/graphql?query=%7BjobTemplates%7Bname%7D%7D"
    "&variables=%7B%22a%22%3A%22%5Cud800%22%7D",
])
async def test_query_and_path_text_never_carries_a_surrogate_to_a_500(
        make_client: Callable[..., Any], path: str) -> None:
    """Query strings and paths are read as UTF-8 with U+FFFD for what is not: the worst a
    client gets is a 4xx."""
    async with make_client(store="sqlite") as (_, client):
        response = await client.get(path)
        assert response.status_code < 500, response.text


@pytest.mark.parametrize(("method", "path", "body", "field"), [
    ("PUT", "/api/v1/roles/auditor", {"permissions": ["runs:read", "\ud800"]}, "permissions[1]"),
    ("POST", "/api/v1/auth/tokens", {"name": "ci\udfff", "roles": ["viewer"]}, "name"),
    ("PATCH", "/api/v1/users/admin", {"disabled": False, "note\udc80": 1}, '["note\\udc80"]'),
    ("POST", "/api/v1/definitions/validate", {"source": 'workflow w { description "\ud800" }'},
     "source"),
    ("POST", "/api/v1/users", {"name": "ann", "roles": [{"role": "viewer",
                                                          "scope": "pay\ud800*"}]},
     "roles[0].scope"),
])
async def test_every_json_body_refuses_it_before_the_route_reads_it(
        make_client: Callable[..., Any], method: str, path: str, body: Any,
        field: str) -> None:
    async with make_client(store="sqlite") as (_, client):
        response = await client.request(method, path, content=body_of(body),
                                        headers={"Content-Type": "application/json"})
        assert response.status_code == 422, response.text
        assert response.json()["field"] == field
        await read_everything(client, [])
