"""The server's JSON log lines (docs/operations.md "Logs"), captured with the real formatter:
the access line of each request, the line of a failed run, the context of lines logged
during an attempt, and no secret anywhere."""
from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from baseshift.core.tracecontext import run_trace_id
from tests.log_support import json_log, line_where, steps_folder
from tests.web.api_support import API, finished, start

SECRET = "tok-31415-do-not-log"

MODULE = '''
import logging

log = logging.getLogger("baseshift.steps.probe")

async def async_step(token):
    log.warning("async step running")
    return 1

def sync_step(token):
    log.warning("sync step running")
    return 2

def fail(token):
    print("the token is", token)
    log.warning("about to fail with %s", token)
    try:
        raise RuntimeError("could not use " + token)
    except RuntimeError:
        log.exception("failing")
        raise
'''

WORKFLOW = '''workflow logged {
  version "1.0.0"
  job a uses python { with { function: "log_probe:async_step", token: "${secret.LOG_TOKEN}" } }
  job b uses python {
    needs a
    with { function: "log_probe:sync_step", token: "${secret.LOG_TOKEN}" }
  }
  job c uses python { needs b with { function: "log_probe:fail", token: "${secret.LOG_TOKEN}" } }
}
'''


@pytest.fixture
def flows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return steps_folder(tmp_path, monkeypatch, {"log_probe.py": MODULE, "logged.bsw": WORKFLOW},
                        {"LOG_TOKEN": SECRET})


async def test_lines_of_a_run_carry_it_and_never_its_secret(
        make_client: Callable[..., Any], flows: Path) -> None:
    with json_log() as (lines, raw):
        async with make_client(workflows=flows) as (bs, client):
            run_id = await start(client, "logged")
            assert (await finished(client, run_id))["status"] == "FAILED"
            failed = await line_where(lines, event="run.failed")
    probes = [x for x in lines() if x["logger"] == "baseshift.steps.probe"]
    assert sorted(x["message"] for x in probes) == [
        "about to fail with ***", "async step running", "failing", "sync step running"]
    failing = next(x for x in probes if x["message"] == "failing")
    assert "could not use ***" in failing["exception"]  # the traceback: masked too
    for x in probes:  # logged during the attempts, on the loop and in a worker thread
        assert (x["run_id"], x["workflow"], x["attempt"]) == (run_id, "logged", 1), x
    assert {x["job"] for x in probes} == {"a", "b", "c"}
    assert (failed["run_id"], failed["workflow"], failed["jobs"]) == (run_id, "logged", ["c"])
    assert failed["level"] == "info" and run_id in failed["message"]
    assert "trace_id" not in failed  # tracing is off: no trace to name
    assert "could not use ***" in failed["error"]  # the stored error: masked
    text = raw.getvalue()
    assert SECRET not in text and SECRET not in json.dumps(lines(), ensure_ascii=False)


async def test_the_access_line_of_a_request(make_client: Callable[..., Any],
                                            flows: Path) -> None:
    parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    with json_log() as (lines, _):
        async with make_client(workflows=flows) as (bs, client):
            run_id = await start(client, "logged")
            await finished(client, run_id)
            got = await client.get(f"{API}/workflows/{run_id}?logs=true",
                                   headers={"traceparent": parent})
            refused = await client.get(f"{API}/workflows", headers={"authorization": "x"})
            missing = await client.get("/no/such/page")
    access = [x for x in lines() if x.get("event") == "http.request"]
    line = next(x for x in access if x["request_id"] == got.headers["x-request-id"])
    assert line["logger"] == "baseshift.access" and line["level"] == "info"
    assert (line["method"], line["status"]) == ("GET", 200)
    assert line["route"] == "/api/v1/workflows/{run_id}"  # the template, not the run id
    assert line["path"] == f"/api/v1/workflows/{run_id}"  # never the query string
    assert line["actor"] == "admin-tester" and line["client"] == "127.0.0.1"
    assert isinstance(line["duration_ms"], float) and line["duration_ms"] >= 0
    assert (line["trace_id"], line["span_id"]) == ("4bf92f3577b34da6a3ce929d0e0e4736",
                                                   "00f067aa0ba902b7")
    assert "logs=true" not in json.dumps(access)
    started = next(x for x in access if x["method"] == "POST")
    assert started["route"] == "/api/v1/workflows" and started["status"] == 201
    denied = next(x for x in access if x["request_id"] == refused.headers["x-request-id"])
    assert denied["status"] == 401 and denied["actor"] is None
    lost = next(x for x in access if x["path"] == "/no/such/page")
    assert lost["status"] == missing.status_code == 404 and lost["route"] is None
    assert "trace_id" not in started  # no traceparent header, no trace
    assert all(x["actor"] != "admin-tester" for x in lines()
               if x["logger"] == "baseshift.steps.probe")  # a run acts for the server


async def test_every_line_of_a_traced_run_carries_its_run_id_and_trace_id(
        make_client: Callable[..., Any], flows: Path) -> None:
    """With tracing on, a log query by run id or by trace id finds the same lines: every
    line logged about a run (its steps' lines, on the loop and in threads, and the line of
    its failure) names both."""
    with json_log() as (lines, _):
        async with make_client(workflows=flows,
                               extra={"tracing": {"exporter": "memory"}}) as (bs, client):
            run_id = await start(client, "logged")
            assert (await finished(client, run_id))["status"] == "FAILED"
            await line_where(lines, event="run.failed")
    about_run = [x for x in lines() if x.get("run_id") == run_id]
    assert {x["logger"] for x in about_run} >= {"baseshift.steps.probe"}
    assert any(x.get("event") == "run.failed" for x in about_run)
    assert all(x.get("trace_id") == run_trace_id(run_id) for x in about_run), about_run
    probes = [x for x in lines() if x["logger"] == "baseshift.steps.probe"]
    assert len(probes) == 4 and all(x["run_id"] == run_id for x in probes)
