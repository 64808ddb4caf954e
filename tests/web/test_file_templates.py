"""Templates defined in workflow files (`template` blocks, `*.template.yaml`) are listed and
shown by the REST API, GraphQL and the UI with their file, and are read-only there."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from api_support import problem

STORED = {"templateId": "hello.say", "version": "1.0.0",
          "steps": [{"name": "say", "type": "shell", "config": {"command": "echo hi"}}]}


def by_ref(listing: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {f"{t['name']}@{t['version']}": t for t in listing}


async def test_the_rest_api_lists_and_shows_file_templates_with_their_file(
        make_client: Any, workflows_dir: Path) -> None:
    async with make_client() as (_, client):
        assert (await client.post("/api/v1/templates", json=STORED)).status_code == 201
        listing = by_ref((await client.get("/api/v1/templates")).json()["templates"])
        versions = (await client.get("/api/v1/templates/payment.validate")).json()
        latest = (await client.get("/api/v1/templates/payment.validate/%5E1.2")).json()
        greeting = (await client.get("/api/v1/templates/greeting/1.0.0")).json()
        shell = (await client.get("/api/v1/templates", params={"type": "shell"})).json()
    assert set(listing) == {"hello.say@1.0.0", "greeting@1.0.0", "notify@1.0.0",
                            "payment.validate@1.2.0", "payment.validate@1.3.0"}
    assert listing["hello.say@1.0.0"] | {"created_at": 0} == {
        **STORED, "name": "hello.say", "description": None, "created_at": 0,
        "inputSchema": {"type": "object", "properties": {}}, "outputSchema": {},
        "source": "store", "path": None, "readOnly": False}
    assert listing["notify@1.0.0"]["path"] == str(workflows_dir / "templates.bsw")
    assert greeting["path"] == str(workflows_dir / "greeting.template.yaml")
    assert all(t["source"] == "file" and t["readOnly"] for ref, t in listing.items()
               if ref != "hello.say@1.0.0")
    assert versions["latest"] == "1.3.0" and len(versions["versions"]) == 2
    assert latest["steps"] == [{"name": "validate", "type": "python", "config": {
        "function": "shop:validate_payment", "amount": "${round(input.amount, 2)}",
        "currency": "${input.currency}"}}]
    assert latest["inputSchema"]["required"] == ["amount"]
    assert greeting["steps"][0]["config"] == {"command": "echo Hello, ${input.name}!"}
    assert sorted(by_ref(shell["templates"])) == ["greeting@1.0.0", "hello.say@1.0.0",
                                                  "notify@1.0.0"]


async def test_publishing_over_or_deleting_a_file_template_is_a_409_problem(
        make_client: Any, workflows_dir: Path) -> None:
    path = str(workflows_dir / "templates.bsw")
    async with make_client() as (_, client):
        over = await client.post("/api/v1/templates", json={
            **STORED, "templateId": "notify", "version": "1.1.0"})
        bumped = await client.post("/api/v1/templates", json={
            **STORED, "templateId": "notify", "version": None, "bump": "major"})
        deleted = await client.delete("/api/v1/templates/notify/1.0.0")
        yaml = await client.delete("/api/v1/templates/greeting/1.0.0")
        still = (await client.get("/api/v1/templates/notify")).json()
    for response in (over, bumped):
        body = problem(response, 409)
        assert body["code"] == "template.read-only" and body["path"] == path
        assert body["detail"] == (f"template notify is defined in the file {path}; "
                                  "templates defined in files are read-only here")
        assert "edit or delete the file" in body["hint"]
    assert problem(deleted, 409)["detail"].startswith("template notify@1.0.0 is defined in")
    assert problem(yaml, 409)["path"] == str(workflows_dir / "greeting.template.yaml")
    assert [v["version"] for v in still["versions"]] == ["1.0.0"]


async def test_file_templates_are_listed_without_a_template_store(make_client: Any) -> None:
    async with make_client() as (bs, client):
        bs.templates = None
        listing = (await client.get("/api/v1/templates")).json()["templates"]
        page = await client.get("/ui/templates/greeting")
    assert "greeting" in {t["name"] for t in listing}
    assert page.status_code == 200


async def test_graphql_shows_file_templates_with_their_source(make_client: Any,
                                                              workflows_dir: Path) -> None:
    query = '{ jobTemplate(id: "greeting") { version source path readOnly steps { type } } }'
    listing = '{ jobTemplates(filter: {name: "payment.validate"}) { version source } }'
    async with make_client() as (_, client):
        one = (await client.post("/graphql", json={"query": query})).json()
        many = await client.post("/graphql", json={"query": listing})
    assert one == {"data": {"jobTemplate": {
        "version": "1.0.0", "source": "file", "readOnly": True, "steps": [{"type": "shell"}],
        "path": str(workflows_dir / "greeting.template.yaml")}}}
    assert many.json()["data"]["jobTemplates"] == [{"version": "1.2.0", "source": "file"},
                                                   {"version": "1.3.0", "source": "file"}]


async def test_the_ui_lists_and_shows_file_templates_as_read_only(
        make_client: Any, workflows_dir: Path) -> None:
    async with make_client() as (_, client):
        listing = (await client.get("/ui/templates")).text
        page = await client.get("/ui/templates/payment.validate")
    assert 'href="/ui/templates/greeting"' in listing
    assert f"<code>{workflows_dir / 'greeting.template.yaml'}</code>" in listing
    assert "(read-only)" in listing and "1.2.0, 1.3.0" in listing
    assert page.status_code == 200
    assert page.text.count(f"defined in <code>{workflows_dir / 'templates.bsw'}</code>") == 2
    assert "1.2.0 → 1.3.0" in page.text
