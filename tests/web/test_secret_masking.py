"""A step that prints a secret, encodes it, returns it and fails with it leaves no trace of
it anywhere a user or an attacker could look: the database file, the API's answers, the UI's
pages and the server's log (issue 13, section 2)."""
from __future__ import annotations

import base64
import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

import pytest

from tests.web.api_support import API, finished, start

SECRET = 's3cr3t/"quoted"+välue&more'
FORMS = {
    "plain": SECRET,
    "base64": base64.b64encode(SECRET.encode()).decode(),
    "base64 unpadded": base64.b64encode(SECRET.encode()).decode().rstrip("="),
    "base64 url-safe": base64.urlsafe_b64encode(SECRET.encode()).decode(),
    "url-encoded": quote(SECRET, safe=""),
    "form-encoded": quote_plus(SECRET),
    "json-escaped": json.dumps(SECRET)[1:-1],
    "json-escaped ascii": json.dumps(SECRET, ensure_ascii=True)[1:-1],
    "utf-8 bytes in the db": SECRET.encode().decode("latin-1"),
}

MODULE = '''
import base64, json, sys
from urllib.parse import quote, quote_plus

def forms(token):
    raw = token.encode()
    return [token, base64.b64encode(raw).decode(), base64.urlsafe_b64encode(raw).decode(),
            base64.b64encode(raw).decode().rstrip("="), quote(token, safe=""),
            quote_plus(token), json.dumps(token), json.dumps(token, ensure_ascii=False)]

def show(token, shout):
    for form in forms(token):
        print("leaking", form)
        print("to stderr", form, file=sys.stderr)
    return {"token": token, "all": forms(token), token: "as a key", "shout": shout}

def fail(token):
    raise RuntimeError("could not use " + token + " / " + json.dumps(token))
'''

WORKFLOW = '''workflow leaky {
  version "1.0.0"
  job show uses python {
    with { function: "masking_leak:show", token: "${secret.LEAK_TOKEN}",
           shout: "${upper(secret.LEAK_TOKEN)}" }
  }
  job fail uses python {
    with { function: "masking_leak:fail", token: "${secret.LEAK_TOKEN}" }
  }
}
'''


def hits(text: str) -> list[str]:
    found = [name for name, form in FORMS.items() if form in text]
    if SECRET.upper() in text:
        found.append("derived (upper)")
    return found


@pytest.mark.parametrize("store", ["sqlite", "memory"])
async def test_a_leaked_secret_is_nowhere(make_client: Callable[..., Any], tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch,
                                          caplog: pytest.LogCaptureFixture,
                                          store: str) -> None:
    monkeypatch.setenv("BASESHIFT_SECRET_LEAK_TOKEN", SECRET)
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "masking_leak.py").write_text(MODULE)
    (flows / "leaky.bsw").write_text(WORKFLOW)
    monkeypatch.syspath_prepend(str(flows))
    caplog.set_level(logging.DEBUG)
    data = tmp_path / "data"
    async with make_client(workflows=flows, store=store, templates=store,
                           data_dir=data) as (bs, client):
        run_id = await start(client, "leaky")
        done = await finished(client, run_id)
        assert done["status"] == "FAILED"
        jobs = (await client.get(f"{API}/workflows/{run_id}/jobs")).json()
        show = next(j for j in jobs if j["key"] == "show")
        assert show["output"]["token"] == "***"  # the output is kept, the secret masked
        answers = [(await client.get(path)).text for path in (
            f"{API}/workflows", f"{API}/workflows/{run_id}",
            f"{API}/workflows/{run_id}?logs=true", f"{API}/workflows/{run_id}/jobs",
            f"{API}/workflows/{run_id}/jobs/show", f"{API}/workflows/{run_id}/jobs/fail",
            f"/ui/runs/{run_id}", "/ui/runs", "/")]
        for text in answers:
            assert hits(text) == []
        assert "could not use ***" in " ".join(answers)
    assert hits(caplog.text) == []
    if store == "sqlite":
        for file in (f for f in data.glob("baseshift.db*") if f.is_file()):  # the WAL too
            assert hits(file.read_bytes().decode("latin-1")) == [], file.name
