"""The audit trail over the API (`GET /api/v1/audit-logs`), as administrators rely on it:
real actions through the API each leave one entry naming who did what to which resource,
from where, in which request and how it ended; filters and pages find them; only `audit:read`
reads them; a refused or failed action leaves no success entry; the chain stays intact."""
from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from baseshift.core.app.application import BaseShift
from baseshift.core.audit import verify
from tests.auth_support import bearer, token_for
from tests.web.api_support import (
    API,
    finished,
    install,
    job,
    job_in,
    poll_attempts,
    problem,
    processes_of,
    start,
)
from tests.web.audit_support import ADDRESS, AUDIT, Entry, client_of, head_seq, since_seq, trail

PASSWORD = "correct horse battery staple"
TEMPLATE = {"templateId": "hello.say", "version": "1.0.0", "description": "say hello",
            "steps": [{"name": "say", "type": "shell", "config": {"command": "echo hi"}}],
            "inputSchema": {"type": "object", "properties": {"name": {"type": "string"}},
                            "required": ["name"], "additionalProperties": False},
            "outputSchema": {"type": "object"}}

Row = tuple[str, str, str, str, str]
"""What an entry says: actor, action, resource, outcome, request id."""


def row(entry: Entry) -> Row:
    return (entry["actor"], entry["action"], entry["resource"], entry["outcome"],
            entry["request_id"])


class Actions:
    """The entries a test expects, in the order its actions were made."""

    def __init__(self) -> None:
        self.rows: list[Row] = []

    def expect(self, response: httpx.Response, status: int, actor: str, action: str,
               resource: str, outcome: str = "success") -> httpx.Response:
        assert response.status_code == status, response.text
        self.rows.append((actor, action, resource, outcome, response.headers["x-request-id"]))
        return response

    async def start(self, client: httpx.AsyncClient, actor: str, workflow: str,
                    inputs: dict[str, Any] | None = None) -> str:
        """Start a run (one `run.start` entry); its id."""
        response = await client.post(f"{API}/workflows", json={"workflow": workflow,
                                                                "inputs": inputs or {}})
        assert response.status_code == 201, response.text
        run_id: str = response.json()["workflow_id"]
        self.expect(response, 201, actor, "run.start", f"run:{run_id}")
        return run_id


@pytest.fixture
def served(make_client: Callable[..., Any], workflows_dir: Path) -> Callable[..., Any]:
    install(workflows_dir, "slow", "gated", "approval")
    return make_client


async def complete(client: httpx.AsyncClient, run_id: str, key: str,
                   output: dict[str, Any]) -> httpx.Response:
    """Complete a waiting manual job. Its attempt is stored RUNNING a moment before the
    executor listens; the API answers 409 "not waiting ... yet" then, and says to retry."""
    async with asyncio.timeout(30):
        while True:
            response = await client.post(f"{API}/workflows/{run_id}/jobs/{key}/complete",
                                         json={"output": output})
            if response.status_code != 409 or "yet" not in response.json()["detail"]:
                return response
            await asyncio.sleep(0.01)


async def gone(run_id: str) -> None:
    """Wait until the processes of a cancelled run's jobs have ended."""
    async with asyncio.timeout(60):
        while processes_of(run_id):
            await asyncio.sleep(0.02)


@pytest.mark.parametrize("store", ["memory", "sqlite"])
async def test_each_action_through_the_api_is_one_entry(
        served: Callable[..., Any], tmp_path: Path, store: str) -> None:
    """Runs started, cancelled, retried and approved; a template published and deleted; a
    reload; an API token made, used and revoked; a user made, refused once and signed in;
    roles changed: one entry each, with the actor, action, resource, outcome, client
    address and the request id the action's response carried."""
    flag = tmp_path / "flag"
    expected = Actions()
    async with served(store=store, templates=store) as (bs, admin_client):
        app = admin_client._transport.app  # type: ignore[attr-defined]
        tokens = {role: bearer(await token_for(bs, role))
                  for role in ("admin", "operator", "author")}
        async with client_of(app, tokens["admin"]) as admin, \
                client_of(app, tokens["operator"]) as operator, \
                client_of(app, tokens["author"]) as author, client_of(app) as anonymous:
            before = await head_seq(admin)

            hello = await expected.start(admin, "admin-tester", "hello")
            await finished(admin, hello)
            expected.expect(await admin.post(f"{API}/workflows/{hello}/rerun", json={
                "from_job": "shout"}), 202, "admin-tester", "run.rerun", f"run:{hello}")
            await poll_attempts(admin, hello, "shout", 2)

            slow = await expected.start(admin, "admin-tester", "slow")
            expected.expect(await admin.post(f"{API}/workflows/{slow}/cancel"), 200,
                            "admin-tester", "run.cancel", f"run:{slow}")
            assert (await finished(admin, slow))["status"] == "CANCELLED"
            await gone(slow)

            gated = await expected.start(operator, "operator-tester", "gated",
                                         {"flag": str(flag)})
            assert (await finished(operator, gated))["status"] == "FAILED"
            flag.touch()
            expected.expect(await operator.post(f"{API}/workflows/{gated}/retry"), 202,
                            "operator-tester", "run.retry", f"run:{gated}")
            assert (await poll_attempts(operator, gated, "gate", 2))["status"] == "COMPLETED"

            gate = await expected.start(operator, "operator-tester", "approval_gate")
            await job_in(operator, gate, "review", "RUNNING")
            expected.expect(await complete(operator, gate, "review", {
                "approved": True, "by": "mallory", "approver": "mallory"}), 202,
                "operator-tester", "run.approve", f"run:{gate}")
            approved = await finished(operator, gate)
            assert job(approved, "review")["output"]["approver"] == "operator-tester"

            expected.expect(await author.post(f"{API}/templates", json=TEMPLATE), 201,
                            "author-tester", "template.publish", "template:hello.say")
            expected.expect(await author.delete(f"{API}/templates/hello.say/1.0.0"), 204,
                            "author-tester", "template.delete", "template:hello.say")
            reload = expected.expect(await author.post(
                f"{API}/definitions/reload", headers={"X-Request-ID": "proxy-0001.a"}), 200,
                "author-tester", "workflows.reload", "server:workflows")
            assert reload.headers["x-request-id"] == "proxy-0001.a"

            made = await admin.post(f"{API}/auth/tokens", json={"name": "ci",
                                                                "roles": ["operator"]})
            token_id = made.json()["api_token"]["id"]
            expected.expect(made, 201, "admin-tester", "token.create", f"token:{token_id}")
            async with client_of(app, bearer(made.json()["token"])) as ci:
                await finished(ci, await expected.start(ci, "admin-tester/ci", "hello"))
            expected.expect(await admin.delete(f"{API}/auth/tokens/{token_id}"), 204,
                            "admin-tester", "token.revoke", f"token:{token_id}")

            expected.expect(await admin.post(f"{API}/users", json={
                "name": "ann", "password": PASSWORD, "roles": ["viewer"]}), 201,
                "admin-tester", "user.create", "user:ann")
            expected.expect(await anonymous.post(f"{API}/auth/login", json={
                "username": "ann", "password": "not her password"}), 401,
                "anonymous", "auth.login", "user:ann", "failure")
            signed_in = expected.expect(await anonymous.post(f"{API}/auth/login", json={
                "username": "ann", "password": PASSWORD}), 200, "ann", "auth.login",
                "user:ann")
            session = (await trail(admin, action="auth.login"))[0]["detail"]
            expected.expect(await anonymous.post(f"{API}/auth/logout", json={
                "refresh_token": signed_in.json()["refresh_token"]}), 204,
                "ann", "auth.logout", f"session:{session['session']}")
            expected.expect(await admin.put(f"{API}/users/ann/roles", json={
                "roles": [{"role": "operator", "scope": "pay*"}]}), 200,
                "admin-tester", "user.grants", "user:ann")
            expected.expect(await admin.patch(f"{API}/users/ann", json={"disabled": True}),
                            200, "admin-tester", "user.disable", "user:ann")
            expected.expect(await admin.post(f"{API}/users/ann/reset-mfa"), 200,
                            "admin-tester", "user.reset_mfa", "user:ann")
            expected.expect(await admin.put(f"{API}/roles/starter", json={
                "permissions": ["runs:start", "runs:read"]}), 200,
                "admin-tester", "role.save", "role:starter")
            expected.expect(await admin.delete(f"{API}/roles/starter"), 204,
                            "admin-tester", "role.delete", "role:starter")

            entries = await since_seq(admin, before)
            checked, broken = await verify(bs.store)  # type: ignore[arg-type]

    assert [row(e) for e in entries] == expected.rows
    assert {e["client"] for e in entries} == {ADDRESS}
    assert len({e["request_id"] for e in entries}) == len(entries)
    logins = [e for e in entries if e["action"] == "auth.login"]
    assert logins[0]["detail"]["reason"] == "wrong name or password"
    assert logins[1]["detail"]["method"] == "password"
    details = {e["action"]: e["detail"] for e in entries}
    assert details["user.grants"]["roles"] == "operator:pay*"
    assert details["template.publish"]["version"] == "1.0.0"
    assert details["token.create"]["roles"] == "operator"
    assert details["run.approve"]["job"] == "review"
    assert details["run.rerun"]["job"] == "shout"
    for secret in ("not her password", PASSWORD, made.json()["token"]):
        assert secret not in str(entries)
    assert broken is None and checked == entries[-1]["seq"]


# --------------------------------------------------------------------------- reading


async def varied_trail(bs: BaseShift, app: Any) -> list[Entry]:
    """Users made (bob, bobby), a refused sign-in, two runs, a reload: the whole trail,
    newest first."""
    async with client_of(app, bearer(await token_for(bs, "admin"))) as admin, \
            client_of(app) as anonymous:
        for name in ("bob", "bobby"):
            made = await admin.post(f"{API}/users", json={"name": name, "roles": ["viewer"]})
            assert made.status_code == 201, made.text
        refused = await anonymous.post(f"{API}/auth/login", json={"username": "bob",
                                                                   "password": "guess"})
        assert refused.status_code == 401
        for _ in range(2):
            await finished(admin, await start(admin, "hello"))
        assert (await admin.post(f"{API}/definitions/reload")).status_code == 200
        return await trail(admin)


def seqs(entries: list[Entry]) -> list[int]:
    return [e["seq"] for e in entries]


@pytest.mark.parametrize("store", ["memory", "sqlite"])
async def test_filters_select_by_actor_action_resource_and_time(
        make_client: Callable[..., Any], store: str) -> None:
    async with make_client(store=store) as (bs, client):
        everything = await varied_trail(bs, client._transport.app)  # type: ignore[attr-defined]
        runs = {e["resource"] for e in everything if e["action"] == "run.start"}
        assert len(runs) == 2

        async def only(**filters: Any) -> list[int]:
            return seqs(await trail(client, **filters))

        def where(keep: Callable[[Entry], bool]) -> list[int]:
            return seqs([e for e in everything if keep(e)])

        assert await only(actor="admin-tester") == where(
            lambda e: e["actor"] == "admin-tester") != []
        assert await only(actor="anonymous") == where(lambda e: e["actor"] == "anonymous")
        assert await only(action="user.create") == where(
            lambda e: e["action"] == "user.create")
        assert [e["resource"] for e in await trail(client, resource="user:bob")] == [
            "user:bob", "user:bob"]  # the refused sign-in and the creation; not user:bobby
        assert await only(resource="run:") == where(lambda e: e["resource"] in runs)
        one = sorted(runs)[0]
        assert await only(resource=one) == where(lambda e: e["resource"] == one) != []
        assert await only(actor="admin-tester", action="run.start") == where(
            lambda e: e["actor"] == "admin-tester" and e["action"] == "run.start")
        assert await only(actor="nobody") == []
        for partial in ("user:bo", "user:bob%", "user:%", "us:"):  # whole names, no wildcards
            assert await only(resource=partial) == []

        middle = everything[len(everything) // 2]["at"]
        assert await only(since=repr(middle)) == where(lambda e: e["at"] >= middle)
        assert await only(until=repr(middle)) == where(lambda e: e["at"] < middle)
        assert await only(since="2000-01-01T00:00:00Z") == seqs(everything)
        assert await only(until="2000-01-01T00:00:00+01:00") == []
        newest = everything[0]["at"]
        assert await only(since=repr(middle), until=repr(newest)) == where(
            lambda e: middle <= e["at"] < newest)


@pytest.mark.parametrize("store", ["memory", "sqlite"])
async def test_cursor_pages_walk_every_entry_once_newest_first(
        make_client: Callable[..., Any], store: str) -> None:
    async with make_client(store=store) as (bs, client):
        everything = await varied_trail(bs, client._transport.app)  # type: ignore[attr-defined]
        for filters in ({}, {"action": "user.create"}, {"resource": "run:"}):
            walked: list[int] = []
            cursor: str | None = None
            while True:
                page = (await client.get(AUDIT, params={
                    **filters, "limit": 2, **({"cursor": cursor} if cursor else {})})).json()
                assert len(page["entries"]) <= 2
                walked.extend(seqs(page["entries"]))
                cursor = page["next_cursor"]
                if cursor is None:
                    break
            assert walked == seqs(await trail(client, **filters))
        assert walked and walked == sorted(set(walked), reverse=True)
        assert seqs(everything) == list(range(everything[0]["seq"], 0, -1))


@pytest.mark.parametrize("params", [
    {"limit": "0"}, {"limit": "501"}, {"limit": "two"}, {"limit": "-1"},
    {"cursor": "abc"}, {"cursor": "0"}, {"cursor": "-5"}, {"cursor": "9" * 40},
    {"action": "run start"}, {"action": "<script>"}, {"action": "run"},
    {"resource": "no-kind"}, {"resource": "run:\x01"}, {"actor": "a\x00b"},
    {"actor": "x" * 201}, {"since": "garbage"}, {"until": "2026-02-30T00:00:00Z"},
    {"since": "yesterday"},
])
async def test_malformed_parameters_are_400_problems(make_client: Callable[..., Any],
                                                     params: dict[str, str]) -> None:
    async with make_client() as (bs, client):
        body = problem(await client.get(AUDIT, params=params), 400)
        assert body["parameter"] == next(iter(params))


# --------------------------------------------------------------------------- who reads it


async def test_only_audit_read_reads_the_trail_and_refusals_are_audited(
        make_client: Callable[..., Any]) -> None:
    async with make_client() as (bs, admin):
        app = admin._transport.app  # type: ignore[attr-defined]
        before = await head_seq(admin)
        async with client_of(app) as anonymous:
            problem(await anonymous.get(AUDIT), 401)
        denials: list[tuple[str, str]] = []
        for role in ("viewer", "operator", "author"):
            async with client_of(app, bearer(await token_for(bs, role))) as client:
                response = await client.get(AUDIT)
                body = problem(response, 403)
                assert "audit:read" in body["detail"]
                denials.append((f"{role}-tester", response.headers["x-request-id"]))
                page = await client.get("/ui/audit", headers={"Accept": "text/html"})
                assert page.status_code == 403 and "audit:read" in page.text
                assert page.headers["content-type"].startswith("text/html")
                denials.append((f"{role}-tester", page.headers["x-request-id"]))
        role = await admin.put(f"{API}/roles/auditor", json={"permissions": ["audit:read"]})
        assert role.status_code == 200, role.text
        async with client_of(app, bearer(await token_for(bs, "auditor"))) as auditor:
            assert (await auditor.get(AUDIT)).status_code == 200
            assert (await auditor.get("/ui/audit")).status_code == 200
            assert (await auditor.get(f"{API}/workflows")).status_code == 403
        entries = [e for e in await since_seq(admin, before) if e["action"] == "access.denied"]
    assert [(e["actor"], e["request_id"]) for e in entries[:6]] == denials
    assert {(e["outcome"], e["resource"], e["client"], e["detail"]["permission"])
            for e in entries[:6]} == {("denied", "server:", ADDRESS, "audit:read")}
    assert [e["detail"]["path"] for e in entries[:6]] == [AUDIT, "/ui/audit"] * 3
    assert (entries[6]["actor"], entries[6]["detail"]["permission"]) == (
        "auditor-tester", "runs:read")
    assert len(entries) == 7  # the anonymous 401 is no denial of a known actor


async def test_an_api_token_reads_the_trail_as_user_slash_token(
        make_client: Callable[..., Any]) -> None:
    async with make_client() as (bs, admin):
        app = admin._transport.app  # type: ignore[attr-defined]
        made = await admin.post(f"{API}/auth/tokens", json={"name": "siem", "roles": ["admin"]})
        assert made.status_code == 201, made.text
        async with client_of(app, bearer(made.json()["token"])) as siem:
            assert (await siem.get(AUDIT)).status_code == 200
            reloaded = await siem.post(f"{API}/definitions/reload")
        newest = (await trail(admin, action="workflows.reload"))[0]
    assert (newest["actor"], newest["request_id"]) == (
        "admin-tester/siem", reloaded.headers["x-request-id"])


async def test_a_refused_action_leaves_its_denial_and_no_success(
        make_client: Callable[..., Any]) -> None:
    async with make_client() as (bs, admin):
        app = admin._transport.app  # type: ignore[attr-defined]
        async with client_of(app, bearer(await token_for(bs, "viewer"))) as viewer:
            before = await head_seq(admin)
            refused = await viewer.post(f"{API}/workflows", json={"workflow": "hello"})
            problem(refused, 403)
            wider = await viewer.post(f"{API}/auth/tokens", json={"name": "wide",
                                                                  "roles": ["admin"]})
            problem(wider, 403)
        entries = await since_seq(admin, before)
        runs = (await admin.get(f"{API}/workflows")).json()["runs"]
    assert runs == []
    assert [e for e in entries if e["outcome"] == "success"] == []
    assert (entries[0]["action"], entries[0]["resource"], entries[0]["outcome"],
            entries[0]["actor"], entries[0]["request_id"]) == (
        "access.denied", "workflow:hello", "denied", "viewer-tester",
        refused.headers["x-request-id"])
    assert entries[0]["detail"]["permission"] == "runs:start"


# --------------------------------------------------------------------------- failures


async def test_a_failed_action_writes_no_success_entry(make_client: Callable[..., Any]) -> None:
    async with make_client() as (bs, admin):
        published = await admin.post(f"{API}/templates", json=TEMPLATE)
        assert published.status_code == 201, published.text
        run_id = await start(admin, "hello")
        await finished(admin, run_id)
        before = await head_seq(admin)
        narrower = {**TEMPLATE["inputSchema"],
                    "properties": {"name": {"type": "string", "enum": ["Ada"]}}}
        failures = [
            (await admin.post(f"{API}/templates", json={
                **TEMPLATE, "version": "1.1.0", "inputSchema": narrower}), 409),
            (await admin.post(f"{API}/templates", json=TEMPLATE), 409),
            (await admin.delete(f"{API}/templates/hello.say/9.9.9"), 404),
            (await admin.post(f"{API}/workflows", json={"workflow": "no_such_flow"}), 404),
            (await admin.post(f"{API}/workflows", json={"workflow": "hello",
                                                        "inputs": {"name": 5}}), 422),
            (await admin.post(f"{API}/workflows/{run_id}/cancel"), 409),
            (await admin.post(f"{API}/workflows/{run_id}/retry"), 409),
            (await admin.post(f"{API}/workflows/{run_id}/rerun", json={"from_job": "nope"}),
             404),
            (await admin.post(f"{API}/workflows/{run_id}/jobs/greet/complete",
                              json={"output": {}}), 409),
            (await admin.post(f"{API}/workflows/nope/cancel"), 404),
            (await admin.post(f"{API}/users", json={"name": "admin-tester",
                                                    "roles": ["viewer"]}), 409),
            (await admin.post(f"{API}/users", json={"name": "zed", "roles": ["ghost"]}), 404),
            (await admin.put(f"{API}/users/nobody/roles", json={"roles": ["viewer"]}), 404),
            (await admin.delete(f"{API}/auth/tokens/{'0' * 32}"), 404),
            (await admin.put(f"{API}/roles/viewer", json={"permissions": ["*"]}), 409),
            (await admin.delete(f"{API}/roles/admin"), 409),
            (await admin.delete(f"{API}/roles/ghost"), 404),
        ]
        for response, status in failures:
            problem(response, status)
        after = await since_seq(admin, before)
        checked, broken = await verify(bs.store)  # type: ignore[arg-type]
    assert after == []
    assert broken is None and checked == before


async def test_a_malformed_request_id_is_replaced(make_client: Callable[..., Any]) -> None:
    async with make_client() as (bs, admin):
        for sent in ("short", "has space in it", "x" * 65, "semi;colon-000"):
            response = await admin.post(f"{API}/definitions/reload",
                                        headers={"X-Request-ID": sent})
            kept = response.headers["x-request-id"]
            assert kept != sent and len(kept) == 32
            newest = (await trail(admin, action="workflows.reload"))[0]
            assert newest["request_id"] == kept
