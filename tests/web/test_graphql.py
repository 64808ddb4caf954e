"""The `/graphql` endpoint over the template store (the seed's schema), with graphql-core."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

INPUT = {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}


def document(name: str, version: str, kind: str = "shell") -> dict[str, Any]:
    config = {"command": "echo ${input.name}"} if kind == "shell" else {"url": "http://x"}
    return {"templateId": name, "version": version, "inputSchema": INPUT,
            "outputSchema": {"type": "object"},
            "steps": [{"name": "one", "type": kind, "config": config}]}


QUERY = """
query ($id: ID!, $version: String) {
  jobTemplate(id: $id, version: $version) {
    id name version description steps { name type config } inputSchema outputSchema
  }
}
"""


@pytest.fixture
async def client(make_client: Any, tmp_path: Path) -> Any:
    """Four published templates, and a workflows folder that defines none."""
    async with make_client(workflows=tmp_path / "no-workflows") as (_, c):
        for name, version, kind in [("greet", "1.0.0", "shell"), ("greet", "1.1.0", "shell"),
                                    ("greet", "2.0.0", "shell"), ("fetch", "0.1.0", "http")]:
            r = await c.post("/api/v1/templates", json=document(name, version, kind))
            assert r.status_code == 201, r.text
        yield c


async def test_job_template_by_id_and_version(client: Any) -> None:
    r = await client.post("/graphql", json={"query": QUERY,
                                            "variables": {"id": "greet", "version": "^1"}})
    assert r.status_code == 200
    assert r.json() == {"data": {"jobTemplate": {
        "id": "greet", "name": "greet", "version": "1.1.0", "description": None,
        "steps": [{"name": "one", "type": "shell", "config": {"command": "echo ${input.name}"}}],
        "inputSchema": INPUT, "outputSchema": {"type": "object"}}}}


async def test_job_template_latest_and_missing(client: Any) -> None:
    r = await client.post("/graphql", json={"query": QUERY, "variables": {"id": "greet"}})
    assert r.json()["data"]["jobTemplate"]["version"] == "2.0.0"
    r = await client.post("/graphql", json={"query": QUERY, "variables": {"id": "nobody"}})
    assert r.json() == {"data": {"jobTemplate": None}}


async def test_job_templates_with_filters(client: Any) -> None:
    query = "query($f: JobTemplateFilter) { jobTemplates(filter: $f) { id version } }"
    r = await client.post("/graphql", json={"query": query})
    assert [(t["id"], t["version"]) for t in r.json()["data"]["jobTemplates"]] == [
        ("fetch", "0.1.0"), ("greet", "1.0.0"), ("greet", "1.1.0"), ("greet", "2.0.0")]
    r = await client.post("/graphql", json={"query": query,
                                            "variables": {"f": {"type": "http"}}})
    assert r.json()["data"]["jobTemplates"] == [{"id": "fetch", "version": "0.1.0"}]
    r = await client.post("/graphql", json={"query": query, "variables": {
        "f": {"name": "greet", "version": "~1.0"}}})
    assert r.json()["data"]["jobTemplates"] == [{"id": "greet", "version": "1.0.0"}]


async def test_get_with_a_query_string(client: Any) -> None:
    r = await client.get("/graphql", params={"query": '{ jobTemplate(id: "fetch") { version } }'})
    assert r.json() == {"data": {"jobTemplate": {"version": "0.1.0"}}}


async def test_resolver_errors_come_in_graphql_format(client: Any) -> None:
    r = await client.post("/graphql", json={
        "query": '{ jobTemplate(id: "greet", version: "not a range") { id } }'})
    body = r.json()
    assert body["data"] == {"jobTemplate": None}
    assert body["errors"][0]["path"] == ["jobTemplate"]
    assert "not a version range" in body["errors"][0]["message"]


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"json": {"query": "{ nothing }"}}, "Cannot query field 'nothing'"),
    ({"json": {"query": "{ jobTemplate("}}, "Syntax Error"),
    ({"json": {}}, "give a GraphQL query"),
    ({"json": [1]}, "must be a JSON object"),
    ({"json": {"query": "{ jobTemplates { id } }", "variables": [1]}}, "'variables'"),
    ({"content": b"{oops", "headers": {"content-type": "application/json"}}, "not valid JSON"),
])
async def test_bad_requests_are_400_with_graphql_errors(client: Any, kwargs: dict[str, Any],
                                                        message: str) -> None:
    r = await client.post("/graphql", **kwargs)
    assert r.status_code == 400
    assert message in r.json()["errors"][0]["message"]


async def test_bad_get_variables(client: Any) -> None:
    r = await client.get("/graphql", params={"query": "{ jobTemplates { id } }",
                                             "variables": "{x"})
    assert r.status_code == 400 and "variables are not JSON" in r.json()["errors"][0]["message"]


async def test_absurdly_nested_queries_and_variables_are_refused_not_crashed(
        make_client: Any) -> None:
    async with make_client() as (_, client):
        deep = "{" * 5000 + "}" * 5000
        variables = "[" * 3000 + "]" * 3000
        for response in (await client.post("/graphql", json={"query": "{ a" + deep + " }"}),
                         await client.get("/graphql", params={"query": "{ x }",
                                                              "variables": variables}),
                         await client.post("/graphql", json={"query": "{" * 30_000})):
            assert response.status_code == 400
            assert response.json()["errors"]


async def test_without_graphql_core_the_route_says_how_to_install_it(
        make_client: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from baseshift.core.registry import extra
    from baseshift.plugins.templates import graphql as graphql_templates

    monkeypatch.setattr(graphql_templates, "GRAPHQL", extra("graphql", "no_such_graphql_xyz"))
    async with make_client() as (_, c):
        r = await c.post("/graphql", json={"query": "{ jobTemplates { name } }"})
    assert r.status_code == 501
    assert r.json() == {"errors": [{"message": "GraphQL (graphql-core) is not installed on "
                                               "this server: pip install 'baseshift[graphql]'"}]}
