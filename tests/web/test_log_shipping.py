"""A server shipping its log lines to Elasticsearch (plugins/logship/): the lines of a real
run, started through the API, reach the recorded bulk endpoint with the run's context and the
request's trace id, masked as the JSON log is; the counters show on `/metrics`."""
from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from baseshift.plugins.logship.elasticsearch import shipping_of
from tests.log_support import json_log, steps_folder
from tests.plugins.es_support import recorded_elastic
from tests.web.api_support import API, finished

SECRET = "tok-16180-never-shipped"
INPUT = "input-5772-never-shipped"
PARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

MODULE = '''
import logging

log = logging.getLogger("baseshift.steps.shipped")

def work(token, key):
    print("the token is", token, "the key is", key)
    log.warning("working")
    raise RuntimeError("could not use " + token + " or " + key)
'''

WORKFLOW = '''workflow shipped {
  version "1.0.0"
  input { key: secret string }
  job work uses python {
    with { function: "ship_probe:work", token: "${secret.SHIP_TOKEN}", key: input.key }
  }
}
'''


@pytest.fixture
def flows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return steps_folder(tmp_path, monkeypatch, {"ship_probe.py": MODULE, "shipped.bsw": WORKFLOW},
                        {"SHIP_TOKEN": SECRET})


async def test_the_lines_of_a_run_reach_elasticsearch_with_its_context_and_no_secret(
        make_client: Callable[..., Any], flows: Path) -> None:
    with recorded_elastic() as es, json_log():
        options = {"url": es.url, "interval": 0.02}
        async with make_client(workflows=flows, extra={"elasticsearch": options}) as (
                bs, client):
            started = await client.post(f"{API}/workflows", headers={"traceparent": PARENT},
                                        json={"workflow": "shipped", "inputs": {"key": INPUT}})
            assert started.status_code == 201, started.text
            run_id = started.json()["workflow_id"]
            assert (await finished(client, run_id))["status"] == "FAILED"
            await es.wait_for(lambda: any(d.get("event") == "run.failed"
                                          for d in list(es.accepted)), "the run.failed line")
            running = shipping_of(bs)
            assert running is not None
            # counted when the answer is back, a moment after the server recorded the lines
            await es.wait_for(lambda: running.shipped > 0, "the shipped count")
            metrics = (await client.get("/metrics")).text
    docs = list(es.accepted)
    step = next(d for d in docs if d["logger"] == "baseshift.steps.shipped")
    assert (step["run_id"], step["job"], step["attempt"], step["workflow"]) == (
        run_id, "work", 1, "shipped")
    assert step["message"] == "working"
    access = next(d for d in docs if d.get("event") == "http.request"
                  and d.get("method") == "POST")
    assert access["trace_id"] == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert access["request_id"] == started.headers["x-request-id"]
    failed = next(d for d in docs if d.get("event") == "run.failed")
    assert failed["run_id"] == run_id and failed["@timestamp"] == failed["timestamp"]
    assert failed["error"].count("***") == 2  # the stored error, masked
    shipped = b"".join(r.body for r in es.requests)
    assert SECRET.encode() not in shipped and INPUT.encode() not in shipped
    assert all(json.loads(line) for line in shipped.splitlines())
    assert 'baseshift_log_lines_shipped_total{outcome="shipped",service="elasticsearch"}' \
        in metrics
    assert 'baseshift_log_lines_buffered{service="elasticsearch"}' in metrics
