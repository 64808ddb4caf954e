"""REST API of the job template store: publish, read, list, diff, delete, and every error."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

INPUT = {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"],
         "additionalProperties": False}
OUTPUT = {"type": "object", "properties": {"greeting": {"type": "string"}},
          "required": ["greeting"]}


def document(**changes: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "templateId": "hello.say", "version": "1.0.0", "description": "say hello",
        "steps": [{"name": "say", "type": "shell", "config": {
            "command": "echo '{\"greeting\": \"hi ${input.name}\"}'"}}],
        "inputSchema": INPUT, "outputSchema": OUTPUT}
    doc.update(changes)
    return {k: v for k, v in doc.items() if v is not None}


def stored(listing: dict[str, Any]) -> list[dict[str, Any]]:
    """The listed templates of the store (the example workflows folder defines others)."""
    return [t for t in listing["templates"] if t["source"] == "store"]


@pytest.mark.parametrize("store", ["memory", "sqlite"])
async def test_publish_get_list_and_delete(make_client: Any, store: str) -> None:
    async with make_client(templates=store) as (_, client):
        r = await client.post("/api/v1/templates", json=document())
        assert r.status_code == 201, r.text
        assert r.headers["location"].endswith("/api/v1/templates/hello.say/1.0.0")
        assert r.json()["version"] == "1.0.0" and r.json()["created_at"] > 0
        r = await client.post("/api/v1/templates", json=document(version=None, bump="minor"))
        assert r.status_code == 201 and r.json()["version"] == "1.1.0"

        r = await client.get("/api/v1/templates/hello.say")
        assert r.status_code == 200
        assert r.json()["latest"] == "1.1.0"
        assert [v["version"] for v in r.json()["versions"]] == ["1.0.0", "1.1.0"]
        r = await client.get("/api/v1/templates/hello.say/1.0.0")
        assert r.json()["steps"] == document()["steps"]
        assert r.json()["inputSchema"] == INPUT and r.json()["templateId"] == "hello.say"
        r = await client.get("/api/v1/templates/hello.say/%5E1.0")
        assert r.json()["version"] == "1.1.0"

        r = await client.get("/api/v1/templates", params={"type": "shell"})
        assert [t["version"] for t in stored(r.json())] == ["1.0.0", "1.1.0"]
        r = await client.get("/api/v1/templates", params={"type": "http"})
        assert r.json() == {"templates": []}

        r = await client.delete("/api/v1/templates/hello.say/1.1.0")
        assert r.status_code == 204
        r = await client.get("/api/v1/templates/hello.say")
        assert r.json()["latest"] == "1.0.0"


async def test_a_published_template_can_be_used_by_a_workflow(
        make_client: Any, workflows_dir: Path, tmp_path: Path) -> None:
    (workflows_dir / "greet.bsw").write_text(
        'workflow greet {\n  version "1.0.0"\n  job say uses hello.say@^1 {\n'
        '    with { name: "Ada" }\n  }\n  output { text: say.output.greeting }\n}\n')
    data = tmp_path / "shell-data"
    data.mkdir()  # shell jobs run in the data folder, which the memory store does not create
    async with make_client(data_dir=data) as (bs, client):
        assert not bs.catalog.get("greet").ok
        r = await client.post("/api/v1/templates", json=document())
        assert r.status_code == 201
        entry = bs.catalog.get("greet")
        assert entry.ok, entry.diagnostics
        run_id = await bs.runs.start("greet", {})
        await bs.engine.wait(run_id)
        snapshot = await bs.runs.snapshot(run_id)
        assert snapshot.run.outputs == {"text": "hi Ada"}
        assert snapshot.jobs["say"].template == "hello.say@1.0.0"


async def test_versions_are_immutable_409(make_client: Any) -> None:
    async with make_client() as (_, client):
        await client.post("/api/v1/templates", json=document())
        r = await client.post("/api/v1/templates", json=document(description="other"))
        assert r.status_code == 409
        assert r.headers["content-type"] == "application/problem+json"
        assert r.json()["code"] == "template.exists"


async def test_an_incompatible_minor_is_409_with_reasons(make_client: Any) -> None:
    async with make_client() as (_, client):
        await client.post("/api/v1/templates", json=document())
        narrower = {**INPUT, "properties": {"name": {"type": "string", "enum": ["Ada"]}}}
        r = await client.post("/api/v1/templates",
                              json=document(version="1.1.0", inputSchema=narrower))
        assert r.status_code == 409
        body = r.json()
        assert body["code"] == "template.incompatible"
        assert body["reasons"] == ["input 'name' is now limited to 'Ada'"]
        assert "bump major" in body["hint"]
        r = await client.post("/api/v1/templates", json=document(version=None, bump="major",
                                                                 inputSchema=narrower))
        assert r.status_code == 201 and r.json()["version"] == "2.0.0"


@pytest.mark.parametrize("store", ["memory", "sqlite"])
async def test_version_ranges_read_as_npm_reads_them(make_client: Any, store: str) -> None:
    async with make_client(templates=store) as (_, client):
        for version in ("1.2.0", "1.2.8", "1.3.0", "2.0.0-beta.1", "2.0.0"):
            r = await client.post("/api/v1/templates", json=document(version=version))
            assert r.status_code == 201, r.text

        async def listed(version: str) -> list[str]:
            r = await client.get("/api/v1/templates", params={"version": version})
            assert r.status_code == 200, r.text
            return [t["version"] for t in r.json()["templates"] if t["source"] == "store"]

        assert await listed(">1.2") == ["1.3.0", "2.0.0"]
        assert await listed("<=1.2.x") == ["1.2.0", "1.2.8"]
        assert await listed("1.2.0 - 1.2.8 || >= 2.0.0-beta") == [
            "1.2.0", "1.2.8", "2.0.0-beta.1", "2.0.0"]
        r = await client.get("/api/v1/templates/hello.say/v1.2.0")
        assert r.json()["version"] == "1.2.0"
        r = await client.get("/api/v1/templates/hello.say/1.x.3")
        assert r.status_code == 422 and r.json()["field"] == "$.version"
        assert "a number cannot follow a wildcard" in r.json()["detail"]
        assert r.json()["hint"].startswith("valid ranges look like ^1.2")


@pytest.mark.parametrize(("body", "field"), [
    (document(steps=[{"name": "x", "type": "nope"}]), "$.steps[0].type"),
    (document(version="one"), "$.version"),
    (document(version=None), "$.version"),
    (document(bump="huge"), "$.bump"),
    (document(bump="minor"), "$.version"),
    (document(inputSchema={"type": "object", "required": 3}), "$.inputSchema.required"),
    (document(steps=[{"name": "x", "type": "shell", "config": {"command": "${API_KEY}"}}]),
     "$.steps[0].config.command"),
    ([1, 2], None),
])
async def test_an_invalid_document_is_422_naming_the_field(make_client: Any, body: Any,
                                                           field: str | None) -> None:
    async with make_client() as (_, client):
        r = await client.post("/api/v1/templates", json=body)
        assert r.status_code == 422, r.text
        assert r.headers["content-type"] == "application/problem+json"
        if field is not None:
            assert r.json()["field"] == field
        assert stored((await client.get("/api/v1/templates")).json()) == []


@pytest.mark.parametrize(("content", "headers"), [
    (b"{not json", {"content-type": "application/json"}),
    (b"", {"content-type": "application/json"}),
    (b"name=x", {"content-type": "application/x-www-form-urlencoded"}),
])
async def test_a_malformed_body_is_400(make_client: Any, content: bytes,
                                       headers: dict[str, str]) -> None:
    async with make_client() as (_, client):
        r = await client.post("/api/v1/templates", content=content, headers=headers)
        assert r.status_code == 400, r.text


@pytest.mark.parametrize("path", [
    "/api/v1/templates/nobody", "/api/v1/templates/nobody/1.0.0",
    "/api/v1/templates/hello.say/9.0.0", "/api/v1/templates/hello.say/diff?from=1.0.0&to=9.9.9",
])
async def test_unknown_templates_are_404(make_client: Any, path: str) -> None:
    async with make_client() as (_, client):
        await client.post("/api/v1/templates", json=document())
        r = await client.get(path)
        assert r.status_code == 404 and r.json()["status"] == 404
        r = await client.delete("/api/v1/templates/nobody/1.0.0")
        assert r.status_code == 404


async def test_diff_shows_changes_and_compat_reasons(make_client: Any) -> None:
    async with make_client() as (_, client):
        await client.post("/api/v1/templates", json=document())
        changed_output = {"type": "object", "properties": {"greeting": {"type": "string"},
                                                           "loud": {"type": "boolean"}},
                          "required": ["greeting"]}
        await client.post("/api/v1/templates", json=document(version="1.1.0",
                                                             outputSchema=changed_output))
        wider_in = {**INPUT, "required": []}
        await client.post("/api/v1/templates", json=document(version="2.0.0",
                                                             inputSchema=wider_in, outputSchema={}))
        r = await client.get("/api/v1/templates/hello.say/diff",
                             params={"from": "1.0.0", "to": "1.1.0"})
        assert r.status_code == 200
        body = r.json()
        assert (body["compatible"], body["reasons"]) == (True, [])
        assert body["changes"] == [{"path": "outputSchema.properties.loud", "change": "added",
                                    "from": None, "to": {"type": "boolean"}}]
        r = await client.get("/api/v1/templates/hello.say/diff",
                             params={"from": "1.1.0", "to": "2.0.0"})
        assert r.json()["compatible"] is False
        assert "output 'greeting' was removed" in r.json()["reasons"]
        r = await client.get("/api/v1/templates/hello.say/diff", params={"from": "1.0.0"})
        assert r.status_code == 400


async def test_the_openapi_document_lists_the_template_operations(make_client: Any) -> None:
    async with make_client() as (_, client):
        paths = (await client.get("/api/v1/openapi.json")).json()["paths"]
        assert set(paths["/api/v1/templates"]) == {"get", "post"}
        assert set(paths["/api/v1/templates/{name}/{version}"]) == {"get", "delete"}
        assert "get" in paths["/api/v1/templates/{name}/diff"]
