"""Run inputs and template outputs declared `secret` (issue 13, section 3): sealed where they
are stored (no plaintext in the SQLite file, its WAL or the PostgreSQL rows), `***` in every
answer and page, opened for the jobs that read them and for `?reveal=secrets` with the
permission `secret:read` (audited, never with the value)."""
from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.auth_support import bearer, token_for
from tests.sealer_support import sealer_plugins
from tests.web.api_support import API, finished, poll_attempts, start

SECRET = 'hunter2/"q"+välue&Z!'
FORMS = {
    "plain": SECRET,
    "base64": base64.b64encode(SECRET.encode()).decode(),
    "json-escaped": json.dumps(SECRET)[1:-1],
    "json-escaped ascii": json.dumps(SECRET, ensure_ascii=True)[1:-1],
    "upper": SECRET.upper(),
    "session": "S-" + SECRET,
    "utf-8 bytes in the db": SECRET.encode().decode("latin-1"),
}

MODULE = '''
import base64, json

RECEIVED = []

def show(token, shout):
    RECEIVED.append(token)
    print("plain", token)
    print("base64", base64.b64encode(token.encode()).decode())
    print("json", json.dumps(token), json.dumps(token, ensure_ascii=False))
    return {"echo": token, "shout": shout}

def login(password):
    return {"session": "S-" + password, "user": "ops"}

def use(session):
    RECEIVED.append(session)
    print("using", session)
    return {"ok": True}
'''

WORKFLOW = '''template vault.login {
  version "1.0.0"
  uses python
  input { password: secret string }
  output { session: secret string, user: string }
  with { function: "secret_flow:login", password: input.password }
}

workflow guarded {
  version "1.0.0"
  input { token: secret string, region: string }
  job show uses python {
    with { function: "secret_flow:show", token: input.token, shout: "${upper(input.token)}" }
  }
  job login uses vault.login@^1 { with { password: input.token } }
  job use uses python {
    needs login
    with { function: "secret_flow:use", session: login.output.session }
  }
  output { region: input.region, user: login.output.user }
}
'''


def hits(text: str) -> list[str]:
    return [name for name, form in FORMS.items() if form in text]


def _flows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "secret_flow.py").write_text(MODULE)
    (flows / "guarded.bsw").write_text(WORKFLOW)
    monkeypatch.syspath_prepend(str(flows))
    import importlib
    import sys

    sys.modules.pop("secret_flow", None)
    importlib.invalidate_caches()
    return flows


def _received() -> list[str]:
    import sys

    return list(sys.modules["secret_flow"].RECEIVED)


def _pg_rows(url: str) -> str:
    """Every row of every table of the test's schema, as text."""
    import psycopg

    from tests.conftest import PG_SERVER

    schema = url.rsplit("schema=", 1)[1]
    out = []
    with psycopg.connect(PG_SERVER, autocommit=True) as conn:
        tables = [r[0] for r in conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s",
            (schema,))]
        for table in tables:
            rows = conn.execute(f'SELECT t::text FROM "{schema}"."{table}" t'.encode())
            out += [r[0] for r in rows]
    return "\n".join(out)


@pytest.mark.parametrize("store", ["memory", "sqlite", "postgres"])
async def test_a_secret_input_is_sealed_hidden_and_received(
        make_client: Callable[..., Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        store: str, pg_url: str) -> None:
    flows = _flows(tmp_path, monkeypatch)
    data = tmp_path / "data"
    settings: dict[str, Any] = {"store": store, "data_dir": data}
    if store == "postgres":
        settings["database_url"] = pg_url
    async with make_client(workflows=flows, plugins=sealer_plugins(),
                           **settings) as (bs, client):
        run_id = await start(client, "guarded", {"token": SECRET, "region": "eu"})
        done = await finished(client, run_id)
        assert done["status"] == "COMPLETED", done
        assert done["inputs"] == {"token": "***", "region": "eu"}
        assert done["outputs"] == {"region": "eu", "user": "ops"}
        jobs = {j["key"]: j for j in done["jobs"]}
        assert jobs["show"]["inputs"] == {"function": "secret_flow:show", "token": "***",
                                          "shout": "***"}
        assert jobs["show"]["output"] == {"echo": "***", "shout": "***"}
        assert jobs["login"]["inputs"] == {"password": "***"}
        assert jobs["login"]["output"] == {"session": "***", "user": "ops"}
        assert jobs["use"]["inputs"]["session"] == "***"
        # the jobs received the exact values
        assert _received() == [SECRET, "S-" + SECRET]
        answers = [(await client.get(path)).text for path in (
            f"{API}/workflows", f"{API}/workflows/{run_id}",
            f"{API}/workflows/{run_id}?logs=true", f"{API}/workflows/{run_id}/jobs",
            f"{API}/workflows/{run_id}/jobs/show", f"{API}/workflows/{run_id}/jobs/use",
            f"{API}/workflows/{run_id}/status", f"/ui/runs/{run_id}", "/ui/runs", "/")]
        for text in answers:
            assert hits(text) == []
        logs = (await client.get(f"{API}/workflows/{run_id}?logs=true")).json()
        printed = " ".join(a["log"] or "" for j in logs["jobs"] for a in j["attempts"])
        assert "plain ***" in printed and "base64 ***" in printed and "using ***" in printed
        # an admin sees the values on request; the reading is audited, without the value
        shown = (await client.get(f"{API}/workflows/{run_id}",
                                  params={"reveal": "secrets"})).json()
        assert shown["inputs"] == {"token": SECRET, "region": "eu"}
        assert {j["key"]: j["output"] for j in shown["jobs"]}["login"]["session"] == \
            "S-" + SECRET
        trail = (await client.get(f"{API}/audit-logs", params={"action": "secret.read"})).text
        assert f"run:{run_id}" in trail and hits(trail) == []
        # a viewer may read the run, not its secrets
        viewer = bearer(await token_for(bs, "viewer"))
        refused = await client.get(f"{API}/workflows/{run_id}", params={"reveal": "secrets"},
                                   headers=viewer)
        assert refused.status_code == 403 and "secret:read" in refused.text
        assert hits(refused.text) == []
        bad = await client.get(f"{API}/workflows/{run_id}", params={"reveal": "all"})
        assert bad.status_code == 400
    if store == "sqlite":
        for file in (f for f in data.glob("baseshift.db*") if f.is_file()):  # the WAL too
            assert hits(file.read_bytes().decode("latin-1")) == [], file.name
    if store == "postgres":
        rows = _pg_rows(pg_url)
        assert "bsenc:" in rows and hits(rows) == []


async def test_a_retried_run_opens_its_sealed_inputs_again(
        make_client: Callable[..., Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
        ) -> None:
    flows = _flows(tmp_path, monkeypatch)
    async with make_client(workflows=flows, plugins=sealer_plugins(),
                           store="sqlite") as (bs, client):
        run_id = await start(client, "guarded", {"token": SECRET, "region": "eu"})
        assert (await finished(client, run_id))["status"] == "COMPLETED"
        answer = await client.post(f"{API}/workflows/{run_id}/rerun",
                                   json={"from_job": "show"})
        assert answer.status_code == 202, answer.text
        await poll_attempts(client, run_id, "show", 2)
        assert (await finished(client, run_id))["status"] == "COMPLETED"
        assert _received().count(SECRET) == 2


async def test_the_inputs_schema_marks_secret_inputs(
        make_client: Callable[..., Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
        ) -> None:
    flows = _flows(tmp_path, monkeypatch)
    async with make_client(workflows=flows, plugins=sealer_plugins()) as (bs, client):
        body = (await client.get(f"{API}/definitions/guarded")).json()
    props = body["inputs"]["properties"]
    assert props["token"] == {"type": "string", "writeOnly": True, "format": "password"}
    assert props["region"] == {"type": "string"}


async def test_the_run_form_asks_for_a_secret_in_a_password_field(
        make_client: Callable[..., Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
        ) -> None:
    flows = _flows(tmp_path, monkeypatch)
    async with make_client(workflows=flows, plugins=sealer_plugins()) as (bs, client):
        page = (await client.get("/ui/workflows/guarded")).text
    token = re.search(r'<input[^>]*name="token"[^>]*>', page, re.S)
    region = re.search(r'<input[^>]*name="region"[^>]*>', page, re.S)
    assert token is not None and 'type="password"' in token.group()
    assert region is not None and 'type="text"' in region.group()


def test_the_cli_summary_shows_sealed_outputs_as_stars() -> None:
    from baseshift.core.records import JobRecord, RunRecord, RunSnapshot
    from baseshift.core.report import snapshot_text
    from baseshift.core.states import JobState

    run = RunRecord("r1", "guarded", "1.0.0", "", "", {"token": "bsenc:abc"})
    job = JobRecord("r1", "login", "login", state=JobState.SUCCEEDED,
                    output={"session": "bsenc:def", "user": "ops"})
    text = snapshot_text(RunSnapshot(run, {"login": job}, []))
    assert "bsenc:" not in text and "***" in text
