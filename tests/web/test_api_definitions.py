"""The definitions API: list and get loaded workflows (source, plan, DAG, inputs schema),
start a run of one, validate text, reload on change, and the OpenAPI document."""
from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from api_support import API, JSON, finished, get_json, install, problem, run_ids
from starlette.routing import Route

from baseshift.core.app.application import BaseShift
from baseshift.plugins.api import runs as api_runs
from baseshift.plugins.api import workflows as api_workflows

Served = tuple[BaseShift, httpx.AsyncClient]
D = f"{API}/definitions"

VALID = """workflow pasted {
  version "1.0.0"
  input { n: number = 1 }
  job a uses shell { with { command: "echo ${input.n}" } }
}
"""
INVALID = """workflow pasted {
  version "1.0.0"
  job a uses shel { with { command: "echo" } }
  job b uses shell {
    needs c
    with { command: "echo" }
  }
}
"""


@pytest.fixture
async def served(make_client: Callable[..., Any],
                 workflows_dir: Path) -> AsyncIterator[Served]:
    install(workflows_dir, "broken", "gated")
    async with make_client() as (bs, client):
        yield bs, client


def by_name(listing: list[JSON]) -> dict[str, JSON]:
    return {d["name"]: d for d in listing}


# ------------------------------------------------------------------ list and get


async def test_list_shows_every_workflow_file_with_its_inputs_schema(
        served: Served, workflows_dir: Path) -> None:
    _, client = served
    listing = await get_json(client, D)
    names = [d["name"] for d in listing]
    assert names == sorted(names)
    found = by_name(listing)
    assert {"hello", "gated", "broken_flow", "sum_of_squares"} <= set(found)
    assert found["hello"] == {
        "name": "hello", "version": "1.0.0", "description": "Greet someone, then shout it",
        "path": str(workflows_dir / "hello.bsw"), "ok": True, "errors": 0,
        "inputs": {"type": "object", "properties": {"name": {"type": "string",
                                                             "default": "world"}},
                   "required": [], "additionalProperties": False}}
    assert found["gated"]["inputs"]["required"] == ["flag"]
    assert found["sum_of_squares"]["inputs"]["properties"]["numbers"]["type"] == "array"


async def test_a_file_with_errors_is_listed_not_ok(served: Served, workflows_dir: Path) -> None:
    _, client = served
    broken = by_name(await get_json(client, D))["broken_flow"]
    assert (broken["ok"], broken["errors"], broken["inputs"], broken["path"]) == (
        False, 1, None, str(workflows_dir / "broken.bsw"))
    body = await get_json(client, f"{D}/broken_flow")
    assert body["plan"] is None and body["dag"] is None
    assert body["source"] == (workflows_dir / "broken.bsw").read_text()
    [diagnostic] = body["diagnostics"]
    assert diagnostic == {
        "path": str(workflows_dir / "broken.bsw"), "line": 8, "col": 11, "end_line": 8,
        "end_col": 15, "severity": "error", "code": "dsl.unknown-job",
        "message": "job 'ship' needs 'pack', which is not defined",
        "hint": "did you mean 'pick'?"}


async def test_get_a_workflow_with_source_plan_and_dag(served: Served,
                                                       workflows_dir: Path) -> None:
    _, client = served
    body = await get_json(client, f"{D}/hello")
    assert body["source"] == (workflows_dir / "hello.bsw").read_text()
    assert body["ok"] is True and body["diagnostics"] == []
    assert body["inputs"]["properties"] == {"name": {"type": "string", "default": "world"}}
    plan = body["plan"]
    assert (plan["workflow"], plan["version"]) == ("hello", "1.0.0")
    assert [j["name"] for j in plan["jobs"]] == ["greet", "shout"]
    assert body["dag"] == {
        "nodes": [{"id": "greet", "uses": "shell", "handler": False, "fanout": False,
                   "conditional": False},
                  {"id": "shout", "uses": "python", "handler": False, "fanout": False,
                   "conditional": False}],
        "edges": [{"from": "greet", "to": "shout", "optional": False}]}


async def test_the_dag_flags_handlers_fanouts_conditions_and_optional_needs(
        served: Served) -> None:
    _, client = served
    orders = (await get_json(client, f"{D}/order_fulfillment"))["dag"]
    nodes = {n["id"]: n for n in orders["nodes"]}
    assert nodes["page"]["handler"] and not nodes["ship"]["handler"]
    assert nodes["check_stock"]["fanout"] and nodes["charge"]["conditional"]
    assert nodes["validate_payment"]["uses"].startswith("payment.validate@")
    approval = (await get_json(client, f"{D}/approval"))["dag"]
    assert {(e["from"], e["to"], e["optional"]) for e in approval["edges"]} >= {
        ("auto_approve", "notify", True), ("classify", "auto_approve", False)}


async def test_an_unknown_definition_is_404(served: Served) -> None:
    _, client = served
    body = problem(await client.get(f"{D}/nope"), 404)
    assert "nope" in body["detail"] and "hello" in body["hint"]


# ------------------------------------------------------------------ start


async def test_start_a_run_of_a_definition(served: Served) -> None:
    _, client = served
    response = await client.post(f"{D}/hello/runs", json={"inputs": {"name": "bo"}})
    assert response.status_code == 201, response.text
    run_id = response.json()["workflow_id"]
    assert response.headers["location"] == f"{API}/workflows/{run_id}"
    body = await finished(client, run_id)
    assert (body["status"], body["outputs"]) == ("COMPLETED", {"message": "HELLO BO!"})


async def test_start_a_definition_without_a_body(served: Served) -> None:
    _, client = served
    response = await client.post(f"{D}/hello/runs")
    assert response.status_code == 201, response.text
    body = await finished(client, response.json()["workflow_id"])
    assert body["inputs"] == {"name": "world"}


@pytest.mark.parametrize(("name", "content", "status", "field"), [
    ("hello", b'{"inputs": ', 400, None),
    ("hello", b"[]", 422, "body"),
    ("hello", b'{"workflow": "hello"}', 422, "workflow"),
    ("hello", b'{"inputs": [1]}', 422, "inputs"),
    ("hello", b'{"inputs": {"name": ["x"]}}', 422, "name"),
    ("hello", b'{"inputs": {"extra": 1}}', 422, "extra"),
    ("gated", b'{"inputs": {}}', 422, "flag"),
    ("nope", b"{}", 404, None),
])
async def test_a_bad_definition_start_is_a_problem_and_creates_no_run(
        served: Served, name: str, content: bytes, status: int, field: str | None) -> None:
    _, client = served
    before = await run_ids(client)
    response = await client.post(f"{D}/{name}/runs", content=content,
                                 headers={"content-type": "application/json"})
    assert problem(response, status).get("field") == field
    assert await run_ids(client) == before


async def test_starting_a_workflow_with_errors_is_a_400_with_its_errors(
        served: Served, workflows_dir: Path) -> None:
    _, client = served
    response = await client.post(f"{D}/broken_flow/runs", json={})
    body = problem(response, 400)
    assert body["code"] == "dsl.invalid" and "broken.bsw" in body["detail"]
    assert [(e["path"], e["line"], e["col"], e["code"]) for e in body["errors"]] == [
        (str(workflows_dir / "broken.bsw"), 8, 11, "dsl.unknown-job")]
    assert await run_ids(client) == []


# ------------------------------------------------------------------ validate


async def test_validate_valid_text(served: Served) -> None:
    _, client = served
    response = await client.post(f"{D}/validate", json={"source": VALID})
    assert response.status_code == 200, response.text
    assert response.json() == {"valid": True, "workflow": "pasted", "diagnostics": []}


async def test_validate_reports_every_error_with_position_code_and_hint(
        served: Served) -> None:
    _, client = served
    response = await client.post(f"{D}/validate",
                                 json={"source": INVALID, "filename": "mine.bsw"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["valid"], body["workflow"]) == (False, None)
    found = {(d["path"], d["line"], d["col"], d["code"]): d for d in body["diagnostics"]}
    assert set(found) == {("mine.bsw", 3, 14, "dsl.unknown-executor"),
                          ("mine.bsw", 5, 11, "dsl.unknown-job")}
    assert found["mine.bsw", 3, 14, "dsl.unknown-executor"]["hint"] == "did you mean 'shell'?"
    assert all(d["severity"] == "error" and d["message"] for d in body["diagnostics"])


async def test_validate_a_syntax_error(served: Served) -> None:
    _, client = served
    body = (await client.post(f"{D}/validate",
                              json={"source": "workflow w {\n  job a uses\n}\n"})).json()
    assert body["valid"] is False
    [first, *_] = body["diagnostics"]
    assert first["line"] in (2, 3) and first["code"].startswith("dsl.")


async def test_validate_raw_text(served: Served) -> None:
    _, client = served
    for text, valid in ((VALID, True), (INVALID, False)):
        response = await client.post(f"{D}/validate", content=text.encode(),
                                     headers={"content-type": "text/plain; charset=utf-8"})
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["valid"] is valid
        assert all(d["path"] == "uploaded.bsw" for d in body["diagnostics"])


@pytest.mark.parametrize(("content", "content_type", "status", "field"), [
    (b"\xff\xfeworkflow", "text/plain", 400, None),
    (b"#" * (2 * 1024 * 1024 + 1), "text/plain", 400, None),
    (json.dumps({"source": "#" * (8 * 1024 * 1024)}).encode(), "application/json", 413,
     None),
    (b'{"source": ', "application/json", 400, None),
    (b"<source/>", "application/xml", 400, None),
    (b"{}", "application/json", 422, "source"),
    (b'{"source": 1}', "application/json", 422, "source"),
    (b'{"source": "", "filename": ""}', "application/json", 422, "filename"),
    (b'{"source": "", "filename": 3}', "application/json", 422, "filename"),
    (b'{"source": "", "name": "x"}', "application/json", 422, "name"),
    (b'"workflow"', "application/json", 422, "body"),
], ids=["not-utf8", "text-over-2MiB", "json-over-8MiB", "truncated", "xml", "no-source",
        "source-number", "empty-filename", "filename-number", "unknown-field", "not-object"])
async def test_bad_validate_requests(served: Served, content: bytes, content_type: str,
                                     status: int, field: str | None) -> None:
    _, client = served
    response = await client.post(f"{D}/validate", content=content,
                                 headers={"content-type": content_type})
    assert problem(response, status).get("field") == field


# ------------------------------------------------------------------ reload


async def test_the_catalog_reloads_changed_added_and_removed_files(
        served: Served, workflows_dir: Path) -> None:
    bs, client = served
    hello = workflows_dir / "hello.bsw"
    hello.write_text(hello.read_text().replace("Greet someone, then shout it",
                                               "Greet someone loudly, then shout it"))
    (workflows_dir / "pasted.bsw").write_text(VALID)
    (workflows_dir / "broken.bsw").unlink()
    assert await bs.catalog.refresh()
    found = by_name(await get_json(client, D))
    assert found["hello"]["description"] == "Greet someone loudly, then shout it"
    assert "loudly" in (await get_json(client, f"{D}/hello"))["source"]
    assert found["pasted"]["ok"] is True and "broken_flow" not in found
    response = await client.post(f"{D}/pasted/runs", json={"inputs": {"n": 7}})
    assert response.status_code == 201, response.text
    body = await finished(client, response.json()["workflow_id"])
    assert body["jobs"][0]["output"] == 7


async def test_a_file_broken_by_an_edit_stops_new_runs(served: Served,
                                                       workflows_dir: Path) -> None:
    bs, client = served
    (workflows_dir / "gated.bsw").write_text(INVALID.replace("pasted", "gated"))
    assert await bs.catalog.refresh()
    gated = by_name(await get_json(client, D))["gated"]
    assert (gated["ok"], gated["errors"]) == (False, 2)
    body = problem(await client.post(f"{API}/workflows",
                                     json={"workflow": "gated", "inputs": {"flag": "x"}}), 400)
    assert len(body["errors"]) == 2
    assert await run_ids(client) == []


# ------------------------------------------------------------------ OpenAPI


def plugin_routes() -> list[tuple[str, str]]:
    """(path, method) of every /api/v1 route of the runs and definitions plugins."""
    out: list[tuple[str, str]] = []
    for module in (api_runs, api_workflows):
        for route in module.register_routes():
            assert isinstance(route, Route)
            if route.path.startswith(API) and route.path != f"{API}/openapi.json":
                out.extend((route.path, m.lower()) for m in route.methods or () if m != "HEAD")
    return out


async def test_the_openapi_document_covers_every_api_route(served: Served) -> None:
    _, client = served
    document = await get_json(client, f"{API}/openapi.json")
    assert document["openapi"].startswith("3.")
    assert document["info"]["title"] and document["info"]["version"]
    routes = plugin_routes()
    assert len(routes) >= 17
    for path, method in routes:
        assert method in document["paths"].get(path, {}), f"{method.upper()} {path} missing"
        operation = document["paths"][path][method]
        assert operation["responses"], f"{method.upper()} {path} has no responses"
        assert operation.get("summary"), f"{method.upper()} {path} has no summary"
    start = document["paths"][f"{API}/workflows"]["post"]
    assert {"201", "400", "404", "422"} <= set(start["responses"])
    assert "requestBody" in start
    parameters = {p["name"] for p in document["paths"][f"{API}/workflows"]["get"]["parameters"]}
    assert {"workflow", "state", "since", "until", "limit", "cursor"} <= parameters
    run_params = document["paths"][f"{API}/workflows/{{run_id}}"]["get"]["parameters"]
    assert any(p["name"] == "run_id" and p["in"] == "path" and p["required"]
               for p in run_params)


async def test_the_openapi_document_is_valid(served: Served) -> None:
    from openapi_spec_validator import validate

    _, client = served
    validate(await get_json(client, f"{API}/openapi.json"))
